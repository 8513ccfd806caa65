//! Hydration: read objects through the cache so that later reads are local, the way a
//! parallel file system is hydrated from object storage before a job.

use std::time::Instant;

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::cache::{BlockCache, CacheError, Why};
use crate::key::ObjectVersion;
use crate::source::BlockSource;
use strata_store::{ObjectInfo, Store, StoreError, StoreUrl};

/// What `url` names: every object under it, else the object itself. A prefix URL (ending in
/// `/`) with nothing under it is an error naming it, as is a missing object.
pub async fn list_named(store: &Store, url: &StoreUrl) -> Result<Vec<ObjectInfo>, StoreError> {
    let mut objects = store.list(url.key()).await?;
    if objects.is_empty() {
        if url.is_prefix_syntax() {
            return Err(StoreError::empty_prefix(url));
        }
        objects.push(store.head(url.key()).await?);
    }
    Ok(objects)
}

/// [`list_named`], each object with its cache identity (what [`warm`] takes).
pub async fn objects_named(
    store: &Store,
    url: &StoreUrl,
) -> Result<Vec<ObjectVersion>, StoreError> {
    let mut out = Vec::new();
    for info in list_named(store, url).await? {
        out.push(crate::source::object_version(store, &info).await?);
    }
    Ok(out)
}

/// What a warm-up did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WarmReport {
    /// Objects warmed.
    pub objects: usize,
    /// Blocks read through the cache.
    pub blocks: u64,
    /// Bytes of the objects.
    pub bytes: u64,
    /// Bytes fetched from the source (the rest was already cached).
    pub fetched_bytes: u64,
    /// Blocks the NVMe tier declined to store (full, or the file system below its free-space
    /// floor): a warm-up that leaves any is incomplete.
    pub not_cached_blocks: u64,
    /// Why the NVMe tier declined the last of them.
    pub not_cached_reason: Option<String>,
    /// Seconds the warm-up took.
    pub elapsed_secs: f64,
}

impl WarmReport {
    /// Why the warm-up is incomplete, naming the cache directory `dir`: blocks were read but
    /// not stored. None when every block was stored.
    pub fn incomplete(&self, dir: &std::path::Path) -> Option<String> {
        (self.not_cached_blocks > 0).then(|| {
            format!(
                "cache {}: {} of {} block(s) were read but not stored: {}",
                dir.display(),
                self.not_cached_blocks,
                self.blocks,
                self.not_cached_reason
                    .as_deref()
                    .unwrap_or("the tier declined them")
            )
        })
    }
}

/// Reads every block of `objects` through `cache`, `concurrency` blocks at a time (across
/// objects), calling `progress` with the bytes of each block done. Blocks already cached cost
/// a lookup, not a fetch.
pub async fn warm(
    cache: &BlockCache,
    source: &dyn BlockSource,
    objects: &[ObjectVersion],
    concurrency: usize,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<WarmReport, CacheError> {
    let start = Instant::now();
    let before = cache.stats();
    let refused = |s: &crate::CacheStats| s.nvme.map_or(0, |n| n.pass_through);
    let g = cache.geometry();
    // (object number, block index): items that borrow nothing, or the compiler cannot prove
    // the future `Send` for `tokio::spawn` (the daemon spawns warm-ups).
    let blocks: Vec<(usize, u64)> = objects
        .iter()
        .enumerate()
        .flat_map(|(k, o)| (0..g.block_count(o.size)).map(move |i| (k, i)))
        .collect();
    let (n, bytes) = stream::iter(blocks)
        .map(|(k, i)| async move {
            let b = cache
                .get_block(source, &objects[k], i, Why::Hydrate)
                .await?;
            progress(b.len() as u64);
            Ok::<_, CacheError>(b.len() as u64)
        })
        .buffer_unordered(concurrency.max(1))
        .try_fold((0u64, 0u64), |(n, bytes), len| async move {
            Ok((n + 1, bytes + len))
        })
        .await?;
    // Blocks are written behind the reads; a warm-up is done when they are on disk.
    cache.flush().await;
    let after = cache.stats();
    let not_cached_blocks = refused(&after) - refused(&before);
    Ok(WarmReport {
        objects: objects.len(),
        blocks: n,
        bytes,
        fetched_bytes: after.fetched_bytes - before.fetched_bytes,
        not_cached_blocks,
        not_cached_reason: cache
            .nvme()
            .and_then(|n| n.last_refusal())
            .filter(|_| not_cached_blocks > 0),
        elapsed_secs: start.elapsed().as_secs_f64(),
    })
}

/// What [`hold_in_page_cache`] found and did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PageCacheReport {
    /// Bytes of block files read through the page cache.
    pub loaded_bytes: u64,
    /// Bytes of them resident in the page cache afterwards (`mincore`). Less than
    /// `loaded_bytes` when the node's free memory cannot hold them all.
    pub resident_bytes: u64,
    /// Blocks of the objects that the NVMe tier does not hold (not warmed, or evicted).
    pub missing_blocks: u64,
    /// Seconds the load took.
    pub elapsed_secs: f64,
}

/// Loads the NVMe tier's block files of `objects` into the kernel's page cache, so that every
/// process on the node reads them at memory speed after this process exits (Strata's own
/// DRAM tier dies with its process; the node daemon will own a lasting one). Call after
/// [`warm`]. Blocking file reads run on the blocking pool.
pub async fn hold_in_page_cache(
    cache: &BlockCache,
    objects: &[ObjectVersion],
) -> Result<PageCacheReport, CacheError> {
    let Some(nvme) = cache.nvme() else {
        return Ok(PageCacheReport::default());
    };
    let g = cache.geometry();
    let paths: Vec<_> = objects
        .iter()
        .flat_map(|o| (0..g.block_count(o.size)).map(move |i| o.block(i)))
        .map(|id| nvme.path_of(id))
        .collect();
    let start = Instant::now();
    let mut report = tokio::task::spawn_blocking(move || {
        let mut r = PageCacheReport::default();
        let mut buf = vec![0u8; 4 << 20];
        let mut loaded = Vec::with_capacity(paths.len());
        for p in &paths {
            match crate::page_cache::load(p, &mut buf) {
                Ok(n) => {
                    r.loaded_bytes += n;
                    loaded.push(p);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => r.missing_blocks += 1,
                Err(e) => return Err(e),
            }
        }
        // Measured after all are read: what the last reads pushed out counts as lost.
        for p in loaded {
            r.resident_bytes += crate::page_cache::resident_bytes(p).unwrap_or(0);
        }
        Ok(r)
    })
    .await
    .map_err(|e| CacheError::Io(std::io::Error::other(e)))??;
    report.elapsed_secs = start.elapsed().as_secs_f64();
    Ok(report)
}
