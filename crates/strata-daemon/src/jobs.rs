//! Jobs on the node report what the daemon cannot see for itself: how long their
//! accelerators computed and how long they waited for data (the I/O waterfall), and how far a
//! checkpoint drain has come. The Python package reports when connected to the daemon;
//! anything else can `POST /api/jobs/NAME` the same JSON.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A report is shown for this long after it arrived.
pub const JOB_TTL: Duration = Duration::from_secs(60);

/// What a job reports; every field optional. Seconds and bytes, cumulative since the job
/// started.
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
    #[serde(default)]
    pub samples: Option<u64>,
    #[serde(default)]
    pub bytes: Option<u64>,
    /// Checkpoint drain: bytes uploaded and bytes to upload.
    #[serde(default)]
    pub drain_done: Option<u64>,
    #[serde(default)]
    pub drain_total: Option<u64>,
}

impl JobReport {
    /// Checks the numbers; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("wait_secs", self.wait_secs),
            ("compute_secs", self.compute_secs),
        ] {
            if let Some(v) = v
                && !(v.is_finite() && v >= 0.0)
            {
                return Err(format!("{name}: {v} must be a finite number ≥ 0"));
            }
        }
        if let (Some(d), Some(t)) = (self.drain_done, self.drain_total)
            && d > t
        {
            return Err(format!("drain_done {d} exceeds drain_total {t}"));
        }
        Ok(())
    }
}

/// The reports of the jobs seen lately.
#[derive(Default)]
pub struct Jobs {
    inner: Mutex<BTreeMap<String, (Instant, JobReport)>>,
}

/// Names are shown on pages and in metric labels: short and plain.
pub fn valid_job_name(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Jobs {
    /// Records a report.
    pub fn report(&self, name: &str, r: JobReport) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|_, (t, _)| t.elapsed() < JOB_TTL);
        if m.len() < 1024 || m.contains_key(name) {
            m.insert(name.to_string(), (Instant::now(), r));
        }
    }

    /// The jobs reported within [`JOB_TTL`], with the seconds since their last report.
    pub fn list(&self) -> Vec<(String, f64, JobReport)> {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.iter()
            .filter(|(_, (t, _))| t.elapsed() < JOB_TTL)
            .map(|(k, (t, r))| (k.clone(), t.elapsed().as_secs_f64(), r.clone()))
            .collect()
    }
}
