//! How fast a tier serves requests of a given size with a given number in flight.
//!
//! Two models, the measured one winning when it exists:
//!
//! - **Parametric**, from a scenario's figures. One request takes `latency + size /
//!   per_request_bandwidth`; with `depth` in flight (Little's law) a node gets
//!   `depth × size / that`, at most the tier's bandwidth. Random requests on a device also pay
//!   its IOPS: one costs `1/iops + size/bandwidth` of device time. An object store serves at
//!   most `request_rate` requests per second.
//! - **Measured** ([`Curve`]), from `strata probe` (`strata plan --calibrate probe.json`):
//!   the best throughput measured at that pattern with at most `depth` in flight, linear in
//!   log(size) between the sizes measured; below the smallest size it scales with the size
//!   (a fixed request rate), above the largest it stays.
//!
//! Both are non-decreasing in `depth` and in every bandwidth, which the planner's
//! monotonicity properties rest on.

use serde::{Deserialize, Serialize};

use crate::scenario::{Tier, TierKind};

/// One measured point of a probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// `read` or `write`.
    pub op: String,
    /// Random offsets (devices) or not. Object-store points are `false`.
    pub random: bool,
    /// Request size, bytes.
    pub block: u64,
    /// Requests in flight.
    pub depth: u32,
    /// Bytes per second.
    pub bytes_per_sec: f64,
    /// Requests per second.
    pub iops: f64,
    /// Latency percentiles of one request, seconds.
    pub p50: f64,
    /// 95th percentile latency, seconds.
    pub p95: f64,
    /// 99th percentile latency, seconds.
    pub p99: f64,
}

/// Measured figures of one tier.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Curve {
    /// The measured points.
    pub points: Vec<CurvePoint>,
}

impl Curve {
    /// Bytes/s for `op` requests of `size` bytes with up to `depth` in flight; None when no
    /// point of that op was measured.
    pub fn throughput(&self, op: &str, size: f64, depth: u32, random: bool) -> Option<f64> {
        let of_op: Vec<&CurvePoint> = self.points.iter().filter(|p| p.op == op).collect();
        // Prefer the pattern asked for; an object store measures one pattern only.
        let same: Vec<&CurvePoint> = of_op
            .iter()
            .copied()
            .filter(|p| p.random == random)
            .collect();
        let pts = if same.is_empty() { of_op } else { same };
        if pts.is_empty() {
            return None;
        }
        let mut sizes: Vec<u64> = pts.iter().map(|p| p.block).collect();
        sizes.sort_unstable();
        sizes.dedup();
        // The best at each measured size with at most `depth` in flight (fewer can always be
        // used); when every measured depth is deeper, the shallowest scaled down.
        let at = |block: u64| -> f64 {
            let here: Vec<&&CurvePoint> = pts.iter().filter(|p| p.block == block).collect();
            let within = here
                .iter()
                .filter(|p| p.depth <= depth)
                .map(|p| p.bytes_per_sec)
                .fold(f64::NAN, f64::max);
            if within.is_finite() {
                return within;
            }
            let shallow = here.iter().min_by_key(|p| p.depth).expect("non-empty");
            shallow.bytes_per_sec * depth as f64 / shallow.depth.max(1) as f64
        };
        let first = sizes[0] as f64;
        let last = *sizes.last().expect("non-empty") as f64;
        if size <= first {
            return Some(at(sizes[0]) * size / first);
        }
        if size >= last {
            return Some(at(sizes[sizes.len() - 1]));
        }
        let hi = sizes
            .iter()
            .position(|&s| s as f64 >= size)
            .expect("inside");
        let (s0, s1) = (sizes[hi - 1] as f64, sizes[hi] as f64);
        let w = (size.ln() - s0.ln()) / (s1.ln() - s0.ln());
        Some(at(sizes[hi - 1]) * (1.0 - w) + at(sizes[hi]) * w)
    }

    /// Median latency of the shallowest reads of the smallest size measured, seconds.
    pub fn latency(&self) -> Option<f64> {
        self.points
            .iter()
            .filter(|p| p.op == "read")
            .min_by(|a, b| (a.block, a.depth).cmp(&(b.block, b.depth)))
            .map(|p| p.p50)
    }
}

impl Tier {
    fn model(&self, op: &str, size: f64, depth: u32, random: bool) -> f64 {
        let bw = if op == "read" {
            self.read_bandwidth
        } else {
            self.write_bandwidth
        };
        if let Some(v) = self
            .curve
            .as_ref()
            .and_then(|c| c.throughput(op, size, depth, random))
        {
            return v.max(0.0);
        }
        let per_request = self.per_request_bandwidth.unwrap_or(bw).min(bw);
        let one = self.latency + size / per_request;
        let mut v = (depth.max(1) as f64 * size / one).min(bw);
        if random
            && matches!(self.kind, TierKind::Nvme | TierKind::File)
            && let Some(iops) = self.iops
        {
            v = v.min(size / (1.0 / iops + size / bw));
        }
        if let Some(rate) = self.request_rate {
            v = v.min(rate * size);
        }
        v
    }

