//! [`BlockCache`]: DRAM over NVMe over a [`BlockSource`], read-through, with single flight
//! inside the process (concurrent readers of a block share one fetch) and across processes
//! that share the cache directory ([`crate::lock`]).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use tokio::sync::OnceCell;

use crate::dram::DramTier;
use crate::key::{BlockId, Geometry, ObjectVersion};
use crate::lock::FetchLocks;
use crate::nvme::{NvmeConfig, NvmeTier};
use crate::source::{BlockSource, FetchError};
use crate::stats::{FetchStats, TierSnapshot};

/// Settings of a [`BlockCache`].
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Block size in bytes. Default: 8 MiB (see `docs/benchmarks.md`).
    pub block_size: u64,
    /// DRAM tier capacity in bytes; 0 turns the tier off. Default: 1 GiB.
    pub dram_bytes: u64,
    /// The NVMe tier, if any.
    pub nvme: Option<NvmeConfig>,
    /// Blocks fetched at once for one read. Default: 16.
    pub read_concurrency: usize,
}

/// Blocks fetched from the source at once, over all readers of a cache: bounds the requests
/// in flight (a store throttles above some number) and the memory they hold
/// (`FETCH_SLOTS_PER_READ × read_concurrency × block_size`).
pub const FETCH_SLOTS_PER_READ: usize = 4;

/// Block writes pending behind the reads, at least: 256 MiB of blocks. More fetched blocks
/// than that waiting for the disk means the disk writes slower than the source
/// delivers; demand and prefetch reads then pass through (the block is not stored) rather
/// than slow down to the disk's write speed. A cache must never make reads slower than no
/// cache: found by the planner's property test, which the engine then failed too.
pub const WRITE_BEHIND_MIN_BYTES: u64 = 256 << 20;

/// Block writes pending behind the reads for a cache of `read_concurrency` and `block_size`
/// (bytes): `read_concurrency`, and at least [`WRITE_BEHIND_MIN_BYTES`] of blocks. Each holds
/// one block in memory until its file is renamed into place; `read_concurrency` files are
/// written at once.
pub fn write_slots(read_concurrency: usize, block_size: u64) -> usize {
    let min = (WRITE_BEHIND_MIN_BYTES / block_size.max(4096)).max(1) as usize;
    read_concurrency.max(1).max(min)
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            block_size: 8 << 20,
            dram_bytes: 1 << 30,
            nvme: None,
            read_concurrency: 16,
        }
    }
}

