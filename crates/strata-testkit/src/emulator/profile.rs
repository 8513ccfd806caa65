//! Link profiles: what the emulator does to traffic. All fields can be changed at run time
//! with [`super::LinkEmulator::set_profile`].

use std::time::Duration;

/// The shape of the link and the faults on it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LinkProfile {
    /// A name for reports.
    pub name: String,
    /// Added before each request is forwarded: the time to first byte of the response.
    pub first_byte_latency: Duration,
    /// Each request's latency is `first_byte_latency` plus a uniform random part up to this.
    pub latency_jitter: Duration,
    /// Bandwidth cap per client connection, bytes/s, each direction. None: uncapped.
    pub per_conn_bytes_per_sec: Option<u64>,
    /// Bandwidth cap for all connections together, bytes/s, each direction. None: uncapped.
    pub total_bytes_per_sec: Option<u64>,
    /// When more than this many requests are in flight, new ones get 503 SlowDown.
    pub max_in_flight: Option<usize>,
    /// Fraction of requests answered with an injected 500 InternalError or 503 SlowDown
    /// (half each) instead of being forwarded.
    pub error_rate: f64,
    /// Fraction of responses whose connection is reset partway through the body.
    pub reset_rate: f64,
    /// Fraction of responses that stall partway through the body for [`Self::stall`].
    pub stall_rate: f64,
    /// How long a stall lasts.
    pub stall: Duration,
}

const MIB: u64 = 1 << 20;

impl LinkProfile {
    /// The total bandwidth cap in MiB/s (infinite without one): the limit benchmarks
    /// compare against.
    pub fn cap_mib_per_sec(&self) -> f64 {
        self.total_bytes_per_sec
            .map_or(f64::INFINITY, |c| c as f64 / (1 << 20) as f64)
    }

    /// A transparent link: no latency, no caps, no faults.
    pub fn local() -> Self {
        Self {
            name: "local".into(),
            first_byte_latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            per_conn_bytes_per_sec: None,
            total_bytes_per_sec: None,
            max_in_flight: None,
            error_rate: 0.0,
            reset_rate: 0.0,
            stall_rate: 0.0,
            stall: Duration::from_secs(5),
        }
    }

    /// Object storage across a network: 30 ms (+0–10 ms) to first byte, 10 MiB/s per
    /// connection, 160 MiB/s in total. The per-connection cap is 1/16 of the total, as on S3,
    /// where one stream gets a small share of what many parallel ranged GETs get. The total
    /// sits well below what a 2-core machine moves through the in-process server on loopback
    /// (about 260 MiB/s in a dev build), so the link, not the machine, is the bottleneck.
    pub fn s3() -> Self {
        Self {
            name: "s3".into(),
            first_byte_latency: Duration::from_millis(30),
            latency_jitter: Duration::from_millis(10),
            per_conn_bytes_per_sec: Some(10 * MIB),
            total_bytes_per_sec: Some(160 * MIB),
            max_in_flight: Some(512),
            ..Self::local()
        }
    }

    /// An NFS-style file store: 1 ms to first byte, 100 MiB/s per connection, 400 MiB/s total.
    pub fn nfs() -> Self {
        Self {
            name: "nfs".into(),
            first_byte_latency: Duration::from_millis(1),
            latency_jitter: Duration::from_micros(500),
            per_conn_bytes_per_sec: Some(100 * MIB),
            total_bytes_per_sec: Some(400 * MIB),
            ..Self::local()
        }
    }

    /// A parallel file system (Lustre-style): 0.5 ms to first byte, 400 MiB/s per connection,
    /// 1.5 GiB/s total.
    pub fn lustre() -> Self {
        Self {
            name: "lustre".into(),
            first_byte_latency: Duration::from_micros(500),
            latency_jitter: Duration::from_micros(200),
            per_conn_bytes_per_sec: Some(400 * MIB),
            total_bytes_per_sec: Some(1536 * MIB),
            ..Self::local()
        }
    }

    /// A profile by name: `s3`, `nfs`, `lustre` or `local`.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "s3" => Some(Self::s3()),
            "nfs" => Some(Self::nfs()),
            "lustre" => Some(Self::lustre()),
            "local" => Some(Self::local()),
            _ => None,
        }
    }

    /// The same profile with faults: `error_rate` of requests fail with 500/503 and
    /// `reset_rate` of responses are cut by a connection reset.
    pub fn with_faults(mut self, error_rate: f64, reset_rate: f64) -> Self {
        self.error_rate = error_rate;
        self.reset_rate = reset_rate;
        self
    }
}
