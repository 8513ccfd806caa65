//! The model cache: a model's files pulled from object storage into the node's cache
//! directory once, however many processes ask, and published atomically.
//!
//! - [`pull`] lists the model's files, reads and validates every safetensors header first,
//!   fetches with ranged reads in parallel across and within files (pinned to each file's
//!   ETag), records each file's CRC32C, resumes an interrupted pull, and renames the
//!   complete directory into place. A selection of tensors pulls only their bytes, into
//!   valid safetensors files of their own.
//! - [`Model`] opens a pulled model and hands out zero-copy views of its tensors (memory
//!   maps of the cached files).
//! - [`ModelRepo`] lists, finds and removes pulled models.
//! - [`safetensors`] is the defensive header parser.

pub mod error;
pub mod manifest;
pub mod model;
pub mod pull;
pub mod repo;
pub mod safetensors;
pub mod synth;

pub use error::{ModelError, Result};
pub use manifest::{ModelFile, ModelManifest};
pub use model::{Model, TensorView};
pub use pull::{PullOptions, PullReport, TensorReady, pull, read_header};
pub use repo::{CachedModel, ModelRepo};
