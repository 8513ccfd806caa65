//! Eviction policies. A tier tells its policy what happens (an access, an insertion, a
//! removal) and asks it for a victim when it needs room. Three are provided:
//!
//! - [`Lru`]: least recently used.
//! - [`S3Fifo`]: S3-FIFO (Yang et al., SOSP 2023): a small FIFO that filters one-hit blocks,
//!   a main FIFO with reinsertion, and a ghost FIFO remembering recent evictions. Scan-resistant
//!   and the default.
//! - [`NextUse`]: Belady's policy when the future is known: evict the block whose next use is
//!   farthest away. The dataset reader knows its whole access order (the shuffle plan is a
//!   pure function), and gives it here with [`NextUse::extend_future`].
//!
//! [`simulate`] replays a trace against a policy; tests and `strata bench cache` use it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crate::key::BlockId;

/// A replacement policy. All sizes are in bytes.
pub trait EvictionPolicy: Send {
    /// A short name for reports.
    fn name(&self) -> &'static str;
    /// A demand access to `id`; `hit` says whether it was resident.
    fn on_access(&mut self, id: BlockId, hit: bool);
    /// `id` became resident.
    fn on_insert(&mut self, id: BlockId, size: u64);
    /// `id` left for another reason (invalidated, corrupt, deleted by another process).
    fn on_remove(&mut self, id: BlockId);
    /// Chooses a resident block to evict and forgets it. None when nothing is resident.
    fn victim(&mut self) -> Option<BlockId>;
    /// Planned future accesses, in order, appended to what was planned before; returns the
    /// plan position of the first of them. Policies that cannot use the future ignore it.
    fn plan(&mut self, _future: &[BlockId]) -> u64 {
        0
    }
    /// The consumer has reached plan position `position` (see [`EvictionPolicy::plan`]).
    /// Once told, a policy takes time from these calls instead of counting accesses, which
    /// repeated reads of one block, reads served by DRAM and prefetch lookups would skew.
    fn progress(&mut self, _position: u64) {}
    /// Whether to store `id` when the tier is full (making room would evict something). A
    /// tier asks only when a faster tier in front holds the block for its current use.
    /// Default: always.
    fn admit(&mut self, _id: BlockId) -> bool {
        true
    }
}

/// [`PolicyKind::Auto`]: S3-FIFO until the first plan arrives, then next-use, with the
/// resident blocks moved over (their next uses come with the plan; blocks outside it go
/// first). Its name is the policy in force.
#[derive(Default)]
struct Auto {
    /// None: S3-FIFO's turn (built on first use).
    planned: Option<NextUse>,
    fifo: S3Fifo,
    /// Resident blocks and their sizes, to hand over at the switch.
    resident: std::collections::HashMap<BlockId, u64>,
}

impl Auto {
    fn inner(&mut self) -> &mut dyn EvictionPolicy {
        match &mut self.planned {
            Some(p) => p,
            None => &mut self.fifo,
        }
    }
}

impl EvictionPolicy for Auto {
    fn name(&self) -> &'static str {
        match &self.planned {
            Some(p) => p.name(),
            None => self.fifo.name(),
        }
    }
    fn on_access(&mut self, id: BlockId, hit: bool) {
        self.inner().on_access(id, hit);
    }
    fn on_insert(&mut self, id: BlockId, size: u64) {
        self.resident.insert(id, size);
        self.inner().on_insert(id, size);
    }
    fn on_remove(&mut self, id: BlockId) {
        self.resident.remove(&id);
        self.inner().on_remove(id);
    }
    fn victim(&mut self) -> Option<BlockId> {
        let v = self.inner().victim()?;
        self.resident.remove(&v);
        Some(v)
    }
    fn plan(&mut self, future: &[BlockId]) -> u64 {
        if self.planned.is_none() {
            let mut p = NextUse::default();
            for (&id, &size) in &self.resident {
                p.on_insert(id, size);
            }
            self.planned = Some(p);
            self.fifo = S3Fifo::default();
            tracing::debug!("a plan arrived; evicting by next use");
        }
        self.inner().plan(future)
    }
    fn progress(&mut self, position: u64) {
        self.inner().progress(position);
    }
    fn admit(&mut self, id: BlockId) -> bool {
        self.inner().admit(id)
    }
}

