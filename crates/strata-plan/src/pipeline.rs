//! The data pipeline equation, evaluated tier by tier.
//!
//! One node's accelerators consume, at full compute speed,
//!
//! ```text
//! demand D = per_node × batch × sample_size / step_time          (bytes/s)
//! ```
//!
//! and each epoch a node reads its share `B = dataset / nodes`. The pipeline overlaps its
//! stages (prefetch), so an epoch takes as long as its slowest stage:
//!
//! ```text
//! epoch = max( B / D                                   compute
//!              B·(1−h) / S_source                      download (misses)
//!              B·h / S_nvme_read                       cache (hits)
//!              B / S_dram )                            buffer
//! utilization = (B / D) / epoch
//! ```
//!
//! - `S_source` is the source tier's throughput for the request size the layout makes
//!   (shards: `pipeline.block_size`; raw files or a global shuffle: one sample) with
//!   `min(concurrency, buffer / request)` requests in flight (the buffer must hold them),
//!   at most the tier's shared bandwidth divided by the nodes.
//! - `h` is the fraction of the epoch served by the NVMe cache. A node's cache can hold what
//!   it has read and stored before. The cache writes its misses behind the reads and never
//!   holds a read up for them: when the disk writes slower than the download, it stores the
//!   fraction `q = min(1, S_nvme_write / S_source)` of them and lets the rest pass through
//!   (`strata_cache::cache::WRITE_BEHIND_MIN_BYTES`). With the samples reshuffled over nodes
//!   every epoch, a node has stored a fraction `p_e = 1 − (1 − q/nodes)^e` of the dataset
//!   before epoch `e`, and a next-use (Belady) cache of `C` bytes serves `min(p_e, C /
//!   dataset)` of it, the optimum for a shuffled trace. The engine may serve fewer hits than
//!   that when the cache is the slower path; the plan picks the best `h` in `[0, that]`, so
//!   more cache never predicts less.

use serde::Serialize;

use crate::scenario::{Layout, Scenario, Shuffle, Tier, TierKind};

/// One stage of the pipeline in the steady (last) epoch.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    /// `compute`, `source`, `cache` or `buffer`.
    pub role: &'static str,
    /// The tier that serves it.
    pub tier: String,
    /// Bytes/s this stage must move to keep the accelerators busy.
    pub required: f64,
    /// Bytes/s it can move.
    pub available: f64,
    /// Seconds it is busy per epoch.
    pub secs: f64,
}

/// One epoch.
#[derive(Debug, Clone, Serialize)]
pub struct Epoch {
    /// The epoch, from 0.
    pub epoch: u32,
    /// Fraction of the epoch's bytes read from the NVMe cache.
    pub hit_ratio: f64,
    /// Wall seconds of the epoch.
    pub secs: f64,
    /// Compute over wall time in the epoch.
    pub utilization: f64,
}

/// Sequential versus shuffled reading, without a cache: the I/O wall.
#[derive(Debug, Clone, Serialize)]
pub struct IoWall {
    /// Bytes/s from the source reading shards in order (requests of the block size).
    pub sequential_bytes_per_sec: f64,
    /// Bytes/s from the source reading one sample at a time at random.
    pub shuffled_bytes_per_sec: f64,
    /// Epoch seconds (with compute overlapped) each way.
    pub sequential_epoch_secs: f64,
    /// Epoch seconds reading one sample at a time at random.
    pub shuffled_epoch_secs: f64,
    /// sequential / shuffled throughput.
    pub factor: f64,
}

