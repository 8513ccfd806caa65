//! The DRAM tier: blocks in memory, bounded in bytes, with `quick_cache`'s scan-resistant
//! eviction (CLOCK-PRO, in the same family as S3-FIFO). Values are `Bytes`, so a hit hands
//! out a reference-counted view, never a copy.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use quick_cache::{DefaultHashBuilder, Lifecycle, Weighter};

use crate::key::BlockId;
use crate::stats::TierStats;

type Value = (Arc<str>, Bytes);

#[derive(Clone)]
struct Weight;

impl Weighter<BlockId, Value> for Weight {
    fn weight(&self, _key: &BlockId, v: &Value) -> u64 {
        // Payload plus key text plus bookkeeping, so many tiny blocks cannot overrun the bound.
        (v.1.len() + v.0.len() + 96) as u64
    }
}

#[derive(Clone)]
struct CountEvictions(Arc<AtomicU64>);

impl Lifecycle<BlockId, Value> for CountEvictions {
    type RequestState = ();
    fn on_evict(&self, _state: &mut Self::RequestState, _key: BlockId, _val: Value) {
        self.0.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("strata_cache_evictions_total", "tier" => "dram").increment(1);
    }
}

/// The DRAM tier.
pub struct DramTier {
    cache: quick_cache::sync::Cache<BlockId, Value, Weight, DefaultHashBuilder, CountEvictions>,
    evictions: Arc<AtomicU64>,
    capacity: u64,
    pub(crate) stats: TierStats,
}

impl DramTier {
    /// A tier holding at most `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        let evictions = Arc::new(AtomicU64::new(0));
        let cache = quick_cache::sync::Cache::with(
            (capacity / (1 << 20)).clamp(16, 1 << 20) as usize,
            capacity,
            Weight,
            DefaultHashBuilder::default(),
            CountEvictions(evictions.clone()),
        );
        Self {
            cache,
            evictions,
            capacity,
            stats: TierStats::new("dram"),
        }
    }

    /// The block, if held (and truly this key's: the key text is compared).
    pub fn get(&self, id: BlockId, key_text: &str) -> Option<Bytes> {
        match self.cache.get(&id) {
            Some((k, data)) if &*k == key_text => {
                self.stats.hit(data.len() as u64);
                Some(data)
            }
            _ => {
                self.stats.miss();
                None
            }
        }
    }

    /// Whether a block is held (not counted as a hit or miss).
    pub fn contains(&self, id: BlockId) -> bool {
        self.cache.peek(&id).is_some()
    }

    /// Holds a block.
    pub fn insert(&self, id: BlockId, key_text: &str, data: Bytes) {
        self.stats.written(data.len() as u64);
        self.cache.insert(id, (key_text.into(), data));
    }

    /// Forgets a block.
    pub fn remove(&self, id: BlockId) {
        self.cache.remove(&id);
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.cache.clear();
    }

    /// Bytes held and blocks held.
    pub fn usage(&self) -> (u64, usize) {
        (self.cache.weight(), self.cache.len())
    }

    /// The byte capacity.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Counters; evictions come from the eviction hook.
    pub fn stats(&self) -> crate::stats::TierSnapshot {
        let mut s = self.stats.snapshot();
        s.evictions = self.evictions.load(Ordering::Relaxed);
        s
    }
}
