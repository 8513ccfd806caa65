//! The link emulator: an HTTP/1.1 proxy on 127.0.0.1 in front of any server (the in-process
//! S3 server, Garage), shaping traffic like a network link to object storage.
//!
//! Per request it adds first-byte latency, answers 503 SlowDown when more than
//! `max_in_flight` requests are in flight, and injects 500/503 errors at a rate; per body it
//! paces bytes by a per-connection and a total token bucket (each direction), and can reset
//! the connection or stall partway through. Everything is set by a [`LinkProfile`], which can
//! be replaced while traffic flows. Named profiles: `s3`, `nfs`, `lustre`, `local`.
//!
//! It is a real proxy on real sockets (TCP_NODELAY on both sides), so clients see what they
//! would see across a network: their own connection pools, timeouts and retries are tested.
//! The `Host` header is forwarded unchanged, so SigV4 signatures made for the emulator's
//! address verify upstream.

mod body;
mod profile;
mod proxy;

pub use profile::LinkProfile;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use strata_store::token_bucket::TokenBucket;

use crate::runtime::Background;

/// Counters of what passed through the emulator.
#[derive(Debug, Default)]
pub struct Stats {
    requests: AtomicU64,
    bytes_down: AtomicU64,
    bytes_up: AtomicU64,
    injected_errors: AtomicU64,
    overload_rejections: AtomicU64,
    resets: AtomicU64,
    stalls: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    connections: AtomicU64,
}

/// A snapshot of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatsSnapshot {
    /// Requests received from clients.
    pub requests: u64,
    /// Response body bytes sent to clients.
    pub bytes_down: u64,
    /// Request body bytes forwarded upstream.
    pub bytes_up: u64,
    /// Injected 500/503 responses.
    pub injected_errors: u64,
    /// 503 SlowDown answers because too many requests were in flight.
    pub overload_rejections: u64,
    /// Bodies cut by an injected reset.
    pub resets: u64,
    /// Bodies stalled.
    pub stalls: u64,
    /// Requests in flight now (their response bodies not yet finished).
    pub in_flight: u64,
    /// The most requests in flight at once.
    pub peak_in_flight: u64,
    /// Client connections accepted.
    pub connections: u64,
}

impl Stats {
    fn add_bytes(&self, down: bool, n: u64) {
        if down {
            self.bytes_down.fetch_add(n, Ordering::Relaxed);
        } else {
            self.bytes_up.fetch_add(n, Ordering::Relaxed);
        }
    }
    fn add_reset(&self) {
        self.resets.fetch_add(1, Ordering::Relaxed);
    }
    fn add_stall(&self) {
        self.stalls.fetch_add(1, Ordering::Relaxed);
    }
    fn snapshot(&self) -> StatsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            requests: g(&self.requests),
            bytes_down: g(&self.bytes_down),
            bytes_up: g(&self.bytes_up),
            injected_errors: g(&self.injected_errors),
            overload_rejections: g(&self.overload_rejections),
            resets: g(&self.resets),
            stalls: g(&self.stalls),
            in_flight: g(&self.in_flight),
            peak_in_flight: g(&self.peak_in_flight),
            connections: g(&self.connections),
        }
    }
}

/// State shared by all connections of one emulator.
pub(crate) struct Shared {
    upstream: SocketAddr,
    profile: RwLock<LinkProfile>,
    total_down: Arc<TokenBucket>,
    total_up: Arc<TokenBucket>,
    stats: Arc<Stats>,
}

/// A running link emulator. Dropping it stops it.
pub struct LinkEmulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _bg: Background,
}

impl LinkEmulator {
    /// Starts an emulator on 127.0.0.1 at a free port, forwarding to `upstream`.
    pub fn start(upstream: SocketAddr, profile: LinkProfile) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            upstream,
            total_down: Arc::new(bucket_for(profile.total_bytes_per_sec)),
            total_up: Arc::new(bucket_for(profile.total_bytes_per_sec)),
            profile: RwLock::new(profile),
            stats: Arc::new(Stats::default()),
        });
        let s = shared.clone();
        let bg = Background::spawn("link-emu", 2, move || proxy::serve(listener, s));
        Self {
            addr,
            shared,
            _bg: bg,
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The profile in force.
    pub fn profile(&self) -> LinkProfile {
        self.shared
            .profile
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the profile. Requests already in flight keep their latency; bandwidth caps
    /// change at once for all bodies.
    pub fn set_profile(&self, profile: LinkProfile) {
        let rate = profile.total_bytes_per_sec;
        let (r, b) = rate_and_burst(rate);
        self.shared.total_down.set_rate(r, b);
        self.shared.total_up.set_rate(r, b);
        *self
            .shared
            .profile
            .write()
            .unwrap_or_else(|e| e.into_inner()) = profile;
    }

    /// What has passed so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// What has passed so far, with `peak_in_flight` counted since the previous call of this
    /// method (or the start): a benchmark reads the concurrency of each phase on its own.
    pub fn take_stats(&self) -> StatsSnapshot {
        let st = &self.shared.stats;
        let snap = st.snapshot();
        st.peak_in_flight
            .store(st.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
        snap
    }
}

/// A bucket for a cap; an uncapped link gets an effectively infinite rate.
pub(crate) fn bucket_for(rate: Option<u64>) -> TokenBucket {
    let (r, b) = rate_and_burst(rate);
    TokenBucket::new(r, b)
}

/// A burst of 1/50 s of the rate (at least 64 KiB) keeps caps tight over short windows.
fn rate_and_burst(rate: Option<u64>) -> (f64, f64) {
    match rate {
        Some(r) => (r as f64, (r as f64 / 50.0).max(65536.0)),
        None => (1e15, 1e15),
    }
}
