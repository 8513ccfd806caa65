//! The reader: one worker's share of an epoch, as a stream of verified samples.
//!
//! Two ways to fetch:
//! - **Through the block cache** (sharded data in sequential or window order): each sample is
//!   read from the blocks that cover it, so neighbouring samples share one ranged GET of a
//!   block and repeated epochs come from NVMe or DRAM. The plan's future is known, so the
//!   reader tells the cache the block order (next-use eviction) and a prefetcher fetches the
//!   blocks ahead of the consumer by deadline, computed from the measured consumption rate,
//!   keeping at most `lookahead_bytes` of blocks ahead.
//! - **Direct ranged reads** (global shuffle, raw layout, or no cache): the next
//!   `coalesce_window` samples are sorted by shard and offset, neighbours closer than
//!   `coalesce_gap` are merged into one ranged GET, and the samples are cut out of the result.
//!
//! Every sample from a shard is checked against its index's CRC32C. A failed check is an error
//! naming the shard and the sample, or, with `skip_corrupt`, a warning and a count.
//!
//! Memory: at most `max_in_flight` samples are being read at once, and fewer when that many
//! mean-sized samples would pass `lookahead_bytes`; through the cache, fetches in flight are
//! bounded cache-wide as well (`strata_cache::cache::FETCH_SLOTS_PER_READ`), plus the cache's
//! own bounded tiers.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use strata_cache::{BlockCache, BlockId, BlockSource, ObjectVersion, Prefetcher};

use crate::dataset::Dataset;
use crate::error::{DatasetError, Result};
use crate::index::{SampleEntry, ShardFormat, ShardIndex};
use crate::partition::{Partition, Remainder, ResumeState, World};
use crate::plan::{Plan, PlanSpec, ShuffleMode};
use crate::sample::Sample;

/// Reader settings.
#[derive(Debug, Clone)]
pub struct ReaderConfig {
    /// The plan (seed, epoch, mode, window, streams).
    pub plan: PlanSpec,
    /// This reader's place in the world. Default: one rank, one worker.
    pub world: World,
    /// Padding or drop-last. Default: pad.
    pub remainder: Remainder,
    /// Plan positions already consumed (from a resume state). Default: 0.
    pub consumed: u64,
    /// Bytes of blocks prefetched ahead of the consumer, at most a quarter of the cache's
    /// capacity. Default: 512 MiB.
    pub lookahead_bytes: u64,
    /// Samples being read at once. Default: 64.
    pub max_in_flight: usize,
    /// Direct reads: samples considered together for coalescing. Default: 64.
    pub coalesce_window: usize,
    /// Direct reads: largest gap between two samples merged into one read, in bytes.
    /// Default: 256 KiB.
    pub coalesce_gap: u64,
    /// Skip (log and count) samples that fail their checksum instead of failing. Default: off.
    pub skip_corrupt: bool,
    /// Read sharded data through the cache when one is given. Default: on.
    pub use_cache: bool,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        Self {
            plan: PlanSpec::default(),
            world: World::SINGLE,
            remainder: Remainder::Pad,
            consumed: 0,
            lookahead_bytes: 512 << 20,
            max_in_flight: 64,
            coalesce_window: 64,
            coalesce_gap: 256 << 10,
            skip_corrupt: false,
            use_cache: true,
        }
    }
}

/// Counters of a reader (shared; read them while it runs).
#[derive(Debug, Default)]
pub struct ReaderStats {
    /// Samples delivered.
    pub samples: AtomicU64,
    /// Member bytes delivered.
    pub bytes: AtomicU64,
    /// Samples skipped as corrupt.
    pub skipped: AtomicU64,
    /// Ranged GETs issued by direct reads.
    pub direct_requests: AtomicU64,
    /// Bytes those GETs returned.
    pub direct_bytes: AtomicU64,
    /// Blocks submitted to the prefetcher.
    pub prefetch_submitted: AtomicU64,
}

/// One worker's reader over one epoch.
pub struct Reader {
    ds: Arc<Dataset>,
    cache: Option<Arc<BlockCache>>,
    plan: Arc<Plan>,
    part: Partition,
    cfg: ReaderConfig,
    indexes: Arc<Vec<Arc<ShardIndex>>>,
    stats: Arc<ReaderStats>,
    /// Where the cache fetches missing blocks. Default: the dataset's store.
    source: Option<Arc<dyn BlockSource>>,
}

