//! The drain: a saved part goes from the local tier (or staging memory) to the store under
//! fleet-wide admission, file after file with their completions overlapped, then the rank's
//! marker, the commit, and retention.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::save::{DrainProgress, Job, Payload, write_local};
use super::{Inner, blocking};
use crate::admission::Admission;
use crate::error::{CkptError, Result};
use crate::layout;
use crate::local::Item;
use crate::manifest::{FileEntry, Manifest, RankPart, Tier, checksums};
use crate::remote::RemoteTier;

/// What a drain did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DrainReport {
    /// The step drained.
    pub step: u64,
    /// Bytes this rank uploaded.
    pub bytes: u64,
    /// Seconds from the save to the commit.
    pub total_secs: f64,
    /// Seconds of jitter and admission wait before the upload.
    pub wait_secs: f64,
    /// Of those, seconds waiting for fleet-wide admission (a lease or a time slot).
    pub admission_wait_secs: f64,
    /// Seconds uploading this rank's files (the marker included).
    pub upload_secs: f64,
    /// Of those, the seconds the store took to complete the multipart upload of the file
    /// that finished last (no other upload overlapped it).
    pub last_complete_secs: f64,
    /// Seconds waiting for the other ranks and the commit.
    pub commit_secs: f64,
    /// The admission used: off, leases, slots (none without a store).
    pub admission: String,
    /// Whether the checkpoint is in the store (false: local only).
    pub remote: bool,
}

impl DrainReport {
    /// Upload throughput in MiB/s.
    pub fn upload_mib_per_sec(&self) -> f64 {
        self.bytes as f64 / (1 << 20) as f64 / self.upload_secs.max(1e-9)
    }
}

/// Where a file's bytes come from during its upload.
enum Source {
    /// Staging memory (snapshot mode).
    Memory(Bytes),
    /// The local tier's copy.
    File(std::path::PathBuf),
}

/// Uploads one file of a part: one object, or its pieces (two at a time, so that one
/// piece's completion overlaps the next one's upload). Each object's size and CRC32C are
/// checked against the part; returns the seconds the store took to complete the last one.
async fn upload_entry(
    remote: &RemoteTier,
    (step, rank, chunk): (u64, u32, u64),
    f: &FileEntry,
    source: Source,
    opts: &strata_store::TransferConfig,
    progress: strata_store::ProgressFn,
) -> Result<f64> {
    use futures::{StreamExt, TryStreamExt};
    let check = |rel: String, report: &strata_store::TransferReport, size: u64, crc: u32| {
        if report.bytes != size || report.crc32c != crc {
            return Err(CkptError::Corrupt {
                root: remote.display(),
                step,
                file: rel,
                cause: format!(
                    "uploaded {} bytes with CRC32C {:08x}; the part says {size} bytes, {crc:08x} (the local file changed?)",
                    report.bytes, report.crc32c
                ),
            });
        }
        Ok(report.complete_secs)
    };
    if f.piece_size.is_none() {
        let rel = layout::file_rel(step, rank, &f.name);
        let report = match source {
            Source::Memory(b) => {
                remote
                    .upload_bytes(b, &rel, opts, None, Some(progress))
                    .await?
            }
            Source::File(p) => remote.upload_file(&p, &rel, opts, Some(progress)).await?,
        };
        return check(rel, &report, f.size, f.crc32c);
    }
    let data = match source {
        Source::Memory(b) => b,
        Source::File(p) => {
            let file = std::fs::File::open(&p).map_err(|e| CkptError::io("open", &p, e))?;
            // SAFETY: the local tier's files are written once and never modified; each
            // piece's CRC32C is checked against the part after its upload all the same.
            let map =
                unsafe { memmap2::Mmap::map(&file) }.map_err(|e| CkptError::io("map", &p, e))?;
            Bytes::from_owner(map)
        }
    };
    if data.len() as u64 != f.size {
        return Err(CkptError::Corrupt {
            root: remote.display(),
            step,
            file: layout::file_rel(step, rank, &f.name),
            cause: format!("{} bytes to upload, the part says {}", data.len(), f.size),
        });
    }
    // Pieces share a budget of two pieces' parts in flight, sent by at most four pieces at
    // once: when one piece's last parts finish, the next pieces' parts take the freed slots,
    // and a piece's completion (the store may assemble the whole piece, which takes seconds
    // under load) runs beside the next pieces' parts instead of holding a slot, so the link
    // never empties at a piece boundary. Pieces are slices of one buffer or map: a piece
    // waiting for its turn costs no memory.
    const PIECES_OPEN: usize = 32;
    let slots = strata_store::PartSlots::new(2 * opts.upload_concurrency, 4);
    let completions: Vec<f64> = futures::stream::iter(f.objects(step, rank))
        .map(|(rel, r)| {
            let body = data.slice(r.start as usize..r.end as usize);
            let crc = f.crc_of(r.clone(), chunk);
            let progress = progress.clone();
            let (check, slots) = (&check, &slots);
            async move {
                let report = remote
                    .upload_bytes(body, &rel, opts, Some(slots), Some(progress))
                    .await?;
                check(rel, &report, r.end - r.start, crc)
            }
        })
        .buffer_unordered(PIECES_OPEN)
        .try_collect()
        .await?;
    Ok(completions.into_iter().fold(0.0, f64::max))
}

