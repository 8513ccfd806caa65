//! Faults from the store and from the user: injected 5xx and resets are survived bit-exact;
//! what cannot succeed fails with one clear error that names the object and the cause.

use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_store::{ErrorKind, Secret, Store, StoreConfig, StoreLayer, StoreUrl, TransferConfig};
use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, S3Server, data};

fn through(server: &S3Server, emu: &LinkEmulator) -> StoreConfig {
    let mut layer = server.config_layer_through(emu);
    layer.retry.initial_backoff_ms = Some(5);
    layer.retry.max_backoff_ms = Some(100);
    layer.retry.max_attempts = Some(20);
    StoreConfig::from_layer(&layer).unwrap()
}

fn parts() -> TransferConfig {
    TransferConfig {
        part_size: 1 << 20,
        concurrency: 8,
        upload_part_size: 5 << 20,
        upload_concurrency: 4,
        single_put_threshold: 5 << 20,
        files_in_flight: 4,
    }
}

/// With 10% of requests answered 500/503 and 10% of bodies cut by resets, 100 random objects
/// (some multipart) go up and come back bit-exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_objects_round_trip_under_faults() {
    let server = S3Server::start();
    let mut profile = LinkProfile::local().with_faults(0.10, 0.10);
    profile.first_byte_latency = Duration::from_millis(1);
    let emu = LinkEmulator::start(server.addr(), profile);
    let config = through(&server, &emu);
    let store = Store::open(&server.url(""), &config).unwrap();
    let opts = parts();
    let mut sizes = Vec::new();
    for i in 0..100u64 {
        // Mostly small, every tenth one multipart (5–12 MiB).
        let size = if i % 10 == 0 {
            (5 << 20) + (data::bytes(i, 8)[0] as usize) * 28_000
        } else {
            (i as usize * 7919) % 400_000
        };
        sizes.push(size);
        let body = Bytes::from(data::bytes(1000 + i, size));
        store
            .upload_bytes(body, &format!("faults/obj-{i:03}"), &opts, None)
            .await
            .unwrap_or_else(|e| panic!("upload {i}: {e}"));
    }
    for (i, size) in sizes.iter().enumerate() {
        let key = format!("faults/obj-{i:03}");
        let (got, _) = store
            .download_to_vec(&key, &opts)
            .await
            .unwrap_or_else(|e| panic!("download {i}: {e}"));
        assert_eq!(got.len(), *size, "{key} size");
        assert!(got == data::bytes(1000 + i as u64, *size), "{key} differs");
    }
    let stats = emu.stats();
    assert!(
        stats.injected_errors >= 10,
        "faults were injected: {stats:?}"
    );
    assert!(stats.resets >= 5, "resets were injected: {stats:?}");
    // A reset that cuts the *response* of CreateMultipartUpload leaves an upload whose ID the
    // client never learned, so the upload engine cannot abort it (`Store::pending_uploads`
    // finds it later; `strata ckpt gc` aborts such uploads under a checkpoint root). No
    // uploaded part may be left behind.
    let parts_left: Vec<String> = server
        .pending_uploads()
        .into_iter()
        .filter(|n| n.contains(".part-"))
        .collect();
    assert!(parts_left.is_empty(), "orphaned parts: {parts_left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bucket_is_named() {
    let server = S3Server::start();
    let url = StoreUrl::parse("s3://no-such-bucket/some/key").unwrap();
    let store = Store::open(&url, &server.store_config()).unwrap();
    let err = store.head(url.key()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let text = err.to_string();
    assert!(text.contains("s3://no-such-bucket/some/key"), "{text}");
    let err = store.list("").await.unwrap_err();
    assert!(err.to_string().contains("no such bucket"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_fail_clearly_without_leaking() {
    let server = S3Server::start();
    let mut layer = server.config_layer();
    let secret = "WRONG-secret-that-must-not-appear-0123456789";
    layer.s3.secret_access_key = Some(Secret::new(secret));
    let config = StoreConfig::from_layer(&layer).unwrap();
    let store = Store::open(&server.url(""), &config).unwrap();
    let err = store.put("x", Bytes::from_static(b"x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    let text = format!("{err} {err:?} {config:?}");
    assert!(!text.contains(secret), "secret leaked: {text}");
    assert!(
        !text.contains(server.secret_key()),
        "server secret leaked: {text}"
    );
    assert!(err.to_string().contains("credentials"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoint_fails_fast() {
    let mut layer = StoreLayer::default();
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    layer.s3.endpoint = Some("http://127.0.0.1:1".into());
    layer.s3.access_key_id = Some("AK".into());
    layer.s3.secret_access_key = Some(Secret::new("SK"));
    let store = Store::open(
        &StoreUrl::parse("s3://b/k").unwrap(),
        &StoreConfig::from_layer(&layer).unwrap(),
    )
    .unwrap();
    let t = Instant::now();
    let err = store.head("k").await.unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    let text = err.to_string();
    assert!(text.contains("cannot connect"), "{text}");
    assert!(text.contains("s3://b/k"), "{text}");
}

/// A failed upload aborts its multipart upload: nothing is left on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_upload_leaves_no_orphans() {
    let server = S3Server::start();
    let store = Store::open(&server.url(""), &server.store_config()).unwrap();
    let opts = parts();
    let err = store
        .upload_with(
            "orphan/x",
            20 << 20,
            &opts,
            |i, r| async move {
                if i == 2 {
                    Err(strata_store::StoreError::Io {
                        op: "read",
                        path: "source".into(),
                        source: std::io::Error::other("disk on fire"),
                    })
                } else {
                    Ok(Bytes::from(vec![0u8; (r.end - r.start) as usize]))
                }
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("disk on fire"), "{err}");
    assert!(
        server.pending_uploads().is_empty(),
        "orphaned upload: {:?}",
        server.pending_uploads()
    );
    assert_eq!(
        store.head("orphan/x").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// Dropping an upload in flight (Ctrl-C, a cancelled task) aborts it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_upload_is_aborted() {
    let server = S3Server::start();
    let store = Store::open(&server.url(""), &server.store_config()).unwrap();
    let opts = parts();
    let upload = store.upload_with(
        "cancel/x",
        40 << 20,
        &opts,
        |i, r| async move {
            if i >= 2 {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            Ok(Bytes::from(vec![1u8; (r.end - r.start) as usize]))
        },
        None,
    );
    let _ = tokio::time::timeout(Duration::from_millis(500), upload).await;
    let t = Instant::now();
    while !server.pending_uploads().is_empty() && t.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        server.pending_uploads().is_empty(),
        "orphaned upload: {:?}",
        server.pending_uploads()
    );
}

/// An object replaced while it is being downloaded in parts fails with a clear error rather
/// than producing a mix of two versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_changed_mid_download_is_detected() {
    let server = S3Server::start();
    let mut profile = LinkProfile::local();
    profile.per_conn_bytes_per_sec = Some(2 << 20);
    let emu = LinkEmulator::start(server.addr(), profile);
    let config = through(&server, &emu);
    let store = Store::open(&server.url(""), &config).unwrap();
    store
        .put("changing", Bytes::from(data::bytes(1, 8 << 20)))
        .await
        .unwrap();
    let mut opts = parts();
    opts.concurrency = 2;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    // The writer goes straight to the server, not through the slow link.
    let s2 = Store::open(&server.url(""), &server.store_config()).unwrap();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        s2.put("changing", Bytes::from(data::bytes(2, 8 << 20)))
            .await
            .unwrap();
    });
    let err = store
        .download_to_file("changing", &dest, &opts, None)
        .await
        .unwrap_err();
    writer.await.unwrap();
    assert_eq!(err.kind(), ErrorKind::Precondition, "{err}");
    assert!(
        err.to_string().contains("changed while it was read"),
        "{err}"
    );
    assert!(!dest.exists(), "no partial file at the destination");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "temp file removed"
    );
}

/// Ranged reads into a recycled buffer (the block cache's reads) under injected 5xx and
/// bodies cut by resets: every attempt starts the buffer again, so each range is bit-exact,
/// and the buffer's memory is reused; a read pinned to an ETag the object no longer has fails
/// as changed, naming the object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranged_reads_into_a_reused_buffer_survive_faults_and_stay_pinned() {
    let server = S3Server::start();
    let mut profile = LinkProfile::local().with_faults(0.10, 0.20);
    profile.first_byte_latency = Duration::from_millis(1);
    let emu = LinkEmulator::start(server.addr(), profile);
    let store = Store::open(&server.url(""), &through(&server, &emu)).unwrap();
    let body = data::bytes(7, 3 << 20);
    store
        .upload_bytes(Bytes::from(body.clone()), "into/obj", &parts(), None)
        .await
        .unwrap();
    let etag = store.head("into/obj").await.unwrap().e_tag.unwrap();
    let mut buf = Vec::with_capacity(1 << 20);
    let first = buf.as_ptr();
    for i in 0..40u64 {
        let start = (i * 77_777) % (2 << 20);
        let len = 1 + (i * 13_331) % (1 << 20);
        buf = store
            .get_range_into("into/obj", start..start + len, Some(&etag), buf)
            .await
            .unwrap_or_else(|e| panic!("range {i}: {e}"));
        assert_eq!(
            &buf[..],
            &body[start as usize..(start + len) as usize],
            "range {i}"
        );
    }
    assert_eq!(buf.as_ptr(), first, "the buffer was reallocated");
    store
        .upload_bytes(
            Bytes::from(data::bytes(8, 1 << 20)),
            "into/obj",
            &parts(),
            None,
        )
        .await
        .unwrap();
    let err = store
        .get_range_into("into/obj", 0..100, Some(&etag), buf)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Precondition, "{err}");
    assert!(err.to_string().contains("into/obj"), "{err}");
}
