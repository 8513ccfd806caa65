//! # strata-daemon-client: talking to a node's daemon
//!
//! The client of `strata serve`, for the CLI (`--daemon`, `$STRATA_DAEMON`) and the Python
//! package (`strata.connect()`). It is its own crate so that a client links only what a
//! client needs (hyper's client, the block file reader) and never the daemon's HTTP server,
//! its Prometheus exporter or the planner behind its pages.
//!
//! - [`DaemonClient`]: reads objects through the node's cache, taking cached blocks straight
//!   from the NVMe tier's files when the daemon is on the same machine; starts and follows
//!   warm-ups; sends job reports.
//! - [`DaemonSource`]: a `BlockSource` over the client, so a process's own DRAM cache can sit
//!   on top of the node's cache.
//! - [`wire`]: the JSON both sides exchange.
//!
//! ```no_run
//! # async fn example() -> Result<(), strata_daemon_client::ClientError> {
//! let daemon = strata_daemon_client::DaemonClient::with_env_token("127.0.0.1:7420")?;
//! let bytes = daemon.read("s3://bucket/train/shard-000.tar", Some(0..4096)).await?;
//! # let _ = bytes; Ok(()) }
//! ```

pub mod client;
pub mod source;
pub mod wire;

pub use client::{ClientError, DaemonClient};
pub use source::{DaemonSource, object_url};
pub use wire::{JobReport, WarmStatus};
