//! Limits as a wrapper around any backend: a requests-per-second token bucket, a
//! bytes-per-second token bucket (payload in both directions), and a cap on requests in
//! flight. The wrapper implements both object_store traits the engines use
//! ([`ObjectStore`] and [`MultipartStore`]), so limits apply to every request, whichever
//! engine sends it.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartId, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Limits;
use crate::token_bucket::TokenBucket;

/// A backend with limits applied. See the module documentation.
pub struct LimitedStore<T: ?Sized> {
    inner: Arc<T>,
    requests: Option<Arc<TokenBucket>>,
    bytes: Option<Arc<TokenBucket>>,
    slots: Option<Arc<Semaphore>>,
}

impl<T: ?Sized> LimitedStore<T> {
    /// Wraps `inner`. Unset limits cost nothing.
    pub fn new(inner: Arc<T>, limits: &Limits) -> Self {
        Self {
            inner,
            // A burst of one second's worth, so short bursts are not penalised.
            requests: limits
                .requests_per_sec
                .map(|r| Arc::new(TokenBucket::new(r, r.max(1.0)))),
            bytes: limits
                .bytes_per_sec
                .map(|b| Arc::new(TokenBucket::new(b as f64, (b as f64 / 10.0).max(65536.0)))),
            slots: limits.max_requests.map(|n| Arc::new(Semaphore::new(n))),
        }
    }

    /// Waits for a request slot and a request token. The permit is held for the request.
    async fn admit(&self) -> Option<OwnedSemaphorePermit> {
        let permit = match &self.slots {
            Some(s) => s.clone().acquire_owned().await.ok(),
            None => None,
        };
        if let Some(r) = &self.requests {
            r.acquire(1).await;
        }
        permit
    }

    /// A listing that starts once a request token is paid. object_store pages listings
    /// inside its stream, out of our sight, so a listing is charged one request, not one per
    /// page.
    fn paced_listing(
        &self,
        inner: BoxStream<'static, Result<ObjectMeta>>,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        match &self.requests {
            None => inner,
            Some(r) => {
                let wait = r.reserve(1);
                futures::stream::once(async move {
                    tokio::time::sleep(wait).await;
                    inner
                })
                .flatten()
                .boxed()
            }
        }
    }

    async fn pay_bytes(&self, n: u64) {
        if let Some(b) = &self.bytes {
            b.acquire(n).await;
        }
    }
}

impl<T: ?Sized> fmt::Debug for LimitedStore<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimitedStore")
            .field(
                "requests_per_sec",
                &self.requests.as_ref().map(|b| b.rate()),
            )
            .field("bytes_per_sec", &self.bytes.as_ref().map(|b| b.rate()))
            .field(
                "max_requests",
                &self.slots.as_ref().map(|s| s.available_permits()),
            )
            .finish()
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for LimitedStore<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Limited({})", self.inner)
    }
}

#[async_trait]
impl<T: ObjectStore + ?Sized> ObjectStore for LimitedStore<T> {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let _permit = self.admit().await;
        self.pay_bytes(payload.content_length() as u64).await;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let _permit = self.admit().await;
        let upload = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(LimitedUpload {
            inner: upload,
            bytes: self.bytes.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let permit = self.admit().await;
        let mut result = self.inner.get_opts(location, options).await?;
        if self.bytes.is_none() && permit.is_none() {
            return Ok(result);
        }
        // Pace the body chunk by chunk, and hold the request slot until the body is read.
        let bytes = self.bytes.clone();
        let payload = std::mem::replace(
            &mut result.payload,
            GetResultPayload::Stream(futures::stream::empty().boxed()),
        );
        let stream = match payload {
            GetResultPayload::Stream(s) => s,
            file @ GetResultPayload::File(..) => GetResult {
                payload: file,
                meta: result.meta.clone(),
                range: result.range.clone(),
                attributes: result.attributes.clone(),
                extensions: result.extensions.clone(),
            }
            .into_stream(),
        };
        let paced = stream
            .then(move |chunk| {
                let bytes = bytes.clone();
                async move {
                    if let (Ok(c), Some(b)) = (&chunk, &bytes) {
                        b.acquire(c.len() as u64).await;
                    }
                    chunk
                }
            })
            .map(move |c| {
                let _hold = &permit;
                c
            });
        result.payload = GetResultPayload::Stream(paced.boxed());
        Ok(result)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let mut out = Vec::with_capacity(ranges.len());
        for r in ranges {
            let res = self
                .get_opts(
                    location,
                    GetOptions {
                        range: Some(r.clone().into()),
                        ..Default::default()
                    },
                )
                .await?;
            out.push(res.bytes().await?);
        }
        Ok(out)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        // Deletes are cheap and batched by the backend; only the request rate is paced.
        let requests = self.requests.clone();
        let paced = locations
            .then(move |p| {
                let requests = requests.clone();
                async move {
                    if let Some(r) = &requests {
                        r.acquire(1).await;
                    }
                    p
                }
            })
            .boxed();
        self.inner.delete_stream(paced)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.paced_listing(self.inner.list(prefix))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.paced_listing(self.inner.list_with_offset(prefix, offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let _permit = self.admit().await;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let _permit = self.admit().await;
        self.inner.copy_opts(from, to, options).await
    }
}

#[async_trait]
impl<T: MultipartStore + ?Sized> MultipartStore for LimitedStore<T> {
    async fn create_multipart(&self, path: &Path) -> Result<MultipartId> {
        let _permit = self.admit().await;
        self.inner.create_multipart(path).await
    }

    async fn put_part(
        &self,
        path: &Path,
        id: &MultipartId,
        part_idx: usize,
        data: PutPayload,
    ) -> Result<PartId> {
        let _permit = self.admit().await;
        self.pay_bytes(data.content_length() as u64).await;
        self.inner.put_part(path, id, part_idx, data).await
    }

    async fn complete_multipart(
        &self,
        path: &Path,
        id: &MultipartId,
        parts: Vec<PartId>,
    ) -> Result<PutResult> {
        let _permit = self.admit().await;
        self.inner.complete_multipart(path, id, parts).await
    }

    async fn abort_multipart(&self, path: &Path, id: &MultipartId) -> Result<()> {
        let _permit = self.admit().await;
        self.inner.abort_multipart(path, id).await
    }
}

/// Paces the parts of an upload started through [`ObjectStore::put_multipart_opts`].
#[derive(Debug)]
struct LimitedUpload {
    inner: Box<dyn MultipartUpload>,
    bytes: Option<Arc<TokenBucket>>,
}

#[async_trait]
impl MultipartUpload for LimitedUpload {
    fn put_part(&mut self, data: PutPayload) -> object_store::UploadPart {
        let wait = self
            .bytes
            .as_ref()
            .map(|b| b.reserve(data.content_length() as u64));
        let fut = self.inner.put_part(data);
        Box::pin(async move {
            if let Some(w) = wait {
                tokio::time::sleep(w).await;
            }
            fut.await
        })
    }

    async fn complete(&mut self) -> Result<PutResult> {
        self.inner.complete().await
    }

    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
}
