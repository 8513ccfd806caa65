//! The multipart upload engine.
//!
//! Objects up to [`TransferConfig::single_put_threshold`] (default 8 MiB) go up in one PUT.
//! Larger ones are split into parts of [`TransferConfig::upload_part_size`] (at least 5 MiB,
//! default 8 MiB), at most [`TransferConfig::upload_concurrency`] (default 16) in flight, each
//! read from its source only when its slot is free (memory is bounded by parts in flight ×
//! part size) and retried on its own. Each part's CRC32C is computed and returned in the
//! report; with `s3.checksum` set, S3 also verifies every part with its additional checksum.
//!
//! On failure, and when the upload future is dropped, the multipart upload is aborted so no
//! orphaned parts stay behind (and bill) on the store.

use std::future::Future;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::store::object_path;
use bytes::Bytes;
use futures::future::OptionFuture;
use futures::stream::{self, StreamExt, TryStreamExt};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjPath;
use object_store::{MultipartId, ObjectStoreExt, PutPayload};

use crate::config::{RetryPolicy, TransferConfig};
use crate::error::{ErrorKind, Result, StoreError};
use crate::metrics as m;
use crate::retry::with_retry;
use crate::store::Store;
use crate::transfer::{
    Buffered, PartSlots, ProgressFn, TransferReport, combine_crc32c, plan_parts,
};