/// Items still in staging memory, and the room they hold there.
type Staged = (Vec<(String, Bytes)>, OwnedSemaphorePermit);

impl Inner {
    pub(super) fn root_display(&self) -> String {
        match (&self.remote, &self.local) {
            (Some(r), _) => r.display(),
            (None, Some(l)) => l.dir().display().to_string(),
            (None, None) => String::new(),
        }
    }

    async fn admission(&self) -> Result<&Admission> {
        let remote = self.remote.as_ref().expect("called with a remote");
        self.admission
            .get_or_try_init(|| async {
                Admission::resolve(
                    &self.cfg.drain.admission,
                    &remote.loc,
                    self.cfg.rank,
                    self.cfg.world_size,
                )
                .await
            })
            .await
    }

    pub(super) fn transfer(&self) -> strata_store::TransferConfig {
        match (&self.cfg.drain.transfer, &self.remote) {
            (Some(t), _) => t.clone(),
            (None, Some(r)) => r.loc.store.config().transfer.clone(),
            (None, None) => strata_store::StoreConfig::default().transfer,
        }
    }

    pub(super) async fn drain(&self, job: Job) -> Result<DrainReport> {
        let step = job.step;
        // 1. Staged bytes go to the local tier first (if there is one).
        let (part, staged) = self.place(step, job.payload).await?;
        let Some(remote) = &self.remote else {
            if let Err(e) = self.apply_retention(false).await {
                tracing::warn!("checkpoint retention: {e}");
            }
            return Ok(DrainReport {
                step,
                bytes: part.bytes(),
                total_secs: job.started.elapsed().as_secs_f64(),
                admission: "none".into(),
                ..Default::default()
            });
        };
        // 2. A step committed before is never overwritten.
        if remote.valid_manifest(step).await?.is_some() {
            return Err(CkptError::Exists {
                root: remote.display(),
                step,
            });
        }
        // 3. Jitter, then admission.
        let t_wait = Instant::now();
        let jitter = self.cfg.drain.jitter.mul_f64(rand::random::<f64>());
        tokio::time::sleep(jitter).await;
        let admission = self.admission().await?;
        let last = {
            let s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            (s.drains > 0).then(|| Duration::from_secs_f64(s.last_drain_secs))
        };
        let held = admission.acquire(last).await?;
        let admission_wait_secs = held.waited.as_secs_f64();
        let wait_secs = t_wait.elapsed().as_secs_f64();
        // 4. Upload this rank's files, then its marker.
        job.progress
            .total
            .store(part.bytes(), std::sync::atomic::Ordering::Relaxed);
        let t_up = Instant::now();
        let staged_items = staged.as_ref().map(|(items, _)| items.as_slice());
        // A snapshot goes up from memory while its local copy is written alongside (on the
        // blocking pool), instead of the upload reading back a local copy written first.
        let local_copy = match (&staged, &self.local) {
            (Some((items, _)), Some(_)) => Some(self.write_staged_locally(step, items.clone())),
            _ => None,
        };
        let local_copy: futures::future::OptionFuture<_> = local_copy.into();
        let (upload, local_copy) = futures::join!(
            self.upload_part(remote, &part, staged_items, &job.progress),
            local_copy
        );
        held.release().await;
        let last_complete_secs = upload?;
        drop(staged);
        let local_copy_ok = match local_copy {
            Some(Err(e)) => {
                // The store will hold the checkpoint: a failed local copy costs the fast
                // restore, not the checkpoint.
                tracing::warn!("checkpoint step {step}: local copy: {e}; the store's copy stands");
                false
            }
            _ => true,
        };
        let upload_secs = t_up.elapsed().as_secs_f64();
        // 5. The commit (rank 0), or waiting for it (the others).
        let t_commit = Instant::now();
        let manifest = if self.cfg.rank == 0 {
            self.commit(remote, step).await?
        } else {
            self.await_commit(remote, step).await?
        };
        let commit_secs = t_commit.elapsed().as_secs_f64();
        // 6. The local copy of the manifest says the store holds it too; retention.
        self.after_commit(manifest, local_copy_ok).await?;
        Ok(DrainReport {
            step,
            bytes: part.bytes(),
            total_secs: job.started.elapsed().as_secs_f64(),
            wait_secs,
            admission_wait_secs,
            upload_secs,
            last_complete_secs,
            commit_secs,
            admission: admission.name().into(),
            remote: true,
        })
    }