/// Where a sample is.
#[derive(Clone)]
struct Want {
    position: u64,
    id: u64,
    shard: usize,
    index: u64,
}

impl Reader {
    /// A reader of `ds` for `cfg`; with a cache, sharded data is read through it. Loads every
    /// shard's index.
    pub async fn new(
        ds: Arc<Dataset>,
        cache: Option<Arc<BlockCache>>,
        cfg: ReaderConfig,
    ) -> Result<Self> {
        cfg.world.validate()?;
        let indexes = ds.load_indexes().await?;
        let plan = Arc::new(Plan::new(&ds.manifest, cfg.plan));
        let part = Partition::new(plan.len(), cfg.consumed, cfg.world, cfg.remainder);
        Ok(Self {
            ds,
            cache,
            plan,
            part,
            cfg,
            indexes: Arc::new(indexes),
            stats: Arc::new(ReaderStats::default()),
            source: None,
        })
    }

    /// Fetches the cache's missing blocks from `source` instead of the dataset's store: the
    /// node daemon's client (`strata_daemon_client::DaemonSource`), so every process on a node
    /// shares one fetch of each block. Applies to shards read through a cache.
    pub fn with_source(mut self, source: Arc<dyn BlockSource>) -> Self {
        self.source = Some(source);
        self
    }

    /// The epoch's plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// This worker's share.
    pub fn partition(&self) -> &Partition {
        &self.part
    }

    /// Samples this worker will read.
    pub fn len(&self) -> u64 {
        self.part.len()
    }

    /// Whether this worker reads nothing.
    pub fn is_empty(&self) -> bool {
        self.part.is_empty()
    }

    /// The counters.
    pub fn stats(&self) -> Arc<ReaderStats> {
        self.stats.clone()
    }

    /// The counters of the cache this reader reads through, if any (blocks fetched, bytes).
    pub fn cache_stats(&self) -> Option<strata_cache::CacheStats> {
        self.cache.as_ref().map(|c| c.stats())
    }

    /// The resume state once every rank has consumed `per_rank_done` samples of this run.
    pub fn state_after(&self, per_rank_done: u64) -> ResumeState {
        self.part
            .state_after(self.cfg.plan.seed, self.cfg.plan.epoch, per_rank_done)
    }

    fn wants(&self) -> Vec<Want> {
        self.part
            .positions()
            .map(|position| {
                let id = self.plan.order[position as usize];
                let (shard, index) = self.plan.locate(id);
                Want {
                    position,
                    id,
                    shard,
                    index,
                }
            })
            .collect()
    }

    /// Samples read at once: `max_in_flight`, fewer when that many mean samples would hold
    /// more than `lookahead_bytes` (memory stays bounded for 150 MB samples too).
    fn in_flight(&self) -> usize {
        ((self.cfg.lookahead_bytes / self.mean_sample()) as usize)
            .clamp(1, self.cfg.max_in_flight.max(1))
    }

    /// The dataset's mean sample size in bytes (at least 1).
    fn mean_sample(&self) -> u64 {
        let m = &self.ds.manifest;
        (m.bytes / m.samples.max(1)).max(1)
    }

    fn through_cache(&self) -> bool {
        self.cache.is_some()
            && self.cfg.use_cache
            && self.plan.spec.mode != ShuffleMode::Global
            && self.ds.manifest.layout == crate::manifest::Layout::Shards
            && !self.scattered()
    }

    /// How far ahead the cached path prefetches, in bytes of this reader's samples: at least
    /// [`PREFETCH_SAMPLES`] mean samples (with 140 MB samples, 512 MiB is 3.6 samples, and
    /// the link drained while the head sample's last blocks arrived), at most a quarter of
    /// what the cache's tiers hold (blocks fetched ahead must still be there when their sample
    /// comes).
    fn horizon(&self, cache: &BlockCache) -> u64 {
        self.cfg
            .lookahead_bytes
            .max(PREFETCH_SAMPLES * self.mean_sample())
            .min(cache.capacity() / 4)
    }

