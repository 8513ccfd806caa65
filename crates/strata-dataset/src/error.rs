//! Errors of the dataset engine. Every variant names the object (shard, sample, file) and the
//! cause.

use strata_store::StoreError;

/// A dataset error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// The store failed (after its retries).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The block cache failed.
    #[error("cache: {0}")]
    Cache(String),
    /// An input of the packer could not be read.
    #[error("cannot read input {path}: {cause}")]
    Input {
        /// The input.
        path: String,
        /// The cause.
        cause: String,
    },
    /// Writing an output failed.
    #[error("cannot write {path}: {cause}")]
    Output {
        /// The output.
        path: String,
        /// The cause.
        cause: String,
    },
    /// A shard is damaged or does not parse.
    #[error("shard {shard}: {cause}")]
    Shard {
        /// The shard.
        shard: String,
        /// What is wrong with it.
        cause: String,
    },
    /// A sample failed its checksum or does not match its index.
    #[error("shard {shard}, sample {sample} ({key}): {cause}")]
    Sample {
        /// The shard.
        shard: String,
        /// The sample's position in the shard.
        sample: u64,
        /// The sample's key.
        key: String,
        /// What is wrong with it.
        cause: String,
    },
    /// The manifest is missing, unreadable, or disagrees with the shards.
    #[error("manifest {path}: {cause}")]
    Manifest {
        /// The manifest.
        path: String,
        /// What is wrong with it.
        cause: String,
    },
    /// A setting is out of range.
    #[error("{0}")]
    Invalid(String),
}

impl DatasetError {
    /// Whether the error is about one sample's data (the skip policy may skip it).
    pub fn is_sample_error(&self) -> bool {
        matches!(self, DatasetError::Sample { .. })
    }
}

/// A file of one of this crate's on-disk formats (`manifest.json`, `SHARD.idx`) that does
/// not read: not JSON of its shape, another version, or numbers that do not add up. The
/// caller names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Not JSON of the format's shape.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// Another version of the format.
    #[error("{what} version {found} (this build reads {reads})")]
    Version {
        /// `index` or `manifest`.
        what: &'static str,
        /// The version in the file.
        found: u32,
        /// The version this build reads.
        reads: u32,
    },
    /// Fields that contradict each other or the format's rules.
    #[error("{0}")]
    Inconsistent(String),
}

/// Results of this crate.
pub type Result<T, E = DatasetError> = std::result::Result<T, E>;
