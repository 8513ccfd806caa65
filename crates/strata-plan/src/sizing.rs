//! The smallest balanced tiering: for each NVMe cache size, the download bandwidth and the
//! buffer that reach the target utilization, and the cheapest point on that frontier that the
//! node's link already allows.
//!
//! The download bandwidth is found by bisection on the source tier's per-node bandwidth
//! (a measured curve is scaled with it); the buffer is what Little's law asks for at that
//! bandwidth: `in flight = bandwidth × one request's time`, rounded up to whole requests.

use serde::Serialize;

use crate::pipeline;
use crate::scenario::{Scenario, TierKind};

/// One point of the frontier.
#[derive(Debug, Clone, Serialize)]
pub struct Tiering {
    /// NVMe cache per node, bytes.
    pub cache: f64,
    /// The cache as a fraction of the dataset.
    pub cache_fraction: f64,
    /// The smallest per-node download bandwidth that reaches the target; None when no
    /// bandwidth does (another stage is the wall).
    pub download: Option<f64>,
    /// DRAM the reads in flight need at that bandwidth, bytes.
    pub buffer: Option<f64>,
    /// Predicted utilization at that download bandwidth.
    pub utilization: Option<f64>,
}

/// The frontier and the pick.
#[derive(Debug, Clone, Serialize)]
pub struct Sizing {
    /// The utilization sized for.
    pub target: f64,
    /// One tiering per cache size tried.
    pub options: Vec<Tiering>,
    /// Index into `options` of the balanced tiering: the smallest cache whose download need
    /// fits the node's current link; else the one that needs the least download bandwidth.
    pub pick: Option<usize>,
    /// Why, in a sentence.
    pub reason: String,
}

/// Knobs the workbench's sliders move, applied to a copy of a scenario.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize)]
pub struct Knobs {
    /// Per-node download bandwidth, bytes/s.
    pub download: Option<f64>,
    /// NVMe read bandwidth, bytes/s.
    pub nvme_bandwidth: Option<f64>,
    /// Prefetch buffer, bytes.
    pub buffer: Option<f64>,
    /// NVMe cache, bytes.
    pub cache: Option<f64>,
}

impl Knobs {
    /// A copy of `s` with the knobs applied.
    pub fn apply(&self, s: &Scenario) -> Scenario {
        let mut s = s.clone();
        if let Some(bw) = self.download
            && let Some(src) = s.source_mut()
        {
            let k = bw / src.read_bandwidth;
            src.read_bandwidth = bw;
            if let Some(p) = src.per_request_bandwidth.as_mut() {
                *p = p.min(bw);
            }
            if let Some(c) = src.curve.as_mut() {
                for p in c.points.iter_mut().filter(|p| p.op == "read") {
                    p.bytes_per_sec *= k;
                    p.iops *= k;
                }
            }
            // The shared limit is the fleet's; a faster node link does not lift it.
        }
        if let Some(bw) = self.nvme_bandwidth
            && let Some(t) = s.tier_mut(TierKind::Nvme)
        {
            let k = bw / t.read_bandwidth;
            t.read_bandwidth = bw;
            if let Some(c) = t.curve.as_mut() {
                for p in c.points.iter_mut().filter(|p| p.op == "read") {
                    p.bytes_per_sec *= k;
                    p.iops *= k;
                }
            }
        }
        if let Some(b) = self.buffer {
            s.pipeline.buffer = b.max(1.0);
        }
        if let Some(c) = self.cache {
            let cap = s.tier(TierKind::Nvme).and_then(|t| t.capacity).unwrap_or(
                if s.tier(TierKind::Nvme).is_some() {
                    f64::INFINITY
                } else {
                    0.0
                },
            );
            s.pipeline.cache = c.clamp(0.0, cap);
        }
        s
    }
}

/// The utilization of `s` with the knobs applied.
pub fn utilization(s: &Scenario, k: Knobs) -> f64 {
    pipeline::evaluate(&k.apply(s)).map_or(0.0, |p| p.utilization)
}

/// Finds the frontier; None without a data pipeline.
pub fn size(s: &Scenario) -> Option<Sizing> {
    let d = s.dataset.as_ref()?;
    let target = s.accelerators.as_ref()?.target;
    let source = s.source()?;
    let nvme_cap = s
        .tier(TierKind::Nvme)
        .map(|t| t.capacity.unwrap_or(d.size).min(d.size));
    let caches: Vec<f64> = match nvme_cap {
        None => vec![0.0],
        Some(cap) => (0..=8).map(|i| cap * i as f64 / 8.0).collect(),
    };
    let (request, _) = pipeline::access(s);
    let one = source.request_secs(request);
    let mut options = Vec::new();
    for &cache in &caches {
        // Unlimited buffer while searching the bandwidth; then the buffer it needs.
        let at = |bw: f64| {
            utilization(
                s,
                Knobs {
                    download: Some(bw),
                    cache: Some(cache),
                    buffer: Some(f64::MAX / 4.0),
                    ..Default::default()
                },
            )
        };
        let (mut lo, mut hi) = (1e3, 1e14);
        let download = if at(hi) < target {
            None
        } else {
            for _ in 0..80 {
                let mid = (lo * hi).sqrt();
                if at(mid) >= target {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            Some(hi)
        };
        let buffer = download.map(|bw| ((bw * one / request).ceil().max(1.0)) * request);
        let utilization = download.map(|bw| {
            utilization(
                s,
                Knobs {
                    download: Some(bw),
                    cache: Some(cache),
                    buffer,
                    ..Default::default()
                },
            )
        });
        options.push(Tiering {
            cache,
            cache_fraction: cache / d.size,
            download,
            buffer,
            utilization,
        });
    }
    let link = source.read_bandwidth;
    let fits = options
        .iter()
        .position(|o| o.download.is_some_and(|bw| bw <= link * (1.0 + 1e-9)));
    let (pick, reason) = match fits {
        Some(i) => (
            Some(i),
            format!(
                "the smallest cache ({}) with which the node's link of {} keeps the accelerators ≥ {:.0}% busy",
                crate::units::bytes(options[i].cache),
                crate::units::rate(link),
                target * 100.0
            ),
        ),
        None => {
            let best = options
                .iter()
                .enumerate()
                .filter_map(|(i, o)| o.download.map(|bw| (i, bw)))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            match best {
                Some((i, bw)) => (
                    Some(i),
                    format!(
                        "no cache size is enough on a link of {}: the link must reach {} (with {} of cache)",
                        crate::units::rate(link),
                        crate::units::rate(bw),
                        crate::units::bytes(options[i].cache)
                    ),
                ),
                None => (
                    None,
                    "no download bandwidth reaches the target: the NVMe tier or the buffer is the wall".into(),
                ),
            }
        }
    };
    Some(Sizing {
        target,
        options,
        pick,
        reason,
    })
}