impl From<CacheError> for strata_store::StoreError {
    /// The source's own error when it was a store error; otherwise an I/O error that says
    /// what happened.
    fn from(e: CacheError) -> Self {
        match e {
            CacheError::Fetch(inner) => match inner.downcast::<strata_store::StoreError>() {
                Ok(store) => *store,
                Err(other) => strata_store::StoreError::Io {
                    op: "read through the cache",
                    path: String::new(),
                    source: std::io::Error::other(other),
                },
            },
            CacheError::Io(source) => strata_store::StoreError::Io {
                op: "cache",
                path: String::new(),
                source,
            },
            other => strata_store::StoreError::Io {
                op: "read through the cache",
                path: String::new(),
                source: std::io::Error::other(other.to_string()),
            },
        }
    }
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The source failed; the error is the source's own.
    #[error("reading through the cache")]
    Fetch(#[source] FetchError),
    /// The source returned the wrong number of bytes.
    #[error("{object:?} block {index}: the source returned {got} bytes, expected {want}")]
    ShortBlock {
        /// The object version read.
        object: ObjectVersion,
        /// The block's index in the object.
        index: u64,
        /// Bytes the source returned.
        got: usize,
        /// Bytes the block holds.
        want: u64,
    },
    /// The cache directory could not be used.
    #[error("cache directory: {0}")]
    Io(#[from] std::io::Error),
}

/// Demand reads are what a caller waits for; prefetches run ahead of them. They are counted
/// apart. Both pass through when the NVMe tier's writes fall behind (see
/// [`WRITE_BEHIND_MIN_BYTES`]); a hydration (`strata warm`) is there to store the blocks, so
/// it waits for the disk instead (and is counted with the prefetches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// A read a caller waits for.
    Demand,
    /// A read ahead of the caller, from a plan or a sequential pattern.
    Prefetch,
    /// A warm-up: stores every block, waiting for the disk.
    Hydrate,
}

/// A tiered, read-through block cache. Cheap to share (`Arc`).
pub struct BlockCache {
    geometry: Geometry,
    read_concurrency: usize,
    dram: Option<DramTier>,
    nvme: Option<Arc<NvmeTier>>,
    locks: Option<Arc<FetchLocks>>,
    flights: Mutex<HashMap<BlockId, Arc<OnceCell<Bytes>>>>,
    /// Blocks fetched whose block files are still being written.
    pending: Arc<Mutex<HashMap<BlockId, Bytes>>>,
    /// Bounds the writes (and so the memory) pending at once.
    write_slots: Arc<tokio::sync::Semaphore>,
    /// Block files being written at once: `read_concurrency`.
    writers: Arc<tokio::sync::Semaphore>,
    /// Bounds the fetches from the source in flight at once, over all readers.
    fetch_slots: tokio::sync::Semaphore,
    write_slots_total: usize,
    pub(crate) fetches: FetchStats,
}

/// Counters of every tier and of the fetches behind them.
#[derive(Debug, Clone, Default)]
pub struct CacheStats {
    /// The DRAM tier's counters, if it has one.
    pub dram: Option<TierSnapshot>,
    /// The NVMe tier's counters, if it has one.
    pub nvme: Option<TierSnapshot>,
    /// Blocks fetched from the source for demand reads.
    pub demand_fetches: u64,
    /// Blocks fetched from the source ahead of the reader (prefetches and warm-ups).
    pub prefetch_fetches: u64,
    /// Bytes fetched from the source.
    pub fetched_bytes: u64,
    /// Readers that found a fetch of their block in flight and shared it.
    pub shared_fetches: u64,
}

impl BlockCache {
    /// Opens the cache (creating the NVMe directory if needed).
    pub fn open(cfg: &CacheConfig) -> Result<Self, CacheError> {
        let nvme = cfg
            .nvme
            .as_ref()
            .map(NvmeTier::open)
            .transpose()?
            .map(Arc::new);
        if let Some(n) = &nvme {
            // DRAM holds a block for its current use, so NVMe may decline blocks not worth
            // a slot (next-use with bypass).
            n.set_bypass(cfg.dram_bytes > 0);
        }
        let locks = match &nvme {
            Some(n) => Some(Arc::new(FetchLocks::open(n.dir())?)),
            None => None,
        };
        let pending_writes = write_slots(cfg.read_concurrency, cfg.block_size.max(4096));
        Ok(Self {
            geometry: Geometry {
                block_size: cfg.block_size.max(4096),
            },
            read_concurrency: cfg.read_concurrency.max(1),
            // Both tiers evict by the configured policy (`auto` without an NVMe tier).
            dram: (cfg.dram_bytes > 0).then(|| {
                let policy = cfg
                    .nvme
                    .as_ref()
                    .map_or(crate::policy::PolicyKind::Auto, |n| n.policy);
                DramTier::with_policy(cfg.dram_bytes, policy)
            }),
            nvme,
            locks,
            flights: Mutex::new(HashMap::new()),
            pending: Arc::new(Mutex::new(HashMap::new())),
            write_slots: Arc::new(tokio::sync::Semaphore::new(pending_writes)),
            write_slots_total: pending_writes,
            writers: Arc::new(tokio::sync::Semaphore::new(cfg.read_concurrency.max(1))),
            fetch_slots: tokio::sync::Semaphore::new(
                FETCH_SLOTS_PER_READ * cfg.read_concurrency.max(1),
            ),
            fetches: FetchStats::default(),
        })
    }

    /// How objects are cut into blocks.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Bytes the tiers can hold together (DRAM plus NVMe capacity).
    pub fn capacity(&self) -> u64 {
        self.dram.as_ref().map_or(0, |d| d.capacity())
            + self.nvme.as_ref().map_or(0, |n| n.capacity())
    }