/// Which policy to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Least recently used.
    Lru,
    /// S3-FIFO: a small probationary queue, a main queue and a ghost queue (scan-resistant).
    S3Fifo,
    /// Next use: evicts the block used farthest in the planned future (Belady).
    NextUse,
    /// S3-FIFO until a reader gives the tier its plan ([`EvictionPolicy::plan`]), then
    /// next-use. The default: a scan-resistant policy for reads nobody plans, and Belady's
    /// for a dataset reader, whose prefetched blocks S3-FIFO would evict first (they sit
    /// in its small queue, unread, while blocks already used up look hot).
    Auto,
}

impl PolicyKind {
    /// A new, empty policy of this kind.
    pub fn build(self) -> Box<dyn EvictionPolicy> {
        match self {
            Self::Lru => Box::new(Lru::default()),
            Self::S3Fifo => Box::new(S3Fifo::default()),
            Self::Auto => Box::new(Auto::default()),
            Self::NextUse => Box::new(NextUse::default()),
        }
    }

    /// The name [`Self::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Lru => "lru",
            Self::S3Fifo => "s3fifo",
            Self::NextUse => "next-use",
        }
    }

    /// Parses `auto`, `lru`, `s3fifo` or `next-use`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Self::Auto),
            "lru" => Some(Self::Lru),
            "s3fifo" | "s3-fifo" => Some(Self::S3Fifo),
            "next-use" | "belady" => Some(Self::NextUse),
            _ => None,
        }
    }
}

/// Least recently used.
#[derive(Default)]
pub struct Lru {
    tick: u64,
    at: HashMap<BlockId, u64>,
    order: BTreeMap<u64, BlockId>,
}

impl Lru {
    fn bump(&mut self, id: BlockId) {
        self.tick += 1;
        if let Some(old) = self.at.insert(id, self.tick) {
            self.order.remove(&old);
        }
        self.order.insert(self.tick, id);
    }
}

impl EvictionPolicy for Lru {
    fn name(&self) -> &'static str {
        "lru"
    }
    fn on_access(&mut self, id: BlockId, hit: bool) {
        if hit {
            self.bump(id);
        }
    }
    fn on_insert(&mut self, id: BlockId, _size: u64) {
        self.bump(id);
    }
    fn on_remove(&mut self, id: BlockId) {
        if let Some(t) = self.at.remove(&id) {
            self.order.remove(&t);
        }
    }
    fn victim(&mut self) -> Option<BlockId> {
        let (&t, &id) = self.order.iter().next()?;
        self.order.remove(&t);
        self.at.remove(&id);
        Some(id)
    }
}

/// S3-FIFO. The small queue holds 10% of the resident bytes.
pub struct S3Fifo {
    small: VecDeque<BlockId>,
    main: VecDeque<BlockId>,
    ghost: VecDeque<BlockId>,
    ghost_set: HashMap<BlockId, ()>,
    /// Resident blocks: (size, frequency 0..=3, in small queue).
    meta: HashMap<BlockId, (u64, u8, bool)>,
    small_bytes: u64,
    main_bytes: u64,
    /// Fraction of resident bytes for the small queue. Default: 0.1.
    small_fraction: f64,
}

impl Default for S3Fifo {
    fn default() -> Self {
        Self {
            small: VecDeque::new(),
            main: VecDeque::new(),
            ghost: VecDeque::new(),
            ghost_set: HashMap::new(),
            meta: HashMap::new(),
            small_bytes: 0,
            main_bytes: 0,
            small_fraction: 0.1,
        }
    }
}

impl S3Fifo {
    fn remember_ghost(&mut self, id: BlockId) {
        self.ghost.push_back(id);
        self.ghost_set.insert(id, ());
        // The ghost queue remembers as many blocks as are resident.
        while self.ghost.len() > self.meta.len().max(16) {
            if let Some(old) = self.ghost.pop_front() {
                self.ghost_set.remove(&old);
            }
        }
    }
}

