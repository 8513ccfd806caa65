//! The node's shared state: one block cache, the upstream stores, what HEAD said about each
//! object, and the memory held by responses.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use futures::{Stream, StreamExt, stream};
use strata_cache::{BlockCache, ObjectVersion, Why};
use strata_store::{ObjectInfo, Store, StoreError, StoreUrl};
use tokio::sync::Semaphore;

use crate::config::DaemonConfig;
use crate::jobs::Jobs;

/// Blocks the daemon fetches from upstream at once for one reader (the cache fetches up to
/// four times this many over all readers). 16 × 8 MiB blocks fill the emulated S3 link.
pub const FETCH_CONCURRENCY: usize = 16;

/// Blocks one response reads ahead of what it has sent: enough to fill a link whose single
/// connections are slow (an S3 client reading one object sequentially gets the daemon's
/// parallel ranged GETs). All responses together stay within `response_memory`.
const RESPONSE_WINDOW: usize = FETCH_CONCURRENCY;

/// What the daemon knows of an object: its cache identity and listing facts.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The store the URL names.
    pub store: Store,
    /// The object's identity in the cache (store, path, ETag, size).
    pub object: ObjectVersion,
    /// What HEAD said.
    pub info: ObjectInfo,
}

/// The node: shared by every connection.
pub struct Node {
    /// The daemon's settings.
    pub config: DaemonConfig,
    /// The node's block cache.
    pub cache: Arc<BlockCache>,
    stores: Mutex<HashMap<String, Store>>,
    heads: Mutex<HashMap<String, (Instant, Resolved)>>,
    /// Blocks held by response bodies, over all clients (`response_memory / block_size`).
    responses: Arc<Semaphore>,
    response_blocks: usize,
    /// What jobs on the node reported.
    pub jobs: Jobs,
    /// Hydrations started by `strata warm --daemon` ([`crate::warm`]).
    pub warmups: crate::warm::Warmups,
    /// When the daemon started.
    pub started: Instant,
    /// Client reads marked as prefetches (`x-strata-why: prefetch`) in flight.
    pub prefetch_in_flight: std::sync::atomic::AtomicU64,
}

impl Node {
    /// Opens the node's cache (NVMe tier in the configured directory, DRAM tier).
    pub fn open(config: DaemonConfig) -> Result<Arc<Self>, strata_cache::CacheError> {
        let mut cc = config.cache.cache_config(true);
        cc.read_concurrency = FETCH_CONCURRENCY;
        let cache = Arc::new(BlockCache::open(&cc)?);
        let response_blocks = (config.response_memory / config.cache.block_size).max(1) as usize;
        Ok(Arc::new(Self {
            config,
            cache,
            stores: Mutex::new(HashMap::new()),
            heads: Mutex::new(HashMap::new()),
            responses: Arc::new(Semaphore::new(response_blocks)),
            response_blocks,
            jobs: Jobs::default(),
            warmups: Default::default(),
            started: Instant::now(),
            prefetch_in_flight: Default::default(),
        }))
    }

    /// The store that holds `url`, opened once per bucket.
    pub fn store(&self, url: &StoreUrl) -> Result<Store, StoreError> {
        let root = url.with_key("").to_string();
        let mut m = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = m.get(&root) {
            return Ok(s.clone());
        }
        let s = Store::open(url, &self.config.store)?;
        m.insert(root, s.clone());
        Ok(s)
    }

    /// The object at `url`: its size and ETag from a HEAD no older than the metadata TTL.
    pub async fn resolve(&self, url: &StoreUrl) -> Result<Resolved, StoreError> {
        let key = url.to_string();
        if let Some((t, r)) = self
            .heads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            && t.elapsed() < self.config.metadata_ttl
        {
            return Ok(r.clone());
        }
        let store = self.store(url)?;
        let info = store.head(url.key()).await?;
        let object = strata_cache::object_version(&store, &info).await?;
        let r = Resolved {
            store,
            object,
            info,
        };
        let mut heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        if heads.len() > 100_000 {
            heads.clear();
        }
        heads.insert(key, (Instant::now(), r.clone()));
        Ok(r)
    }

