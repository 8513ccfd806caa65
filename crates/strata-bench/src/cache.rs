//! `strata bench cache`: a dataset read cold through the emulated S3 link, then warm from the
//! NVMe tier (page cache dropped), then warm from DRAM; each against the physical limit
//! measured in the same run (the link cap, the device's sequential read, memcpy). The device
//! is measured on the very block files the warm read reads, read raw (no header, no check, no
//! cache), in one stream and in as many streams as the cache reads, in turn with the warm
//! runs, so that both sides see the same bytes on the same disk in the same state. Then a
//! shuffled-epoch trace replayed with the cache at half the dataset, under LRU, S3-FIFO and
//! next-use, and a sweep of block sizes for the cold read.

use crate::error::BenchError;
use crate::workdir::WorkDir;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use strata_cache::nvme::{NvmeConfig, NvmeTier};
use strata_cache::policy::{self, EvictionPolicy, PolicyKind};
use strata_cache::{BlockCache, CacheConfig, ObjectVersion};
use strata_store::Store;
use strata_testkit::{LinkProfile, Linked, S3Server, data};
use strata_units::format_size;

use crate::machine::{CacheDrop, MachineLimits, drop_page_cache, mib};

/// Settings of the cache benchmark.
#[derive(Debug, Clone)]
pub struct CacheBench {
    /// Dataset size in bytes (cut into 8 objects). Default: 2 GiB.
    pub size: u64,
    /// Block size. Default: 8 MiB.
    pub block_size: u64,
    /// Blocks read at once. Default: 32 (16 cannot fill the `s3` profile: 16 connections at
    /// its 10 MiB/s per connection is the 160 MiB/s cap with no room for latency).
    pub concurrency: usize,
    /// The emulated link. Default: `s3`.
    pub profile: LinkProfile,
    /// Block sizes to sweep for the cold read (each on a quarter of the dataset); empty: none.
    pub sweep: Vec<u64>,
    /// Where the cache and probe files go. Default: a temporary directory.
    pub work_dir: Option<PathBuf>,
}

impl Default for CacheBench {
    fn default() -> Self {
        Self {
            size: 2 << 30,
            block_size: 8 << 20,
            concurrency: 32,
            profile: LinkProfile::s3(),
            sweep: vec![1 << 20, 4 << 20, 8 << 20, 16 << 20],
            work_dir: None,
        }
    }
}

/// One measured read of the whole dataset.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Phase {
    /// `cold`, `nvme-warm` or `dram-warm`.
    pub name: &'static str,
    /// Bytes read.
    pub bytes: u64,
    /// Seconds the read took.
    pub secs: f64,
    /// The read's rate, MiB/s.
    pub mib_per_sec: f64,
    /// The limit it is compared with, MiB/s.
    pub limit_mib_per_sec: f64,
    /// What the limit is: the link cap, the device read or memcpy.
    pub limit: &'static str,
    /// The rate over the limit.
    pub ratio: f64,
    /// The target ratio, if the issue sets one.
    pub target: Option<f64>,
    /// Requests that crossed the emulated link during the phase.
    pub link_requests: u64,
}

/// One round of the NVMe-warm comparison: the block files read raw in one stream and in
/// `streams` streams, and through a fresh cache, each after emptying the page cache, MiB/s.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Round {
    /// Which read went first (the order turns from round to round).
    pub order: [&'static str; 3],
    /// The block files read raw in one stream, MiB/s.
    pub raw_one_stream: f64,
    /// The block files read raw in `streams` streams, MiB/s.
    pub raw_streams: f64,
    /// Streams of the raw read (the cache's reads at once).
    pub streams: usize,
    /// The NVMe-warm read through the cache, MiB/s.
    pub warm: f64,
}

impl Round {
    /// The warm read over the better raw read of this round.
    pub fn ratio(&self) -> f64 {
        self.warm / self.raw_one_stream.max(self.raw_streams)
    }
}

/// Hit ratios of the policies on the shuffled-epoch trace.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PolicyRow {
    /// The policy's name.
    pub policy: &'static str,
    /// Simulated on the large trace (the tier's own policy code).
    pub simulated: f64,
    /// Replayed through a real NVMe tier (files, fsync) on the small trace.
    pub replayed: f64,
    /// Replayed through the DRAM tier on the large trace.
    pub dram: f64,
}

