//! Where missing blocks come from. The cache never opens a connection: it asks a
//! [`BlockSource`]. strata-store's [`Store`] is one (ranged GETs with the store layer's
//! retries, limits and metrics, checked against the object's ETag).

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use strata_store::{ObjectInfo, Store, StoreError};

use crate::bufpool::BufPool;
use crate::key::ObjectVersion;

/// An error from a source, kept whole so callers can inspect it (for example downcast to
/// `strata_store::StoreError` for its kind).
pub type FetchError = Box<dyn std::error::Error + Send + Sync>;

/// Fetches byte ranges of object versions.
pub trait BlockSource: Send + Sync {
    /// Reads `range` of `object`; must fail rather than return another version's bytes.
    fn fetch(
        &self,
        object: &ObjectVersion,
        range: Range<u64>,
    ) -> BoxFuture<'static, Result<Bytes, FetchError>>;

    /// Like [`BlockSource::fetch`], into a buffer taken from `pool` that returns to it when
    /// the bytes are dropped (see [`crate::bufpool`]). Default: [`BlockSource::fetch`].
    fn fetch_pooled(
        &self,
        object: &ObjectVersion,
        range: Range<u64>,
        pool: &Arc<BufPool>,
    ) -> BoxFuture<'static, Result<Bytes, FetchError>> {
        let _ = pool;
        self.fetch(object, range)
    }
}

impl BlockSource for Store {
    fn fetch(
        &self,
        object: &ObjectVersion,
        range: Range<u64>,
    ) -> BoxFuture<'static, Result<Bytes, FetchError>> {
        let store = self.clone();
        let path = object.path.clone();
        let version = object.version.clone();
        Box::pin(async move {
            let e_tag = (!version.is_empty()).then_some(&*version);
            store
                .get_range(&path, range, e_tag)
                .await
                .map_err(|e| Box::new(e) as FetchError)
        })
    }

    fn fetch_pooled(
        &self,
        object: &ObjectVersion,
        range: Range<u64>,
        pool: &Arc<BufPool>,
    ) -> BoxFuture<'static, Result<Bytes, FetchError>> {
        let store = self.clone();
        let path = object.path.clone();
        let version = object.version.clone();
        let pool = pool.clone();
        Box::pin(async move {
            let e_tag = (!version.is_empty()).then_some(&*version);
            let buf = pool.take((range.end - range.start) as usize);
            store
                .get_range_into(&path, range, e_tag, buf)
                .await
                .map(|b| pool.freeze(b))
                .map_err(|e| Box::new(e) as FetchError)
        })
    }
}

/// The cache identity of a listed object. Some stores (s3s-fs among them) list objects
/// without ETags (or with empty ones); then the object is asked for its ETag, so that a remote object is never
/// cached under an empty version, which could not tell versions apart.
pub async fn object_version(store: &Store, info: &ObjectInfo) -> Result<ObjectVersion, StoreError> {
    let root = store.root().to_string();
    match info
        .e_tag
        .as_deref()
        .filter(|e| !strata_store::store::normalize_etag(e).is_empty())
    {
        Some(e) => Ok(ObjectVersion::new(&root, &info.key, e, info.size)),
        None => {
            let head = store.head(&info.key).await?;
            Ok(ObjectVersion::new(
                &root,
                &info.key,
                head.e_tag.as_deref().unwrap_or(""),
                head.size,
            ))
        }
    }
}
