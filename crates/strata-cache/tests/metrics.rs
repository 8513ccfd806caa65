//! Per-tier hits, misses, bytes and evictions, and fetches by cause, reach the `metrics`
//! facade with their labels.

use bytes::Bytes;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use strata_cache::nvme::NvmeConfig;
use strata_cache::policy::PolicyKind;
use strata_cache::{BlockCache, CacheConfig, ObjectVersion, Why};
use strata_store::{Store, StoreConfig, StoreUrl};

#[test]
fn tiers_report_through_the_metrics_facade() {
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    recorder.install().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &StoreUrl::parse("memory://metrics").unwrap(),
        &StoreConfig::default(),
    )
    .unwrap();
    rt.block_on(async {
        store
            .put("o", Bytes::from(vec![5u8; 4 << 20]))
            .await
            .unwrap();
        let obj = ObjectVersion::new(
            "memory://metrics",
            "o",
            &store.head("o").await.unwrap().e_tag.unwrap(),
            4 << 20,
        );
        let nvme = NvmeConfig {
            dir: dir.path().into(),
            capacity: 3 << 20,
            min_free_fraction: 0.0,
            policy: PolicyKind::Lru,
        };
        let cache = BlockCache::open(&CacheConfig {
            block_size: 1 << 20,
            dram_bytes: 8 << 20,
            nvme: Some(nvme.clone()),
            read_concurrency: 2,
        })
        .unwrap();
        cache.read(&store, &obj, 0..4 << 20).await.unwrap(); // 4 misses, 4 fetches, 1 NVMe eviction
        cache.read(&store, &obj, 0..4 << 20).await.unwrap(); // 4 DRAM hits
        cache
            .get_block(&store, &obj, 3, Why::Prefetch)
            .await
            .unwrap();
        // Block files are written behind the reads.
        cache.flush().await;
    });
    let mut seen = std::collections::HashMap::new();
    for (key, _, _, value) in snap.snapshot().into_vec() {
        let labels: Vec<String> = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.key().name(), labels.join(","));
        if let DebugValue::Counter(n) = value {
            seen.insert(name, n);
        }
    }
    let get = |k: &str| {
        *seen
            .get(k)
            .unwrap_or_else(|| panic!("{k} missing: {seen:?}"))
    };
    assert_eq!(get("strata_cache_hits_total{tier=dram}"), 5);
    assert_eq!(get("strata_cache_misses_total{tier=dram}"), 4);
    assert_eq!(get("strata_cache_misses_total{tier=nvme}"), 4);
    assert_eq!(get("strata_cache_fetches_total{why=demand}"), 4);
    assert_eq!(get("strata_cache_fetched_bytes_total{}"), 4 << 20);
    assert_eq!(get("strata_cache_written_bytes_total{tier=nvme}"), 4 << 20);
    assert!(get("strata_cache_evictions_total{tier=nvme}") >= 1);
}