/// What the benchmark measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CacheBenchReport {
    /// When it ran (UTC).
    pub date: String,
    /// Bytes of the dataset.
    pub dataset_bytes: u64,
    /// The cache's block size, bytes.
    pub block_size: u64,
    /// The machine's limits, measured in the same run.
    pub machine: MachineLimits,
    /// The device's best raw read of the block files, MiB/s.
    pub device_read_mib_per_sec: f64,
    /// Each round of the device probe and the NVMe-warm read, in order: the spread shows how
    /// much the disk itself varies during the run.
    pub rounds: Vec<Round>,
    /// How the page cache was emptied before each device probe and NVMe-warm read.
    pub page_cache_drop: CacheDrop,
    /// The emulated link.
    pub profile: LinkProfile,
    /// The cold, NVMe-warm and DRAM-warm reads.
    pub phases: Vec<Phase>,
    /// Cache fraction of the trace replay (the optimum hit ratio after the first epoch).
    pub cache_fraction: f64,
    /// Hit ratios of each eviction policy on shuffled epochs.
    pub policies: Vec<PolicyRow>,
    /// Cold-read MiB/s and fraction of the link cap, per block size.
    pub sweep: Vec<(u64, f64, f64)>,
}

impl CacheBenchReport {
    /// A table for people.
    pub fn to_table(&self) -> String {
        let mut s = format!(
            "strata bench cache  {}\ndataset {} in 8 objects, block {}; machine: {} cores, memcpy {:.1} GiB/s, device sequential read {:.0} MiB/s (page cache emptied by {:?})\nlink profile {}\n\n",
            self.date,
            format_size(self.dataset_bytes),
            format_size(self.block_size),
            self.machine.cores,
            self.machine.memcpy_gib_per_sec,
            self.device_read_mib_per_sec,
            self.page_cache_drop,
            self.profile.name
        );
        s.push_str(&format!(
            "{:<10} {:>10} {:>9} {:>24} {:>7} {:>8} {:>14}\n",
            "read", "bytes", "MiB/s", "limit (MiB/s)", "ratio", "target", "link requests"
        ));
        for p in &self.phases {
            s.push_str(&format!(
                "{:<10} {:>10} {:>9.1} {:>24} {:>7.2} {:>8} {:>14}\n",
                p.name,
                format_size(p.bytes),
                p.mib_per_sec,
                format!("{} {:.0}", p.limit, p.limit_mib_per_sec),
                p.ratio,
                p.target.map_or("-".into(), |t| format!("≥ {t:.2}")),
                p.link_requests
            ));
        }
        s.push_str(&format!(
            "\nshuffled epochs, cache = {:.0}% of the blocks; hit ratio after the first epoch (optimum {:.2}):\n",
            self.cache_fraction * 100.0,
            self.cache_fraction
        ));
        for r in &self.policies {
            s.push_str(&format!(
                "  {:<9} simulated {:.3}   replayed through the NVMe tier {:.3}   the DRAM tier {:.3}\n",
                r.policy, r.simulated, r.replayed, r.dram
            ));
        }
        s.push_str(
            "\nNVMe-warm rounds (MiB/s; the block files read raw in 1 and in N streams, then through the cache; page cache emptied before each read):\n",
        );
        for r in &self.rounds {
            s.push_str(&format!(
                "  raw 1 stream {:6.0}   raw {} streams {:6.0}   warm {:6.0}   warm/raw {:.2}   order {}\n",
                r.raw_one_stream,
                r.streams,
                r.raw_streams,
                r.warm,
                r.ratio(),
                r.order.join(", ")
            ));
        }
        let mut ratios: Vec<f64> = self.rounds.iter().map(Round::ratio).collect();
        ratios.sort_by(f64::total_cmp);
        if let Some(m) = ratios.get(ratios.len() / 2) {
            s.push_str(&format!(
                "  median of the rounds' ratios {m:.2}; the table's ratio is the best warm read over the best raw read\n"
            ));
        }
        if !self.sweep.is_empty() {
            s.push_str("\ncold read by block size:\n");
            for (b, mib, frac) in &self.sweep {
                s.push_str(&format!(
                    "  {:>9}  {:7.1} MiB/s  {:.2} of the link cap\n",
                    format_size(*b),
                    mib,
                    frac
                ));
            }
        }
        s
    }
}

/// Rounds of the NVMe-warm comparison; the best of each side is reported. On a virtual disk
/// the host caches what was written or read lately, so the same file reads at 0.9 GiB/s or
/// 3.2 GiB/s depending on its history (docs/benchmarks.md): the raw reads and the warm read
/// take turns going first, over the same files.
const ROUNDS: usize = 6;

