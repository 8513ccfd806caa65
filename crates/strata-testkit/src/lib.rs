//! # strata-testkit
//!
//! Real parts for tests and benchmarks, shared by every crate's tests and by `strata bench`:
//!
//! - [`S3Server`]: an S3 server in the process (`s3s` + `s3s-fs`) on 127.0.0.1 with SigV4
//!   credentials; one call starts it, dropping it stops it.
//! - [`GarageServer`]: Garage, a production object store, started as a child process on
//!   loopback and configured; stopped by its process id.
//! - [`LinkEmulator`]: a proxy in front of either that adds latency, bandwidth caps,
//!   overload, injected errors, resets and stalls, settable at run time.
//! - [`conformance`]: the checks every store backend must pass.
//! - [`data`]: deterministic data generators.
//!
//! Nothing here fakes our own client: tests talk HTTP to real servers through real sockets.

pub mod alloc;
pub mod atomic_create;
pub mod azurite;
pub mod conformance;
pub mod data;
pub mod emulator;
pub mod fixture;
pub mod garage;
pub mod garage_cluster;
pub mod golden;
pub mod linked;
mod pass_through;
pub mod runtime;
pub mod s3_server;
pub mod small_fs;
pub mod upload_listing;

pub use emulator::{LinkEmulator, LinkProfile, StatsSnapshot};
pub use garage::{GarageError, GarageServer};
pub use garage_cluster::GarageCluster;
pub use linked::Linked;
pub use s3_server::{S3Endpoint, S3Server};
pub use small_fs::SmallFs;
