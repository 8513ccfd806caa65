//! # strata-cache: the tiered block cache (DRAM over NVMe over a block source)
pub mod block_file;
pub mod bufpool;
pub mod cache;
pub mod detach;
pub mod dram;
pub mod key;
pub mod ledger;
pub mod lock;
pub mod nvme;
pub mod page_cache;
pub mod policy;
pub mod prefetch;
pub mod settings;
pub mod source;
pub mod stats;
pub mod warm;

pub use cache::{BlockCache, CacheConfig, CacheError, CacheStats, Why};
pub use detach::detach;
pub use key::{BlockId, Geometry, ObjectVersion};
pub use prefetch::{Prefetcher, Ticket};
pub use settings::{CacheLayer, CacheSettings};
pub use source::{BlockSource, FetchError, object_version};
pub use warm::{PageCacheReport, WarmReport, hold_in_page_cache, list_named, objects_named, warm};
