//! `/metrics` in Prometheus text format.
//!
//! The daemon installs a Prometheus recorder for the `metrics` facade, so what the store
//! layer and the cache already count (requests, retries, fetches, fetch latency) appears
//! beside the daemon's own series. At each scrape the cache's tier counters are copied in.
//!
//! | series | type | labels |
//! |---|---|---|
//! | `strata_daemon_requests_total` | counter | `route`, `status` |
//! | `strata_daemon_request_seconds` | histogram | `route` |
//! | `strata_daemon_response_bytes_total` | counter | `route` |
//! | `strata_daemon_errors_total` | counter | `kind` |
//! | `strata_tier_hits_total`, `strata_tier_misses_total`, `strata_tier_read_bytes_total`, `strata_tier_written_bytes_total`, `strata_tier_evictions_total` | counter | `tier` (`dram`, `nvme`) |
//! | `strata_tier_hit_ratio` | gauge | `tier` |
//! | `strata_tier_used_bytes`, `strata_tier_capacity_bytes` | gauge | `tier` |
//! | `strata_upstream_fetched_bytes_total` | counter | |
//! | `strata_prefetch_queue` | gauge | (client prefetch reads in flight) |
//! | `strata_response_memory_bytes` | gauge | |
//! | `strata_warmups_running` | gauge | (`strata warm --daemon` hydrations in progress) |
//! | `strata_ckpt_drain_done_bytes`, `strata_ckpt_drain_total_bytes` | gauge | `job` |
//! | `strata_job_wait_seconds`, `strata_job_compute_seconds` | gauge | `job` |

use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::node::Node;

/// Latency buckets, seconds: 100 µs to 30 s.
const BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder (once per process). None if another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            // Old histogram samples are dropped so the recorder's memory stays bounded.
            let h = handle.clone();
            std::thread::Builder::new()
                .name("strata-metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        h.run_upkeep();
                    }
                })
                .ok()?;
            Some(handle)
        })
        .as_ref()
}

/// Records one finished request.
pub fn request(route: &'static str, status: u16, secs: f64) {
    metrics::counter!("strata_daemon_requests_total", "route" => route, "status" => status.to_string())
        .increment(1);
    metrics::histogram!("strata_daemon_request_seconds", "route" => route).record(secs);
}

/// Records an error by kind.
pub fn error(kind: &'static str) {
    metrics::counter!("strata_daemon_errors_total", "kind" => kind).increment(1);
}

/// The text of a scrape.
pub fn render(node: &Node) -> String {
    let s = node.cache.stats();
    let tiers = [
        (
            "dram",
            s.dram,
            node.cache.dram().map(|d| (d.usage().0, d.capacity())),
        ),
        (
            "nvme",
            s.nvme,
            node.cache.nvme().map(|n| (n.usage().0, n.capacity())),
        ),
    ];
    for (tier, snap, usage) in tiers {
        let Some(t) = snap else { continue };
        metrics::counter!("strata_tier_hits_total", "tier" => tier).absolute(t.hits);
        metrics::counter!("strata_tier_misses_total", "tier" => tier).absolute(t.misses);
        metrics::counter!("strata_tier_read_bytes_total", "tier" => tier).absolute(t.bytes_read);
        metrics::counter!("strata_tier_written_bytes_total", "tier" => tier)
            .absolute(t.bytes_written);
        metrics::counter!("strata_tier_evictions_total", "tier" => tier).absolute(t.evictions);
        let lookups = t.hits + t.misses;
        metrics::gauge!("strata_tier_hit_ratio", "tier" => tier).set(if lookups == 0 {
            0.0
        } else {
            t.hits as f64 / lookups as f64
        });
        if let Some((used, cap)) = usage {
            metrics::gauge!("strata_tier_used_bytes", "tier" => tier).set(used as f64);
            metrics::gauge!("strata_tier_capacity_bytes", "tier" => tier).set(cap as f64);
        }
    }
    metrics::counter!("strata_upstream_fetched_bytes_total").absolute(s.fetched_bytes);
    metrics::gauge!("strata_prefetch_queue")
        .set(node.prefetch_in_flight.load(Ordering::Relaxed) as f64);
    metrics::gauge!("strata_warmups_running").set(node.warmups.running() as f64);
    let (used, _) = node.response_blocks();
    metrics::gauge!("strata_response_memory_bytes")
        .set((used as u64 * node.cache.geometry().block_size) as f64);
    for (name, _, r) in node.jobs.list() {
        if let (Some(d), Some(t)) = (r.drain_done, r.drain_total) {
            metrics::gauge!("strata_ckpt_drain_done_bytes", "job" => name.clone()).set(d as f64);
            metrics::gauge!("strata_ckpt_drain_total_bytes", "job" => name.clone()).set(t as f64);
        }
        if let Some(w) = r.wait_secs {
            metrics::gauge!("strata_job_wait_seconds", "job" => name.clone()).set(w);
        }
        if let Some(c) = r.compute_secs {
            metrics::gauge!("strata_job_compute_seconds", "job" => name.clone()).set(c);
        }
        if let Some(n) = r.requests {
            metrics::gauge!("strata_job_requests", "job" => name.clone()).set(n as f64);
        }
        if let Some(b) = r.bytes_read {
            metrics::gauge!("strata_job_read_bytes", "job" => name.clone()).set(b as f64);
        }
    }
    install()
        .map(|h| h.render())
        .unwrap_or_else(|| "# another metrics recorder is installed in this process\n".to_string())
}