/// The pipeline, evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct PipelinePlan {
    /// Bytes/s one node's accelerators consume at full speed.
    pub node_demand: f64,
    /// Bytes/s all nodes consume at full speed.
    pub cluster_demand: f64,
    /// Bytes per request from the source.
    pub request_size: f64,
    /// Whether the source is read at random offsets (one sample per request).
    pub random: bool,
    /// Requests in flight per node after the buffer's limit.
    pub depth: u32,
    /// Bytes each node reads per epoch.
    pub node_epoch_bytes: f64,
    /// Compute seconds per epoch.
    pub compute_secs_per_epoch: f64,
    /// Seconds until the first batch can start: one request's latency plus its bytes at
    /// its share of the source (`depth` requests share the download), once per run.
    pub first_batch_secs: f64,
    /// The stages in the steady epoch.
    pub stages: Vec<Stage>,
    /// The stage that sets the pace in the steady epoch (`compute` when the accelerators do).
    pub bottleneck: String,
    /// Every epoch.
    pub epochs: Vec<Epoch>,
    /// Compute time over wall time, the whole run (first batch and last step included).
    pub utilization: f64,
    /// The last epoch's, pipeline full.
    pub steady_utilization: f64,
    /// The whole run: the first batch's wait, the epochs, and the last step's compute when
    /// the run is I/O-bound (its data comes last).
    pub total_secs: f64,
    /// Samples per second of the whole cluster, averaged over the run.
    pub samples_per_sec: f64,
    /// Bytes per second delivered to one node's accelerators, averaged over the run.
    pub node_bytes_per_sec: f64,
    /// Sequential against shuffled reading.
    pub io_wall: IoWall,
}

/// The request size and pattern a layout and shuffle make.
pub fn access(s: &Scenario) -> (f64, bool) {
    let d = s.dataset.as_ref().expect("validated");
    match (d.layout, d.shuffle) {
        (Layout::Shards, Shuffle::Window) if scattered(s) => {
            (d.sample_size.min(s.pipeline.block_size), true)
        }
        (Layout::Shards, Shuffle::None | Shuffle::Window) => {
            (s.pipeline.block_size.min(d.size), false)
        }
        // One request per sample; a sample larger than a block is read in block-sized parts
        // side by side (as the engine's raw reader does).
        (Layout::Shards, Shuffle::Global) | (Layout::Raw, _) => {
            (d.sample_size.min(s.pipeline.block_size), true)
        }
    }
}

/// How far ahead of its consumer the engine's reader prefetches blocks, in bytes: its
/// default lookahead (`strata_dataset::ReaderConfig::lookahead_bytes`, 512 MiB).
pub const PREFETCH_HORIZON: f64 = 512.0 * 1048576.0;

/// Whether a window shuffle scatters samples smaller than a block over more bytes of shards
/// than the reader prefetches ahead ([`PREFETCH_HORIZON`]; a window of 1,024 cosmoflow
/// samples is 2.8 GB). The engine then reads each sample's own range, as for the global
/// shuffle, instead of blocks whose samples are needed all over the window.
pub fn scattered(s: &Scenario) -> bool {
    let Some(d) = s.dataset.as_ref() else {
        return false;
    };
    let nodes = s.accelerators.as_ref().map_or(1, |a| a.nodes) as f64;
    d.layout == Layout::Shards
        && d.shuffle == Shuffle::Window
        && d.sample_size < s.pipeline.block_size
        && (d.window as f64 * d.sample_size).min(d.size / nodes) > PREFETCH_HORIZON
}

/// Requests in flight: the configured concurrency, at most what the buffer holds, and at
/// most the requests an epoch has.
pub fn depth(s: &Scenario, request: f64) -> u32 {
    let fit = (s.pipeline.buffer / request).floor().max(1.0);
    let epoch = s.dataset.as_ref().map_or(f64::INFINITY, |d| {
        let nodes = s.accelerators.as_ref().map_or(1, |a| a.nodes) as f64;
        (d.size / nodes / request).ceil().max(1.0)
    });
    (s.pipeline.concurrency as f64).min(fit).min(epoch) as u32
}

/// Bytes/s one node downloads from `source` with requests of `request` bytes.
pub fn source_rate(s: &Scenario, source: &Tier, request: f64, random: bool) -> f64 {
    let nodes = s.accelerators.as_ref().map_or(1, |a| a.nodes) as f64;
    let mut v = source.read_throughput(request, depth(s, request), random);
    if let Some(shared) = source.shared_read_bandwidth {
        v = v.min(shared / nodes);
    }
    if let Some(rate) = source.request_rate {
        // The request rate is the store's, shared by every node.
        v = v.min(rate * request / nodes);
    }
    v
}