    /// Whether the shuffle scatters samples smaller than a block wider than the prefetch
    /// horizon (a window of 1,024 cosmoflow samples of 2.8 MB is 2.8 GB): then block reads
    /// cannot be coalesced ahead of the consumer. The first samples of a window are spread
    /// over all of its blocks, and in-order delivery waits until most of them are in (found by
    /// `strata bench plan`: cosmoflow shards at 1.5× the link's demand read 95-112 MiB/s where
    /// the same samples as raw objects read 154, the link idle at the end while the consumer
    /// drained the cache). Such a reader reads each sample's own range, like the global
    /// shuffle and raw objects, and leaves the cache alone.
    /// Without a cache, the same test with [`RAW_PART`] for the block and `lookahead_bytes`.
    fn scattered(&self) -> bool {
        let m = &self.ds.manifest;
        let mean = self.mean_sample();
        let (block, horizon) = match &self.cache {
            Some(cache) => (cache.geometry().block_size, self.horizon(cache)),
            None => (RAW_PART, self.cfg.lookahead_bytes),
        };
        self.plan.spec.mode == ShuffleMode::Window
            && m.layout == crate::manifest::Layout::Shards
            && mean < block
            && self.plan.spec.window.min(m.samples).saturating_mul(mean) > horizon
    }

    /// The samples, in this worker's order. Dropping the stream stops its prefetching.
    pub fn stream(&self) -> BoxStream<'static, Result<Sample>> {
        let wants = self.wants();
        let skip = self.cfg.skip_corrupt;
        let stats = self.stats.clone();
        let raw = if self.through_cache() {
            self.cached_stream(wants)
        } else {
            self.direct_stream(wants)
        };
        raw.filter_map(move |r| {
            let stats = stats.clone();
            async move {
                match r {
                    Ok(s) => {
                        stats.samples.fetch_add(1, Ordering::Relaxed);
                        stats.bytes.fetch_add(s.bytes(), Ordering::Relaxed);
                        Some(Ok(s))
                    }
                    Err(e) if skip && e.is_sample_error() => {
                        tracing::warn!("skipping a corrupt sample: {e}");
                        stats.skipped.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                    Err(e) => Some(Err(e)),
                }
            }
        })
        .boxed()
    }