    /// Bytes/s one node reads in requests of `size` bytes, `depth` in flight.
    pub fn read_throughput(&self, size: f64, depth: u32, random: bool) -> f64 {
        self.model("read", size, depth, random)
    }

    /// Bytes/s one node writes in requests of `size` bytes, `depth` in flight.
    pub fn write_throughput(&self, size: f64, depth: u32, random: bool) -> f64 {
        self.model("write", size, depth, random)
    }

    /// Seconds one request of `size` bytes takes (latency plus streaming).
    pub fn request_secs(&self, size: f64) -> f64 {
        let lat = self
            .curve
            .as_ref()
            .and_then(|c| c.latency())
            .unwrap_or(self.latency);
        lat + size / self.per_request_bandwidth.unwrap_or(self.read_bandwidth)
    }

    /// Replaces this tier's figures with a probe's: the measured curve, and the sequential
    /// bandwidth, latency and IOPS read from it.
    pub fn calibrate(&mut self, curve: Curve) {
        let best = |op: &str, random: Option<bool>| {
            curve
                .points
                .iter()
                .filter(|p| p.op == op && random.is_none_or(|r| p.random == r))
                .map(|p| p.bytes_per_sec)
                .fold(0.0, f64::max)
        };
        // The sequential figure is the tier's bandwidth (random points, which may measure
        // more on a cached device, stay in the curve).
        let seq_or_any = |op: &str| match best(op, Some(false)) {
            v if v > 0.0 => v,
            _ => best(op, None),
        };
        let r = seq_or_any("read");
        if r > 0.0 {
            self.read_bandwidth = r;
        }
        let w = seq_or_any("write");
        if w > 0.0 {
            self.write_bandwidth = w;
        }
        if let Some(l) = curve.latency() {
            self.latency = l;
        }
        let iops = curve
            .points
            .iter()
            .filter(|p| p.op == "read" && p.random && p.block <= 4096)
            .map(|p| p.iops)
            .fold(0.0, f64::max);
        if iops > 0.0 {
            self.iops = Some(iops);
        }
        self.curve = Some(curve);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nvme() -> Tier {
        Tier {
            name: "nvme".into(),
            kind: TierKind::Nvme,
            read_bandwidth: 2e9,
            write_bandwidth: 1e9,
            shared_read_bandwidth: None,
            shared_write_bandwidth: None,
            latency: 100e-6,
            per_request_bandwidth: None,
            iops: Some(100_000.0),
            request_rate: None,
            capacity: None,
            price_class: None,
            curve: None,
        }
    }

    #[test]
    fn random_small_reads_hit_the_iops_wall() {
        let t = nvme();
        let seq = t.read_throughput(8e6, 32, false);
        let rnd = t.read_throughput(4096.0, 32, true);
        assert!((seq - 2e9).abs() < 1.0, "{seq}");
        // 100k IOPS × 4 KiB ≈ 400 MB/s at most.
        assert!(rnd < 4.1e8 && rnd > 3e8, "{rnd}");
        // One in flight: latency-bound.
        let qd1 = t.read_throughput(4096.0, 1, true);
        assert!(qd1 < 4096.0 / 100e-6 + 1.0, "{qd1}");
    }

    #[test]
    fn a_curve_interpolates_and_never_drops_with_depth() {
        let p = |block, depth, bps| CurvePoint {
            op: "read".into(),
            random: true,
            block,
            depth,
            bytes_per_sec: bps,
            iops: bps / block as f64,
            p50: 1e-4,
            p95: 2e-4,
            p99: 3e-4,
        };
        let c = Curve {
            points: vec![
                p(4096, 1, 40e6),
                p(4096, 32, 240e6),
                p(1 << 20, 1, 500e6),
                p(1 << 20, 32, 900e6),
                // A noisy deeper point that measured less must not lower the curve.
                p(1 << 20, 64, 850e6),
            ],
        };
        assert_eq!(c.throughput("read", 4096.0, 32, true), Some(240e6));
        assert_eq!(c.throughput("read", 4096.0, 64, true), Some(240e6));
        assert_eq!(
            c.throughput("read", (1 << 20) as f64, 64, true),
            Some(900e6)
        );
        let mid = c.throughput("read", 65536.0, 32, true).unwrap();
        assert!(mid > 240e6 && mid < 900e6, "{mid}");
        assert_eq!(c.throughput("read", 2048.0, 32, true), Some(120e6));
        assert_eq!(c.throughput("write", 4096.0, 1, true), None);
        let mut t = nvme();
        t.calibrate(c);
        // Only random points were measured: the best of them.
        assert_eq!(t.read_bandwidth, 900e6);
        assert_eq!(t.iops, Some(240e6 / 4096.0));
    }
}
