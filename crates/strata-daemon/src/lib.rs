//! # strata-daemon: one Strata per node
//!
//! `strata serve` runs one [`Node`] per machine: every training rank, DataLoader worker and
//! inference replica on the node reads through its one block cache, so a block is fetched
//! from the object store once per node, however many processes want it.
//!
//! What it serves (on 127.0.0.1:7420 by default, and on a Unix socket when configured):
//!
//! - the local read API (`/v1/…`, [`local`]): clients on the node read objects through the
//!   cache; on the same machine they take the block files from the NVMe tier themselves
//!   (`/v1/blocks`), so cached bytes are not copied through the daemon. The client the CLI
//!   and the Python package use is the `strata-daemon-client` crate. [`warm`] hydrates the node's cache
//!   (`strata warm --daemon`).
//! - an S3-compatible read endpoint ([`s3`]) for configured buckets: unmodified S3 clients
//!   (boto3, s3torchconnector) point their endpoint at the daemon.
//! - `/metrics` (Prometheus, [`metrics`]) and `/healthz`.
//! - the dashboard and the workbench ([`pages`]), and the API behind them ([`api`]): the
//!   node's counters, and the planner, the probe and the personas of `strata-plan`.
//!
//! Security ([`auth`]): loopback only unless a token is configured; with a token every
//! request carries it; nothing cross-origin; no credentials in any response.
//!
//! Memory: the DRAM tier, the fetches in flight and the bytes held by responses are each
//! bounded; [`DaemonConfig::memory_budget`] is their sum.

pub mod api;
pub mod auth;
pub mod config;
pub mod http;
pub mod jobs;
pub mod local;
pub mod metrics;
pub mod node;
pub mod pages;
pub mod s3;
pub mod server;
pub mod warm;

pub use config::{DaemonConfig, DaemonFlags};
pub use node::Node;
pub use server::Server;
pub use strata_config::ConfigError;