    fn cached_stream(&self, wants: Vec<Want>) -> BoxStream<'static, Result<Sample>> {
        let cache = self.cache.clone().expect("a cache");
        let ds = self.ds.clone();
        let indexes = self.indexes.clone();
        let geometry = cache.geometry();
        let source: Arc<dyn BlockSource> = self
            .source
            .clone()
            .unwrap_or_else(|| Arc::new(ds.location.store.clone()));
        // The future, block by block: every use (for next-use eviction; a run of samples in
        // one block is one use), where each sample's first block sits in it, and each block's
        // first use (for prefetch) with how many first uses samples 0..=i have made.
        let mut future: Vec<(usize, u64)> = Vec::new();
        let mut use_of: Vec<u64> = Vec::with_capacity(wants.len());
        let mut first_uses: Vec<(usize, u64)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut frontier: Vec<usize> = Vec::with_capacity(wants.len());
        for w in &wants {
            let e = &indexes[w.shard].samples[w.index as usize];
            let obj = &ds.shards[w.shard];
            let mut first = None;
            for b in geometry.blocks(&e.range(), obj.size) {
                if future.last() != Some(&(w.shard, b)) {
                    future.push((w.shard, b));
                }
                first.get_or_insert(future.len() - 1);
                if seen.insert((w.shard, b)) {
                    first_uses.push((w.shard, b));
                }
            }
            use_of.push(first.unwrap_or(future.len().saturating_sub(1)) as u64);
            frontier.push(first_uses.len());
        }
        let ids: Vec<BlockId> = future.iter().map(|&(s, b)| ds.shards[s].block(b)).collect();
        let base = cache.plan(&ids);
        let use_of = Arc::new(use_of);
        let consumed = Arc::new(AtomicU64::new(0));
        let driver = PrefetchDriver {
            prefetcher: Prefetcher::new(cache.clone(), source.clone(), cache.read_concurrency()),
            shards: ds.shards.clone(),
            future: first_uses,
            frontier: Arc::new(frontier),
            block_size: geometry.block_size,
            lookahead: self.horizon(&cache),
            consumed: consumed.clone(),
            stats: self.stats.clone(),
        };
        let task = tokio::spawn(driver.run());
        let guard = Arc::new(AbortOnDrop(task));
        stream::iter(wants.into_iter().enumerate())
            .map(move |(i, w)| {
                let cache = cache.clone();
                let ds = ds.clone();
                let indexes = indexes.clone();
                let source = source.clone();
                // Time, for next-use eviction, is where the reader is in the plan.
                cache.plan_progress(base + use_of[i]);
                // On its own task: the read goes on while the consumer is away (a DataLoader
                // worker waits its turn between samples), so the blocks it fills, and their
                // cross-process fetch locks, never wait for this process's consumer.
                strata_cache::detach(async move {
                    let e = &indexes[w.shard].samples[w.index as usize];
                    let obj = &ds.shards[w.shard];
                    let bytes = cache.read(&*source, obj, e.range()).await.map_err(|err| {
                        DatasetError::Shard {
                            shard: ds.shard_url(w.shard),
                            cause: strata_store::StoreError::from(err).to_string(),
                        }
                    })?;
                    cut(&ds, &w, e, indexes[w.shard].format, bytes, 0)
                })
            })
            .buffered(self.in_flight())
            .inspect(move |_| {
                let _keep = &guard;
                consumed.fetch_add(1, Ordering::Relaxed);
            })
            .boxed()
    }

    fn direct_stream(&self, wants: Vec<Want>) -> BoxStream<'static, Result<Sample>> {
        if self.ds.manifest.layout == crate::manifest::Layout::Raw || self.scattered() {
            return self.raw_stream(wants);
        }
        let ds = self.ds.clone();
        let indexes = self.indexes.clone();
        let gap = self.cfg.coalesce_gap;
        let stats = self.stats.clone();
        let window = self.cfg.coalesce_window.max(1).min(self.in_flight());
        // Several windows overlap, so one window's slowest requests do not idle the rest;
        // together they keep `in_flight` requests going (the bench plan calibration found
        // 2 windows × 16 = 32 where 64 were promised: half the link for raw objects).
        let windows_in_flight = (self.in_flight() / window).max(4);
        let per_window = self.in_flight().div_ceil(windows_in_flight).max(1);
        let chunks: Vec<Vec<Want>> = wants.chunks(window).map(<[Want]>::to_vec).collect();
        stream::iter(chunks)
            .map(move |chunk| {
                let ds = ds.clone();
                let indexes = indexes.clone();
                let stats = stats.clone();
                async move { read_window(&ds, &indexes, chunk, gap, per_window, &stats).await }
            })
            .buffered(windows_in_flight)
            .flat_map(|r| match r {
                Ok(samples) => stream::iter(samples),
                Err(e) => stream::iter(vec![Err(e)]),
            })
            .boxed()
    }
}

