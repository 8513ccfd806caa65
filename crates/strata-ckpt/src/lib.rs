//! The checkpoint engine: seconds of stall, a durable drain without a storm, exact restore.
//!
//! - **Save** ([`Checkpointer::save`]): a rank's named items (buffers or files) become
//!   step N. In *durable-local* mode `save` returns once the local tier (an NVMe directory)
//!   holds an fsynced copy; in *snapshot* mode once the bytes are copied into bounded
//!   staging memory. Either way a background task drains the checkpoint to the object
//!   store: a jittered start, fleet-wide admission (`admission`), parallel multipart
//!   uploads under this node's bytes/s cap.
//! - **Commit** (`manifest`, `layout`): a checkpoint is its files plus `MANIFEST.json`,
//!   written last. Each rank writes a marker once its files are in the store; rank 0, the
//!   only committer, waits for every marker (or times out, committing nothing), checks the
//!   objects and writes the manifest. One committer per checkpoint: no conditional writes
//!   needed, so it holds on stores that ignore them.
//! - **Restore** ([`Checkpointer::load`]): the newest complete checkpoint from the nearest
//!   tier whose checksums hold (every chunk verified); a corrupt one is skipped with a
//!   warning for the previous complete one, or fails, by setting.
//! - **Retention and gc** (`retention`, [`Checkpointer::gc`]).

pub mod admission;
pub mod buffer;
pub mod checkpointer;
pub mod config;
pub mod error;
pub mod layout;
pub mod local;
pub mod manifest;
pub mod remote;
pub mod retention;
pub mod settings;
pub mod staging;

pub use admission::{AdmissionConfig, AdmissionKind};
pub use buffer::Buffer;
pub use checkpointer::{
    CheckpointInfo, Checkpointer, CkptStats, DrainReport, DrainTracker, GcReport, Restored,
    SaveHandle,
};
pub use config::{CkptConfig, DrainConfig, OnCorrupt, SaveMode};
pub use error::{CkptError, Result};
pub use local::{Item, ItemData};
pub use manifest::{Manifest, RankPart, Tier};
pub use retention::Retention;
pub use settings::{CkptLayer, CkptSettings, Purpose};
