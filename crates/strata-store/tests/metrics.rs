//! Requests, retries, errors by kind and bytes are reported through the `metrics` facade.

use bytes::Bytes;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use strata_store::{Store, StoreConfig};
use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, S3Server};

#[test]
fn requests_retries_errors_and_bytes_are_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let server = S3Server::start();
    let emu = LinkEmulator::start(server.addr(), LinkProfile::local().with_faults(0.3, 0.0));
    let mut layer = server.config_layer_through(&emu);
    layer.retry.initial_backoff_ms = Some(1);
    layer.retry.max_attempts = Some(30);
    let store = Store::open(&server.url(""), &StoreConfig::from_layer(&layer).unwrap()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 0..20 {
            store
                .put(&format!("m/{i}"), Bytes::from(vec![7u8; 1000]))
                .await
                .unwrap();
            assert_eq!(store.get(&format!("m/{i}")).await.unwrap().len(), 1000);
        }
        let _ = store.head("m/missing").await.unwrap_err();
    });

    let mut requests = 0;
    let mut retries = 0;
    let mut not_found = 0;
    let mut written = 0;
    let mut latencies = 0;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let name = key.key().name().to_string();
        let labels: Vec<(String, String)> = key
            .key()
            .labels()
            .map(|l| (l.key().to_string(), l.value().to_string()))
            .collect();
        let has = |k: &str, v: &str| labels.iter().any(|(a, b)| a == k && b == v);
        match (name.as_str(), value) {
            ("strata_store_requests_total", DebugValue::Counter(n)) => requests += n,
            ("strata_store_retries_total", DebugValue::Counter(n)) => retries += n,
            ("strata_store_errors_total", DebugValue::Counter(n)) if has("kind", "not_found") => {
                not_found += n
            }
            ("strata_store_bytes_total", DebugValue::Counter(n)) if has("direction", "written") => {
                written += n
            }
            ("strata_store_request_seconds", DebugValue::Histogram(v)) => latencies += v.len(),
            _ => {}
        }
    }
    let injected = emu.stats().injected_errors;
    assert!(injected > 0);
    assert_eq!(
        retries, injected,
        "every injected error was retried once and counted"
    );
    assert_eq!(requests, 41 + injected, "41 requests plus one per retry");
    assert_eq!(not_found, 1);
    assert_eq!(written, 20_000);
    assert_eq!(latencies as u64, requests, "one latency sample per attempt");
}