impl Reader {
    /// One object per sample, or samples too scattered to coalesce ([`Reader::scattered`]):
    /// each sample is its own read, and samples come out as soon as they and those before
    /// them have arrived. Two bounds, kept
    /// apart: at most `max_in_flight` requests at once (a semaphore), and a reorder window of
    /// samples bounded by `lookahead_bytes` (so a slow request does not stop the others, and
    /// memory stays bounded for large objects). Objects larger than [`RAW_PART`] are read in
    /// parts side by side, as one connection is often capped far below the link.
    ///
    /// Found by `strata bench plan`: windows of 64 samples released nothing until their
    /// slowest request landed (seconds of stall with cosmoflow-sized objects), and a 140 MB
    /// unet3d object read by one GET ran at one connection's speed, 3 at a time.
    fn raw_stream(&self, wants: Vec<Want>) -> BoxStream<'static, Result<Sample>> {
        let ds = self.ds.clone();
        let indexes = self.indexes.clone();
        let stats = self.stats.clone();
        let requests = Arc::new(tokio::sync::Semaphore::new(self.cfg.max_in_flight.max(1)));
        let m = &self.ds.manifest;
        let mean = (m.bytes / m.samples.max(1)).max(1);
        let window = ((self.cfg.lookahead_bytes / mean) as usize)
            .clamp(1, 4 * self.cfg.max_in_flight.max(1));
        stream::iter(wants)
            .map(move |w| {
                let ds = ds.clone();
                let indexes = indexes.clone();
                let stats = stats.clone();
                let requests = requests.clone();
                async move {
                    let e = &indexes[w.shard].samples[w.index as usize];
                    let obj = &ds.shards[w.shard];
                    let version = (!obj.version.is_empty()).then_some(&*obj.version);
                    let range = e.range();
                    let parts: Vec<Range<u64>> = (range.start..range.end)
                        .step_by(RAW_PART as usize)
                        .map(|a| a..(a + RAW_PART).min(range.end))
                        .collect();
                    let fetched = futures::future::try_join_all(parts.into_iter().map(|r| {
                        let requests = requests.clone();
                        let ds = &ds;
                        let stats = &stats;
                        async move {
                            let _permit = requests
                                .acquire_owned()
                                .await
                                .expect("the semaphore is never closed");
                            stats.direct_requests.fetch_add(1, Ordering::Relaxed);
                            let b = ds
                                .location
                                .store
                                .get_range(&obj.path, r, version)
                                .await
                                .map_err(|err| DatasetError::Shard {
                                    shard: ds.shard_url(w.shard),
                                    cause: err.to_string(),
                                })?;
                            stats
                                .direct_bytes
                                .fetch_add(b.len() as u64, Ordering::Relaxed);
                            Ok::<_, DatasetError>(b)
                        }
                    }))
                    .await?;
                    let bytes = if fetched.len() == 1 {
                        fetched.into_iter().next().expect("one part")
                    } else {
                        let mut all = bytes::BytesMut::with_capacity(e.size as usize);
                        for b in fetched {
                            all.extend_from_slice(&b);
                        }
                        all.freeze()
                    };
                    cut(&ds, &w, e, indexes[w.shard].format, bytes, 0)
                }
            })
            .buffered(window)
            .boxed()
    }
}

/// Through the cache, blocks are prefetched at least this many mean samples ahead of the
/// consumer, even past `lookahead_bytes` (they wait in the cache's tiers, not in memory of the
/// reader's own).
pub const PREFETCH_SAMPLES: u64 = 8;

/// Part size for reading large raw objects side by side (bytes). 8 MiB.
pub const RAW_PART: u64 = 8 << 20;

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Submits blocks to the prefetcher ahead of the consumer.
struct PrefetchDriver {
    prefetcher: Prefetcher,
    shards: Vec<ObjectVersion>,
    /// Blocks in order of first use.
    future: Vec<(usize, u64)>,
    /// For sample i, how many blocks samples 0..=i first use.
    frontier: Arc<Vec<usize>>,
    block_size: u64,
    lookahead: u64,
    consumed: Arc<AtomicU64>,
    stats: Arc<ReaderStats>,
}

