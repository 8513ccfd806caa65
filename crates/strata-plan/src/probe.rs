//! `strata probe`: measure a tier.
//!
//! - [`device`]: a file system path. Sequential and random reads and writes over block sizes
//!   (4 KiB to 16 MiB) and queue depths (1 to 64, one thread per request in flight), with
//!   O_DIRECT where the file system allows it (else buffered, with the page cache dropped for
//!   the file before each point, and the report says so).
//! - [`object`]: an object store URL. PUT, then GET latency (to first byte) and throughput
//!   against object size and concurrency, on objects the probe writes under a prefix of its
//!   own and deletes afterwards.
//!
//! Both give a [`ProbeReport`]: points (the IOPS-versus-throughput curve with latency
//! percentiles), the sequential/random ratio, as a table, JSON, and an SVG plot. The JSON is
//! what `strata plan --calibrate` reads.

pub mod device;
pub mod object;

use crate::error::PlanError;
use serde::{Deserialize, Serialize};

use crate::tier::{Curve, CurvePoint};
use crate::units;

/// What was probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// A directory on a device.
    Device,
    /// An object store prefix.
    Object,
}

/// A probe's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeReport {
    /// The path or URL probed (credentials never appear: URLs carry none).
    pub target: String,
    /// Device or object store.
    pub kind: ProbeKind,
    /// When it ran (UTC).
    pub date: String,
    /// Whether reads and writes bypassed the page cache (O_DIRECT).
    pub direct: bool,
    /// Bytes of the test file (device) or of the test objects together (object).
    pub bytes: u64,
    /// Seconds it took.
    pub secs: f64,
    /// Every measured point.
    pub points: Vec<CurvePoint>,
    /// Best sequential (device) or large-object (object) read, bytes/s.
    pub sequential_read: f64,
    /// Best random read of the smallest block (device) or smallest object, bytes/s.
    pub random_read: f64,
    /// Best sequential read over random reads of the smallest block, one request at a time:
    /// the I/O wall a naive loader meets.
    pub sequential_over_random: f64,
    /// The same with the deepest queue measured (what parallel reads recover).
    #[serde(default)]
    pub sequential_over_random_deep: f64,
    /// What the probe could not do as asked (no O_DIRECT, a small disk).
    pub notes: Vec<String>,
}

impl ProbeReport {
    /// The measured curve, for a tier's [`crate::tier::Tier::calibrate`].
    pub fn curve(&self) -> Curve {
        Curve {
            points: self.points.clone(),
        }
    }

    /// Reads a report written by `strata probe --json`.
    pub fn from_json(text: &str, origin: &str) -> Result<Self, PlanError> {
        let r: ProbeReport = serde_json::from_str(text).map_err(|e| {
            PlanError::Invalid(format!(
                "{origin}: not a probe report ({e}); make one with `strata probe PATH --json`"
            ))
        })?;
        if r.points.is_empty() {
            return Err(PlanError::Invalid(format!(
                "{origin}: the probe report has no points"
            )));
        }
        for (i, p) in r.points.iter().enumerate() {
            if !(p.bytes_per_sec.is_finite() && p.bytes_per_sec >= 0.0)
                || p.block == 0
                || p.depth == 0
            {
                return Err(PlanError::Invalid(format!(
                    "{origin}: point {i} is out of range ({p:?})"
                )));
            }
        }
        Ok(r)
    }

    /// A report of measured `points`, with its summary figures computed.
    pub fn new(
        target: String,
        kind: ProbeKind,
        direct: bool,
        bytes: u64,
        secs: f64,
        points: Vec<CurvePoint>,
        notes: Vec<String>,
    ) -> Self {
        let mut r = ProbeReport {
            target,
            kind,
            date: now(),
            direct,
            bytes,
            secs,
            points,
            sequential_read: 0.0,
            random_read: 0.0,
            sequential_over_random: 0.0,
            sequential_over_random_deep: 0.0,
            notes,
        };
        r.summarize();
        r
    }

    fn summarize(&mut self) {
        let best = |f: &dyn Fn(&CurvePoint) -> bool| {
            self.points
                .iter()
                .filter(|p| f(p))
                .map(|p| p.bytes_per_sec)
                .fold(0.0, f64::max)
        };
        let smallest = self
            .points
            .iter()
            .filter(|p| p.op == "read")
            .map(|p| p.block)
            .min()
            .unwrap_or(0);
        let shallow = self.points.iter().map(|p| p.depth).min().unwrap_or(1);
        let random = |p: &CurvePoint| p.random || self.kind == ProbeKind::Object;
        let seq = best(&|p| p.op == "read" && (!p.random || self.kind == ProbeKind::Object));
        let rnd = best(&|p| p.op == "read" && random(p) && p.block == smallest);
        let rnd1 =
            best(&|p| p.op == "read" && random(p) && p.block == smallest && p.depth == shallow);
        let ratio = |r: f64| if r > 0.0 { seq / r } else { f64::INFINITY };
        self.sequential_read = seq;
        self.random_read = rnd;
        self.sequential_over_random = ratio(rnd1);
        self.sequential_over_random_deep = ratio(rnd);
    }

    /// A table for people.
    pub fn to_table(&self) -> String {
        use std::fmt::Write as _;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "strata probe {}  {}  ({:?}{}, {} in {:.1} s)",
            self.target,
            self.date,
            self.kind,
            if self.kind == ProbeKind::Device {
                if self.direct {
                    ", O_DIRECT"
                } else {
                    ", buffered"
                }
            } else {
                ""
            },
            units::bytes(self.bytes as f64),
            self.secs
        );
        let _ = writeln!(
            o,
            "{:<6} {:<6} {:>9} {:>5} {:>12} {:>11} {:>10} {:>10} {:>10}",
            "op", "order", "block", "depth", "MB/s", "IOPS", "p50", "p95", "p99"
        );
        for p in &self.points {
            let _ = writeln!(
                o,
                "{:<6} {:<6} {:>9} {:>5} {:>12.1} {:>11.0} {:>10} {:>10} {:>10}",
                p.op,
                match (self.kind, p.random) {
                    (ProbeKind::Object, _) => "object",
                    (_, true) => "random",
                    (_, false) => "seq",
                },
                strata_units::format_size(p.block),
                p.depth,
                p.bytes_per_sec / 1e6,
                p.iops,
                units::secs(p.p50),
                units::secs(p.p95),
                units::secs(p.p99)
            );
        }
        let _ = writeln!(
            o,
            "sequential read {}; random reads of the smallest block: sequential/random = {:.1}× one at a time, {:.1}× with the deepest queue ({})",
            units::rate(self.sequential_read),
            self.sequential_over_random,
            self.sequential_over_random_deep,
            units::rate(self.random_read)
        );
        if self.kind == ProbeKind::Device && self.direct {
            let _ = writeln!(
                o,
                "note: writes are O_DIRECT with an fdatasync per point; on a virtual machine the host may still cache them"
            );
        }
        for n in &self.notes {
            let _ = writeln!(o, "note: {n}");
        }
        o
    }

    /// The IOPS-versus-throughput plot.
    pub fn svg(&self) -> String {
        crate::plots::iops_vs_throughput(self)
    }
}

/// Latency percentiles of a sample of request times, seconds: (p50, p95, p99).
pub(crate) fn percentiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.95), at(0.99))
}

pub(crate) fn now() -> String {
    // UTC without a date crate: seconds since the epoch to a civil date (Howard Hinnant).
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}