    /// Where the part's bytes come from during the upload: the local tier (durable-local
    /// mode), or staging memory (snapshot mode: the part's checksums computed from it). A
    /// snapshot without a store is written to the local tier here.
    async fn place(&self, step: u64, payload: Payload) -> Result<(RankPart, Option<Staged>)> {
        match payload {
            Payload::Local(p) => Ok((p, None)),
            Payload::Staged(items, permit) => match (&self.local, &self.remote) {
                (Some(_), None) => {
                    let part = self.write_staged_locally(step, items).await?;
                    drop(permit);
                    Ok((part, None))
                }
                _ => {
                    let chunk = self.cfg.chunk_size;
                    let files = items
                        .iter()
                        .map(|(n, b)| {
                            let (crc32c, chunks) = checksums(b, chunk);
                            crate::manifest::FileEntry {
                                name: n.clone(),
                                size: b.len() as u64,
                                crc32c,
                                chunks,
                                piece_size: crate::manifest::piece_size_for(
                                    b.len() as u64,
                                    chunk,
                                    self.cfg.piece_size,
                                ),
                            }
                        })
                        .collect();
                    let part = RankPart {
                        format: crate::manifest::format_for(&files),
                        step,
                        rank: self.cfg.rank,
                        world_size: self.cfg.world_size,
                        chunk_size: chunk,
                        files,
                        saved_unix_ms: chrono::Utc::now().timestamp_millis(),
                    };
                    Ok((part, Some((items, permit))))
                }
            },
        }
    }

    /// Writes staged items to the local tier as this rank's part.
    async fn write_staged_locally(
        &self,
        step: u64,
        items: Vec<(String, Bytes)>,
    ) -> Result<RankPart> {
        let local = self.local.clone().expect("called with a local tier");
        let shape = self.shape();
        blocking("drain", move || {
            let items: Vec<Item> = items.into_iter().map(|(n, b)| Item::bytes(n, b)).collect();
            write_local(&local, step, shape, &items)
        })
        .await
    }

