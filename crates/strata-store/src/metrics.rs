//! Metric names and recording helpers, through the `metrics` facade. Whatever recorder the
//! application installs (the daemon's Prometheus exporter, a test's debugging recorder)
//! receives them; with none installed they cost almost nothing.
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `strata_store_requests_total` | counter | `op` | requests attempted (retries included) |
//! | `strata_store_request_seconds` | histogram | `op` | duration of each attempt, seconds |
//! | `strata_store_retries_total` | counter | `op`, `kind` | attempts that were retried |
//! | `strata_store_errors_total` | counter | `op`, `kind` | failed attempts, by error class |
//! | `strata_store_bytes_total` | counter | `direction` (`read`/`written`) | payload bytes |

use std::time::Duration;

use crate::error::ErrorKind;

/// Counter: requests sent, every attempt (label `op`).
pub const REQUESTS: &str = "strata_store_requests_total";
/// Histogram: seconds per request (label `op`).
pub const REQUEST_SECONDS: &str = "strata_store_request_seconds";
/// Counter: retries (labels `op`, `kind`).
pub const RETRIES: &str = "strata_store_retries_total";
/// Counter: failed attempts (labels `op`, `kind`).
pub const ERRORS: &str = "strata_store_errors_total";
/// Counter: bytes moved (label `direction`: `read` or `written`).
pub const BYTES: &str = "strata_store_bytes_total";

pub(crate) fn record_request(op: &'static str, took: Duration) {
    metrics::counter!(REQUESTS, "op" => op).increment(1);
    metrics::histogram!(REQUEST_SECONDS, "op" => op).record(took.as_secs_f64());
}

pub(crate) fn record_error(op: &'static str, kind: ErrorKind) {
    metrics::counter!(ERRORS, "op" => op, "kind" => kind.label()).increment(1);
}

pub(crate) fn record_retry(op: &'static str, kind: ErrorKind) {
    metrics::counter!(RETRIES, "op" => op, "kind" => kind.label()).increment(1);
}

pub(crate) fn record_bytes_read(n: u64) {
    metrics::counter!(BYTES, "direction" => "read").increment(n);
}

pub(crate) fn record_bytes_written(n: u64) {
    metrics::counter!(BYTES, "direction" => "written").increment(n);
}
