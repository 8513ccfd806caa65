//! `strata cp SRC DST [-r]`.

use std::time::Instant;

use anyhow::{Result, bail};
use futures::{StreamExt, TryStreamExt};
use strata_cache::BlockCache;
use strata_store::url::safe_relative_key;
use strata_store::{ProgressFn, Skipped, Store, StoreUrl, TransferConfig, TransferReport};

use crate::args::CpArgs;
use crate::output;
use crate::settings::Settings;

/// One object or file to copy.
#[derive(Debug, Clone)]
pub struct Job {
    pub src: StoreUrl,
    pub dst: StoreUrl,
    pub size: u64,
    /// The source's ETag, when listed (for reading through the cache).
    pub e_tag: Option<String>,
}

#[derive(serde::Serialize)]
struct Copied {
    src: String,
    dst: String,
    bytes: u64,
    elapsed_secs: f64,
    crc32c: Option<String>,
}

pub async fn run(args: &CpArgs, s: &Settings) -> Result<()> {
    let src = StoreUrl::parse(&args.src)?;
    let dst = StoreUrl::parse(&args.dst)?;
    let src_store = Store::open(&src, &s.store)?.with_follow_symlinks(args.follow_symlinks);
    let dst_store = Store::open(&dst, &s.store)?;
    let (jobs, skipped) = plan(&src, &dst, &src_store, args.recursive).await?;
    let skipped = output::report_skipped(&skipped);
    let total: u64 = jobs.iter().map(|j| j.size).sum();
    let start = Instant::now();
    let (bar, progress) = output::bytes_bar(total, s.progress, "copying");
    // Memory stays within parts-in-flight × part size overall: with several files in flight,
    // each gets a share of the parts.
    let files = s.store.transfer.files_in_flight.min(jobs.len()).max(1);
    let mut opts = s.store.transfer.clone();
    if files > 1 {
        opts.concurrency = (opts.concurrency / files).max(2);
        opts.upload_concurrency = (opts.upload_concurrency / files).max(2);
    }
    let cache = if s.read_through {
        Some(s.open_cache(true)?)
    } else {
        None
    };
    let copied: Vec<(Job, TransferReport)> = futures::stream::iter(jobs)
        .map(|job| {
            let (src_store, dst_store, opts, progress, cache) = (
                &src_store,
                &dst_store,
                &opts,
                progress.clone(),
                cache.as_ref(),
            );
            async move {
                let r = copy_one(src_store, &job, dst_store, opts, cache, Some(progress)).await?;
                Ok::<_, anyhow::Error>((job, r))
            }
        })
        .buffer_unordered(files)
        .try_collect()
        .await?;
    if let Some(c) = &cache {
        // Blocks are written behind the reads: keep them for the next process.
        c.flush().await;
    }
    bar.finish_and_clear();
    let elapsed = start.elapsed().as_secs_f64();
    let bytes: u64 = copied.iter().map(|c| c.1.bytes).sum();
    if s.json {
        let list: Vec<Copied> = copied
            .iter()
            .map(|(j, r)| Copied {
                src: j.src.to_string(),
                dst: j.dst.to_string(),
                bytes: r.bytes,
                elapsed_secs: r.elapsed_secs,
                crc32c: (r.crc32c != 0 || r.bytes == 0).then(|| format!("{:08x}", r.crc32c)),
            })
            .collect();
        output::json(&serde_json::json!({
            "files": list.len(), "bytes": bytes, "elapsed_secs": elapsed,
            "mib_per_sec": bytes as f64 / (1 << 20) as f64 / elapsed.max(1e-9), "copied": list,
        }));
    } else if !s.progress || copied.len() > 1 {
        eprintln!(
            "copied {} file(s), {} in {:.2}s ({:.1} MiB/s)",
            copied.len(),
            strata_units::format_size(bytes),
            elapsed,
            bytes as f64 / (1 << 20) as f64 / elapsed.max(1e-9)
        );
    }
    match skipped {
        0 => Ok(()),
        n => Err(output::PartlySkipped(n).into()),
    }
}

