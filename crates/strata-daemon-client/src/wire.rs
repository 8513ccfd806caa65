//! What the client and the daemon send each other as JSON, beside the objects' bytes.

use serde::{Deserialize, Serialize};

/// What a job reports to `POST /api/jobs/NAME`; every field optional. Seconds and bytes,
/// cumulative since the job started.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobReport {
    /// `train`, `inference`, `checkpoint` or anything else.
    #[serde(default)]
    pub kind: Option<String>,
    /// Seconds the job's consumers waited for data.
    #[serde(default)]
    pub wait_secs: Option<f64>,
    /// Seconds they computed.
    #[serde(default)]
    pub compute_secs: Option<f64>,
    /// Samples consumed.
    #[serde(default)]
    pub samples: Option<u64>,
    /// Bytes consumed.
    #[serde(default)]
    pub bytes: Option<u64>,
    /// Reads the job sent below its own memory (block or range GETs, to this daemon or to
    /// the store): a shuffled epoch over shards costs about one per block, never one per
    /// sample.
    #[serde(default)]
    pub requests: Option<u64>,
    /// Bytes those reads returned.
    #[serde(default)]
    pub bytes_read: Option<u64>,
    /// Checkpoint drain: bytes uploaded.
    #[serde(default)]
    pub drain_done: Option<u64>,
    /// Checkpoint drain: bytes to upload.
    #[serde(default)]
    pub drain_total: Option<u64>,
}

/// A job report whose numbers do not add up.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A time that is negative or not finite.
    #[error("{field}: {value} must be a finite number ≥ 0")]
    BadSeconds {
        /// `wait_secs` or `compute_secs`.
        field: &'static str,
        /// The value sent.
        value: f64,
    },
    /// More drained than there is to drain.
    #[error("drain_done {done} exceeds drain_total {total}")]
    DrainOverrun {
        /// Bytes uploaded.
        done: u64,
        /// Bytes to upload.
        total: u64,
    },
}

impl JobReport {
    /// Checks the numbers; the error names the field.
    pub fn validate(&self) -> Result<(), ReportError> {
        for (field, v) in [
            ("wait_secs", self.wait_secs),
            ("compute_secs", self.compute_secs),
        ] {
            if let Some(value) = v
                && !(value.is_finite() && value >= 0.0)
            {
                return Err(ReportError::BadSeconds { field, value });
            }
        }
        if let (Some(done), Some(total)) = (self.drain_done, self.drain_total)
            && done > total
        {
            return Err(ReportError::DrainOverrun { done, total });
        }
        Ok(())
    }
}

/// What a warm-up of the node's cache has done so far; the JSON of `/v1/warm`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WarmStatus {
    /// The warm-up's id, for `GET /v1/warm?id=N`.
    pub id: u64,
    /// What it warms: an object or a prefix.
    pub url: String,
    /// Objects named.
    pub objects: usize,
    /// Bytes of all the objects.
    pub total_bytes: u64,
    /// Bytes read through the cache so far.
    pub done_bytes: u64,
    /// Whether it has ended (done or failed).
    pub finished: bool,
    /// Why it failed, when it did (it stops at the first error).
    pub error: Option<String>,
    /// Bytes fetched from the store (the rest was cached already). Set when finished.
    pub fetched_bytes: u64,
    /// Blocks the NVMe tier declined to store (full, or below its free-space floor).
    pub not_cached_blocks: u64,
    /// Why the tier declined them.
    pub not_cached_reason: Option<String>,
    /// Bytes of the objects held in the daemon's DRAM tier when it finished.
    pub dram_bytes: u64,
    /// The DRAM tier's size (0: no DRAM tier).
    pub dram_capacity: u64,
    /// Seconds since it started.
    pub elapsed_secs: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_checked() {
        assert!(JobReport::default().validate().is_ok());
        let r = JobReport {
            wait_secs: Some(-1.0),
            ..Default::default()
        };
        assert_eq!(
            r.validate().unwrap_err().to_string(),
            "wait_secs: -1 must be a finite number ≥ 0"
        );
        let r = JobReport {
            drain_done: Some(3),
            drain_total: Some(2),
            ..Default::default()
        };
        assert!(r.validate().is_err());
    }
}