    /// Uploads the part's files and then its marker; returns the seconds the store took to
    /// complete the file that finished last.
    async fn upload_part(
        &self,
        remote: &RemoteTier,
        part: &RankPart,
        staged_items: Option<&[(String, Bytes)]>,
        drained: &Arc<DrainProgress>,
    ) -> Result<f64> {
        let cfg = &self.cfg;
        let step = part.step;
        let opts = self.transfer();
        // Files go up one after another, overlapped: file k+1 starts once file k has
        // all its parts in flight, so the completion of file k (server-side work: a
        // full copy on some stores) overlaps the upload of file k+1 instead of every
        // file finishing, and completing, at the end. At most `files_in_flight` at once.
        let n = part.files.len();
        let gates: Vec<Arc<Semaphore>> = (0..=n).map(|_| Arc::new(Semaphore::new(0))).collect();
        gates[0].add_permits(1);
        let slots = Arc::new(Semaphore::new(cfg.drain.files_in_flight.max(1)));
        // The futures are built eagerly (a lazy `map` over borrowed closures trips the
        // compiler's Send check for higher-ranked lifetimes).
        let uploads: Vec<_> = part
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let rel = layout::file_rel(step, cfg.rank, &f.name);
                let opts = opts.clone();
                let drained = drained.clone();
                let from_memory = staged_items
                    .and_then(|items| items.iter().find(|(n, _)| n == &f.name))
                    .map(|(_, b)| b.clone());
                let (gate, next, slots) = (gates[i].clone(), gates[i + 1].clone(), slots.clone());
                // In flight at once: the part slots of this file.
                let in_slots = opts.upload_concurrency as u64 * opts.upload_part_size_for(f.size);
                let threshold = f.size.saturating_sub(in_slots);
                let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let fire = {
                    let (next, fired) = (next.clone(), fired.clone());
                    move || {
                        if !fired.swap(true, std::sync::atomic::Ordering::Relaxed) {
                            next.add_permits(1);
                        }
                    }
                };
                async move {
                    let _turn = gate.acquire().await.expect("never closed");
                    let _slot = slots.acquire().await.expect("never closed");
                    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
                    if threshold == 0 {
                        fire();
                    }
                    let progress: strata_store::ProgressFn = {
                        let fire = fire.clone();
                        Arc::new(move |b| {
                            drained
                                .uploaded
                                .fetch_add(b, std::sync::atomic::Ordering::Relaxed);
                            let d = done.fetch_add(b, std::sync::atomic::Ordering::Relaxed) + b;
                            if d >= threshold {
                                fire();
                            }
                        })
                    };
                    let source = match from_memory {
                        Some(b) => Source::Memory(b),
                        None => Source::File(self.local.as_ref().expect("a local part").path(&rel)),
                    };
                    let chunk = part.chunk_size;
                    let done =
                        upload_entry(remote, (step, cfg.rank, chunk), f, source, &opts, progress)
                            .await;
                    fire();
                    Ok::<_, CkptError>((Instant::now(), done?))
                }
            })
            .collect();
        let done = futures::future::try_join_all(uploads).await?;
        remote.put_marker(part).await?;
        // The completion of the file that finished last: nothing overlapped it.
        Ok(done.into_iter().max_by_key(|d| d.0).map_or(0.0, |d| d.1))
    }

    /// After the commit: the local tier's manifest says the store holds the step too, and
    /// retention runs (in the store too on rank 0).
    async fn after_commit(&self, manifest: Manifest, local_copy_ok: bool) -> Result<()> {
        if let Some(local) = self.local.as_ref().filter(|_| local_copy_ok) {
            let mut m = manifest;
            m.tiers = vec![Tier::Local, Tier::Remote];
            let local = local.clone();
            blocking("drain", move || local.write_manifest(&m)).await?;
        }
        if let Err(e) = self.apply_retention(self.cfg.rank == 0).await {
            tracing::warn!("checkpoint retention: {e}");
        }
        Ok(())
    }
}
