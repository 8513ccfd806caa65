//! `strata serve` as a user runs it: its settings, the CLI reading through it, and a load of
//! 32 concurrent clients for 60 seconds with the daemon's memory watched.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{command, ok};
use strata_daemon_client::DaemonClient;
use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, S3Server};

/// A daemon process: killed on drop.
struct Daemon {
    child: Child,
    base: String,
    budget: u64,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(
    server: &dyn S3Endpoint,
    endpoint: &str,
    extra: &[&str],
    config: Option<&std::path::Path>,
) -> Daemon {
    let mut args = vec!["--json", "serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut c = command(server, endpoint, &args);
    if let Some(f) = config {
        c.env("STRATA_CONFIG", f);
    }
    let mut child = c.stdout(Stdio::piped()).spawn().expect("strata serve");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    Daemon {
        base: format!("http://{}", v["listen"].as_str().expect("listen")),
        budget: v["memory_budget"].as_u64().expect("budget"),
        child,
    }
}

fn content(seed: u64, len: usize) -> Bytes {
    Bytes::from(strata_testkit::data::bytes(seed, len))
}

#[test]
fn print_config_and_refusals() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("c").display().to_string();
    let out = command(
        &s3,
        &s3.endpoint(),
        &[
            "--cache",
            &cache,
            "serve",
            "--print-config",
            "--bucket",
            "train=s3://strata-test/x",
        ],
    )
    .env("STRATA_TOKEN", "a-secret-token-0123456789")
    .output()
    .unwrap();
    let text = ok(&out);
    assert!(text.contains("listen = \"127.0.0.1:7420\""), "{text}");
    assert!(text.contains("train = \"s3://strata-test/x\""), "{text}");
    assert!(text.contains(&format!("dir = {cache:?}")), "{text}");
    assert!(!text.contains("a-secret-token-0123456789"), "{text}");
    assert!(!text.contains(s3.secret_key()), "{text}");
    // Off loopback without a token: refused, naming the setting.
    let out = command(&s3, &s3.endpoint(), &["serve", "--listen", "0.0.0.0:7420"])
        .env_remove("STRATA_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("daemon.listen") && err.contains("token"),
        "{err}"
    );
    let out = command(
        &s3,
        &s3.endpoint(),
        &["serve", "--bucket", "api=s3://strata-test/x"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bucket"));
}

#[test]
fn cat_and_stat_read_through_the_daemon() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = content(11, 9 << 20);
    let file = tmp.path().join("in.bin");
    std::fs::write(&file, &data).unwrap();
    ok(&common::run(
        &s3,
        &["cp", file.to_str().unwrap(), "s3://strata-test/data/in.bin"],
    ));
    let cache = tmp.path().join("cache").display().to_string();
    let d = serve(&s3, &s3.endpoint(), &["--cache", &cache], None);
    let out = command(
        &s3,
        &s3.endpoint(),
        &["cat", "--daemon", &d.base, "s3://strata-test/data/in.bin"],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == data, "cat --daemon is byte-exact");
    let out = command(
        &s3,
        &s3.endpoint(),
        &["--json", "stat", "s3://strata-test/data/in.bin"],
    )
    .env("STRATA_DAEMON", &d.base)
    .output()
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["size"], data.len());
    let out = command(
        &s3,
        &s3.endpoint(),
        &["cat", "--daemon", &d.base, "s3://strata-test/data/nope"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(3), "not found through the daemon");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
    let out = command(
        &s3,
        &s3.endpoint(),
        &[
            "cat",
            "--daemon",
            "http://127.0.0.1:1",
            "s3://strata-test/data/in.bin",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(5), "no daemon there");
    assert!(String::from_utf8_lossy(&out.stderr).contains("strata serve"));
}

/// `strata --json warm --daemon BASE ARGS…`: its exit code and JSON (or stderr).
fn warm_daemon(
    s3: &S3Server,
    base: &str,
    args: &[&str],
) -> (Option<i32>, serde_json::Value, String) {
    let mut all = vec!["--json", "warm", "--daemon", base];
    all.extend_from_slice(args);
    let out = command(s3, &s3.endpoint(), &all).output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code(),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn warm_through_the_daemon_fills_its_cache_once_for_every_process() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut total = 0;
    let mut parts = Vec::new();
    for (i, len) in [(0u64, 5 << 20), (1, 9 << 20), (2, 1)] {
        let data = content(20 + i, len);
        let file = tmp.path().join(format!("p{i}"));
        std::fs::write(&file, &data).unwrap();
        let url = format!("s3://strata-test/data/w/p{i}");
        ok(&common::run(&s3, &["cp", file.to_str().unwrap(), &url]));
        total += len;
        parts.push((url, data));
    }
    let cache = tmp.path().join("cache");
    let d = serve(
        &s3,
        &s3.endpoint(),
        &["--cache", &cache.display().to_string()],
        None,
    );
    // The first warm-up fetches everything, into the daemon's NVMe and DRAM tiers.
    let (code, v, err) = warm_daemon(
        &s3,
        &d.base,
        &["--tier", "dram", "s3://strata-test/data/w/"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["finished"], true, "{v}");
    assert_eq!(v["objects"], 3, "{v}");
    assert_eq!(v["total_bytes"], total, "{v}");
    assert_eq!(v["done_bytes"], total, "{v}");
    assert_eq!(v["fetched_bytes"], total, "{v}");
    assert_eq!(v["dram_bytes"], total, "{v}");
    // 8 MiB blocks (the default): 1 + 2 + 1 block files on the daemon's NVMe tier.
    assert_eq!(walk(&cache.join("blocks")).len(), 4);
    // Another process warms the same prefix: nothing is fetched again.
    let (code, v, err) = warm_daemon(&s3, &d.base, &["s3://strata-test/data/w/"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["fetched_bytes"], 0, "{v}");
    // And reads through the daemon are byte-exact.
    for (url, data) in &parts {
        let out = command(&s3, &s3.endpoint(), &["cat", "--daemon", &d.base, url])
            .output()
            .unwrap();
        assert!(out.status.success() && out.stdout == data[..], "{url}");
    }
    // Errors name what is wrong, with the CLI's exit codes.
    let (code, _, err) = warm_daemon(&s3, &d.base, &["s3://strata-test/data/none/"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("data/none"), "{err}");
    let (code, _, err) = warm_daemon(&s3, &d.base, &["/etc/"]);
    assert_ne!(
        code,
        Some(0),
        "a local directory outside the daemon's local roots"
    );
    assert!(err.contains("/etc") && err.contains("local-root"), "{err}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The daemon's resident memory, bytes.
fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// What the test allows above the daemon's budget: the runtime, the allocator's slack,
/// one block per connection being written to its socket, and the metrics recorder.
const MEMORY_MARGIN: u64 = 384 << 20;

/// One client of the load test: random ranges of random objects until `deadline`, each
/// checked against `objects`; a third read block files themselves, a third through the
/// socket, a third through the S3 endpoint.
async fn load_client(
    client_no: u64,
    objects: Arc<Vec<(String, Bytes)>>,
    bytes: Arc<AtomicU64>,
    reads: Arc<AtomicU64>,
    base: String,
    deadline: Instant,
) -> Result<(), String> {
    // A third read block files themselves, a third through the socket, a third
    // through the S3 endpoint.
    let c = DaemonClient::new(&base, None).unwrap();
    let c = if client_no % 3 == 1 {
        c.without_handoff()
    } else {
        c
    };
    let mut x = client_no * 7919 + 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    while Instant::now() < deadline {
        let (key, data) = &objects[(next() % objects.len() as u64) as usize];
        let len = data.len() as u64;
        let start = next() % len;
        let end = (start + 1 + next() % (6 << 20)).min(len);
        let url = format!("s3://strata-test/{key}");
        let got = if client_no % 3 == 2 {
            let path = format!("/train/{}", key.trim_start_matches("data/load/"));
            let h = format!("bytes={}-{}", start, end - 1);
            c.request(
                http::Method::GET,
                &path,
                &[("range", h)],
                Bytes::new(),
                &path,
            )
            .await
            .map(|a| a.body)
        } else {
            match c.stat(&url).await {
                Ok((size, etag)) => c.read_pinned(&url, &etag, size, start..end, false).await,
                Err(e) => Err(e),
            }
        };
        match got {
            Ok(b) if b == data.slice(start as usize..end as usize) => {
                bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                reads.fetch_add(1, Ordering::Relaxed);
            }
            Ok(b) => {
                return Err(format!(
                    "{key} {start}..{end}: {} bytes, wrong content",
                    b.len()
                ));
            }
            Err(e) => return Err(format!("{key} {start}..{end}: {e}")),
        }
    }
    Ok(())
}

#[test]
fn thirty_two_clients_for_sixty_seconds() {
    let secs: u64 = std::env::var("STRATA_LOAD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let s3 = S3Server::start();
    load_test(&s3, secs, 24, "", |_, _| {});
}

/// The load test against a three-node Garage cluster (issue #21) that loses a node
/// (SIGKILL) a third of the way in and gets it back at two thirds: every read still
/// checks out, the daemon stays within its memory.
#[test]
fn thirty_two_clients_while_a_cluster_node_is_lost() {
    let Some(cluster) = strata_testkit::garage_cluster::start_or_skip() else {
        return;
    };
    let secs = 24;
    // A cache smaller than the objects, so the daemon goes on fetching while the node is
    // down.
    let small = "nvme_size = \"48MiB\"\n";
    load_test(&cluster, secs, 12, small, |start, emu| {
        std::thread::sleep(Duration::from_secs(secs / 3).saturating_sub(start.elapsed()));
        cluster.kill(2);
        let before = emu.stats().requests;
        std::thread::sleep(Duration::from_secs(2 * secs / 3).saturating_sub(start.elapsed()));
        let during = emu.stats().requests - before;
        cluster.restart(2).expect("node 2 back");
        eprintln!("load: {during} requests reached the cluster while node 2 was down");
        assert!(
            during > 10,
            "the store saw {during} requests while the node was down"
        );
    });
}

/// 32 clients for `secs` against a daemon reading `n_objects` objects (3–20 MiB each) from
/// `server` through the link emulator (with `cache` added to its `[cache]` section), while
/// `during` runs beside them (given the start and the emulator).
fn load_test(
    server: &dyn S3Endpoint,
    secs: u64,
    n_objects: u64,
    cache: &str,
    during: impl FnOnce(Instant, &LinkEmulator) + Send,
) {
    let s3 = server;
    let mut p = LinkProfile::local();
    p.first_byte_latency = Duration::from_millis(5);
    p.total_bytes_per_sec = Some(400 << 20);
    let emu = LinkEmulator::start(s3.addr(), p);
    let tmp = tempfile::tempdir().unwrap();
    // Objects of 3–20 MiB (24: about 280 MiB), more than the DRAM tier holds.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = strata_store::Store::open(&s3.url(""), &s3.store_config()).unwrap();
    let objects: Vec<(String, Bytes)> = (0..n_objects)
        .map(|i| {
            let len = (3 << 20) + (i as usize * 747_001) % (17 << 20);
            (format!("data/load/{i:02}.bin"), content(100 + i, len))
        })
        .collect();
    rt.block_on(async {
        for (k, v) in &objects {
            store.put(k, v.clone()).await.unwrap();
        }
    });
    let config = tmp.path().join("strata.toml");
    std::fs::write(
        &config,
        format!(
            "[cache]\ndir = {:?}\ndram_size = \"128MiB\"\n{cache}\n[daemon]\nresponse_memory = \"128MiB\"\n\n[daemon.buckets]\ntrain = \"s3://strata-test/data/load\"\n",
            tmp.path().join("cache").display().to_string()
        ),
    )
    .unwrap();
    let d = serve(s3, &emu.endpoint(), &[], Some(&config));
    let pid = d.child.id();
    let objects = Arc::new(objects);
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let bytes = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let errors: Vec<String> = std::thread::scope(|sc| {
        let emu = &emu;
        sc.spawn(move || during(started, emu));
        rt.block_on(async {
            let mut tasks = Vec::new();
            for client_no in 0..32u64 {
                let (objects, bytes, reads, base) = (
                    objects.clone(),
                    bytes.clone(),
                    reads.clone(),
                    d.base.clone(),
                );
                tasks.push(tokio::spawn(load_client(
                    client_no, objects, bytes, reads, base, deadline,
                )));
            }
            let mut errors = Vec::new();
            for t in tasks {
                if let Err(e) = t.await.unwrap() {
                    errors.push(e);
                }
            }
            errors
        })
    });
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    let peak = peak.load(Ordering::Relaxed);
    let moved = bytes.load(Ordering::Relaxed);
    eprintln!(
        "load: {} reads, {:.0} MiB verified in {secs} s ({:.0} MiB/s); daemon peak RSS {:.0} MiB, budget {:.0} MiB + margin {:.0} MiB",
        reads.load(Ordering::Relaxed),
        moved as f64 / (1 << 20) as f64,
        moved as f64 / (1 << 20) as f64 / secs as f64,
        peak as f64 / (1 << 20) as f64,
        d.budget as f64 / (1 << 20) as f64,
        MEMORY_MARGIN as f64 / (1 << 20) as f64,
    );
    assert!(
        errors.is_empty(),
        "{} clients failed: {errors:?}",
        errors.len()
    );
    assert!(
        reads.load(Ordering::Relaxed) > 100,
        "too few reads to mean anything"
    );
    assert!(peak > 0, "the daemon's memory was not measured");
    assert!(
        peak <= d.budget + MEMORY_MARGIN,
        "daemon peak RSS {peak} over budget {} + margin {MEMORY_MARGIN}",
        d.budget
    );
    // Each object was fetched from the store about once, however often it was read.
    let total: usize = objects.iter().map(|(_, v)| v.len()).sum();
    let down = emu.stats().bytes_down;
    assert!(
        down <= total as u64 * 2,
        "the store sent {down} bytes for {total} bytes of objects"
    );
}