    /// Bounds the block writes pending behind the reads to `blocks` (default:
    /// [`write_slots`]); past it, demand and prefetch reads pass through unstored. For hosts
    /// short of memory, and for tests that need a disk slower than the source. Call it before
    /// the first read.
    pub fn with_write_behind(mut self, blocks: usize) -> Self {
        let blocks = blocks.max(1);
        self.write_slots = Arc::new(tokio::sync::Semaphore::new(blocks));
        self.write_slots_total = blocks;
        self
    }

    /// Blocks fetched at once for one read (also a sensible prefetch concurrency).
    pub fn read_concurrency(&self) -> usize {
        self.read_concurrency
    }

    /// The NVMe tier, if configured.
    pub fn nvme(&self) -> Option<&NvmeTier> {
        self.nvme.as_deref()
    }

    /// The DRAM tier, if configured.
    pub fn dram(&self) -> Option<&DramTier> {
        self.dram.as_ref()
    }

    /// Counters.
    pub fn stats(&self) -> CacheStats {
        let f = self.fetches.snapshot();
        CacheStats {
            dram: self.dram.as_ref().map(|d| d.stats()),
            nvme: self.nvme.as_ref().map(|n| n.stats()),
            demand_fetches: f.0,
            prefetch_fetches: f.1,
            fetched_bytes: f.2,
            shared_fetches: f.3,
        }
    }

    /// Block `index` of `object`: from DRAM, else NVMe, else fetched once from `source`
    /// (however many tasks and processes ask at the same time) and stored in both tiers.
    ///
    /// Cancel safety: a cancelled fetch leaves nothing behind; the next reader fetches again.
    pub async fn get_block(
        &self,
        source: &dyn BlockSource,
        object: &ObjectVersion,
        index: u64,
        why: Why,
    ) -> Result<Bytes, CacheError> {
        let id = object.block(index);
        let key = object.key_text(index);
        if let Some(d) = &self.dram
            && let Some(b) = d.get(id, &key)
        {
            return Ok(b);
        }
        if let Some(b) = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
        {
            return Ok(b);
        }
        let cell = {
            let mut f = self.flights.lock().unwrap_or_else(|e| e.into_inner());
            let cell = f.entry(id).or_default().clone();
            if Arc::strong_count(&cell) > 2 {
                self.fetches.shared();
            }
            cell
        };
        let result = cell
            .get_or_try_init(|| self.fill(source, object, index, &key, why))
            .await
            .cloned();
        {
            let mut f = self.flights.lock().unwrap_or_else(|e| e.into_inner());
            if f.get(&id).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                f.remove(&id);
            }
        }
        result
    }