impl EvictionPolicy for S3Fifo {
    fn name(&self) -> &'static str {
        "s3fifo"
    }
    fn on_access(&mut self, id: BlockId, hit: bool) {
        if hit && let Some(m) = self.meta.get_mut(&id) {
            m.1 = (m.1 + 1).min(3);
        }
    }
    fn on_insert(&mut self, id: BlockId, size: u64) {
        if self.meta.contains_key(&id) {
            return;
        }
        if self.ghost_set.remove(&id).is_some() {
            self.ghost.retain(|g| *g != id);
            self.main.push_back(id);
            self.main_bytes += size;
            self.meta.insert(id, (size, 0, false));
        } else {
            self.small.push_back(id);
            self.small_bytes += size;
            self.meta.insert(id, (size, 0, true));
        }
    }
    fn on_remove(&mut self, id: BlockId) {
        if let Some((size, _, in_small)) = self.meta.remove(&id) {
            if in_small {
                self.small.retain(|x| *x != id);
                self.small_bytes -= size;
            } else {
                self.main.retain(|x| *x != id);
                self.main_bytes -= size;
            }
        }
    }
    fn victim(&mut self) -> Option<BlockId> {
        loop {
            let total = self.small_bytes + self.main_bytes;
            if total == 0 {
                return None;
            }
            let from_small = !self.small.is_empty()
                && (self.small_bytes as f64 >= self.small_fraction * total as f64
                    || self.main.is_empty());
            if from_small {
                let id = self.small.pop_front()?;
                let (size, freq, _) = self.meta[&id];
                self.small_bytes -= size;
                if freq > 0 {
                    // Seen again while in the small queue: promote.
                    self.main.push_back(id);
                    self.main_bytes += size;
                    self.meta.insert(id, (size, 0, false));
                } else {
                    self.meta.remove(&id);
                    self.remember_ghost(id);
                    return Some(id);
                }
            } else {
                let id = self.main.pop_front()?;
                let m = self.meta.get_mut(&id).expect("resident");
                if m.1 > 0 {
                    m.1 -= 1;
                    self.main.push_back(id);
                } else {
                    let size = m.0;
                    self.meta.remove(&id);
                    self.main_bytes -= size;
                    return Some(id);
                }
            }
        }
    }
}

/// Belady's policy over a future the caller supplies. Accesses are assumed to follow the
/// supplied order; each [`EvictionPolicy::on_access`] advances the cursor by one. A block
/// with no known next use is evicted first.
#[derive(Default)]
pub struct NextUse {
    cursor: u64,
    planned: u64,
    /// Time comes from [`EvictionPolicy::progress`] calls, not from counting accesses.
    driven: bool,
    /// Future positions of each block, ascending.
    future: HashMap<BlockId, VecDeque<u64>>,
    /// Resident blocks by next use (u64::MAX: none known).
    resident: BTreeSet<(u64, BlockId)>,
    next_of: HashMap<BlockId, u64>,
}

impl NextUse {
    /// A policy that knows the accesses in `future`, in order.
    pub fn with_future(future: impl IntoIterator<Item = BlockId>) -> Self {
        let mut p = Self::default();
        p.extend_future(future);
        p
    }

    /// Appends planned accesses (for example the next epoch's order).
    pub fn extend_future(&mut self, future: impl IntoIterator<Item = BlockId>) {
        for id in future {
            self.future.entry(id).or_default().push_back(self.planned);
            self.planned += 1;
        }
        // Next uses of resident blocks may have appeared.
        let ids: Vec<BlockId> = self.next_of.keys().copied().collect();
        for id in ids {
            self.refresh(id);
        }
    }

    fn next_use(&mut self, id: BlockId) -> u64 {
        match self.future.get_mut(&id) {
            Some(q) => {
                while q.front().is_some_and(|&p| p < self.cursor) {
                    q.pop_front();
                }
                q.front().copied().unwrap_or(u64::MAX)
            }
            None => u64::MAX,
        }
    }

