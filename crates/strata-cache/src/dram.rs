//! The DRAM tier: blocks in memory, bounded in bytes, evicted by a pluggable policy
//! ([`crate::policy`]). The default, [`PolicyKind::Auto`], is S3-FIFO (scan-resistant) until
//! a reader gives the cache its plan, then next-use (Belady's optimum for a known future), as
//! on the NVMe tier. Values are `Bytes`, so a hit hands out a reference-counted view, never a
//! copy.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::key::BlockId;
use crate::policy::{EvictionPolicy, PolicyKind};
use crate::stats::TierStats;

/// Bytes a block costs the tier beyond its payload and key text (map entry, policy entry),
/// so that many tiny blocks cannot overrun the bound.
const OVERHEAD: u64 = 96;

struct State {
    blocks: HashMap<BlockId, (Arc<str>, Bytes)>,
    /// Bytes held, overhead included.
    used: u64,
    policy: Box<dyn EvictionPolicy>,
}

/// The DRAM tier.
pub struct DramTier {
    state: Mutex<State>,
    evictions: AtomicU64,
    /// Blocks the policy declined to hold when the tier was full (their next use is later
    /// than that of every block held).
    declined: AtomicU64,
    capacity: u64,
    pub(crate) stats: TierStats,
}

fn weight(key_text: &str, data: &Bytes) -> u64 {
    (data.len() + key_text.len()) as u64 + OVERHEAD
}

impl DramTier {
    /// A tier holding at most `capacity` bytes, evicting by [`PolicyKind::Auto`].
    pub fn new(capacity: u64) -> Self {
        Self::with_policy(capacity, PolicyKind::Auto)
    }