impl Store {
    /// Uploads the local file `src` to `key`.
    pub async fn upload_file(
        &self,
        src: &Path,
        key: &str,
        opts: &TransferConfig,
        progress: Option<ProgressFn>,
    ) -> Result<TransferReport> {
        let file = std::fs::File::open(src).map_err(|e| StoreError::io("open", src, e))?;
        let size = file
            .metadata()
            .map_err(|e| StoreError::io("stat", src, e))?
            .len();
        let file = Arc::new(file);
        let src_name: Arc<str> = src.display().to_string().into();
        let read = move |_i: usize, range: Range<u64>| {
            let file = file.clone();
            let src_name = src_name.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    use std::os::unix::fs::FileExt;
                    let mut buf = vec![0u8; (range.end - range.start) as usize];
                    file.read_exact_at(&mut buf, range.start)
                        .map(|_| Bytes::from(buf))
                })
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r)
                .map_err(|e| StoreError::Io {
                    op: "read",
                    path: src_name.to_string(),
                    source: e,
                })
            }
        };
        self.upload_with(key, size, opts, read, progress).await
    }

    /// Uploads an in-memory buffer to `key`.
    pub async fn upload_bytes(
        &self,
        data: Bytes,
        key: &str,
        opts: &TransferConfig,
        progress: Option<ProgressFn>,
    ) -> Result<TransferReport> {
        self.upload_bytes_sharing(data, key, opts, None, progress)
            .await
    }

    /// Uploads an in-memory buffer to `key`, its parts taking slots from `slots` (shared
    /// with other uploads) as well as from its own `upload_concurrency`.
    pub async fn upload_bytes_sharing(
        &self,
        data: Bytes,
        key: &str,
        opts: &TransferConfig,
        slots: Option<&PartSlots>,
        progress: Option<ProgressFn>,
    ) -> Result<TransferReport> {
        let size = data.len() as u64;
        let read = move |_i: usize, r: Range<u64>| {
            let data = data.clone();
            async move { Ok(data.slice(r.start as usize..r.end as usize)) }
        };
        self.upload_engine(key, size, opts, read, slots, progress)
            .await
    }

    /// Copies `src_key` of the store `src` to `key` of this store. Within one bucket the
    /// store copies server-side; across stores, parts are read with ranged GETs and written
    /// as upload parts, in parallel, with memory bounded as for uploads.
    pub async fn copy_from(
        &self,
        src: &Store,
        src_key: &str,
        key: &str,
        opts: &TransferConfig,
        progress: Option<ProgressFn>,
    ) -> Result<TransferReport> {
        let start = Instant::now();
        let info = src.head(src_key).await?;
        if src.root() == self.root() && info.size <= 5 << 30 && self.root().scheme().is_remote() {
            let url = self.url(key);
            let (from, to) = (object_path(src_key)?, object_path(key)?);
            with_retry(&self.config.retry, "COPY", &url, || {
                let os = self.os.clone();
                let (from, to) = (from.clone(), to.clone());
                async move { os.copy(&from, &to).await }
            })
            .await?;
            if let Some(p) = &progress {
                p(info.size);
            }
            return Ok(TransferReport {
                bytes: info.size,
                parts: 1,
                elapsed_secs: start.elapsed().as_secs_f64(),
                e_tag: info.e_tag,
                ..Default::default()
            });
        }
        let src = src.clone();
        let src_key: Arc<str> = src_key.into();
        let e_tag = info.e_tag.clone();
        let read = move |_i: usize, r: Range<u64>| {
            let src = src.clone();
            let src_key = src_key.clone();
            let e_tag = e_tag.clone();
            async move { src.get_range(&src_key, r, e_tag.as_deref()).await }
        };
        self.upload_with(key, info.size, opts, read, progress).await
    }

    /// The engine: one PUT for small objects, else a parallel multipart upload whose parts
    /// come from `read(part_index, byte_range)`.
    pub async fn upload_with<F, Fut>(
        &self,
        key: &str,
        size: u64,
        opts: &TransferConfig,
        read: F,
        progress: Option<ProgressFn>,
    ) -> Result<TransferReport>
    where
        F: Fn(usize, Range<u64>) -> Fut,
        Fut: Future<Output = Result<Bytes>>,
    {
        self.upload_engine(key, size, opts, read, None, progress)
            .await
    }

    async fn upload_engine<F, Fut>(
        &self,
        key: &str,
        size: u64,
        opts: &TransferConfig,
        read: F,
        slots: Option<&PartSlots>,
        progress: Option<ProgressFn>,
    ) -> Result<TransferReport>
    where
        F: Fn(usize, Range<u64>) -> Fut,
        Fut: Future<Output = Result<Bytes>>,
    {
        let start = Instant::now();
        if size <= opts.single_put_threshold {
            let _slot = OptionFuture::from(slots.map(PartSlots::part)).await;
            let data = if size == 0 {
                Bytes::new()
            } else {
                read(0, 0..size).await?
            };
            let crc = crc32c::crc32c(&data);
            let e_tag = self.put(key, data).await?;
            if let Some(p) = &progress {
                p(size);
            }
            return Ok(TransferReport {
                bytes: size,
                parts: 1,
                elapsed_secs: start.elapsed().as_secs_f64(),
                e_tag,
                crc32c: crc,
                part_crc32c: vec![crc],
                multipart: false,
                peak_buffered: size,
                complete_secs: 0.0,
            });
        }
        let mut report = match &self.mp {
            Some(mp) => {
                self.multipart(mp.clone(), (key, size), opts, &read, slots, progress)
                    .await?
            }
            None => {
                self.streamed_upload(key, size, opts, &read, progress)
                    .await?
            }
        };
        report.elapsed_secs = start.elapsed().as_secs_f64();
        Ok(report)
    }

    /// A parallel multipart upload of the object `(key, size)`.
    async fn multipart<F, Fut>(
        &self,
        mp: Arc<dyn MultipartStore>,
        (key, size): (&str, u64),
        opts: &TransferConfig,
        read: &F,
        slots: Option<&PartSlots>,
        progress: Option<ProgressFn>,
    ) -> Result<TransferReport>
    where
        F: Fn(usize, Range<u64>) -> Fut,
        Fut: Future<Output = Result<Bytes>>,
    {
        let url = self.url(key);
        let path = object_path(key)?;
        let policy = &self.config.retry;
        // Held while parts are sent, given back before the completion.
        let sending = OptionFuture::from(slots.map(PartSlots::upload)).await;
        let id = with_retry(policy, "CreateMultipartUpload", &url, || {
            let mp = mp.clone();
            let path = path.clone();
            async move { mp.create_multipart(&path).await }
        })
        .await?;
        let mut guard = AbortGuard {
            mp: mp.clone(),
            path: path.clone(),
            id: Some(id.clone()),
            policy: policy.clone(),
        };
        let buffered = Buffered::default();
        let parts = plan_parts(size, opts.upload_part_size_for(size));
        let n_parts = parts.len();
        let uploaded: Result<Vec<(usize, PartId, u32, u64)>> =
            stream::iter(parts.into_iter().enumerate())
                .map(|(i, range)| {
                    let (mp, path, id, url, buffered, progress) = (
                        mp.clone(),
                        path.clone(),
                        id.clone(),
                        url.clone(),
                        &buffered,
                        progress.clone(),
                    );
                    async move {
                        let _slot = OptionFuture::from(slots.map(PartSlots::part)).await;
                        let data = read(i, range).await?;
                        let len = data.len() as u64;
                        buffered.add(len);
                        let crc = crc32c::crc32c(&data);
                        let part = with_retry(policy, "UploadPart", &url, || {
                            let (mp, path, id) = (mp.clone(), path.clone(), id.clone());
                            let payload = PutPayload::from(data.clone());
                            async move { mp.put_part(&path, &id, i, payload).await }
                        })
                        .await;
                        buffered.sub(len);
                        let part = part?;
                        m::record_bytes_written(len);
                        if let Some(p) = &progress {
                            p(len);
                        }
                        Ok((i, part, crc, len))
                    }
                })
                .buffer_unordered(opts.upload_concurrency)
                .try_collect()
                .await;
        let mut uploaded = match uploaded {
            Ok(u) => u,
            Err(e) => {
                guard.abort().await;
                return Err(e);
            }
        };
        drop(sending);
        uploaded.sort_unstable_by_key(|u| u.0);
        let crcs: Vec<(u32, u64)> = uploaded.iter().map(|u| (u.2, u.3)).collect();
        let part_ids: Vec<PartId> = uploaded.into_iter().map(|u| u.1).collect();
        let t_complete = Instant::now();
        let completed = with_retry(policy, "CompleteMultipartUpload", &url, || {
            let (mp, path, id, part_ids) = (mp.clone(), path.clone(), id.clone(), part_ids.clone());
            async move { mp.complete_multipart(&path, &id, part_ids).await }
        })
        .await;
        let complete_secs = t_complete.elapsed().as_secs_f64();
        tracing::debug!(
            "{url}: CompleteMultipartUpload of {n_parts} parts took {complete_secs:.3}s"
        );
        let e_tag = match completed {
            Ok(r) => r.e_tag,
            // A completion whose response was lost is retried and finds the upload gone; the
            // object is there if its size matches.
            Err(e) if e.kind() == ErrorKind::NotFound => match self.head(key).await {
                Ok(info) if info.size == size => info.e_tag,
                _ => {
                    guard.abort().await;
                    return Err(e);
                }
            },
            Err(e) => {
                guard.abort().await;
                return Err(e);
            }
        };
        guard.id = None;
        Ok(TransferReport {
            bytes: size,
            parts: n_parts,
            elapsed_secs: 0.0,
            e_tag,
            crc32c: combine_crc32c(&crcs),
            part_crc32c: crcs.iter().map(|c| c.0).collect(),
            multipart: true,
            peak_buffered: buffered.peak(),
            complete_secs,
        })
    }

    /// For backends without multipart parts (local files): parts are written one after the
    /// other through object_store's staged writer, which renames into place on completion.
    async fn streamed_upload<F, Fut>(
        &self,
        key: &str,
        size: u64,
        opts: &TransferConfig,
        read: &F,
        progress: Option<ProgressFn>,
    ) -> Result<TransferReport>
    where
        F: Fn(usize, Range<u64>) -> Fut,
        Fut: Future<Output = Result<Bytes>>,
    {
        let url = self.url(key);
        let fail = |e: object_store::Error| StoreError::Request {
            op: "PUT",
            url: url.to_string(),
            kind: crate::error::classify(&e),
            attempts: 1,
            elapsed: std::time::Duration::ZERO,
            cause: e.to_string(),
        };
        let mut upload = self
            .os
            .put_multipart(&object_path(key)?)
            .await
            .map_err(fail)?;
        let mut crcs = Vec::new();
        let parts = plan_parts(size, opts.upload_part_size_for(size));
        let n = parts.len();
        for (i, range) in parts.into_iter().enumerate() {
            let data = match read(i, range).await {
                Ok(d) => d,
                Err(e) => {
                    let _ = upload.abort().await;
                    return Err(e);
                }
            };
            let len = data.len() as u64;
            crcs.push((crc32c::crc32c(&data), len));
            if let Err(e) = upload.put_part(PutPayload::from(data)).await {
                let _ = upload.abort().await;
                return Err(fail(e));
            }
            if let Some(p) = &progress {
                p(len);
            }
        }
        let res = upload.complete().await.map_err(fail)?;
        m::record_bytes_written(size);
        Ok(TransferReport {
            bytes: size,
            parts: n,
            elapsed_secs: 0.0,
            e_tag: res.e_tag,
            crc32c: combine_crc32c(&crcs),
            part_crc32c: crcs.iter().map(|c| c.0).collect(),
            multipart: true,
            peak_buffered: opts.upload_part_size.min(size),
            complete_secs: 0.0,
        })
    }
}

