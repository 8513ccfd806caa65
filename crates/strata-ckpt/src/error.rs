//! Errors of the checkpoint engine. Each names the checkpoint (root and step) and the cause.

use strata_store::StoreError;

/// A checkpoint operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CkptError {
    /// The store failed (after its retries).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A local file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done, e.g. `write`.
        op: &'static str,
        /// The file or directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A setting or an argument is invalid (an item name, a step, a combination of modes).
    #[error("{0}")]
    Invalid(String),
    /// The step was saved before; checkpoints are immutable.
    #[error(
        "checkpoint {root} step {step} already exists; checkpoints are immutable (save under a new step, or delete it first)"
    )]
    Exists {
        /// The checkpoint root.
        root: String,
        /// The step.
        step: u64,
    },
    /// No complete checkpoint (of this step, or at all).
    #[error("no complete checkpoint{} in {root}", match .step { Some(s) => format!(" at step {s}"), None => String::new() })]
    NotFound {
        /// The checkpoint root.
        root: String,
        /// The step asked for; none for the newest.
        step: Option<u64>,
    },
    /// A checkpoint's bytes do not match its manifest.
    #[error("checkpoint {root} step {step}: {file}: {cause}")]
    Corrupt {
        /// The checkpoint root.
        root: String,
        /// The step.
        step: u64,
        /// The file, relative to the root.
        file: String,
        /// What does not match.
        cause: String,
    },
    /// A manifest or rank marker cannot be read.
    #[error("checkpoint {path}: bad manifest: {cause}")]
    Manifest {
        /// The manifest or marker.
        path: String,
        /// Why it does not read.
        cause: String,
    },
    /// Not every rank reported its part before the commit timeout. Nothing was committed.
    #[error(
        "checkpoint {root} step {step}: rank(s) {missing:?} did not report within {secs:.0} s; nothing was committed (gc collects the parts)"
    )]
    CommitTimeout {
        /// The checkpoint root.
        root: String,
        /// The step.
        step: u64,
        /// The ranks that did not report.
        missing: Vec<u32>,
        /// The timeout, seconds.
        secs: f64,
    },
    /// The drain of a saved checkpoint failed; the local copy (if any) stays.
    #[error("checkpoint step {step}: drain failed: {source}")]
    Drain {
        /// The step.
        step: u64,
        /// Why the drain failed.
        #[source]
        source: std::sync::Arc<CkptError>,
    },
    /// A task on the blocking pool (file I/O, checksums) panicked or was cancelled.
    #[error("checkpoint {what} task failed: {cause}")]
    Task {
        /// `save`, `drain`, `load`, ...
        what: &'static str,
        /// The panic or cancellation.
        cause: String,
    },
    /// The background drain stopped (the checkpointer was dropped or its task failed).
    #[error("checkpoint step {step}: the drain stopped before it finished: {cause}")]
    DrainStopped {
        /// The step.
        step: u64,
        /// Why the drain stopped.
        cause: String,
    },
}

impl CkptError {
    pub(crate) fn io(op: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.display().to_string(),
            source,
        }
    }
}

/// Result with [`CkptError`].
pub type Result<T, E = CkptError> = std::result::Result<T, E>;
