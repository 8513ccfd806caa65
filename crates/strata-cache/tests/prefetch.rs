//! Prefetch against the real S3 server: earliest deadline first, bounded concurrency,
//! counted apart from demand fetches, cancellable, and later demand reads hit.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use strata_cache::nvme::NvmeConfig;
use strata_cache::policy::PolicyKind;
use strata_cache::{
    BlockCache, BlockSource, CacheConfig, FetchError, ObjectVersion, Prefetcher, Why,
};
use strata_store::{Store, StoreConfig};
use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, S3Server, data};

const MIB: u64 = 1 << 20;

/// The real store, with a record of which blocks were fetched, in what order, and how many
/// at once.
struct Recording {
    store: Store,
    seen: Arc<Seen>,
}

#[derive(Default)]
struct Seen {
    order: Mutex<Vec<u64>>,
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl BlockSource for Recording {
    fn fetch(
        &self,
        object: &ObjectVersion,
        range: Range<u64>,
    ) -> BoxFuture<'static, Result<Bytes, FetchError>> {
        self.seen.order.lock().unwrap().push(range.start / MIB);
        let n = self.seen.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.seen.peak.fetch_max(n, Ordering::SeqCst);
        let inner = self.store.fetch(object, range);
        let seen = self.seen.clone();
        Box::pin(async move {
            let r = inner.await;
            seen.now.fetch_sub(1, Ordering::SeqCst);
            r
        })
    }
}

async fn setup(
    blocks: u64,
    latency_ms: u64,
) -> (
    S3Server,
    LinkEmulator,
    Arc<Recording>,
    ObjectVersion,
    tempfile::TempDir,
    Arc<BlockCache>,
) {
    let server = S3Server::start();
    let mut p = LinkProfile::local();
    p.first_byte_latency = Duration::from_millis(latency_ms);
    let emu = LinkEmulator::start(server.addr(), p);
    let l = server.config_layer_through(&emu);
    let store = Store::open(&server.url(""), &StoreConfig::from_layer(&l).unwrap()).unwrap();
    let len = (blocks * MIB) as usize;
    store
        .put("p/obj", Bytes::from(data::bytes(9, len)))
        .await
        .unwrap();
    let info = store.head("p/obj").await.unwrap();
    let obj = ObjectVersion::new(
        &store.root().to_string(),
        "p/obj",
        info.e_tag.as_deref().unwrap(),
        info.size,
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(
        BlockCache::open(&CacheConfig {
            block_size: MIB,
            dram_bytes: 0,
            nvme: Some(NvmeConfig {
                dir: dir.path().to_path_buf(),
                capacity: 1 << 30,
                min_free_fraction: 0.0,
                policy: PolicyKind::S3Fifo,
            }),
            read_concurrency: 4,
        })
        .unwrap(),
    );
    let rec = Arc::new(Recording {
        store,
        seen: Arc::default(),
    });
    (server, emu, rec, obj, dir, cache)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn earliest_deadline_first_then_demand_hits() {
    let (_s, emu, rec, obj, _d, cache) = setup(12, 5).await;
    let pf = Prefetcher::new(cache.clone(), rec.clone(), 1);
    let t0 = Instant::now() + Duration::from_secs(10);
    // Deadlines in the reverse of block order: block 11 is due first.
    let items: Vec<_> = (0..12u64)
        .map(|i| (obj.clone(), i, t0 - Duration::from_millis(i * 100)))
        .collect();
    pf.submit_all(items);
    pf.idle().await;
    assert_eq!(
        *rec.seen.order.lock().unwrap(),
        (0..12u64).rev().collect::<Vec<_>>(),
        "fetched earliest deadline first"
    );
    let st = cache.stats();
    assert_eq!(st.prefetch_fetches, 12);
    assert_eq!(st.demand_fetches, 0);
    // Demand reads now hit.
    let before = emu.stats().requests;
    let got = cache.read(&*rec, &obj, 0..12 * MIB).await.unwrap();
    assert!(got == data::bytes(9, (12 * MIB) as usize));
    assert_eq!(emu.stats().requests, before);
    assert_eq!(cache.stats().demand_fetches, 0);
    // Prefetching what is cached costs no fetch.
    pf.submit_all((0..12u64).map(|i| (obj.clone(), i, Instant::now())));
    pf.idle().await;
    assert_eq!(cache.stats().prefetch_fetches, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_bounded_and_requests_cancel() {
    let (_s, _emu, rec, obj, _d, cache) = setup(40, 40).await;
    let pf = Prefetcher::new(cache.clone(), rec.clone(), 3);
    let tickets = pf.submit_all(
        (0..40u64).map(|i| (obj.clone(), i, Instant::now() + Duration::from_millis(i))),
    );
    // Cancel one far in the queue, then, a moment later, everything still queued.
    tickets[39].cancel();
    tokio::time::sleep(Duration::from_millis(150)).await;
    pf.cancel_all();
    pf.idle().await;
    let fetched = rec.seen.order.lock().unwrap().len();
    assert!(
        rec.seen.peak.load(Ordering::SeqCst) <= 3,
        "peak {}",
        rec.seen.peak.load(Ordering::SeqCst)
    );
    assert!(
        (3..30).contains(&fetched),
        "fetched {fetched} of 40 after cancelling"
    );
    assert!(
        !rec.seen.order.lock().unwrap().contains(&39),
        "a cancelled request was fetched"
    );
    let s = pf.stats();
    assert_eq!(s.done as usize, fetched);
    assert_eq!(s.queued, 0);
    // A demand read of a block that was never prefetched is a demand fetch.
    cache.get_block(&*rec, &obj, 39, Why::Demand).await.unwrap();
    assert_eq!(cache.stats().demand_fetches, 1);
}
