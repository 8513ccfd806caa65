//! # strata-bench
//!
//! The benchmarks behind `strata bench`. Each one runs real parts (the in-process S3 server,
//! the link emulator, real files) and reports ratios measured in one run: against the
//! physical limit (the emulator's configured cap, memory copy bandwidth) and against the
//! naive way (one stream). Absolute numbers vary between machines; the ratios are the claim.

pub mod cache;
pub mod ckpt;
pub mod daemon;
pub mod error;
pub mod machine;
pub mod models;
pub mod plan;
pub mod server;
pub mod soak;
pub mod storm;
pub mod train;
pub mod transfer;
pub mod workdir;

pub use cache::{CacheBench, CacheBenchReport};
pub use ckpt::{CkptBench, CkptBenchReport};
pub use daemon::{DaemonBench, DaemonBenchReport};
pub use error::BenchError;
pub use machine::MachineLimits;
pub use models::{ModelsBench, ModelsBenchReport};
pub use plan::{PlanBench, PlanBenchReport};
pub use server::BenchServer;
pub use soak::{SoakBench, SoakReport};
pub use storm::{StormBench, StormBenchReport};
pub use train::{TrainBench, TrainBenchReport, Workload};
pub use transfer::{TransferBench, TransferBenchReport};