/// The regular files under `dir`, recursively, sorted by path.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => out.push(e.path()),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Reads `files` whole and raw (`pread` in 8 MiB pieces into one reused buffer per stream;
/// no header, no check) in `streams` threads, after emptying the page cache: MiB/s.
fn read_raw(files: &[PathBuf], streams: usize, dir: &Path) -> std::io::Result<(f64, CacheDrop)> {
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    let how = drop_page_cache(dir);
    let next = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let t = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..streams.max(1))
            .map(|_| {
                s.spawn(|| -> std::io::Result<()> {
                    let mut buf = vec![0u8; 8 << 20];
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(i) else {
                            return Ok(());
                        };
                        let f = std::fs::File::open(path)?;
                        let mut off = 0u64;
                        loop {
                            let n = f.read_at(&mut buf, off)?;
                            if n == 0 {
                                break;
                            }
                            off += n as u64;
                        }
                        bytes.fetch_add(off, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .unwrap_or_else(|_| Err(std::io::Error::other("panicked")))
        })
    })?;
    Ok((mib(bytes.into_inner(), t.elapsed().as_secs_f64()), how))
}

async fn read_all(
    cache: &BlockCache,
    store: &Store,
    objects: &[ObjectVersion],
    concurrency: usize,
    copy_out: bool,
) -> Result<u64, BenchError> {
    let g = cache.geometry();
    let blocks: Vec<(&ObjectVersion, u64)> = objects
        .iter()
        .flat_map(|o| (0..g.block_count(o.size)).map(move |i| (o, i)))
        .collect();
    stream::iter(blocks)
        .map(|(o, i)| async move {
            let b = cache
                .get_block(store, o, i, strata_cache::Why::Demand)
                .await
                ?;
            if copy_out {
                // A consumer copies what it reads (into a tensor, a decode buffer) and reuses
                // its buffer: DRAM-warm throughput is measured with that copy, not as a
                // zero-copy hand-off, and not with a fresh allocation per block.
                thread_local! {
                    static OUT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
                }
                OUT.with(|out| {
                    let mut out = out.borrow_mut();
                    out.clear();
                    out.extend_from_slice(&b);
                    std::hint::black_box(&*out);
                });
            }
            Ok::<_, BenchError>(b.len() as u64)
        })
        .buffer_unordered(concurrency)
        .try_fold(0u64, |a, n| async move { Ok(a + n) })
        .await
}

fn cache_cfg(dir: &Path, block: u64, dram: u64, capacity: u64, concurrency: usize) -> CacheConfig {
    CacheConfig {
        block_size: block,
        dram_bytes: dram,
        nvme: Some(NvmeConfig {
            dir: dir.to_path_buf(),
            capacity,
            min_free_fraction: 0.0, // bounded by the capacity; a nearly full host disk must not turn it off
            policy: PolicyKind::S3Fifo,
        }),
        read_concurrency: concurrency,
    }
}

/// Replays `trace` through a real NVMe tier (tiny payloads) holding `capacity` blocks, and
/// returns the hit ratio after the first `warmup` accesses.
fn replay(
    dir: &Path,
    kind: PolicyKind,
    trace: &[strata_cache::BlockId],
    capacity: usize,
    warmup: usize,
) -> f64 {
    let payload = vec![7u8; 1024];
    let obj = ObjectVersion::new("bench://trace", "t", "v", u64::MAX);
    let per_block = (strata_cache::block_file::header_len(&obj.key_text(u32::MAX as u64))
        + payload.len()) as u64;
    let tier = NvmeTier::open(&NvmeConfig {
        dir: dir.to_path_buf(),
        capacity: per_block * capacity as u64,
        min_free_fraction: 0.0,
        policy: kind,
    })
    .expect("tier");
    if kind == PolicyKind::NextUse {
        let future: Vec<_> = trace.iter().map(|id| obj.block(id.index)).collect();
        tier.plan(&future);
    }
    let mut hits = 0usize;
    for (n, id) in trace.iter().enumerate() {
        if tier.get(&obj, id.index).is_some() {
            if n >= warmup {
                hits += 1;
            }
        } else {
            let _ = tier.put(&obj, id.index, 0, &payload);
        }
    }
    hits as f64 / (trace.len() - warmup).max(1) as f64
}

