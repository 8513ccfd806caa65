//! Every endpoint of the daemon, against the in-process S3 server behind the link emulator.

mod common;

use common::{Case, Options, Rig, expect_all, raw};
use strata_cache::{BlockCache, CacheConfig, ObjectVersion};
use strata_daemon_client::DaemonSource;

const TOKEN: &str = "test-token-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn healthz_and_metrics() {
    let rig = Rig::start(Options::default()).await;
    let (st, _, body) = raw(&rig.base, "GET", "/healthz", &[], b"").await;
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["status"], "ok");
    let data = rig.put("m.bin", 1, 3 << 20).await;
    let got = rig.client().read(&rig.url("m.bin"), None).await.unwrap();
    assert_eq!(got, data);
    let (st, h, body) = raw(&rig.base, "GET", "/metrics", &[], b"").await;
    assert_eq!(st, 200);
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(body.to_vec()).unwrap();
    for series in [
        "strata_tier_hits_total{tier=\"dram\"}",
        "strata_tier_hit_ratio{tier=\"nvme\"}",
        "strata_upstream_fetched_bytes_total",
        "strata_daemon_request_seconds_bucket",
        "strata_prefetch_queue",
        "strata_response_memory_bytes",
    ] {
        assert!(text.contains(series), "{series} missing from:\n{text}");
    }
    let fetched: f64 = text
        .lines()
        .find(|l| l.starts_with("strata_upstream_fetched_bytes_total "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("fetched bytes");
    assert!(fetched >= data.len() as f64, "{fetched}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_api_reads_byte_exact_and_hands_over_block_files() {
    let rig = Rig::start(Options::default()).await;
    let data = rig.put("obj.bin", 2, 5 * (1 << 20) + 12345).await;
    let c = rig.client();
    let url = rig.url("obj.bin");
    let (size, etag) = c.stat(&url).await.unwrap();
    assert_eq!(size, data.len() as u64);
    assert!(!etag.is_empty());
    // Ranges through the socket.
    let no_handoff = c.clone().without_handoff();
    for r in [0..1, 100..(3 << 20) + 7, (1 << 20)..(2 << 20), 0..size] {
        let got = no_handoff
            .read_pinned(&url, &etag, size, r.clone(), false)
            .await
            .unwrap();
        assert_eq!(got, data.slice(r.start as usize..r.end as usize), "{r:?}");
    }
    // Through the block files (handoff): the same bytes.
    let got = c
        .read_pinned(&url, &etag, size, 77..size - 3, false)
        .await
        .unwrap();
    assert_eq!(got, data.slice(77..data.len() - 3));
    // Once the block files are written, every piece is a file in the cache directory.
    rig.node().cache.flush().await;
    let (st, _, body) = raw(
        &rig.base,
        "GET",
        &format!(
            "/v1/blocks?url={}&etag={}&size={size}&start=0&end={size}",
            urlenc(&url),
            urlenc(&etag)
        ),
        &[],
        b"",
    )
    .await;
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["complete"], true);
    let pieces = v["pieces"].as_array().unwrap();
    assert_eq!(pieces.len(), 6);
    for p in pieces {
        let path = std::path::Path::new(p["path"].as_str().unwrap());
        assert!(path.starts_with(rig.cache_dir.path()), "{}", path.display());
    }
    // A listing.
    let objects = c.list(&rig.url("")).await.unwrap();
    assert!(
        objects
            .iter()
            .any(|(k, s)| k == "data/obj.bin" && *s == size)
    );
    // Errors name the object.
    let e = c.stat(&rig.url("missing")).await.unwrap_err();
    assert_eq!(e.status().map(|s| s.as_u16()), Some(404));
    assert!(e.to_string().contains("missing"), "{e}");
    let (st, _, body) = raw(&rig.base, "GET", "/v1/object", &[], b"").await;
    assert_eq!(st, 400);
    assert!(String::from_utf8_lossy(&body).contains("url"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn warm_hydrates_the_nodes_cache_in_the_background() {
    let rig = Rig::start(Options::default()).await;
    let a = rig.put("w/a.bin", 31, 3 << 20).await;
    let b = rig.put("w/b.bin", 32, (1 << 20) + 7).await;
    let total = (a.len() + b.len()) as u64;
    let prefix = rig.url("w/");
    let (st, _, body) = raw(
        &rig.base,
        "POST",
        &format!("/v1/warm?url={}", urlenc(&prefix)),
        &[],
        b"",
    )
    .await;
    assert_eq!(st, 202, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (v["objects"].as_u64(), v["total_bytes"].as_u64()),
        (Some(2), Some(total))
    );
    let id = v["id"].as_u64().unwrap();
    let c = rig.client();
    let t = std::time::Instant::now();
    let s = loop {
        let s = c.warm_status(id).await.unwrap();
        assert!(s.done_bytes <= total);
        if s.finished {
            break s;
        }
        assert!(t.elapsed().as_secs() < 60, "not finished: {s:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(s.error, None);
    assert_eq!((s.done_bytes, s.fetched_bytes), (total, total));
    assert_eq!(
        s.dram_bytes, total,
        "the rig's DRAM tier (64 MiB) holds both"
    );
    // Read afterwards: no byte crosses the link again.
    let before = rig.emu.stats().requests;
    assert_eq!(c.read(&rig.url("w/a.bin"), None).await.unwrap(), a);
    assert_eq!(c.read(&rig.url("w/b.bin"), None).await.unwrap(), b);
    let gets = rig.emu.stats().requests - before;
    assert!(
        gets <= 2,
        "only the HEADs may cross the link after a warm-up: {gets}"
    );
    // A second warm-up fetches nothing.
    let again = c.warm_start(&prefix).await.unwrap();
    let s = loop {
        let s = c.warm_status(again.id).await.unwrap();
        if s.finished {
            break s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!((s.fetched_bytes, s.done_bytes), (0, total));
    // Bad requests name their cause.
    let e = c.warm_start(&rig.url("none/")).await.unwrap_err();
    assert_eq!(e.status().map(|s| s.as_u16()), Some(404), "{e}");
    assert!(e.to_string().contains("none"), "{e}");
    let e = c.warm_status(9999).await.unwrap_err();
    assert_eq!(e.status().map(|s| s.as_u16()), Some(404), "{e}");
    let (st, _, _) = raw(&rig.base, "GET", "/v1/warm?id=x", &[], b"").await;
    assert_eq!(st, 400);
    let (st, _, _) = raw(&rig.base, "POST", "/v1/warm", &[], b"").await;
    assert_eq!(st, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_files_are_served_only_under_the_local_roots() {
    let data = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("in.bin"), b"inside the root").unwrap();
    std::fs::write(outside.path().join("secret"), b"not for clients").unwrap();
    std::os::unix::fs::symlink(outside.path(), data.path().join("out")).unwrap();
    let get = |base: String, path: std::path::PathBuf| async move {
        let url = format!("file://{}", path.display());
        raw(
            &base,
            "GET",
            &format!("/v1/object?url={}", urlenc(&url)),
            &[],
            b"",
        )
        .await
    };
    // No local roots (the default): no local file at all.
    let rig = Rig::start(Options::default()).await;
    for p in [data.path().join("in.bin"), "/etc/passwd".into()] {
        let (st, _, body) = get(rig.base.clone(), p.clone()).await;
        assert_eq!(st, 403, "{}", p.display());
        let msg = String::from_utf8_lossy(&body);
        assert!(
            msg.contains(&*p.to_string_lossy()) && msg.contains("--local-root"),
            "{msg}"
        );
    }
    let e = rig
        .client()
        .stat(&format!("file://{}", data.path().join("in.bin").display()))
        .await
        .unwrap_err();
    assert_eq!(e.status().map(|s| s.as_u16()), Some(403));
    // With the data directory as a root: its files, and nothing a symlink leads to outside.
    let rig = Rig::start(Options {
        local_roots: vec![data.path().to_path_buf()],
        ..Default::default()
    })
    .await;
    let (st, _, body) = get(rig.base.clone(), data.path().join("in.bin")).await;
    assert_eq!((st, &body[..]), (200, &b"inside the root"[..]));
    for p in [
        outside.path().join("secret"),
        data.path().join("out/secret"),
        "/etc/passwd".into(),
    ] {
        let (st, _, body) = get(rig.base.clone(), p.clone()).await;
        assert_eq!(
            st,
            403,
            "{}: {}",
            p.display(),
            String::from_utf8_lossy(&body)
        );
    }
}

fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_block_is_fetched_once_per_node_however_many_clients_read_it() {
    let rig = Rig::start(Options::default()).await;
    let data = rig.put("shared.bin", 3, 8 << 20).await;
    let url = rig.url("shared.bin");
    let before = rig.emu.stats().bytes_down;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        // Each "process" has its own DRAM-only cache over the daemon.
        let src = DaemonSource {
            client: rig.client(),
        };
        let url = url.clone();
        let data = data.clone();
        tasks.push(tokio::spawn(async move {
            let (size, etag) = src.client.stat(&url).await.unwrap();
            let cache = BlockCache::open(&CacheConfig {
                block_size: 1 << 20,
                dram_bytes: 32 << 20,
                nvme: None,
                read_concurrency: 4,
            })
            .unwrap();
            let (root, key) = url.split_at(url.find("/data/").unwrap());
            let obj = ObjectVersion::new(root, &key[1..], &etag, size);
            let got = cache.read(&src, &obj, 0..size).await.unwrap();
            assert_eq!(got, data);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let moved = rig.emu.stats().bytes_down - before;
    assert!(
        moved >= data.len() as u64 && moved < data.len() as u64 + (64 << 10),
        "the link moved {moved} bytes for one object of {}",
        data.len()
    );
    assert_eq!(rig.node().cache.stats().fetched_bytes, data.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_changed_object_is_never_served_from_old_blocks() {
    let rig = Rig::start(Options::default()).await;
    let old = rig.put("v.bin", 4, 2 << 20).await;
    let c = rig.client().without_handoff();
    let url = rig.url("v.bin");
    let (size, etag) = c.stat(&url).await.unwrap();
    // Only the first block of the old version is cached.
    let first = c
        .read_pinned(&url, &etag, size, 0..1000, false)
        .await
        .unwrap();
    assert_eq!(first, old.slice(0..1000));
    let new = rig.put("v.bin", 5, 2 << 20).await;
    // The second block of the old version is no longer in the store: the read fails with
    // 412 rather than returning the new version's bytes.
    let e = c
        .read_pinned(&url, &etag, size, (1 << 20) + 5..size, false)
        .await
        .expect_err("a block of a replaced version");
    assert_eq!(e.status().map(|s| s.as_u16()), Some(412), "{e}");
    // After the metadata TTL, a plain read sees the new version whole.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(c.read(&url, None).await.unwrap(), new);
    let (_, etag2) = c.stat(&url).await.unwrap();
    assert_ne!(etag, etag2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_endpoint() {
    let rig = Rig::start(Options::default()).await;
    let data = rig.put("a/one.bin", 6, 3 << 20).await;
    rig.put("a/two.bin", 7, 10).await;
    rig.put("b/three.bin", 8, 10).await;
    let (st, h, body) = raw(&rig.base, "GET", "/train/a/one.bin", &[], b"").await;
    assert_eq!(st, 200);
    assert_eq!(body, data);
    assert_eq!(h["content-length"], data.len().to_string().as_str());
    assert!(h.contains_key("etag") && h.contains_key("last-modified"));
    let (st, h, body) = raw(
        &rig.base,
        "GET",
        "/train/a/one.bin",
        &[("range", "bytes=100-199")],
        b"",
    )
    .await;
    assert_eq!(st, 206);
    assert_eq!(body, data.slice(100..200));
    assert_eq!(
        h["content-range"],
        format!("bytes 100-199/{}", data.len()).as_str()
    );
    let (st, h, body) = raw(&rig.base, "HEAD", "/train/a/one.bin", &[], b"").await;
    assert_eq!(st, 200);
    assert!(body.is_empty());
    assert_eq!(h["content-length"], data.len().to_string().as_str());
    expect_all(
        &rig.base,
        &[
            Case {
                path: "/train/a/one.bin",
                headers: &[("range", "bytes=99999999-")],
                status: 416,
                contains: "<Code>InvalidRange</Code>",
                why: "a range past the end",
                ..Case::default()
            },
            Case {
                path: "/train/a/nope",
                status: 404,
                contains: "<Code>NoSuchKey</Code>",
                why: "a missing key",
                ..Case::default()
            },
            Case {
                path: "/elsewhere/x",
                status: 404,
                contains: "NoSuchBucket",
                why: "a bucket the daemon does not serve",
                ..Case::default()
            },
            Case {
                method: "PUT",
                path: "/train/a/new",
                body: b"x",
                status: 403,
                why: "the endpoint is read-only",
                ..Case::default()
            },
            Case {
                path: "/train/a/%2E%2E/%2E%2E/x",
                status: 400,
                lacks: "root:",
                why: "an escaped ../ in a key",
                ..Case::default()
            },
        ],
    )
    .await;
    // A raw ../ may be cut by the HTTP layer (400) or resolve to nothing (404); never a file.
    let (st, _, body) = raw(&rig.base, "GET", "/train/../../etc/passwd", &[], b"").await;
    assert!(st == 400 || st == 404, "{st}");
    assert!(!String::from_utf8_lossy(&body).contains("root:"));
    // ListObjectsV2: delimiter, prefix, pages.
    let (st, _, body) = raw(&rig.base, "GET", "/train?list-type=2&delimiter=/", &[], b"").await;
    assert_eq!(st, 200);
    let x = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        x.contains("<CommonPrefixes><Prefix>a/</Prefix></CommonPrefixes>"),
        "{x}"
    );
    assert!(
        x.contains("<CommonPrefixes><Prefix>b/</Prefix></CommonPrefixes>"),
        "{x}"
    );
    let (_, _, body) = raw(
        &rig.base,
        "GET",
        "/train?list-type=2&prefix=a/&max-keys=1",
        &[],
        b"",
    )
    .await;
    let x = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        x.contains("<Key>a/one.bin</Key>") && x.contains("<IsTruncated>true</IsTruncated>"),
        "{x}"
    );
    assert!(
        x.contains("<NextContinuationToken>a/one.bin</NextContinuationToken>"),
        "{x}"
    );
    let (_, _, body) = raw(
        &rig.base,
        "GET",
        "/train?list-type=2&prefix=a/&continuation-token=a/one.bin",
        &[],
        b"",
    )
    .await;
    let x = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        x.contains("<Key>a/two.bin</Key>") && x.contains("<IsTruncated>false</IsTruncated>"),
        "{x}"
    );
    // ListBuckets for a signed request to /.
    let (st, _, body) = raw(
        &rig.base,
        "GET",
        "/",
        &[("x-amz-date", "20261123T000000Z")],
        b"",
    )
    .await;
    assert_eq!(st, 200);
    assert!(String::from_utf8_lossy(&body).contains("<Name>train</Name>"));
    // A browser at / goes to the dashboard.
    let (st, h, _) = raw(&rig.base, "GET", "/", &[], b"").await;
    assert_eq!(st, 302);
    assert_eq!(h["location"], "/dashboard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_is_required_on_every_request_when_set() {
    let rig = Rig::start(Options {
        token: Some(TOKEN.into()),
        ..Default::default()
    })
    .await;
    rig.put("t.bin", 9, 1000).await;
    let sig = format!(
        "AWS4-HMAC-SHA256 Credential={TOKEN}/20261123/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"
    );
    let bearer = format!("Bearer {TOKEN}");
    for path in [
        "/healthz",
        "/metrics",
        "/api/stats",
        "/dashboard",
        "/workbench",
        "/train/t.bin",
        "/v1/stat?url=s3%3A%2F%2Fstrata-test%2Fdata%2Ft.bin",
    ] {
        let (st, _, body) = raw(&rig.base, "GET", path, &[], b"").await;
        assert_eq!(
            st,
            401,
            "{path} without a token: {}",
            String::from_utf8_lossy(&body)
        );
        assert!(!String::from_utf8_lossy(&body).contains(TOKEN));
        let (st, _, _) = raw(
            &rig.base,
            "GET",
            path,
            &[("authorization", "Bearer wrong-token-0123456789")],
            b"",
        )
        .await;
        assert_eq!(st, 401, "{path} with a wrong token");
        let (st, _, _) = raw(&rig.base, "GET", path, &[("authorization", &bearer)], b"").await;
        assert_eq!(st, 200, "{path} with the token");
    }
    // A warm-up (a POST that makes the daemon fetch) needs the token too.
    let warm = "/v1/warm?url=s3%3A%2F%2Fstrata-test%2Fdata%2Ft.bin";
    let (st, _, _) = raw(&rig.base, "POST", warm, &[], b"").await;
    assert_eq!(st, 401, "a warm-up without the token");
    let (st, _, _) = raw(&rig.base, "POST", warm, &[("authorization", &bearer)], b"").await;
    assert_eq!(st, 202, "a warm-up with the token");
    let (st, _, _) = raw(
        &rig.base,
        "GET",
        "/train/t.bin",
        &[("authorization", &sig)],
        b"",
    )
    .await;
    assert_eq!(st, 200, "an S3 client with the token as its access key");
    let (st, _, _) = raw(&rig.base, "POST", "/api/jobs/x", &[], b"{}").await;
    assert_eq!(st, 401);
    // A browser: the page opened once with ?token= sets a cookie its requests carry.
    let (st, h, _) = raw(
        &rig.base,
        "GET",
        &format!("/workbench?token={TOKEN}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(st, 200);
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let (st, _, _) = raw(&rig.base, "GET", "/api/stats", &[("cookie", pair)], b"").await;
    assert_eq!(st, 200);
    let (st, _, _) = raw(
        &rig.base,
        "GET",
        "/api/stats",
        &[("cookie", "strata-token=nope")],
        b"",
    )
    .await;
    assert_eq!(st, 401);
    // The client sends the token.
    let c = strata_daemon_client::DaemonClient::new(
        &rig.base,
        Some(strata_store::config::Secret::new(TOKEN)),
    )
    .unwrap();
    assert!(c.stat(&rig.url("t.bin")).await.is_ok());
    let e = rig.client().stat(&rig.url("t.bin")).await.unwrap_err();
    assert_eq!(e.status().map(|s| s.as_u16()), Some(401));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cross_origin_and_foreign_hosts_are_refused() {
    let rig = Rig::start(Options::default()).await;
    let own = rig.base.clone();
    expect_all(
        &rig.base,
        &[
            Case {
                path: "/api/stats",
                headers: &[("origin", "http://evil.example")],
                status: 403,
                why: "another origin",
                ..Case::default()
            },
            Case {
                method: "POST",
                path: "/api/plan",
                headers: &[("sec-fetch-site", "cross-site")],
                body: b"{}",
                status: 403,
                why: "a cross-site fetch",
                ..Case::default()
            },
            Case {
                path: "/api/stats",
                headers: &[("host", "rebound.example:7420")],
                status: 403,
                why: "DNS rebinding: a foreign Host on a loopback daemon",
                ..Case::default()
            },
            Case {
                path: "/api/stats",
                headers: &[("origin", &own)],
                status: 200,
                why: "the daemon's own pages",
                ..Case::default()
            },
        ],
    )
    .await;
    // Nothing grants another origin access.
    let (_, h, _) = raw(
        &rig.base,
        "GET",
        "/api/stats",
        &[("origin", "http://evil.example")],
        b"",
    )
    .await;
    assert!(!h.contains_key("access-control-allow-origin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_and_the_planner_api() {
    let rig = Rig::start(Options::default()).await;
    for (path, needle) in [
        ("/dashboard", "id=\"sankey\""),
        ("/workbench", "id=\"persona\""),
        ("/static/workbench.js", "/api/plan"),
        ("/static/dashboard.js", "/api/stats"),
        ("/static/strata.css", "--accent"),
    ] {
        let (st, h, body) = raw(&rig.base, "GET", path, &[], b"").await;
        assert_eq!(st, 200, "{path}");
        assert!(String::from_utf8_lossy(&body).contains(needle), "{path}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'self'")
        );
    }
    // The default scenario's plan, then with a slider moved.
    let (st, _, body) = raw(&rig.base, "POST", "/api/plan", &[], b"{}").await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let u0 = v["plan"]["pipeline"]["utilization"].as_f64().unwrap();
    assert_eq!(
        v["scenario_text"].as_str().unwrap(),
        strata_daemon::api::DEFAULT_SCENARIO
    );
    let keys: Vec<&str> = v["plan"]["lessons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["audit", "sizing", "checkpoint"]);
    for plot in ["sankey", "waterfall", "saturation", "young-daly"] {
        assert!(
            v["svgs"][plot].as_str().unwrap().starts_with("<svg"),
            "{plot}"
        );
    }
    let req = serde_json::json!({"overrides": {"download": "0.5 Gbps"}});
    let (st, _, body) = raw(
        &rig.base,
        "POST",
        "/api/plan",
        &[],
        req.to_string().as_bytes(),
    )
    .await;
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let u1 = v["plan"]["pipeline"]["utilization"].as_f64().unwrap();
    assert!(
        u1 < u0 * 0.5,
        "less download bandwidth, less utilization: {u0} → {u1}"
    );
    // Bad knobs and scenarios name the field; what is not there is a 404.
    let bad_knob = serde_json::json!({"overrides": {"buffer": "lots"}}).to_string();
    let bad_scenario = serde_json::json!({"scenario": "[dataset]\nsize = \"-1 GB\"\n"}).to_string();
    expect_all(
        &rig.base,
        &[
            Case {
                path: "/static/nope.js",
                status: 404,
                why: "a file the pages do not have",
                ..Case::default()
            },
            Case {
                method: "POST",
                path: "/api/plan",
                body: bad_knob.as_bytes(),
                status: 400,
                contains: "buffer",
                why: "a knob that is not a size",
                ..Case::default()
            },
            Case {
                method: "POST",
                path: "/api/plan",
                body: bad_scenario.as_bytes(),
                status: 400,
                contains: "dataset",
                why: "a negative dataset size",
                ..Case::default()
            },
            Case {
                path: "/api/personas/nobody",
                status: 404,
                why: "a persona that does not exist",
                ..Case::default()
            },
            Case {
                path: "/api/scenario",
                contains: "[accelerators]",
                why: "the default scenario's text",
                ..Case::default()
            },
        ],
    )
    .await;
    // Too large: 413, or the connection closed while the client still wrote the body.
    let big = vec![b' '; 2 << 20];
    match common::try_raw(&rig.base, "POST", "/api/plan", &[], &big).await {
        Ok((st, _, _)) => assert_eq!(st, 413),
        Err(e) => assert!(
            e.is_body_write_aborted()
                || e.is_closed()
                || e.is_incomplete_message()
                || format!("{e:?}").contains("BodyWrite"),
            "{e:?}"
        ),
    }
    // Personas.
    for name in strata_plan::personas::NAMES {
        let (st, _, body) = raw(&rig.base, "GET", &format!("/api/personas/{name}"), &[], b"").await;
        assert_eq!(st, 200, "{name}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(
            !v["persona"]["answer"].as_array().unwrap().is_empty(),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_report_and_show_on_stats_and_metrics() {
    let rig = Rig::start(Options::default()).await;
    let r = serde_json::json!({"kind": "train", "wait_secs": 1.5, "compute_secs": 8.5, "drain_done": 10, "drain_total": 40, "requests": 130, "bytes_read": 1090519040u64});
    let (st, _, _) = raw(
        &rig.base,
        "POST",
        "/api/jobs/resnet-rank0",
        &[],
        r.to_string().as_bytes(),
    )
    .await;
    assert_eq!(st, 200);
    let (_, _, body) = raw(&rig.base, "GET", "/api/stats", &[], b"").await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["jobs"][0]["name"], "resnet-rank0");
    assert_eq!(v["jobs"][0]["report"]["wait_secs"], 1.5);
    let (_, _, body) = raw(&rig.base, "GET", "/metrics", &[], b"").await;
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("strata_ckpt_drain_total_bytes{job=\"resnet-rank0\"} 40"),
        "{text}"
    );
    assert!(
        text.contains("strata_job_requests{job=\"resnet-rank0\"} 130"),
        "{text}"
    );
    assert_eq!(v["jobs"][0]["report"]["bytes_read"], 1090519040u64);
    for (name, body) in [
        ("bad name!", "{}"),
        ("ok", "{\"wait_secs\": -1}"),
        ("ok", "{\"drain_done\": 5, \"drain_total\": 1}"),
        ("ok", "{\"unknown\": 1}"),
        ("ok", "not json"),
    ] {
        let path = format!("/api/jobs/{}", urlenc(name));
        let (st, _, _) = raw(&rig.base, "POST", &path, &[], body.as_bytes()).await;
        assert_eq!(st, 400, "{name} {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_probe_runs_on_the_cache_directory() {
    let rig = Rig::start(Options::default()).await;
    let (st, _, body) = raw(&rig.base, "POST", "/api/probe", &[], b"{}").await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v["svg"].as_str().unwrap().starts_with("<svg"));
    assert!(!v["report"]["points"].as_array().unwrap().is_empty(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_on_a_unix_socket() {
    let rig = Rig::start(Options {
        socket: true,
        ..Default::default()
    })
    .await;
    let data = rig.put("u.bin", 12, (3 << 20) + 1).await;
    let sock = rig.server.socket.clone().expect("a socket");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "the socket's mode decides who connects");
    let c =
        strata_daemon_client::DaemonClient::new(&format!("unix:{}", sock.display()), None).unwrap();
    c.health().await.unwrap();
    let url = rig.url("u.bin");
    let (size, etag) = c.stat(&url).await.unwrap();
    let got = c
        .read_pinned(&url, &etag, size, 0..size, false)
        .await
        .unwrap();
    assert_eq!(got, data);
    let got = c
        .clone()
        .without_handoff()
        .read(&url, Some(5..(2 << 20)))
        .await
        .unwrap();
    assert_eq!(got, data.slice(5..(2 << 20)));
    // A file that is not a socket is never replaced.
    let victim = rig.cache_dir.path().join("not-a-socket");
    std::fs::write(&victim, b"keep me").unwrap();
    let mut cfg = rig.node().config.clone();
    cfg.socket = Some(victim.clone());
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    let other = strata_daemon::Node::open(cfg).unwrap();
    let e = strata_daemon::Server::start(other)
        .await
        .err()
        .expect("refused");
    assert!(e.to_string().contains("not a socket"), "{e}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    // A second daemon cannot take a live socket.
    let node = rig.node().clone();
    let e = strata_daemon::Server::start(node)
        .await
        .err()
        .expect("in use");
    assert!(e.to_string().contains("another daemon"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn persona_and_job_listings() {
    let rig = Rig::start(Options::default()).await;
    let (st, _, body) = raw(&rig.base, "GET", "/api/personas", &[], b"").await;
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["personas"].as_array().unwrap().len(), 4);
    let (st, _, body) = raw(&rig.base, "GET", "/api/jobs", &[], b"").await;
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v["jobs"].as_array().unwrap().is_empty());
    rig.client()
        .report(
            "j1",
            &strata_daemon::jobs::JobReport {
                samples: Some(7),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (_, _, body) = raw(&rig.base, "GET", "/api/jobs", &[], b"").await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["jobs"][0]["report"]["samples"], 7);
    let (st, _, _) = raw(&rig.base, "DELETE", "/api/jobs", &[], b"").await;
    assert_eq!(st, 404);
}