/// Seconds a pass over one node's data takes when a window shuffle meets the download:
/// None when the scenario does not read shards in window-shuffled order.
///
/// A window of `window` samples spans `window × sample_size` bytes of shards, cut into blocks
/// (the requests). Its samples are read in random order, so its blocks are first needed in
/// random order, each by every sample it holds. Blocks arrive at the download rate `r` (blocks
/// per second, fetched in order of first use) and the accelerators take samples at `d` per
/// second; sample `p` can start only once the blocks of samples `0..=p` are in. After `p`
/// samples, `D(p) = B (1 − e^(−k p / B))` distinct blocks are needed (B blocks in the window,
/// `k` blocks per sample), so a window takes `T = max over p of D(p)/r + (S − p)/d`: when the
/// accelerators are faster than the link, they spend the end of the window on samples whose
/// blocks all came early, after the link is done. Consecutive windows overlap (the next
/// window's blocks download while this one's samples compute), so a pass of `n` windows
/// takes `(n − 1) × max(S/d, B/r) + T`. It never falls as the download gets faster.
///
/// Measured by `strata bench plan`: cosmoflow shards at 1.5× demand (2.8 MB samples, a
/// window wider than the dataset) finish 2–4 s after the link falls idle.
pub fn window_secs(s: &Scenario, download: f64) -> Option<f64> {
    let (d, a) = (s.dataset.as_ref()?, s.accelerators.as_ref()?);
    if d.layout != Layout::Shards
        || d.shuffle != Shuffle::Window
        || scattered(s)
        || download.is_nan()
        || download <= 0.0
    {
        return None;
    }
    let block = s.pipeline.block_size;
    let node_bytes = d.size / a.nodes as f64;
    let span = (d.window as f64 * d.sample_size).min(node_bytes);
    let blocks = (span / block).max(1.0);
    let samples = span / d.sample_size;
    let k = 1.0 + d.sample_size / block;
    let r = download / block;
    let rate = a.node_demand(d.sample_size) / d.sample_size;
    let f = |p: f64| blocks * (1.0 - (-k * p / blocks).exp()) / r + (samples - p) / rate;
    let p = if k * rate > r {
        (blocks / k * (k * rate / r).ln()).clamp(0.0, samples)
    } else {
        0.0
    };
    let window = f(p).max(f(0.0));
    let windows = node_bytes / span;
    Some((windows - 1.0) * (samples / rate).max(blocks / r) + window)
}

/// The I/O wall: the same source read both ways, no cache: sequential shards in blocks,
/// against one request per sample in shuffled order. `compute` is the seconds of compute per
/// epoch, `b` the bytes a node reads per epoch.
fn io_wall(s: &Scenario, source: &Tier, compute: f64, b: f64) -> IoWall {
    let d = s.dataset.as_ref().expect("the pipeline has a dataset");
    let seq = source_rate(s, source, s.pipeline.block_size.min(d.size), false);
    let shuf = source_rate(s, source, d.sample_size, true);
    IoWall {
        sequential_bytes_per_sec: seq,
        shuffled_bytes_per_sec: shuf,
        sequential_epoch_secs: compute.max(b / seq),
        shuffled_epoch_secs: compute.max(b / shuf),
        factor: seq / shuf,
    }
}