/// Replays `trace` through a DRAM tier holding `capacity` blocks (1 KiB each) with policy
/// `kind`, told the plan as the dataset reader tells it; the hit ratio after `warmup`.
fn replay_dram(
    kind: PolicyKind,
    trace: &[strata_cache::BlockId],
    capacity: usize,
    warmup: usize,
) -> f64 {
    let payload = Bytes::from(vec![7u8; 1024]);
    let obj = ObjectVersion::new("bench://trace", "t", "v", u64::MAX);
    let key = |i: u64| obj.key_text(i);
    let per_block = (payload.len() + key(u32::MAX as u64).len()) as u64 + 96;
    let tier = strata_cache::dram::DramTier::with_policy(per_block * capacity as u64, kind);
    let ids: Vec<_> = trace.iter().map(|id| obj.block(id.index)).collect();
    let base = tier.plan(&ids);
    let mut hits = 0usize;
    for (n, id) in trace.iter().enumerate() {
        tier.progress(base + n as u64);
        let k = key(id.index);
        if tier.get(obj.block(id.index), &k).is_some() {
            if n >= warmup {
                hits += 1;
            }
        } else {
            tier.insert(obj.block(id.index), &k, payload.clone());
        }
    }
    hits as f64 / (trace.len() - warmup).max(1) as f64
}

fn simulate_after(
    kind: PolicyKind,
    trace: &[strata_cache::BlockId],
    capacity: usize,
    warmup: usize,
) -> f64 {
    let mut p: Box<dyn EvictionPolicy> = kind.build();
    p.plan(trace);
    // Hit ratio of the whole trace and of the warm-up prefix give the ratio after it.
    let all = policy::simulate(&mut *p, trace, capacity) * trace.len() as f64;
    let mut q: Box<dyn EvictionPolicy> = kind.build();
    q.plan(trace);
    let first = policy::simulate(&mut *q, &trace[..warmup], capacity) * warmup as f64;
    (all - first) / (trace.len() - warmup) as f64
}

impl CacheBench {
    /// The block-size sweep of the cold read, on a quarter of the dataset each: (block
    /// size, MiB/s, fraction of the link cap).
    async fn sweep(
        &self,
        dir: &std::path::Path,
        linked: &Store,
        objects: &[ObjectVersion],
        cap: f64,
    ) -> Result<Vec<(u64, f64, f64)>, BenchError> {
        let mut sweep = Vec::new();
        // Block-size sweep of the cold read, on a quarter of the dataset each.
        for &b in &self.sweep {
            let d = dir.join(format!("sweep-{b}"));
            let cache = BlockCache::open(&cache_cfg(&d, b, 0, self.size, self.concurrency))?;
            let t = Instant::now();
            let n = read_all(&cache, linked, &objects[..2], self.concurrency, false).await?;
            let m = mib(n, t.elapsed().as_secs_f64());
            sweep.push((b, m, m / cap));
            cache.flush().await;
            drop(cache);
            let _ = std::fs::remove_dir_all(&d);
        }
        Ok(sweep)
    }