    /// Re-dates resident blocks whose recorded next use has passed (used since through
    /// another tier, or skipped): their true next use is later, and a stale early date
    /// would make them look like the blocks to keep.
    fn redate_passed(&mut self) {
        while let Some(&(n, id)) = self.resident.iter().next() {
            if n >= self.cursor {
                break;
            }
            let new = self.next_use(id);
            self.resident.remove(&(n, id));
            self.resident.insert((new, id));
            self.next_of.insert(id, new);
        }
    }

    fn refresh(&mut self, id: BlockId) {
        if let Some(old) = self.next_of.get(&id).copied() {
            let new = self.next_use(id);
            if new != old {
                self.resident.remove(&(old, id));
                self.resident.insert((new, id));
                self.next_of.insert(id, new);
            }
        }
    }
}

impl EvictionPolicy for NextUse {
    fn name(&self) -> &'static str {
        "next-use"
    }
    fn on_access(&mut self, id: BlockId, _hit: bool) {
        // Undriven, access k of the plan happens at cursor k: it consumes that position (an
        // access off the plan still moves time forward by one). Driven, the reader says where
        // it is.
        if !self.driven {
            self.cursor += 1;
        }
        self.refresh(id);
    }
    fn on_insert(&mut self, id: BlockId, _size: u64) {
        if self.next_of.contains_key(&id) {
            return;
        }
        let n = self.next_use(id);
        self.resident.insert((n, id));
        self.next_of.insert(id, n);
    }
    fn on_remove(&mut self, id: BlockId) {
        if let Some(n) = self.next_of.remove(&id) {
            self.resident.remove(&(n, id));
        }
    }
    fn plan(&mut self, future: &[BlockId]) -> u64 {
        let base = self.planned;
        self.extend_future(future.iter().copied());
        base
    }
    fn progress(&mut self, position: u64) {
        self.driven = true;
        self.cursor = self.cursor.max(position);
    }
    /// Belady with bypass: a block whose next use after the current one comes later than
    /// every resident block's next use is not worth a slot (the tier in front serves its
    /// current use). So a full tier keeps what it holds for the blocks it will be asked for
    /// first, and a pass over more data than fits hits on the same half every epoch instead
    /// of churning.
    fn admit(&mut self, id: BlockId) -> bool {
        if !self.driven {
            return true;
        }
        self.redate_passed();
        let after_current = self.future.get_mut(&id).and_then(|q| {
            while q.front().is_some_and(|&p| p < self.cursor) {
                q.pop_front();
            }
            q.get(1).copied()
        });
        let farthest = self.resident.iter().next_back().map_or(0, |&(n, _)| n);
        after_current.is_some_and(|u| u < farthest)
    }
    fn victim(&mut self) -> Option<BlockId> {
        // Blocks whose use is over are not kept for it.
        self.redate_passed();
        let &(n, id) = self.resident.iter().next_back()?;
        self.resident.remove(&(n, id));
        self.next_of.remove(&id);
        Some(id)
    }
}

/// Replays `trace` (demand accesses to equal-sized blocks) against `policy` with room for
/// `capacity` blocks, and returns the hit ratio.
pub fn simulate(policy: &mut dyn EvictionPolicy, trace: &[BlockId], capacity: usize) -> f64 {
    let mut resident: HashMap<BlockId, ()> = HashMap::new();
    let mut hits = 0usize;
    for &id in trace {
        let hit = resident.contains_key(&id);
        policy.on_access(id, hit);
        if hit {
            hits += 1;
            continue;
        }
        resident.insert(id, ());
        policy.on_insert(id, 1);
        while resident.len() > capacity {
            match policy.victim() {
                Some(v) => {
                    resident.remove(&v);
                }
                None => break,
            }
        }
    }
    if trace.is_empty() {
        0.0
    } else {
        hits as f64 / trace.len() as f64
    }
}