    /// A tier holding at most `capacity` bytes, evicting by `policy`.
    pub fn with_policy(capacity: u64, policy: PolicyKind) -> Self {
        Self {
            state: Mutex::new(State {
                blocks: HashMap::new(),
                used: 0,
                policy: policy.build(),
            }),
            evictions: AtomicU64::new(0),
            declined: AtomicU64::new(0),
            capacity,
            stats: TierStats::new("dram"),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The block, if held (and truly this key's: the key text is compared).
    pub fn get(&self, id: BlockId, key_text: &str) -> Option<Bytes> {
        let mut s = self.state();
        let found = match s.blocks.get(&id) {
            Some((k, data)) if &**k == key_text => Some(data.clone()),
            _ => None,
        };
        s.policy.on_access(id, found.is_some());
        drop(s);
        match &found {
            Some(d) => self.stats.hit(d.len() as u64),
            None => self.stats.miss(),
        }
        found
    }

    /// Whether a block is held (not counted as a hit or miss).
    pub fn contains(&self, id: BlockId) -> bool {
        self.state().blocks.contains_key(&id)
    }

    /// Holds a block, evicting what the policy chooses to make room. A block larger than the
    /// tier, or one the policy declines when the tier is full, is not held.
    pub fn insert(&self, id: BlockId, key_text: &str, data: Bytes) {
        let w = weight(key_text, &data);
        if w > self.capacity {
            return;
        }
        let mut s = self.state();
        if let Some((k, old)) = s.blocks.remove(&id) {
            s.used -= weight(&k, &old);
            s.policy.on_remove(id);
        }
        if s.used + w > self.capacity && !s.policy.admit(id) {
            drop(s);
            self.declined.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut evicted = 0u64;
        while s.used + w > self.capacity {
            let Some(victim) = s.policy.victim() else {
                break;
            };
            if let Some((k, old)) = s.blocks.remove(&victim) {
                s.used -= weight(&k, &old);
                evicted += 1;
            }
        }
        if s.used + w > self.capacity {
            // The policy had nothing left to evict (it cannot happen while the policy and
            // the map agree); never exceed the bound.
            return;
        }
        s.used += w;
        s.blocks.insert(id, (key_text.into(), data.clone()));
        s.policy.on_insert(id, w);
        drop(s);
        self.stats.written(data.len() as u64);
        if evicted > 0 {
            self.evictions.fetch_add(evicted, Ordering::Relaxed);
            metrics::counter!("strata_cache_evictions_total", "tier" => "dram").increment(evicted);
        }
    }

    /// Forgets a block.
    pub fn remove(&self, id: BlockId) {
        let mut s = self.state();
        if let Some((k, old)) = s.blocks.remove(&id) {
            s.used -= weight(&k, &old);
            s.policy.on_remove(id);
        }
    }

    /// Forgets everything (a plan given before is kept).
    pub fn clear(&self) {
        let mut s = self.state();
        let ids: Vec<BlockId> = s.blocks.keys().copied().collect();
        for id in ids {
            s.policy.on_remove(id);
        }
        s.blocks.clear();
        s.used = 0;
    }

    /// Tells the policy the planned order of future accesses (see [`EvictionPolicy::plan`]);
    /// returns the plan position of the first.
    pub fn plan(&self, future: &[BlockId]) -> u64 {
        self.state().policy.plan(future)
    }

    /// Tells the policy the consumer reached plan position `position`.
    pub fn progress(&self, position: u64) {
        self.state().policy.progress(position);
    }

    /// The policy in force (`s3fifo`, `next-use`, `lru`).
    pub fn policy_name(&self) -> &'static str {
        self.state().policy.name()
    }

    /// Bytes held (overhead included) and blocks held.
    pub fn usage(&self) -> (u64, usize) {
        let s = self.state();
        (s.used, s.blocks.len())
    }

    /// The byte capacity.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Blocks the policy declined to hold (see [`DramTier::insert`]).
    pub fn declined(&self) -> u64 {
        self.declined.load(Ordering::Relaxed)
    }

    /// Counters; evictions counted as they happen.
    pub fn stats(&self) -> crate::stats::TierSnapshot {
        let mut s = self.stats.snapshot();
        s.evictions = self.evictions.load(Ordering::Relaxed);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::ObjectVersion;

    fn block(n: usize) -> Bytes {
        Bytes::from(vec![n as u8; 1000])
    }

    #[test]
    fn bounded_in_bytes_and_keys_are_checked() {
        let o = ObjectVersion::new("mem://t", "k", "v1", 1 << 30);
        let per = weight(&o.key_text(0), &block(0));
        let d = DramTier::new(per * 4);
        for i in 0..10 {
            d.insert(o.block(i), &o.key_text(i), block(i as usize));
            assert!(d.usage().0 <= d.capacity());
        }
        assert_eq!(d.usage().1, 4);
        assert_eq!(d.stats().evictions, 6);
        let held = (0..10).find(|&i| d.contains(o.block(i))).expect("one held");
        assert!(
            d.get(o.block(held), "another key").is_none(),
            "a key mismatch is a miss"
        );
        assert_eq!(
            d.get(o.block(held), &o.key_text(held)).expect("hit")[0],
            held as u8
        );
        d.clear();
        assert_eq!(d.usage(), (0, 0));
    }

    #[test]
    fn a_plan_makes_it_next_use_and_shuffled_epochs_hit_the_optimum() {
        let o = ObjectVersion::new("mem://t", "k", "v1", 1 << 40);
        let blocks = 400u64;
        let trace = crate::policy::shuffled_epochs(blocks, 4, 7);
        let per = weight(&o.key_text(0), &block(0));
        let run = |planned: bool| {
            let d = DramTier::new(per * blocks / 2);
            let ids: Vec<BlockId> = trace.iter().map(|b| o.block(b.index)).collect();
            let base = if planned { d.plan(&ids) } else { 0 };
            let mut hits = 0;
            for (n, b) in trace.iter().enumerate() {
                if planned {
                    d.progress(base + n as u64);
                }
                let (id, key) = (o.block(b.index), o.key_text(b.index));
                if d.get(id, &key).is_some() {
                    hits += (n >= blocks as usize) as u64;
                } else {
                    d.insert(id, &key, block(b.index as usize));
                }
            }
            (
                hits as f64 / (trace.len() - blocks as usize) as f64,
                d.policy_name(),
            )
        };
        let (unplanned, name) = run(false);
        assert_eq!(name, "s3fifo");
        let (planned, name) = run(true);
        assert_eq!(name, "next-use");
        assert!(
            (planned - 0.5).abs() < 0.05,
            "next-use {planned:.3} against the optimum 0.5"
        );
        assert!(planned > unplanned + 0.1, "{planned:.3} vs {unplanned:.3}");
    }
}