    /// Runs the benchmark (blocking; it starts its own servers and runtime).
    pub fn run(&self) -> Result<CacheBenchReport, BenchError> {
        let machine = MachineLimits::measure();
        let work = WorkDir::new(self.work_dir.as_deref(), "strata-bench-cache-")?;
        let dir = work.path().to_path_buf();
        let mut device = 0.0f64;
        let mut page_cache_drop = CacheDrop::Fadvise;
        let mut rounds = Vec::new();
        let rig = Linked::start(Box::new(S3Server::start()), self.profile.clone())?;
        let (emu, direct, linked) = (&rig.emu, &rig.direct, &rig.linked);
        let rt = crate::machine::runtime()?;
        let cap = self.profile.cap_mib_per_sec();
        let per_object = self.size / 8;
        let mut phases = Vec::new();
        let mut sweep = Vec::new();
        rt.block_on(async {
            let objects = put_dataset(direct, linked, per_object).await?;
            let total = per_object * 8;
            let cache_dir = dir.join("cache");
            let mut phase = |name, secs: f64, limit_name, limit: f64, target, reqs| {
                let m = mib(total, secs);
                phases.push(Phase {
                    name,
                    bytes: total,
                    secs,
                    mib_per_sec: m,
                    limit_mib_per_sec: limit,
                    limit: limit_name,
                    ratio: m / limit,
                    target,
                    link_requests: reqs,
                });
            };
            // Cold: everything crosses the link once.
            let open = |dram: u64| {
                BlockCache::open(&cache_cfg(
                    &cache_dir,
                    self.block_size,
                    dram,
                    self.size * 2,
                    self.concurrency,
                ))
            };
            let cache = open(0)?;
            let r0 = emu.stats().requests;
            // The time ends when the reader has every byte; the last blocks may still be
            // being written behind (flushed right after).
            let t = Instant::now();
            read_all(&cache, linked, &objects, self.concurrency, false).await?;
            phase(
                "cold",
                t.elapsed().as_secs_f64(),
                "link cap",
                cap,
                Some(0.85),
                emu.stats().requests - r0,
            );
            cache.flush().await;
            drop(cache);
            // NVMe-warm: a new cache on the same directory, DRAM off, page cache emptied. The
            // device is the same block files read raw, in one stream and in as many as the
            // cache reads at once; the three reads take turns going first.
            let files = files_under(&cache_dir.join("blocks"));
            if files.is_empty() {
                return Err(BenchError::Failed(format!(
                    "the cold read stored no block file under {}",
                    cache_dir.display()
                )));
            }
            let r0 = emu.stats().requests;
            let mut best = f64::MAX;
            for r in 0..ROUNDS {
                let mut order = ["raw 1", "raw N", "warm"];
                order.rotate_left(r % 3);
                let (mut one, mut many, mut warm) = (0.0, 0.0, 0.0);
                for step in order {
                    if step == "warm" {
                        drop_page_cache(&cache_dir);
                        let cache = open(0)?;
                        let t = Instant::now();
                        read_all(&cache, linked, &objects, self.concurrency, false).await?;
                        let secs = t.elapsed().as_secs_f64();
                        best = best.min(secs);
                        warm = mib(total, secs);
                        continue;
                    }
                    let streams = if step == "raw 1" { 1 } else { self.concurrency };
                    let (m, how) = read_raw(&files, streams, &cache_dir)
                        .map_err(|e| BenchError::Failed(format!("device probe: {e}")))?;
                    page_cache_drop = how;
                    device = device.max(m);
                    if streams == 1 {
                        one = m;
                    } else {
                        many = m;
                    }
                }
                rounds.push(Round {
                    order,
                    raw_one_stream: one,
                    raw_streams: many,
                    streams: self.concurrency,
                    warm,
                });
            }
            phase(
                "nvme-warm",
                best,
                "device read",
                device,
                Some(0.8),
                emu.stats().requests - r0,
            );
            // DRAM-warm: fill DRAM from NVMe, then read again, copying out.
            let cache = open(self.size + self.size / 4)?;
            read_all(&cache, linked, &objects, self.concurrency, false).await?;
            let r0 = emu.stats().requests;
            let t = Instant::now();
            read_all(&cache, linked, &objects, self.concurrency, true).await?;
            phase(
                "dram-warm",
                t.elapsed().as_secs_f64(),
                "memcpy",
                machine.memcpy_gib_per_sec * 1024.0,
                None,
                emu.stats().requests - r0,
            );
            cache.flush().await;
            drop(cache);
            sweep = self.sweep(&dir, linked, &objects, cap).await?;
            Ok::<_, BenchError>(())
        })?;
        let policies = policy_rows(&dir);
        Ok(CacheBenchReport {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            dataset_bytes: per_object * 8,
            block_size: self.block_size,
            machine,
            device_read_mib_per_sec: device,
            rounds,
            page_cache_drop,
            profile: self.profile.clone(),
            phases,
            cache_fraction: 0.5,
            policies,
            sweep,
        })
    }
}

/// Eight objects of `per_object` bytes written through `direct`, as versions read through
/// `linked` (the same server behind the emulated link).
async fn put_dataset(
    direct: &Store,
    linked: &Store,
    per_object: u64,
) -> Result<Vec<ObjectVersion>, BenchError> {
    let mut objects = Vec::new();
    for i in 0..8u64 {
        let key = format!("dataset/part-{i}");
        direct
            .put(&key, Bytes::from(data::bytes(i, per_object as usize)))
            .await?;
        let info = direct.head(&key).await?;
        objects.push(ObjectVersion::new(
            &linked.root().to_string(),
            &key,
            info.e_tag.as_deref().unwrap_or(""),
            info.size,
        ));
    }
    Ok(objects)
}

/// Shuffled epochs with the cache at half the blocks: each policy simulated, replayed
/// through the NVMe tier in `dir`, and through the DRAM tier.
fn policy_rows(dir: &std::path::Path) -> Vec<PolicyRow> {
    // Shuffled epochs with the cache at half the blocks.
    let big = policy::shuffled_epochs(20_000, 5, 11);
    let small = policy::shuffled_epochs(1_000, 4, 12);
    let mut policies = Vec::new();
    for kind in [PolicyKind::Lru, PolicyKind::S3Fifo, PolicyKind::NextUse] {
        let d = dir.join(format!("replay-{kind:?}"));
        policies.push(PolicyRow {
            policy: kind.build().name(),
            simulated: simulate_after(kind, &big, 10_000, 20_000),
            replayed: replay(&d, kind, &small, 500, 1_000),
            dram: replay_dram(kind, &big, 10_000, 20_000),
        });
        let _ = std::fs::remove_dir_all(&d);
    }
    policies
}