/// A shuffled-epoch trace: `epochs` passes over `blocks` blocks, each pass in a fresh random
/// order drawn from `seed`.
pub fn shuffled_epochs(blocks: u64, epochs: usize, seed: u64) -> Vec<BlockId> {
    use rand::seq::SliceRandom;
    use rand::{SeedableRng, rngs::StdRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let mut trace = Vec::with_capacity(blocks as usize * epochs);
    let mut order: Vec<u64> = (0..blocks).collect();
    for _ in 0..epochs {
        order.shuffle(&mut rng);
        trace.extend(order.iter().map(|&i| BlockId {
            object: 1,
            version: 1,
            index: i,
        }));
    }
    trace
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u64) -> BlockId {
        BlockId {
            object: 0,
            version: 0,
            index: i,
        }
    }

    #[test]
    fn lru_evicts_least_recent() {
        let mut p = Lru::default();
        for i in 0..3 {
            p.on_insert(id(i), 1);
        }
        p.on_access(id(0), true);
        assert_eq!(p.victim(), Some(id(1)));
        assert_eq!(p.victim(), Some(id(2)));
        assert_eq!(p.victim(), Some(id(0)));
        assert_eq!(p.victim(), None);
    }

    /// The reader's blocks are read from DRAM, so the NVMe policy never sees their accesses;
    /// once the reader is past them, their stale early dates must not make a full tier
    /// decline every new block (seen in `strata bench train`: 256 MiB tier, all declined).
    #[test]
    fn next_use_admits_new_blocks_once_residents_are_used_up_elsewhere() {
        // Plan: 0 0' 1 1' 2 2' ... (each block used twice in a row, with a gap of one).
        let plan: Vec<BlockId> = (0..10u64)
            .flat_map(|i| [id(i), id(100 + i), id(i)])
            .collect();
        let mut p = NextUse::default();
        p.plan(&plan);
        p.progress(0);
        for i in 0..3 {
            p.on_insert(id(i), 1);
        }
        // The reader moves past blocks 0..3 (served by DRAM: no on_access here).
        p.progress(9);
        // Block 5 is used at 15 and again at 17; the residents have no use left.
        assert!(
            p.admit(id(5)),
            "declined a block while residents were used up"
        );
        assert!(matches!(p.victim(), Some(b) if b.index < 3));
    }

    #[test]
    fn s3fifo_resists_a_scan() {
        // A hot set of 20 blocks used repeatedly, then a one-pass scan of 1000 cold blocks
        // interleaved: the hot set should mostly survive.
        let mut trace = Vec::new();
        for round in 0..50u64 {
            for h in 0..20 {
                trace.push(id(h));
            }
            for c in 0..20 {
                trace.push(id(1000 + round * 20 + c));
            }
        }
        let s3 = simulate(&mut S3Fifo::default(), &trace, 30);
        let lru = simulate(&mut Lru::default(), &trace, 30);
        assert!(s3 > lru + 0.2, "s3fifo {s3:.2} vs lru {lru:.2}");
    }

    #[test]
    fn next_use_is_optimal_on_shuffled_epochs() {
        // The optimum for shuffled epochs with a cache of half the blocks is a hit ratio of
        // about one half (after the first epoch).
        let trace = shuffled_epochs(2000, 5, 7);
        let cap = 1000;
        let opt = simulate(&mut NextUse::with_future(trace.clone()), &trace, cap);
        let lru = simulate(&mut Lru::default(), &trace, cap);
        let fifo = simulate(&mut S3Fifo::default(), &trace, cap);
        // Epoch 1 is all misses: the best possible is 0.5 × 4/5 = 0.4 over five epochs.
        let best = 0.5 * 4.0 / 5.0;
        assert!(
            (opt - best).abs() < 0.05,
            "next-use {opt:.3}, optimum {best:.3}"
        );
        assert!(
            opt > lru + 0.1 && opt > fifo + 0.1,
            "next-use {opt:.3}, lru {lru:.3}, s3fifo {fifo:.3}"
        );
    }

    #[test]
    fn removal_is_forgotten() {
        for kind in [PolicyKind::Lru, PolicyKind::S3Fifo, PolicyKind::NextUse] {
            let mut p = kind.build();
            p.on_insert(id(1), 10);
            p.on_insert(id(2), 10);
            p.on_remove(id(1));
            assert_eq!(p.victim(), Some(id(2)), "{}", p.name());
            assert_eq!(p.victim(), None, "{}", p.name());
        }
    }
}
