//! # strata-cache (in progress)
pub mod block_file;
pub mod key;
pub mod nvme;
pub mod policy;
pub mod stats;
