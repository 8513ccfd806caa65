//! # strata-cache (in progress)
pub mod block_file;
pub mod key;
pub mod policy;