impl PrefetchDriver {
    async fn run(self) {
        let ahead_blocks = (self.lookahead / self.block_size.max(1)).max(1) as usize;
        let start = Instant::now();
        let mut next = 0usize;
        while next < self.future.len() {
            let done = self.consumed.load(Ordering::Relaxed) as usize;
            // The consumer has needed the first `at` blocks of the future.
            let at = if done == 0 {
                0
            } else {
                self.frontier[(done - 1).min(self.frontier.len() - 1)]
            };
            let limit = (at + ahead_blocks).min(self.future.len());
            if next < limit {
                // Deadlines from the consumption rate so far (blocks per second).
                let elapsed = start.elapsed().as_secs_f64();
                let per_block = if at > 0 { elapsed / at as f64 } else { 0.01 };
                let now = Instant::now();
                let batch: Vec<_> = (next.max(at)..limit)
                    .map(|k| {
                        let (s, b) = self.future[k];
                        let due = now + Duration::from_secs_f64(per_block * (k - at) as f64);
                        (self.shards[s].clone(), b, due)
                    })
                    .collect();
                self.stats
                    .prefetch_submitted
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                drop(self.prefetcher.submit_all(batch));
                next = limit;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.prefetcher.idle().await;
    }
}

/// Verifies a sample's bytes (the range `range_start..` of its shard, starting at the
/// sample's offset + `skip`) and cuts its members out.
fn cut(
    ds: &Dataset,
    w: &Want,
    e: &SampleEntry,
    format: ShardFormat,
    bytes: Bytes,
    skip: u64,
) -> Result<Sample> {
    let bad = |cause: String| DatasetError::Sample {
        shard: ds.shard_url(w.shard),
        sample: w.index,
        key: e.key.clone(),
        cause,
    };
    if (bytes.len() as u64) < skip + e.size {
        return Err(bad(format!(
            "got {} bytes, the index says {}",
            bytes.len() as u64 - skip.min(bytes.len() as u64),
            e.size
        )));
    }
    let mut members = Vec::with_capacity(e.members.len());
    let mut crc = 0u32;
    for m in &e.members {
        let from = (skip + m.offset) as usize;
        let data = bytes.slice(from..from + m.size as usize);
        if format != ShardFormat::Raw {
            crc = crc32c::crc32c_append(crc, &data);
        }
        members.push((m.ext.clone(), data));
    }
    if format != ShardFormat::Raw && crc != e.crc32c {
        return Err(bad("checksum mismatch (CRC32C of the members' data)".into()));
    }
    let key = if format == ShardFormat::Raw {
        let path = &ds.manifest.shards[w.shard].path;
        crate::index::split_key(path).map_or(path.clone(), |(k, _)| k.to_string())
    } else {
        e.key.clone()
    };
    Ok(Sample {
        key,
        id: w.id,
        shard: w.shard,
        index: w.index,
        position: w.position,
        members,
    })
}

/// Reads a window of samples with coalesced ranged GETs; returns them in window order, each
/// verified on its own (a corrupt sample does not spoil its neighbours).
async fn read_window(
    ds: &Dataset,
    indexes: &[Arc<ShardIndex>],
    chunk: Vec<Want>,
    gap: u64,
    concurrency: usize,
    stats: &ReaderStats,
) -> Result<Vec<Result<Sample>>> {
    // Sort by (shard, offset) and merge neighbours.
    let mut order: Vec<usize> = (0..chunk.len()).collect();
    let range_of = |i: usize| -> Range<u64> {
        let w = &chunk[i];
        indexes[w.shard].samples[w.index as usize].range()
    };
    order.sort_by_key(|&i| (chunk[i].shard, range_of(i).start));
    let mut groups: Vec<(usize, Range<u64>, Vec<usize>)> = Vec::new();
    for i in order {
        let r = range_of(i);
        let shard = chunk[i].shard;
        match groups.last_mut() {
            Some((s, g, members)) if *s == shard && r.start <= g.end + gap => {
                g.end = g.end.max(r.end);
                members.push(i);
            }
            _ => groups.push((shard, r, vec![i])),
        }
    }
    let fetched: Vec<(Range<u64>, usize, Vec<usize>, Bytes)> = stream::iter(groups)
        .map(|(shard, range, members)| async move {
            let obj = &ds.shards[shard];
            stats.direct_requests.fetch_add(1, Ordering::Relaxed);
            let version = (!obj.version.is_empty()).then_some(&*obj.version);
            let bytes = ds
                .location
                .store
                .get_range(&obj.path, range.clone(), version)
                .await
                .map_err(|e| DatasetError::Shard {
                    shard: ds.shard_url(shard),
                    cause: e.to_string(),
                })?;
            stats
                .direct_bytes
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            Ok::<_, DatasetError>((range, shard, members, bytes))
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let mut out: Vec<Option<Result<Sample>>> = (0..chunk.len()).map(|_| None).collect();
    for (range, shard, members, bytes) in fetched {
        for i in members {
            let w = &chunk[i];
            let e = &indexes[shard].samples[w.index as usize];
            out[i] = Some(cut(
                ds,
                w,
                e,
                indexes[shard].format,
                bytes.clone(),
                e.offset - range.start,
            ));
        }
    }
    Ok(out
        .into_iter()
        .map(|s| s.expect("every sample read"))
        .collect())
}