    async fn fill(
        &self,
        source: &dyn BlockSource,
        object: &ObjectVersion,
        index: u64,
        key: &str,
        why: Why,
    ) -> Result<Bytes, CacheError> {
        let id = object.block(index);
        if let Some(b) = self.nvme_get(object, index, true).await {
            self.keep_in_dram(id, key, &b);
            return Ok(b);
        }
        // Across processes: wait for whoever is fetching this block, then look again.
        // The guard is made on the blocking thread: a read cancelled while it waits (a
        // reader dropped mid-epoch) drops the guard when the wait ends, never leaving the
        // block locked for the other processes.
        let lock = match &self.locks {
            Some(locks) => {
                let locks = locks.clone();
                Some(
                    tokio::task::spawn_blocking(move || locks.lock(id))
                        .await
                        .map_err(|e| CacheError::Io(std::io::Error::other(e)))??,
                )
            }
            None => None,
        };
        if self.locks.is_some()
            && let Some(b) = self.nvme_get(object, index, false).await
        {
            self.keep_in_dram(id, key, &b);
            return Ok(b);
        }
        let range = self.geometry.block_range(index, object.size);
        let want = range.end - range.start;
        let slot = self
            .fetch_slots
            .acquire()
            .await
            .expect("the fetch semaphore is never closed");
        let t = Instant::now();
        let data = source
            .fetch_pooled(object, range.clone(), crate::bufpool::BufPool::global())
            .await
            .map_err(CacheError::Fetch)?;
        drop(slot);
        if data.len() as u64 != want {
            return Err(CacheError::ShortBlock {
                object: object.clone(),
                index,
                got: data.len(),
                want,
            });
        }
        self.fetches.fetched(why, data.len() as u64, t.elapsed());
        self.keep_in_dram(id, key, &data);
        if let Some(n) = &self.nvme {
            // Write behind: the reader has its bytes now; the block file is written on a
            // blocking thread. Until it is renamed into place the block stays in `pending`
            // (for this process) and the cross-process lock stays held (for others), so
            // nobody fetches it again. At most `write_slots(..)` writes are pending; when all
            // are, the disk is behind the source and a read passes through (not stored),
            // except a hydration, which waits.
            let permit = match why {
                Why::Hydrate => Some(
                    self.write_slots
                        .clone()
                        .acquire_owned()
                        .await
                        .map_err(|e| CacheError::Io(std::io::Error::other(e)))?,
                ),
                Why::Demand | Why::Prefetch => self.write_slots.clone().try_acquire_owned().ok(),
            };
            let Some(permit) = permit else {
                n.fell_behind();
                return Ok(data);
            };
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, data.clone());
            let (n, object, block, pending) = (
                n.clone(),
                object.clone(),
                data.clone(),
                self.pending.clone(),
            );
            // The writes queue for `read_concurrency` writers: more at once only compete for
            // the disk (and for the tier's last free bytes).
            let writers = self.writers.clone();
            tokio::spawn(async move {
                let writer = writers.acquire_owned().await;
                let _ = tokio::task::spawn_blocking(move || {
                    // Not stored (full disk, write error) is logged by the tier; reads go on.
                    let _ = n.put(&object, index, range.start, &block);
                    pending
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&id);
                    drop(lock);
                    drop(writer);
                    drop(permit);
                })
                .await;
            });
        }
        Ok(data)
    }

    /// Block `index` of `object` (as [`BlockCache::get_block`]) and, when the block is on
    /// the NVMe tier, the path of its block file, so that another process can read it without
    /// copying it through this one (it verifies the file with [`crate::block_file::read`]).
    /// No path without an NVMe tier, when the tier did not store the block (disk full, or the
    /// eviction policy declined it), or while the block file is still being written (a block
    /// just fetched is in memory; waiting for its fsync would only delay the reader).
    pub async fn get_block_file(
        &self,
        source: &dyn BlockSource,
        object: &ObjectVersion,
        index: u64,
        why: Why,
    ) -> Result<(Bytes, Option<std::path::PathBuf>), CacheError> {
        let data = self.get_block(source, object, index, why).await?;
        let Some(n) = &self.nvme else {
            return Ok((data, None));
        };
        let id = object.block(index);
        if self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&id)
        {
            return Ok((data, None));
        }
        let path = n.path_of(id);
        Ok((data, path.exists().then_some(path)))
    }

    /// Waits until every block fetched so far is written to the NVMe tier. Call it before a
    /// process exits if later processes should find the blocks.
    pub async fn flush(&self) {
        let n = self.write_slots_total as u32;
        if let Ok(all) = self.write_slots.acquire_many(n).await {
            drop(all);
        }
    }

    async fn nvme_get(&self, object: &ObjectVersion, index: u64, record: bool) -> Option<Bytes> {
        let n = self.nvme.as_ref()?.clone();
        let object = object.clone();
        tokio::task::spawn_blocking(move || {
            if record {
                n.get(&object, index)
            } else {
                n.peek(&object, index)
            }
        })
        .await
        .ok()
        .flatten()
    }

    fn keep_in_dram(&self, id: BlockId, key: &str, data: &Bytes) {
        if let Some(d) = &self.dram {
            d.insert(id, key, data.clone());
        }
    }

    /// Tells both tiers' eviction policies the blocks that will be read, in order (for the
    /// next-use policy: the dataset reader knows its whole shuffle plan in advance).
    /// Returns the plan position of the first block given, for [`BlockCache::plan_progress`].
    /// Both tiers receive the same plans in the same order, so their positions agree; a
    /// policy that ignores plans answers 0.
    pub fn plan(&self, future: &[BlockId]) -> u64 {
        let nvme = self.nvme.as_ref().map_or(0, |n| n.plan(future));
        let dram = self.dram.as_ref().map_or(0, |d| d.plan(future));
        nvme.max(dram)
    }

    /// Tells the eviction policies that the consumer has reached plan position `position`
    /// (the first block's position from [`BlockCache::plan`] plus how far it got).
    pub fn plan_progress(&self, position: u64) {
        if let Some(n) = &self.nvme {
            n.progress(position);
        }
        if let Some(d) = &self.dram {
            d.progress(position);
        }
    }

    /// Whether block `index` of `object` is in a tier (DRAM, or a block file on NVMe),
    /// without reading it.
    pub fn contains(&self, object: &ObjectVersion, index: u64) -> bool {
        let id = object.block(index);
        self.dram.as_ref().is_some_and(|d| d.contains(id))
            || self
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&id)
            || self.nvme.as_ref().is_some_and(|n| n.path_of(id).exists())
    }

    /// The bytes of `range` of `object`, in order, one piece per block, fetching up to
    /// `read_concurrency` blocks ahead.
    pub fn stream_range<'a>(
        &'a self,
        source: &'a dyn BlockSource,
        object: &'a ObjectVersion,
        range: Range<u64>,
    ) -> BoxStream<'a, Result<Bytes, CacheError>> {
        let g = self.geometry;
        let end = range.end.min(object.size);
        let start = range.start.min(end);
        stream::iter(g.blocks(&(start..end), object.size))
            .map(move |i| async move {
                let b = self.get_block(source, object, i, Why::Demand).await?;
                let r = g.block_range(i, object.size);
                let from = (start.max(r.start) - r.start) as usize;
                let to = (end.min(r.end) - r.start) as usize;
                Ok(b.slice(from..to))
            })
            .buffered(self.read_concurrency)
            .boxed()
    }

    /// The bytes of `range` of `object` (read through the cache).
    pub async fn read(
        &self,
        source: &dyn BlockSource,
        object: &ObjectVersion,
        range: Range<u64>,
    ) -> Result<Bytes, CacheError> {
        let pieces: Vec<Bytes> = self
            .stream_range(source, object, range)
            .try_collect()
            .await?;
        Ok(match pieces.len() {
            0 => Bytes::new(),
            1 => pieces.into_iter().next().expect("one"),
            _ => {
                let mut out = BytesMut::with_capacity(pieces.iter().map(Bytes::len).sum());
                for p in pieces {
                    out.extend_from_slice(&p);
                }
                out.freeze()
            }
        })
    }

    /// Drops every cached block of an object (all versions) from both tiers.
    ///
    /// Writes still pending are finished first, so none lands after the invalidation.
    pub async fn invalidate_object(&self, store: &str, path: &str) -> usize {
        self.flush().await;
        let h = crate::key::object_hash(store, path);
        if let Some(d) = &self.dram {
            // DRAM entries are keyed by block id; dropping all of them is simplest and safe.
            d.clear();
        }
        self.nvme.as_ref().map_or(0, |n| n.remove_object(h))
    }
}

impl BlockCache {
    /// Reads a whole object through the cache into the file `dest` (temporary name, fsync,
    /// rename: the file appears whole or not at all). Returns the bytes written.
    pub async fn read_to_file(
        &self,
        source: &dyn BlockSource,
        object: &ObjectVersion,
        dest: &std::path::Path,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64, CacheError> {
        use std::io::Write;
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = strata_store::local::temp_path(dest);
        let result = async {
            let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
            let mut pieces = self.stream_range(source, object, 0..object.size);
            let mut n = 0u64;
            while let Some(piece) = pieces.next().await {
                let piece = piece?;
                f.write_all(&piece)?;
                n += piece.len() as u64;
                progress(piece.len() as u64);
            }
            let f = f.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            std::fs::rename(&tmp, dest)?;
            strata_store::local::sync_parent(dest);
            Ok::<_, CacheError>(n)
        }
        .await;
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}
