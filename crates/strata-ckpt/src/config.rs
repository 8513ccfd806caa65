//! Settings of the checkpoint engine. Every field states its unit and default.

use std::path::PathBuf;
use std::time::Duration;

use strata_store::{Location, TransferConfig};

use crate::admission::AdmissionConfig;
use crate::retention::Retention;

/// When `save` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SaveMode {
    /// Once the local tier holds an fsynced copy (needs a local directory). The default.
    DurableLocal,
    /// Once the bytes are copied into staging memory; written to the local tier and
    /// drained in the background.
    Snapshot,
}

/// What `load` does when a checkpoint's bytes do not match its manifest on every tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCorrupt {
    /// Warn and take the previous complete checkpoint. The default.
    Fallback,
    /// Fail.
    Fail,
}

/// The background drain to the object store.
#[derive(Debug, Clone)]
pub struct DrainConfig {
    /// This node's upload bandwidth cap in bytes/s (a token bucket). Default: none.
    pub bytes_per_sec: Option<u64>,
    /// Requests in flight at once for this node's drain. Default: none beyond the transfer
    /// settings (parts in flight × files in flight).
    pub max_requests: Option<usize>,
    /// Part size and parts in flight per file. Default: the store's transfer settings.
    pub transfer: Option<TransferConfig>,
    /// Files uploaded at once. Default: 4.
    pub files_in_flight: usize,
    /// The drain starts after a uniform random delay in `[0, jitter]`. Default: 2 s.
    pub jitter: Duration,
    /// Fleet-wide admission. Default: [`AdmissionConfig::default`].
    pub admission: AdmissionConfig,
}

impl Default for DrainConfig {
    fn default() -> Self {
        Self {
            bytes_per_sec: None,
            max_requests: None,
            transfer: None,
            files_in_flight: 4,
            jitter: Duration::from_secs(2),
            admission: AdmissionConfig::default(),
        }
    }
}

/// Settings of a [`crate::Checkpointer`].
#[derive(Clone)]
pub struct CkptConfig {
    /// The durable root in an object store. Default: none (local only; needs world size 1).
    pub remote: Option<Location>,
    /// The local tier directory (NVMe). Default: none (snapshot mode straight to the store).
    pub local: Option<PathBuf>,
    /// This process's rank. Default: 0.
    pub rank: u32,
    /// Ranks saving each checkpoint. Default: 1.
    pub world_size: u32,
    /// Default: [`SaveMode::DurableLocal`].
    pub mode: SaveMode,
    /// Staging memory for snapshot saves, in bytes; a save waits for room. Default: 4 GiB.
    pub staging_bytes: u64,
    /// Checksum chunk size in bytes. Default: 8 MiB.
    pub chunk_size: u64,
    /// Files of more than two pieces go to the store in pieces of this many bytes (rounded up
    /// to whole chunks), so one large file drains like several; 0: always one object.
    /// Default: 128 MiB.
    pub piece_size: u64,
    /// Default: [`DrainConfig::default`].
    pub drain: DrainConfig,
    /// How long a commit waits for every rank's marker (and other ranks for the commit).
    /// Default: 10 minutes.
    pub commit_timeout: Duration,
    /// Default: keep everything, and the last 2 on the local tier.
    pub retention: Retention,
    /// Default: [`OnCorrupt::Fallback`].
    pub on_corrupt: OnCorrupt,
}

impl Default for CkptConfig {
    fn default() -> Self {
        Self {
            remote: None,
            local: None,
            rank: 0,
            world_size: 1,
            mode: SaveMode::DurableLocal,
            staging_bytes: 4 << 30,
            chunk_size: crate::manifest::DEFAULT_CHUNK_SIZE,
            piece_size: crate::manifest::DEFAULT_PIECE_SIZE,
            drain: DrainConfig::default(),
            commit_timeout: Duration::from_secs(600),
            retention: Retention::default(),
            on_corrupt: OnCorrupt::Fallback,
        }
    }
}

impl CkptConfig {
    /// Checks the combination of settings.
    pub fn validate(&self) -> Result<(), crate::CkptError> {
        let bad = |m: String| Err(crate::CkptError::Invalid(m));
        if self.world_size == 0 || self.world_size > crate::manifest::MAX_WORLD {
            return bad(format!("world size {} out of range", self.world_size));
        }
        if self.rank >= self.world_size {
            return bad(format!(
                "rank {} in a world of {}",
                self.rank, self.world_size
            ));
        }
        if self.remote.is_none() && self.local.is_none() {
            return bad("a checkpointer needs a local directory, a remote root, or both".into());
        }
        if self.remote.is_none() && self.world_size > 1 {
            return bad("several ranks commit through the object store: give a remote root".into());
        }
        if self.mode == SaveMode::DurableLocal && self.local.is_none() {
            return bad("durable-local mode needs a local directory (or use snapshot mode)".into());
        }
        if self.chunk_size == 0 || self.chunk_size > crate::manifest::MAX_CHUNK_SIZE {
            return bad(format!("chunk size {} out of range", self.chunk_size));
        }
        if self.staging_bytes == 0 {
            return bad("staging_bytes must be > 0".into());
        }
        Ok(())
    }
}
