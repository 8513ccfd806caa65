//! Limits as wrappers: bytes/s and requests/s token buckets and a cap on requests in flight,
//! observed from outside (wall time, and the link emulator's count of concurrent requests).

use std::time::Instant;

use bytes::Bytes;
use strata_store::config::SizeValue;
use strata_store::{Store, StoreConfig};
use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, S3Server, data};

fn config(
    server: &S3Server,
    emu: &LinkEmulator,
    edit: impl FnOnce(&mut strata_store::StoreLayer),
) -> StoreConfig {
    let mut l = server.config_layer_through(emu);
    edit(&mut l);
    StoreConfig::from_layer(&l).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_per_second_is_enforced() {
    let server = S3Server::start();
    let emu = LinkEmulator::start(server.addr(), LinkProfile::local());
    let fast = Store::open(&server.url(""), &server.store_config()).unwrap();
    fast.put("obj", Bytes::from(data::bytes(1, 6 << 20)))
        .await
        .unwrap();
    let cfg = config(&server, &emu, |l| {
        l.limits.bytes_per_sec = Some(SizeValue::Text("8MiB".into()))
    });
    let store = Store::open(&server.url(""), &cfg).unwrap();
    let t = Instant::now();
    let (got, _) = store.download_to_vec("obj", &cfg.transfer).await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(got.len(), 6 << 20);
    // 6 MiB at 8 MiB/s with a burst of 0.8 MiB: at least ~0.65 s; unlimited it takes ~20 ms.
    assert!(secs > 0.6, "6 MiB at 8 MiB/s took only {secs:.3}s");
    assert!(secs < 3.0, "took {secs:.3}s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_second_is_enforced() {
    let server = S3Server::start();
    let emu = LinkEmulator::start(server.addr(), LinkProfile::local());
    let cfg = config(&server, &emu, |l| l.limits.requests_per_sec = Some(20.0));
    let store = Store::open(&server.url(""), &cfg).unwrap();
    store.put("k", Bytes::from_static(b"x")).await.unwrap();
    let t = Instant::now();
    for _ in 0..40 {
        store.head("k").await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    // 41 requests at 20/s after a burst of 20: at least ~1 s.
    assert!(secs > 0.9, "41 requests at 20/s took only {secs:.3}s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_are_capped() {
    let server = S3Server::start();
    let mut profile = LinkProfile::local();
    profile.first_byte_latency = std::time::Duration::from_millis(20);
    let emu = LinkEmulator::start(server.addr(), profile);
    let fast = Store::open(&server.url(""), &server.store_config()).unwrap();
    fast.put("obj", Bytes::from(data::bytes(2, 16 << 20)))
        .await
        .unwrap();
    let cfg = config(&server, &emu, |l| {
        l.limits.max_requests = Some(3);
        l.transfer.part_size = Some(SizeValue::Text("1MiB".into()));
        l.transfer.concurrency = Some(16);
    });
    let store = Store::open(&server.url(""), &cfg).unwrap();
    let (got, _) = store.download_to_vec("obj", &cfg.transfer).await.unwrap();
    assert_eq!(got.len(), 16 << 20);
    let peak = emu.stats().peak_in_flight;
    assert!(peak <= 3, "peak in flight {peak} > 3");
    assert!(peak >= 2, "parts did run in parallel: {peak}");
}

/// Uploads sharing a `PartSlots` budget keep their parts in flight, and their uploads sending
/// parts, within it together; each object arrives whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_sharing_part_slots_stay_within_the_budget() {
    let server = S3Server::start();
    let mut profile = LinkProfile::local();
    profile.first_byte_latency = std::time::Duration::from_millis(20);
    let emu = LinkEmulator::start(server.addr(), profile);
    let cfg = config(&server, &emu, |l| {
        l.transfer.upload_part_size = Some(SizeValue::Text("5MiB".into()));
        l.transfer.upload_concurrency = Some(4);
    });
    let store = Store::open(&server.url(""), &cfg).unwrap();
    let objects: Vec<Bytes> = (0..3u64)
        .map(|i| Bytes::from(data::bytes(10 + i, 20 << 20)))
        .collect();
    // Three uploads of 4 parts in flight each: alone they reach 12. The budget counts upload
    // parts; a CreateMultipartUpload or a completion may add one per object on top.
    let slots = [(5, 3, 5 + 3), (12, 1, 4 + 2)];
    for (parts, uploads, most) in slots {
        emu.take_stats();
        let shared = strata_store::PartSlots::new(parts, uploads);
        let sends = objects.iter().enumerate().map(|(i, body)| {
            let (store, cfg, shared) = (&store, &cfg, &shared);
            async move {
                let key = format!("o{i}");
                store
                    .upload_bytes_sharing(body.clone(), &key, &cfg.transfer, Some(shared), None)
                    .await
            }
        });
        for r in futures::future::join_all(sends).await {
            assert_eq!(r.unwrap().parts, 4);
        }
        let peak = emu.take_stats().peak_in_flight;
        assert!(
            peak <= most,
            "peak in flight {peak} with {parts} parts among {uploads} uploads"
        );
        assert!(peak >= 4, "parts did run in parallel: {peak}");
        for (i, body) in objects.iter().enumerate() {
            let key = format!("o{i}");
            let (got, _) = store.download_to_vec(&key, &cfg.transfer).await.unwrap();
            assert!(got == body[..], "{key} differs");
        }
    }
}