/// Evaluates the pipeline; None when the scenario has no dataset.
pub fn evaluate(s: &Scenario) -> Option<PipelinePlan> {
    let d = s.dataset.as_ref()?;
    let a = s.accelerators.as_ref()?;
    let source = s.source()?;
    let nodes = a.nodes as f64;
    let demand = a.node_demand(d.sample_size);
    let b = d.size / nodes;
    let compute = b / demand;
    let (request, random) = access(s);
    let dep = depth(s, request);
    let src = source_rate(s, source, request, random);
    let nvme = s.tier(TierKind::Nvme).filter(|_| s.pipeline.cache > 0.0);
    let (nv_read, nv_write) = nvme.map_or((f64::INFINITY, f64::INFINITY), |t| {
        (
            t.read_throughput(request, dep, random),
            t.write_throughput(request, dep, false),
        )
    });
    let dram = s
        .tier(TierKind::Dram)
        .map_or(f64::INFINITY, |t| t.read_bandwidth);
    let cache_frac = if nvme.is_some() {
        (s.pipeline.cache / d.size).min(1.0)
    } else {
        0.0
    };
    // The fraction of its misses the cache stores: the rest pass through when the disk
    // writes slower than the download (taken at its full rate: a compute-bound run, which
    // downloads slower, stores more, and hits later make no difference to it).
    let stored_per_epoch = if nvme.is_some() {
        (nv_write / src).min(1.0)
    } else {
        0.0
    };
    // Stage times for a hit ratio h.
    let times = |h: f64| {
        let download = b * (1.0 - h) / src;
        let cache = if nvme.is_some() { b * h / nv_read } else { 0.0 };
        let buffer = b / dram;
        (download, cache, buffer)
    };
    let epoch_secs = |h: f64| {
        let (x, y, z) = times(h);
        compute.max(x).max(y).max(z)
    };
    let best_h = |hmax: f64| -> f64 {
        let mut cands = vec![0.0, hmax];
        // Where the download and the cache lines cross.
        let a1 = 1.0 / src;
        if a1 > 0.0 && nv_read.is_finite() {
            cands.push((a1 / (a1 + 1.0 / nv_read)).clamp(0.0, hmax));
        }
        cands
            .into_iter()
            .min_by(|x, y| {
                epoch_secs(*x)
                    .total_cmp(&epoch_secs(*y))
                    .then(y.total_cmp(x))
            })
            .unwrap_or(0.0)
    };
    let window = window_secs(s, src);
    let mut epochs = Vec::new();
    let mut total = 0.0;
    for e in 0..d.epochs {
        let stored = 1.0 - (1.0 - stored_per_epoch / nodes).powi(e as i32);
        let h = best_h(stored.min(cache_frac));
        // A window shuffle's blocks come in random order: the downloaded part of the epoch
        // takes at least what the window model says.
        let secs = epoch_secs(h).max(window.map_or(0.0, |w| w * (1.0 - h)));
        total += secs;
        epochs.push(Epoch {
            epoch: e,
            hit_ratio: h,
            secs,
            utilization: compute / secs,
        });
    }
    let last = epochs.last().expect("epochs ≥ 1").clone();
    let (dl, ca, bu) = times(last.hit_ratio);
    let mut stages = vec![Stage {
        role: "compute",
        tier: format!("{} accelerator(s) per node", a.per_node),
        required: demand,
        available: demand,
        secs: compute,
    }];
    stages.push(Stage {
        role: "source",
        tier: source.name.clone(),
        required: b * (1.0 - last.hit_ratio) / compute,
        available: src,
        secs: dl,
    });
    if let Some(t) = nvme {
        stages.push(Stage {
            role: "cache",
            tier: t.name.clone(),
            required: b / compute,
            available: if ca > 0.0 { b / ca } else { f64::INFINITY },
            secs: ca,
        });
    }
    if let Some(t) = s.tier(TierKind::Dram) {
        stages.push(Stage {
            role: "buffer",
            tier: t.name.clone(),
            required: demand,
            available: dram,
            secs: bu,
        });
    }
    let slowest = stages
        .iter()
        .max_by(|x, y| x.secs.total_cmp(&y.secs))
        .expect("compute is a stage");
    let bottleneck = if slowest.secs <= compute * (1.0 + 1e-9) {
        "compute".to_string()
    } else {
        format!("{} ({})", slowest.role, slowest.tier)
    };
    // The pipeline's fill, once: the first requests share the download with the others in
    // flight; a sample of several parts needs all of them.
    let share = source
        .per_request_bandwidth
        .unwrap_or(f64::INFINITY)
        .min(src / dep.max(1) as f64);
    let first = source.request_secs(0.0) + request.min(b) / share;
    total += first;
    if last.secs > compute * (1.0 + 1e-9) {
        total += a.step_time;
    }
    let compute_total = compute * d.epochs as f64;
    let utilization = compute_total / total;
    let io_wall = io_wall(s, source, compute, b);
    Some(PipelinePlan {
        node_demand: demand,
        cluster_demand: demand * nodes,
        request_size: request,
        random,
        depth: dep,
        node_epoch_bytes: b,
        compute_secs_per_epoch: compute,
        first_batch_secs: first,
        stages,
        bottleneck,
        steady_utilization: last.utilization,
        epochs,
        utilization,
        total_secs: total,
        samples_per_sec: utilization * demand * nodes / d.sample_size,
        node_bytes_per_sec: utilization * demand,
        io_wall,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(extra: &str) -> Scenario {
        let text = format!(
            r#"
            [dataset]
            size = "1 TB"
            sample_size = "114660 B"
            epochs = 4
            [accelerators]
            nodes = 1
            per_node = 8
            batch = 400
            step_time = "0.224 s"
            [[tier]]
            kind = "object"
            read_bandwidth = "10 Gbps"
            latency = "30 ms"
            per_request_bandwidth = "80 MB/s"
            [[tier]]
            kind = "nvme"
            read_bandwidth = "6 GB/s"
            write_bandwidth = "3 GB/s"
            iops = 800000
            capacity = "2 TB"
            {extra}
            "#
        );
        Scenario::from_toml(&text, "test").unwrap()
    }

    #[test]
    fn the_equation_by_hand() {
        let s = scenario("");
        let p = evaluate(&s).unwrap();
        // D = 8 × 400 × 114 660 / 0.224 = 1.638 GB/s.
        assert!((p.node_demand - 8.0 * 400.0 * 114_660.0 / 0.224).abs() < 1.0);
        // Epoch 0 is cold: 1.25 GB/s of link against 1.64 GB/s of demand.
        let e0 = &p.epochs[0];
        assert_eq!(e0.hit_ratio, 0.0);
        assert!(
            (e0.utilization - 1.25e9 / p.node_demand).abs() < 0.01,
            "{e0:?}"
        );
        // Later epochs come from the cache (it holds the whole dataset): compute-bound.
        assert!(p.epochs[1].hit_ratio > 0.99);
        assert!((p.steady_utilization - 1.0).abs() < 1e-9);
        assert_eq!(p.bottleneck, "compute");
        // Raw files shuffled: one 115 KB GET per sample, latency-bound at 64 in flight.
        assert!(p.io_wall.factor > 2.0, "{:?}", p.io_wall);
    }

    #[test]
    fn a_small_buffer_limits_the_requests_in_flight() {
        let s = scenario("[pipeline]\nbuffer = \"16 MiB\"\ncache = 0");
        let p = evaluate(&s).unwrap();
        assert_eq!(p.depth, 2);
        assert!(p.bottleneck.starts_with("source"), "{}", p.bottleneck);
        let wide = evaluate(&scenario("[pipeline]\ncache = 0")).unwrap();
        assert!(wide.utilization > p.utilization);
    }

    #[test]
    fn many_nodes_see_little_of_their_cache_early() {
        let mut s = scenario("");
        s.accelerators.as_mut().unwrap().nodes = 8;
        let p = evaluate(&s).unwrap();
        // Before epoch 1 a node has seen 1/8 of the dataset.
        assert!(
            (p.epochs[1].hit_ratio - 0.125).abs() < 1e-9,
            "{:?}",
            p.epochs
        );
    }

    /// The disk writes at 3 GB/s, the link brings 12 GB/s: the cache stores a quarter of
    /// its misses and passes the rest through, never slowing the first epoch, and later
    /// epochs hit what it stored.
    #[test]
    fn a_disk_slower_than_the_link_stores_what_it_can_and_slows_nothing() {
        let mut s =
            scenario("[pipeline]\ncache = \"1 TB\"\nconcurrency = 1024\nbuffer = \"64 GiB\"");
        let link = s.tier_mut(TierKind::Object).unwrap();
        link.read_bandwidth = 12e9;
        link.per_request_bandwidth = None;
        s.accelerators.as_mut().unwrap().per_node = 64; // 13 GB/s of demand
        let with = evaluate(&s).unwrap();
        let mut none = s.clone();
        none.pipeline.cache = 0.0;
        let without = evaluate(&none).unwrap();
        // The first epoch: as fast as without a cache.
        assert!(
            (with.epochs[0].secs - without.epochs[0].secs).abs() < 1e-6 * without.epochs[0].secs,
            "{:?} {:?}",
            with.epochs[0],
            without.epochs[0]
        );
        // Epoch 1 hits at most the quarter stored, and is faster for it.
        let src = source_rate(&s, s.source().unwrap(), 8.0 * 1048576.0, false);
        let q = 3e9 / src;
        assert!(q < 0.3, "{q}");
        assert!(with.epochs[1].hit_ratio <= q + 1e-9, "{:?}", with.epochs);
        assert!(with.epochs[1].hit_ratio > 0.0);
        assert!(with.epochs[1].secs < without.epochs[1].secs);
        assert!(with.utilization >= without.utilization);
    }

    /// cosmoflow's shape on the `s3` link: 2.8 MB samples, 8 MiB blocks, accelerators
    /// asking 1.5× the link, a window of 180 samples (509 MB, inside the prefetch horizon).
    /// Worked by hand: B = 60.69 blocks, S = 180 samples, k = 1.337, r = 20 blocks/s,
    /// d = 88.97 samples/s, so p* = 80.93, D(p*) = 50.49 blocks, T = 2.524 s + 1.114 s =
    /// 3.638 s a window; 4.218 windows: 3.218 × 3.034 s + 3.638 s = 13.40 s against 12.8 s
    /// flat. The default window (1,024 samples, 2.8 GB) is scattered: read by sample, no tail.
    #[test]
    fn a_window_inside_the_horizon_leaves_a_tail_and_a_wider_one_is_read_by_sample() {
        let link = 160.0 * 1048576.0;
        let step = 6.0 * 2828486.0 / (1.5 * link);
        let text = format!(
            "[dataset]\nsize = \"2 GiB\"\nsample_size = \"2828486 B\"\nlayout = \"shards\"\nshuffle = \"window\"\n\
             [accelerators]\nnodes = 1\nper_node = 6\nbatch = 1\nstep_time = \"{step} s\"\n\
             [[tier]]\nname = \"s3\"\nkind = \"object\"\nread_bandwidth = \"160 MiB/s\"\n\
             [pipeline]\nblock_size = \"8 MiB\"\nconcurrency = 32\nbuffer = \"64 GiB\"\n"
        );
        let mut s = Scenario::from_toml(&text, "t").unwrap();
        assert!(
            scattered(&s),
            "1,024 samples of 2.8 MB: wider than the horizon"
        );
        assert!(window_secs(&s, link).is_none());
        assert_eq!(access(&s), (2828486.0, true));
        s.dataset.as_mut().unwrap().window = 180;
        assert!(!scattered(&s));
        assert_eq!(access(&s), (8.0 * 1048576.0, false));
        let w = window_secs(&s, link).unwrap();
        assert!((w - 13.40).abs() / 13.40 < 0.01, "{w}");
        // Faster accelerators cannot beat it; a faster link shortens it.
        assert!(window_secs(&s, 2.0 * link).unwrap() < w);
        // Compute-bound (a tenth of the link): no tail, the samples' compute time.
        s.accelerators.as_mut().unwrap().step_time = step * 15.0;
        let c = window_secs(&s, link).unwrap();
        let compute = 2147483648.0 / s.accelerators.as_ref().unwrap().node_demand(2828486.0);
        assert!((c - compute).abs() / compute < 1e-9, "{c} {compute}");
        // In order, or one object per sample: not this model.
        s.dataset.as_mut().unwrap().shuffle = Shuffle::None;
        assert!(window_secs(&s, link).is_none());
    }
}
