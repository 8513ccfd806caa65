//! # strata-dataset: shards, shuffle plans, partitions and the reader
//!
//! Training data as WebDataset tar shards with a sample index ([`index`]) and a manifest
//! ([`manifest`]); TFRecord files read with their checksums ([`tfrecord`]); a raw layout (one
//! object per sample member) as the baseline. The packer ([`pack`]) makes shards from files.
//!
//! An epoch's order is a [`plan::Plan`], a pure function of (seed, epoch, manifest, plan
//! settings), split across ranks and workers by [`partition::Partition`] with equal counts,
//! and resumable from a three-number [`partition::ResumeState`] under any world size. The
//! [`reader::Reader`] fetches samples through the block cache, prefetching by deadline from
//! the plan's known future and telling the cache that future for next-use eviction.
pub mod dataset;
pub mod error;
pub mod index;
pub mod indexer;
pub mod manifest;
pub mod pack;
pub mod partition;
pub mod plan;
pub mod reader;
pub mod rng;
pub mod sample;
pub mod tar;
pub mod tfrecord;

pub use dataset::{Dataset, OpenOptions};
pub use error::{DatasetError, Result};
pub use index::{ShardFormat, ShardIndex};
pub use manifest::{Layout, Manifest, ShardInfo};
pub use partition::{Partition, Remainder, ResumeState, World};
pub use plan::{Plan, PlanSpec, ShuffleMode};
pub use reader::{Reader, ReaderConfig, ReaderStats};
pub use sample::Sample;
pub use strata_store::Location;
