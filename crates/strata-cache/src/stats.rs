//! Counters per tier, readable at any time and exported through the `metrics` facade:
//!
//! | name | type | labels |
//! |---|---|---|
//! | `strata_cache_hits_total`, `strata_cache_misses_total` | counter | `tier` (`dram`, `nvme`) |
//! | `strata_cache_read_bytes_total`, `strata_cache_written_bytes_total` | counter | `tier` |
//! | `strata_cache_evictions_total` | counter | `tier` |
//! | `strata_cache_corrupt_total`, `strata_cache_pass_through_total` | counter | `tier` |
//! | `strata_cache_declined_total` | counter | `tier` |
//! | `strata_cache_fetches_total` | counter | `why` (`demand`, `prefetch`) |
//! | `strata_cache_fetched_bytes_total` | counter | |
//! | `strata_cache_fetch_seconds` | histogram | |
//! | `strata_cache_prefetch_queue` | gauge | |

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one tier.
#[derive(Debug, Default)]
pub struct TierStats {
    /// `dram` or `nvme`, the metrics label.
    pub tier: &'static str,
    /// Reads the tier answered.
    pub hits: AtomicU64,
    /// Reads the tier did not hold.
    pub misses: AtomicU64,
    /// Payload bytes served from the tier.
    pub bytes_read: AtomicU64,
    /// Payload bytes stored in the tier.
    pub bytes_written: AtomicU64,
    /// Blocks evicted to make room.
    pub evictions: AtomicU64,
    /// Damaged block files found and dropped.
    pub corrupt: AtomicU64,
    /// Blocks not stored because the tier or the disk was full, or (NVMe) because the tier's
    /// writes fell behind the fetches.
    pub pass_through: AtomicU64,
    /// Blocks the eviction policy chose not to store (next-use: not worth a slot).
    pub declined: AtomicU64,
}

impl TierStats {
    /// Counters for the tier named `tier`.
    pub fn new(tier: &'static str) -> Self {
        Self {
            tier,
            ..Self::default()
        }
    }
    pub(crate) fn hit(&self, bytes: u64) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
        metrics::counter!("strata_cache_hits_total", "tier" => self.tier).increment(1);
        metrics::counter!("strata_cache_read_bytes_total", "tier" => self.tier).increment(bytes);
    }
    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("strata_cache_misses_total", "tier" => self.tier).increment(1);
    }
    pub(crate) fn written(&self, bytes: u64) {
        self.bytes_written.fetch_add(bytes, Ordering::Relaxed);
        metrics::counter!("strata_cache_written_bytes_total", "tier" => self.tier).increment(bytes);
    }
    pub(crate) fn evicted(&self, n: u64) {
        self.evictions.fetch_add(n, Ordering::Relaxed);
        metrics::counter!("strata_cache_evictions_total", "tier" => self.tier).increment(n);
    }
    pub(crate) fn corrupted(&self) {
        self.corrupt.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("strata_cache_corrupt_total", "tier" => self.tier).increment(1);
    }
    pub(crate) fn passed_through(&self) {
        self.pass_through.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("strata_cache_pass_through_total", "tier" => self.tier).increment(1);
    }
    pub(crate) fn declined(&self) {
        self.declined.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("strata_cache_declined_total", "tier" => self.tier).increment(1);
    }
    /// A snapshot.
    pub fn snapshot(&self) -> TierSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TierSnapshot {
            hits: g(&self.hits),
            misses: g(&self.misses),
            bytes_read: g(&self.bytes_read),
            bytes_written: g(&self.bytes_written),
            evictions: g(&self.evictions),
            corrupt: g(&self.corrupt),
            pass_through: g(&self.pass_through),
            declined: g(&self.declined),
        }
    }
}

/// A snapshot of [`TierStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierSnapshot {
    /// Reads the tier answered.
    pub hits: u64,
    /// Reads the tier did not hold.
    pub misses: u64,
    /// Bytes read from the tier.
    pub bytes_read: u64,
    /// Bytes written to the tier.
    pub bytes_written: u64,
    /// Blocks evicted to make room.
    pub evictions: u64,
    /// Blocks that failed their checks and were fetched again.
    pub corrupt: u64,
    /// Blocks passed through unstored because writes fell behind.
    pub pass_through: u64,
    /// Blocks the tier declined (full, or below its free-space floor).
    pub declined: u64,
}

/// Counters of fetches from the source.
#[derive(Debug, Default)]
pub struct FetchStats {
    demand: AtomicU64,
    prefetch: AtomicU64,
    bytes: AtomicU64,
    shared: AtomicU64,
}

impl FetchStats {
    pub(crate) fn fetched(&self, why: crate::cache::Why, bytes: u64, took: std::time::Duration) {
        let (counter, label) = match why {
            crate::cache::Why::Demand => (&self.demand, "demand"),
            crate::cache::Why::Prefetch | crate::cache::Why::Hydrate => {
                (&self.prefetch, "prefetch")
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        metrics::counter!("strata_cache_fetches_total", "why" => label).increment(1);
        metrics::counter!("strata_cache_fetched_bytes_total").increment(bytes);
        metrics::histogram!("strata_cache_fetch_seconds").record(took.as_secs_f64());
    }
    pub(crate) fn shared(&self) {
        self.shared.fetch_add(1, Ordering::Relaxed);
    }
    /// (demand fetches, prefetch fetches, bytes, shared fetches).
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        (
            g(&self.demand),
            g(&self.prefetch),
            g(&self.bytes),
            g(&self.shared),
        )
    }
}
