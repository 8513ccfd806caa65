//! Jobs on the node report what the daemon cannot see for itself: how long their
//! accelerators computed and how long they waited for data (the I/O waterfall), and how far a
//! checkpoint drain has come. The Python package reports when connected to the daemon;
//! anything else can `POST /api/jobs/NAME` the same JSON.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A report is shown for this long after it arrived.
pub const JOB_TTL: Duration = Duration::from_secs(60);

pub use strata_daemon_client::wire::JobReport;

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