/// Aborts a multipart upload that did not complete: explicitly on failure, or from `Drop`
/// (on a spawned task) when the upload future is cancelled.
struct AbortGuard {
    mp: Arc<dyn MultipartStore>,
    path: ObjPath,
    id: Option<MultipartId>,
    policy: RetryPolicy,
}

impl AbortGuard {
    async fn abort(&mut self) {
        if let Some(id) = self.id.take() {
            abort_upload(self.mp.clone(), self.path.clone(), id, self.policy.clone()).await;
        }
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if let Some(id) = self.id.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let (mp, path, policy) = (self.mp.clone(), self.path.clone(), self.policy.clone());
            handle.spawn(abort_upload(mp, path, id, policy));
        }
    }
}

async fn abort_upload(
    mp: Arc<dyn MultipartStore>,
    path: ObjPath,
    id: MultipartId,
    policy: RetryPolicy,
) {
    let shown = path.to_string();
    let res = with_retry(&policy, "AbortMultipartUpload", &shown, || {
        let (mp, path, id) = (mp.clone(), path.clone(), id.clone());
        async move { mp.abort_multipart(&path, &id).await }
    })
    .await;
    if let Err(e) = res {
        tracing::warn!(
            "could not abort the multipart upload of {shown}; it may need cleaning up with a lifecycle rule: {e}"
        );
    }
}
