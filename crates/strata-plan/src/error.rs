//! Why the planner could not plan: a scenario field, a file that does not parse, an argument
//! out of its domain, or the probe's I/O.

use std::path::PathBuf;

use crate::scenario::ScenarioError;

/// A planner error. Each names the field, the file or the path, and the cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A scenario (or persona) field that does not validate.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// An input that is not what it should be: a file that does not parse (the message names
    /// it), an argument out of its domain, a persona the scenario does not fit.
    #[error("{0}")]
    Invalid(String),
    /// The device probe's I/O.
    #[error("probe: {op} {}: {source}", path.display())]
    Io {
        /// What the probe was doing, e.g. `create the test file`.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The object probe's request failed (after the store's retries).
    #[error("probe: {0}")]
    Store(#[from] strata_store::StoreError),
    /// A probe thread panicked.
    #[error("probe task failed: {0}")]
    Task(String),
}

impl PlanError {
    /// The device probe's I/O on `path`.
    pub(crate) fn io(op: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}
