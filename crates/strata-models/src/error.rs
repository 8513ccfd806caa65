//! Errors of the model cache. Each names the model or file and the cause.

use std::path::PathBuf;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The store failed (after its retries).
    #[error(transparent)]
    Store(#[from] strata_store::StoreError),
    /// A local file of the model cache.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A safetensors header that is malformed or hostile.
    #[error("{file}: invalid safetensors header: {cause}")]
    Header {
        /// The file.
        file: String,
        /// What is wrong with its header.
        cause: String,
    },
    /// Nothing at the URL.
    #[error("{0}: no model files there")]
    Empty(String),
    /// A selection of tensors that matches nothing.
    #[error("{model}: no tensor matches {selectors:?}")]
    NoTensors {
        /// The model's URL.
        model: String,
        /// The selectors that matched nothing.
        selectors: Vec<String>,
    },
    /// The model changed on the store during the pull.
    #[error(
        "{0} changed on the store during the pull (new ETag); run the pull again to get the new version"
    )]
    Changed(String),
    /// A downloaded or cached file does not match what was recorded.
    #[error("{file}: {cause}")]
    Corrupt {
        /// The file.
        file: String,
        /// What does not match.
        cause: String,
    },
    /// No cached model matches.
    #[error("no cached model matches {0}")]
    NotCached(String),
}

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Results of this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
