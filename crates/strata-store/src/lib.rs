//! # strata-store
//!
//! One way to reach any storage backend fast and safely. A [`StoreUrl`] (`s3://bucket/key`,
//! `gs://`, `az://`, `file:///path` or a plain path, `memory://name`) opens a [`Store`] over the
//! `object_store` crate; around every request this crate adds:
//!
//! - **retries** with jittered exponential backoff within a total time bound ([`retry`]),
//!   ending in an error that names the operation, the object and the last cause;
//! - **limits** as a wrapper: requests/s and bytes/s token buckets and a cap on requests in
//!   flight ([`limit`]);
//! - **metrics** through the `metrics` facade ([`metrics`]);
//! - a **parallel ranged download** engine ([`download`]) and a **multipart upload** engine
//!   ([`upload`]), both with memory bounded by parts in flight × part size;
//! - **conditional create** and a **capability probe** that detects stores which silently
//!   ignore it ([`capability`]).
//!
//! Settings come from defaults, a TOML file, the environment and flags (`strata-config`);
//! this crate owns the `[s3]`, `[transfer]`, `[retry]` and `[limits]` sections ([`config`]).
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use strata_config::{Env, Sources};
//! use strata_store::{Store, StoreConfig, StoreUrl};
//! let url = StoreUrl::parse("s3://bucket/train/shard-000.tar")?;
//! let sources = Sources::load(None, Env::process())?;
//! let config = StoreConfig::from_sources(&sources)?;
//! let store = Store::open(&url, &config)?;
//! let report = store
//!     .download_to_file(url.key(), "shard-000.tar".as_ref(), &config.transfer, None)
//!     .await?;
//! println!("{:.0} MiB/s", report.mib_per_sec());
//! # Ok(()) }
//! ```
//!
//! ## Why our own retry loop
//!
//! object_store retries internally, but its retries are invisible to callers (no metrics),
//! differ by backend, and cannot retry one part of a multipart upload without restarting
//! it. Here its loop is switched off and every attempt goes through [`retry::with_retry`].
//!
//! ## Cancellation
//!
//! All operations are plain futures. Dropping a download leaves no file at the destination
//! (the temporary file may remain as `.NAME.strata-*.tmp` if the process dies). Dropping an
//! upload aborts its multipart upload on a spawned task.

pub mod capability;
pub mod config;
pub mod download;
pub mod error;
pub mod limit;
pub mod local;
mod local_list;
pub mod location;
pub mod metrics;
pub mod pending_uploads;
pub mod retry;
mod s3_list;
mod s3_raw;
pub mod store;
pub mod token_bucket;
pub mod transfer;
pub mod upload;
pub mod url;

pub use capability::{Capabilities, ConditionalCreate};
pub use config::{Secret, StoreConfig, StoreLayer, TransferConfig};
pub use error::{ErrorKind, Result, StoreError};
pub use location::Location;
pub use pending_uploads::PendingUpload;
pub use store::{CreateOutcome, Listing, ObjectInfo, Skipped, Store};
pub use transfer::{PartSlots, ProgressFn, TransferReport};
pub use url::{Scheme, StoreUrl};