/// Works out what to copy where, and what to leave out: entries the listing could not carry
/// and keys that would leave the destination, each with its reason.
pub async fn plan(
    src: &StoreUrl,
    dst: &StoreUrl,
    src_store: &Store,
    recursive: bool,
) -> Result<(Vec<Job>, Vec<Skipped>)> {
    let local_dir = |u: &StoreUrl| u.local_path().is_some_and(|p| p.is_dir());
    if recursive {
        let (objects, mut skipped) = src_store.list_checked(src.key()).await?;
        if objects.is_empty() && skipped.is_empty() {
            if !src.is_prefix_syntax() && !local_dir(src) {
                // `cp -r` of a single object copies that object.
                if let Ok(info) = src_store.head(src.key()).await {
                    return Ok((vec![single_target(src, dst, &info)?], Vec::new()));
                }
            }
            return Err(strata_store::StoreError::empty_prefix(src).into());
        }
        let base = if src.key().is_empty() {
            String::new()
        } else {
            format!("{}/", src.key())
        };
        let mut jobs = Vec::with_capacity(objects.len());
        for o in objects.into_iter().filter(|o| !is_temp_name(&o.key)) {
            let rel = o.key.strip_prefix(&base).unwrap_or(&o.key);
            match safe_relative_key(rel).and_then(|rel| dst.join(&rel)) {
                Ok(to) => jobs.push(Job {
                    src: src.with_key(&o.key),
                    dst: to,
                    size: o.size,
                    e_tag: o.e_tag,
                }),
                Err(e) => skipped.push(Skipped {
                    key: o.key.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        return Ok((jobs, skipped));
    }
    if src.is_prefix_syntax() || local_dir(src) {
        bail!("{src} is a prefix or directory; use -r to copy what is under it");
    }
    let info = src_store.head(src.key()).await?;
    Ok((vec![single_target(src, dst, &info)?], Vec::new()))
}

fn single_target(src: &StoreUrl, dst: &StoreUrl, info: &strata_store::ObjectInfo) -> Result<Job> {
    let into = dst.is_prefix_syntax() || dst.local_path().is_some_and(|p| p.is_dir());
    let dst = if into {
        let name = src
            .file_name()
            .ok_or_else(|| anyhow::anyhow!("{src} has no file name"))?;
        dst.join(name)?
    } else {
        dst.clone()
    };
    if &dst == src {
        bail!("{src} and {dst} are the same object");
    }
    Ok(Job {
        src: src.clone(),
        dst,
        size: info.size,
        e_tag: info.e_tag.clone(),
    })
}

/// Temporary files of an unfinished download; never copied.
fn is_temp_name(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    name.starts_with('.') && name.contains(".strata-") && name.ends_with(".tmp")
}

/// Copies one object, choosing the engine by where the bytes are.
pub async fn copy_one(
    src_store: &Store,
    job: &Job,
    dst_store: &Store,
    opts: &TransferConfig,
    cache: Option<&BlockCache>,
    progress: Option<ProgressFn>,
) -> Result<TransferReport> {
    let (src, dst) = (&job.src, &job.dst);
    if let (Some(cache), None) = (cache, src.local_path()) {
        return copy_through_cache(cache, src_store, job, dst_store, opts, progress).await;
    }
    let report = match (src.local_path(), dst.local_path()) {
        (Some(from), Some(to)) => {
            let r = tokio::task::spawn_blocking(move || strata_store::local::copy_file(&from, &to))
                .await??;
            if let Some(p) = &progress {
                p(r.bytes);
            }
            r
        }
        (None, Some(to)) => {
            src_store
                .download_to_file(src.key(), &to, opts, progress)
                .await?
        }
        (Some(from), None) => {
            dst_store
                .upload_file(&from, dst.key(), opts, progress)
                .await?
        }
        (None, None) => {
            dst_store
                .copy_from(src_store, src.key(), dst.key(), opts, progress)
                .await?
        }
    };
    Ok(report)
}

/// A remote source read through the block cache, into a local file or another store.
async fn copy_through_cache(
    cache: &BlockCache,
    src_store: &Store,
    job: &Job,
    dst_store: &Store,
    opts: &TransferConfig,
    progress: Option<ProgressFn>,
) -> Result<TransferReport> {
    let start = std::time::Instant::now();
    let listed = strata_store::ObjectInfo {
        key: job.src.key().to_string(),
        size: job.size,
        e_tag: job.e_tag.clone(),
        version: None,
        last_modified: chrono::Utc::now(),
    };
    let object = strata_cache::object_version(src_store, &listed).await?;
    let bytes = match job.dst.local_path() {
        Some(to) => {
            let tick = |n: u64| {
                if let Some(p) = &progress {
                    p(n)
                }
            };
            cache.read_to_file(src_store, &object, &to, &tick).await?
        }
        None => {
            let read = |_i: usize, r: std::ops::Range<u64>| {
                let object = &object;
                async move {
                    cache
                        .read(src_store, object, r)
                        .await
                        .map_err(strata_store::StoreError::from)
                }
            };
            dst_store
                .upload_with(job.dst.key(), job.size, opts, read, progress)
                .await?
                .bytes
        }
    };
    Ok(TransferReport {
        bytes,
        parts: 1,
        elapsed_secs: start.elapsed().as_secs_f64(),
        ..Default::default()
    })
}
