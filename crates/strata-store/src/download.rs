//! The parallel ranged download engine.
//!
//! An object is split into parts ([`TransferConfig::part_size`], default 8 MiB), at most
//! [`TransferConfig::concurrency`] (default 16) are in flight, and each part is retried on its
//! own. Every part is checked against the ETag seen by the first request, so an object that
//! changes mid-download fails clearly instead of producing a mix of versions.
//!
//! Memory is bounded by `concurrency × part_size`: into a file, each part is written at its
//! offset by the task that fetched it; into a writer or a stream, a part keeps its slot
//! until the consumer has taken it, so parts waiting for an earlier one count too.
//! Files are written to a temporary name beside the destination, fsynced and renamed, so the
//! destination never holds a partial object.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::config::TransferConfig;
use crate::error::{Result, StoreError};
use crate::local::{TempGuard, start_writeback, sync_parent, temp_path};
use crate::store::{ObjectInfo, Store};
use crate::transfer::{Buffered, ProgressFn, TransferReport, combine_crc32c, plan_parts};

impl Store {
    /// Downloads `key` into the file `dest` (atomically: temp file, fsync, rename).
    pub async fn download_to_file(
        &self,
        key: &str,
        dest: &Path,
        opts: &TransferConfig,
        progress: Option<ProgressFn>,
    ) -> Result<TransferReport> {
        let start = Instant::now();
        let info = self.head(key).await?;
        let tmp = temp_path(dest);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::io("create directory", dir, e))?;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| StoreError::io("create", &tmp, e))?;
        let guard = TempGuard::new(&tmp);
        let file = Arc::new(file);
        let result = async {
            file.set_len(info.size)
                .map_err(|e| StoreError::io("allocate", &tmp, e))?;
            let buffered = Arc::new(Buffered::default());
            let e_tag = info.e_tag.clone();
            let parts = plan_parts(info.size, opts.download_part_size(info.size));
            let n_parts = parts.len();
            let mut crcs: Vec<(usize, u32, u64)> = stream::iter(parts.into_iter().enumerate())
                .map(|(i, range)| {
                    let file = file.clone();
                    let buffered = buffered.clone();
                    let e_tag = e_tag.clone();
                    let progress = progress.clone();
                    let tmp = tmp.clone();
                    async move {
                        let offset = range.start;
                        let bytes = self.get_range(key, range, e_tag.as_deref()).await?;
                        let len = bytes.len() as u64;
                        buffered.add(len);
                        let crc = crc32c::crc32c(&bytes);
                        let written = tokio::task::spawn_blocking(move || {
                            use std::os::unix::fs::FileExt;
                            file.write_all_at(&bytes, offset)?;
                            start_writeback(&file, offset, bytes.len() as u64);
                            Ok::<_, std::io::Error>(())
                        })
                        .await
                        .map_err(|e| StoreError::io("write", &tmp, std::io::Error::other(e)))?;
                        buffered.sub(len);
                        written.map_err(|e| StoreError::io("write", &tmp, e))?;
                        if let Some(p) = &progress {
                            p(len);
                        }
                        Ok::<_, StoreError>((i, crc, len))
                    }
                })
                .buffer_unordered(opts.concurrency)
                .try_collect()
                .await?;
            crcs.sort_unstable_by_key(|c| c.0);
            let f = file.clone();
            tokio::task::spawn_blocking(move || f.sync_all())
                .await
                .map_err(|e| StoreError::io("fsync", &tmp, std::io::Error::other(e)))?
                .map_err(|e| StoreError::io("fsync", &tmp, e))?;
            let crc = combine_crc32c(&crcs.iter().map(|c| (c.1, c.2)).collect::<Vec<_>>());
            Ok::<_, StoreError>(TransferReport {
                bytes: info.size,
                parts: n_parts,
                elapsed_secs: 0.0,
                e_tag: info.e_tag.clone(),
                crc32c: crc,
                part_crc32c: Vec::new(),
                multipart: false,
                peak_buffered: buffered.peak(),
                complete_secs: 0.0,
            })
        }
        .await;
        let mut report = result?;
        std::fs::rename(&tmp, dest).map_err(|e| StoreError::io("rename", dest, e))?;
        guard.keep();
        sync_parent(dest);
        report.elapsed_secs = start.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Streams `key` in order, part by part, fetching up to `opts.concurrency` parts ahead.
    /// `info` comes from [`Store::head`]. Each item is one part.
    pub fn download_stream(
        &self,
        key: &str,
        info: &ObjectInfo,
        opts: &TransferConfig,
    ) -> BoxStream<'static, Result<Bytes>> {
        self.part_stream(key, info, opts, None)
            .map_ok(|(b, _)| b)
            .boxed()
    }

    /// Streams parts in order with the slot each holds; the slot is released when dropped.
    fn part_stream(
        &self,
        key: &str,
        info: &ObjectInfo,
        opts: &TransferConfig,
        buffered: Option<Arc<Buffered>>,
    ) -> BoxStream<'static, Result<(Bytes, SlotGuard)>> {
        let store = self.clone();
        let key: Arc<str> = key.into();
        let e_tag = info.e_tag.clone();
        let slots = Arc::new(Semaphore::new(opts.concurrency));
        stream::iter(plan_parts(info.size, opts.download_part_size(info.size)))
            .map(move |range: Range<u64>| {
                let store = store.clone();
                let key = key.clone();
                let e_tag = e_tag.clone();
                let slots = slots.clone();
                let buffered = buffered.clone();
                async move {
                    let permit = slots
                        .acquire_owned()
                        .await
                        .expect("semaphore is never closed");
                    let bytes = store.get_range(&key, range, e_tag.as_deref()).await?;
                    let len = bytes.len() as u64;
                    if let Some(b) = &buffered {
                        b.add(len);
                    }
                    Ok((
                        bytes,
                        SlotGuard {
                            _permit: permit,
                            buffered,
                            len,
                        },
                    ))
                }
            })
            .buffered(opts.concurrency)
            .boxed()
    }

    /// Downloads `key` in order into `out` (for example standard output).
    pub async fn download_to_writer<W: AsyncWrite + Unpin>(
        &self,
        key: &str,
        out: &mut W,
        opts: &TransferConfig,
        progress: Option<ProgressFn>,
    ) -> Result<TransferReport> {
        let start = Instant::now();
        let info = self.head(key).await?;
        let buffered = Arc::new(Buffered::default());
        let mut parts = self.part_stream(key, &info, opts, Some(buffered.clone()));
        let mut crc = 0u32;
        let mut n = 0;
        while let Some(item) = parts.next().await {
            let (bytes, _slot) = item?;
            crc = crc32c::crc32c_append(crc, &bytes);
            out.write_all(&bytes)
                .await
                .map_err(|e| StoreError::io("write", "output", e))?;
            if let Some(p) = &progress {
                p(bytes.len() as u64);
            }
            n += 1;
        }
        out.flush()
            .await
            .map_err(|e| StoreError::io("flush", "output", e))?;
        Ok(TransferReport {
            bytes: info.size,
            parts: n,
            elapsed_secs: start.elapsed().as_secs_f64(),
            e_tag: info.e_tag,
            crc32c: crc,
            part_crc32c: Vec::new(),
            multipart: false,
            peak_buffered: buffered.peak(),
            complete_secs: 0.0,
        })
    }

    /// Downloads `key` into memory.
    pub async fn download_to_vec(
        &self,
        key: &str,
        opts: &TransferConfig,
    ) -> Result<(Vec<u8>, TransferReport)> {
        let mut out = Vec::new();
        let report = self.download_to_writer(key, &mut out, opts, None).await?;
        Ok((out, report))
    }
}

/// A download slot, released (and its bytes uncounted) when the consumer drops it.
pub(crate) struct SlotGuard {
    _permit: tokio::sync::OwnedSemaphorePermit,
    buffered: Option<Arc<Buffered>>,
    len: u64,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Some(b) = &self.buffered {
            b.sub(self.len);
        }
    }
}