    /// The object at `url` in the version a client names (`etag`, `size`), without asking
    /// the store: reads are pinned to the ETag, so a changed object fails rather than mixes.
    pub fn pinned(
        &self,
        url: &StoreUrl,
        etag: &str,
        size: u64,
    ) -> Result<(Store, ObjectVersion), StoreError> {
        let store = self.store(url)?;
        let object = ObjectVersion::new(&store.root().to_string(), url.key(), etag, size);
        Ok((store, object))
    }

    /// Forgets what HEAD said about `url` (after a failed pinned read, or an invalidation).
    pub fn forget(&self, url: &StoreUrl) {
        self.heads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&url.to_string());
    }

    /// `range` of `object` through the cache, block by block, reading at most
    /// [`RESPONSE_WINDOW`] blocks ahead of what was sent, and holding a share of the
    /// daemon's response memory for each block until it is handed to the connection.
    pub fn stream(
        self: &Arc<Self>,
        store: Store,
        object: ObjectVersion,
        range: Range<u64>,
        why: Why,
    ) -> impl Stream<Item = Result<Bytes, StoreError>> + Send + 'static {
        let g = self.cache.geometry();
        let (start, end) = (range.start, range.end.min(object.size));
        let node = self.clone();
        let object = Arc::new(object);
        stream::iter(g.blocks(&(start..end), object.size))
            .map(move |i| {
                let (node, store, object) = (node.clone(), store.clone(), object.clone());
                async move {
                    let permit = node
                        .responses
                        .clone()
                        .acquire_owned()
                        .await
                        .expect("the response semaphore is never closed");
                    // On its own task: a client that stops reading must not hold the block's
                    // fill (and every other client waiting for that block) with it.
                    let (cache, obj) = (node.cache.clone(), object.clone());
                    let b =
                        strata_cache::detach(
                            async move { cache.get_block(&store, &obj, i, why).await },
                        )
                        .await?;
                    let r = g.block_range(i, object.size);
                    let from = (start.max(r.start) - r.start) as usize;
                    let to = (end.min(r.end) - r.start) as usize;
                    Ok::<_, StoreError>((b.slice(from..to), permit))
                }
            })
            .buffered(RESPONSE_WINDOW)
            // The permit is released when the block is handed to the connection.
            .map(|r| r.map(|(b, _permit)| b))
    }

    /// Like [`Node::stream`], with the first piece already read: a failure there (the object
    /// changed, the store refused) becomes an error status instead of a cut body. Later
    /// failures cut the body, as with any streamed HTTP response.
    pub async fn open_stream(
        self: &Arc<Self>,
        store: Store,
        object: ObjectVersion,
        range: Range<u64>,
        why: Why,
    ) -> Result<futures::stream::BoxStream<'static, Result<Bytes, StoreError>>, StoreError> {
        let mut s = self.stream(store, object, range, why).boxed();
        match s.next().await {
            None => Ok(stream::empty().boxed()),
            Some(Err(e)) => Err(e),
            Some(Ok(first)) => Ok(stream::iter([Ok(first)]).chain(s).boxed()),
        }
    }

    /// `range` of `object` (the object at `url`) as a response body, the first piece read
    /// before the headers go out ([`Node::open_stream`]). A failure forgets what HEAD said
    /// about `url` (a pinned read of a replaced object: the next read asks again) and is
    /// counted by kind. `hold` lives as long as the body.
    pub async fn body<H: Send + 'static>(
        self: &Arc<Self>,
        url: &StoreUrl,
        store: Store,
        object: ObjectVersion,
        range: Range<u64>,
        why: Why,
        hold: H,
    ) -> Result<crate::http::Body, StoreError> {
        use http_body_util::{BodyExt, StreamBody};
        let pieces = self
            .open_stream(store, object, range, why)
            .await
            .inspect_err(|_| self.forget(url))?;
        let (node, url) = (self.clone(), url.clone());
        let frames = pieces.map(move |r| {
            let _hold = &hold;
            r.map(hyper::body::Frame::data).map_err(|e| {
                node.forget(&url);
                crate::metrics::error(e.kind().label());
                Box::new(e) as crate::http::BoxError
            })
        });
        Ok(StreamBody::new(frames).boxed_unsync())
    }

    /// Blocks of response memory in use and in all.
    pub fn response_blocks(&self) -> (usize, usize) {
        (
            self.response_blocks - self.responses.available_permits(),
            self.response_blocks,
        )
    }
}
