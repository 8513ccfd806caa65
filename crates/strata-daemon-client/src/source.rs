//! Reading blocks through the daemon, as a block source under a process's own cache.

use std::ops::Range;

use bytes::Bytes;
use futures::future::BoxFuture;
use strata_cache::{BlockSource, FetchError, ObjectVersion};

use crate::client::DaemonClient;

/// A [`BlockSource`] that reads through the daemon: a process's own (DRAM-only) cache on
/// top, the node's cache below, and the object store fetched once per node.
#[derive(Clone, Debug)]
pub struct DaemonSource {
    /// The daemon read through.
    pub client: DaemonClient,
}

impl BlockSource for DaemonSource {
    fn fetch(
        &self,
        object: &ObjectVersion,
        range: Range<u64>,
    ) -> BoxFuture<'static, Result<Bytes, FetchError>> {
        let client = self.client.clone();
        let url = object_url(object);
        let (etag, size) = (object.version.clone(), object.size);
        Box::pin(async move {
            client
                .read_pinned(&url, &etag, size, range, false)
                .await
                .map_err(|e| Box::new(e) as FetchError)
        })
    }
}

/// The URL of an object version's object: its store root and its key.
pub fn object_url(o: &ObjectVersion) -> String {
    format!("{}/{}", o.store.trim_end_matches('/'), o.path)
}
