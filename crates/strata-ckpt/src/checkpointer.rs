//! The checkpointer: `save` (durable-local or snapshot), the background drain with the
//! commit, `load` from the nearest complete tier, `list`, and `gc`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use crate::admission::Admission;
use crate::config::{CkptConfig, OnCorrupt, SaveMode};
use crate::error::{CkptError, Result};
use crate::layout;
use crate::local::{Item, ItemData, LocalTier};
use crate::manifest::{Manifest, RankPart, Tier, checksums};
use crate::remote::RemoteTier;

/// Staging memory is counted in units of 64 KiB (a semaphore counts in u32).
const STAGING_UNIT: u64 = 64 << 10;

/// What a save cost the caller, and how to wait for its drain.
pub struct SaveHandle {
    /// The step saved.
    pub step: u64,
    /// The time `save` blocked the caller.
    pub stall: Duration,
    /// Bytes saved by this rank.
    pub bytes: u64,
    done: watch::Receiver<Option<Result<DrainReport, Arc<CkptError>>>>,
    progress: Arc<DrainProgress>,
}

/// How far a drain has come: bytes uploaded to the store and bytes to upload (0 until the
/// drain starts uploading).
#[derive(Debug, Default)]
pub struct DrainProgress {
    uploaded: std::sync::atomic::AtomicU64,
    total: std::sync::atomic::AtomicU64,
}

/// Watches one save's drain from elsewhere (a dashboard reporter) while the handle waits.
#[derive(Clone)]
pub struct DrainTracker {
    progress: Arc<DrainProgress>,
    done: watch::Receiver<Option<Result<DrainReport, Arc<CkptError>>>>,
}

impl DrainTracker {
    /// (bytes uploaded, bytes to upload) of the drain so far. Parts retried after a fault
    /// count again, so the count is capped at the total.
    pub fn progress(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let total = self.progress.total.load(Relaxed);
        (self.progress.uploaded.load(Relaxed).min(total), total)
    }

    /// Whether the drain has ended (committed or failed).
    pub fn is_done(&self) -> bool {
        self.done.borrow().is_some()
    }
}

impl SaveHandle {
    /// A watcher of this save's drain that outlives [`SaveHandle::wait`].
    pub fn tracker(&self) -> DrainTracker {
        DrainTracker {
            progress: self.progress.clone(),
            done: self.done.clone(),
        }
    }

    /// Waits until the checkpoint is committed in the store (or, without a store, on the
    /// local tier).
    pub async fn wait(mut self) -> Result<DrainReport> {
        let step = self.step;
        loop {
            if let Some(r) = self.done.borrow_and_update().clone() {
                return r.map_err(|e| CkptError::Drain { step, source: e });
            }
            if self.done.changed().await.is_err() {
                return Err(CkptError::DrainStopped {
                    step,
                    cause: "the checkpointer was dropped".into(),
                });
            }
        }
    }
}

/// What a drain did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DrainReport {
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

/// Timings the checkpointer measured on itself (for the Young–Daly advice).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CkptStats {
    pub saves: u64,
    /// Mean and last stall of `save`, seconds.
    pub mean_stall_secs: f64,
    pub last_stall_secs: f64,
    pub drains: u64,
    pub failed_drains: u64,
    /// Mean and last time from save to commit, seconds.
    pub mean_drain_secs: f64,
    pub last_drain_secs: f64,
}

/// A checkpoint as `list` sees it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointInfo {
    pub step: u64,
    /// A valid manifest exists (on some tier).
    pub complete: bool,
    /// Tiers holding a valid manifest.
    pub tiers: Vec<Tier>,
    pub world_size: u32,
    pub files: usize,
    pub bytes: u64,
    pub committed_unix_ms: Option<i64>,
}

/// What `load` returned.
#[derive(Debug, Clone)]
pub struct Restored {
    pub step: u64,
    /// Where this rank's files came from.
    pub tier: Tier,
    pub manifest: Manifest,
    /// This rank's items, by name, verified.
    pub items: Vec<(String, Bytes)>,
    /// Checkpoints skipped on the way (newer ones that were corrupt), with the cause.
    pub warnings: Vec<String>,
    pub secs: f64,
}

impl Restored {
    /// The item called `name`.
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.items.iter().find(|(n, _)| n == name).map(|(_, b)| b)
    }
}

/// What `gc` removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// Incomplete steps removed, per tier.
    pub incomplete_local: Vec<u64>,
    pub incomplete_remote: Vec<u64>,
    /// Complete steps removed by the retention rules, per tier.
    pub retired_local: Vec<u64>,
    pub retired_remote: Vec<u64>,
    /// Objects deleted from the store.
    pub objects_deleted: usize,
    /// Leases left by drains that died, deleted.
    pub stale_leases: usize,
    /// Multipart uploads under the root started at least `abandoned_after` ago and never
    /// finished (a drain killed mid-file), aborted.
    pub aborted_uploads: usize,
    /// True when the store cannot list multipart uploads (not S3, or credentials from a
    /// provider chain): abandoned ones are then left to the bucket's
    /// AbortIncompleteMultipartUpload lifecycle rule.
    pub uploads_not_listed: bool,
}

enum Payload {
    /// Already on the local tier.
    Local(RankPart),
    /// In staging memory (snapshot mode).
    Staged(Vec<(String, Bytes)>, OwnedSemaphorePermit),
}

struct Job {
    step: u64,
    started: Instant,
    payload: Payload,
    progress: Arc<DrainProgress>,
    done: watch::Sender<Option<Result<DrainReport, Arc<CkptError>>>>,
}

struct Inner {
    cfg: CkptConfig,
    local: Option<LocalTier>,
    remote: Option<RemoteTier>,
    admission: tokio::sync::OnceCell<Admission>,
    staging: Arc<Semaphore>,
    pool: crate::staging::StagingPool,
    stats: Mutex<CkptStats>,
}

/// Saves and restores checkpoints. See the crate documentation.
pub struct Checkpointer {
    inner: Arc<Inner>,
    tx: Option<mpsc::UnboundedSender<Job>>,
    worker: Option<tokio::task::JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens a checkpointer (creating the local directory) and starts its drain task. Call
    /// from inside a tokio runtime.
    pub fn open(cfg: CkptConfig) -> Result<Self> {
        cfg.validate().map_err(CkptError::Invalid)?;
        let local = cfg.local.as_deref().map(LocalTier::open).transpose()?;
        let remote = match &cfg.remote {
            None => None,
            Some(loc) => {
                // The drain's own client, with this node's bandwidth and request caps.
                let mut sc = loc.store.config().clone();
                if let Some(b) = cfg.drain.bytes_per_sec {
                    sc.limits.bytes_per_sec = Some(b);
                }
                if let Some(m) = cfg.drain.max_requests {
                    sc.limits.max_requests = Some(m);
                }
                let store = strata_store::Store::open(loc.store.root(), &sc)?;
                Some(RemoteTier {
                    loc: strata_store::Location {
                        store,
                        prefix: loc.prefix.clone(),
                    },
                })
            }
        };
        let staging_bytes = cfg.staging_bytes;
        let units = cfg
            .staging_bytes
            .div_ceil(STAGING_UNIT)
            .min(u32::MAX as u64) as usize;
        let inner = Arc::new(Inner {
            cfg,
            local,
            remote,
            admission: tokio::sync::OnceCell::new(),
            staging: Arc::new(Semaphore::new(units)),
            pool: crate::staging::StagingPool::new(staging_bytes),
            stats: Mutex::new(CkptStats::default()),
        });
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let w = inner.clone();
        let worker = tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                let step = job.step;
                let started = job.started;
                let done = job.done.clone();
                let r = w.drain(job).await;
                {
                    let mut s = w.stats.lock().unwrap_or_else(|e| e.into_inner());
                    match &r {
                        Ok(_) => {
                            let secs = started.elapsed().as_secs_f64();
                            s.drains += 1;
                            s.last_drain_secs = secs;
                            s.mean_drain_secs += (secs - s.mean_drain_secs) / s.drains as f64;
                        }
                        Err(e) => {
                            s.failed_drains += 1;
                            tracing::warn!("checkpoint step {step}: drain failed: {e}");
                        }
                    }
                }
                let _ = done.send(Some(r.map_err(Arc::new)));
            }
        });
        Ok(Self {
            inner,
            tx: Some(tx),
            worker: Some(worker),
        })
    }

    /// The settings.
    pub fn config(&self) -> &CkptConfig {
        &self.inner.cfg
    }

    /// The root, for messages: the store URL, else the local directory.
    pub fn root_display(&self) -> String {
        self.inner.root_display()
    }

    /// The timings measured so far.
    pub fn stats(&self) -> CkptStats {
        self.inner
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The Young and Daly intervals for this job from the stall and drain times measured so
    /// far (the mean stall is the checkpoint cost), a node MTBF in seconds and the node count;
    /// `interval_secs` (the interval in use) is compared and warned about when the drain
    /// cannot keep up with it. `None` before the first save.
    pub fn advise(
        &self,
        node_mtbf_secs: f64,
        nodes: u64,
        restart_secs: f64,
        interval_secs: Option<f64>,
    ) -> Option<Result<strata_plan::interval::IntervalAdvice, String>> {
        let s = self.stats();
        if s.saves == 0 {
            return None;
        }
        let drain = (s.drains > 0).then_some(s.mean_drain_secs);
        Some(strata_plan::interval::advise(
            s.mean_stall_secs.max(1e-6),
            node_mtbf_secs,
            nodes,
            restart_secs,
            interval_secs,
            drain,
        ))
    }

    /// Saves this rank's `items` as step `step`. Returns when the configured mode says (see
    /// [`SaveMode`]); the drain to the store runs in the background (see
    /// [`SaveHandle::wait`]).
    pub async fn save(&self, step: u64, items: Vec<Item>) -> Result<SaveHandle> {
        let t = Instant::now();
        let inner = &self.inner;
        let cfg = &inner.cfg;
        let mut names = std::collections::HashSet::new();
        for it in &items {
            crate::manifest::validate_name(&it.name).map_err(CkptError::Invalid)?;
            if !names.insert(it.name.clone()) {
                return Err(CkptError::Invalid(format!(
                    "item {:?} given twice",
                    it.name
                )));
            }
        }
        if let Some(l) = &inner.local
            && l.manifest(step).is_some()
        {
            return Err(CkptError::Exists {
                root: l.dir().display().to_string(),
                step,
            });
        }
        let (payload, bytes) = match cfg.mode {
            SaveMode::DurableLocal => {
                let local = inner.local.clone().expect("validated");
                let (rank, world, chunk) = (cfg.rank, cfg.world_size, cfg.chunk_size);
                let part = tokio::task::spawn_blocking(move || {
                    let part = local.write_part(step, rank, world, chunk, &items)?;
                    if world == 1 {
                        let m =
                            Manifest::from_parts(step, 1, vec![part.clone()], vec![Tier::Local])
                                .map_err(CkptError::Invalid)?;
                        local.write_manifest(&m)?;
                    }
                    Ok::<_, CkptError>(part)
                })
                .await
                .map_err(|e| CkptError::Invalid(format!("save task: {e}")))??;
                let bytes = part.bytes();
                (Payload::Local(part), bytes)
            }
            SaveMode::Snapshot => {
                let mut total = 0u64;
                for it in &items {
                    total += match &it.data {
                        ItemData::Bytes(b) => b.len() as u64,
                        ItemData::File(p) => std::fs::metadata(p)
                            .map_err(|e| CkptError::io("stat", p, e))?
                            .len(),
                    };
                }
                if total > cfg.staging_bytes {
                    return Err(CkptError::Invalid(format!(
                        "snapshot of step {step}: {total} bytes do not fit the staging memory of {} bytes (raise staging_bytes, or use durable-local mode)",
                        cfg.staging_bytes
                    )));
                }
                let units = total.div_ceil(STAGING_UNIT).max(1) as u32;
                let permit = inner
                    .staging
                    .clone()
                    .acquire_many_owned(units)
                    .await
                    .expect("never closed");
                let pool = inner.pool.clone();
                let staged = tokio::task::spawn_blocking(move || {
                    let mut out = Vec::with_capacity(items.len());
                    for it in items {
                        let data = match it.data {
                            // The copy is the snapshot: the caller may change its buffers
                            // as soon as save returns.
                            ItemData::Bytes(b) => pool.copy(&b),
                            ItemData::File(p) => Bytes::from(
                                std::fs::read(&p).map_err(|e| CkptError::io("read", &p, e))?,
                            ),
                        };
                        out.push((it.name, data));
                    }
                    Ok::<_, CkptError>(out)
                })
                .await
                .map_err(|e| CkptError::Invalid(format!("save task: {e}")))??;
                (Payload::Staged(staged, permit), total)
            }
        };
        let stall = t.elapsed();
        {
            let mut s = inner.stats.lock().unwrap_or_else(|e| e.into_inner());
            s.saves += 1;
            s.last_stall_secs = stall.as_secs_f64();
            s.mean_stall_secs += (stall.as_secs_f64() - s.mean_stall_secs) / s.saves as f64;
        }
        let (done_tx, done_rx) = watch::channel(None);
        let progress = Arc::new(DrainProgress::default());
        let job = Job {
            step,
            started: t,
            payload,
            progress: progress.clone(),
            done: done_tx,
        };
        self.tx
            .as_ref()
            .expect("open until dropped")
            .send(job)
            .map_err(|_| CkptError::DrainStopped {
                step,
                cause: "the drain task ended".into(),
            })?;
        Ok(SaveHandle {
            step,
            stall,
            bytes,
            done: done_rx,
            progress,
        })
    }

    /// Waits for every drain queued so far, then stops the drain task.
    pub async fn close(mut self) {
        drop(self.tx.take());
        if let Some(w) = self.worker.take() {
            let _ = w.await;
        }
    }

    /// Loads this rank's part of `step` (or of the newest complete checkpoint), from the
    /// nearest tier whose checksums hold. With `latest`, a corrupt checkpoint is skipped
    /// with a warning in favour of the previous complete one (unless
    /// [`OnCorrupt::Fail`]).
    pub async fn load(&self, step: Option<u64>) -> Result<Restored> {
        self.inner.load(step).await
    }

    /// Every checkpoint either tier knows of, complete or not, ascending by step.
    pub async fn list(&self) -> Result<Vec<CheckpointInfo>> {
        self.inner.list().await
    }

    /// Removes incomplete checkpoints untouched for `abandoned_after`, and complete ones the
    /// retention rules retire (store and local tier).
    pub async fn gc(&self, abandoned_after: Duration) -> Result<GcReport> {
        self.inner.gc(abandoned_after).await
    }

    /// The manifest of `step` from the nearest tier that has a valid one.
    pub async fn manifest(&self, step: u64) -> Result<Option<(Manifest, Tier)>> {
        if let Some(m) = self.inner.local.as_ref().and_then(|l| l.manifest(step)) {
            return Ok(Some((m, Tier::Local)));
        }
        match &self.inner.remote {
            Some(r) => Ok(r.manifest(step).await?.map(|m| (m, Tier::Remote))),
            None => Ok(None),
        }
    }

    /// Checks every chunk of `step` on each tier that holds it: (tier, files checked,
    /// problems found).
    pub async fn verify(&self, step: u64) -> Result<Vec<(Tier, usize, Vec<String>)>> {
        self.inner.verify(step).await
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // The drain task finishes what is queued if the runtime lives on.
        drop(self.tx.take());
    }
}

impl Inner {
    fn root_display(&self) -> String {
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

    fn transfer(&self) -> strata_store::TransferConfig {
        match (&self.cfg.drain.transfer, &self.remote) {
            (Some(t), _) => t.clone(),
            (None, Some(r)) => r.loc.store.config().transfer.clone(),
            (None, None) => strata_store::StoreConfig::default().transfer,
        }
    }

    async fn drain(&self, job: Job) -> Result<DrainReport> {
        let cfg = &self.cfg;
        let step = job.step;
        let drained = job.progress.clone();
        // 1. Staged bytes go to the local tier first (if there is one).
        let (part, staged) = match job.payload {
            Payload::Local(p) => (p, None),
            Payload::Staged(items, permit) => match &self.local {
                Some(local) => {
                    let local = local.clone();
                    let (rank, world, chunk) = (cfg.rank, cfg.world_size, cfg.chunk_size);
                    let part = tokio::task::spawn_blocking(move || {
                        let items: Vec<Item> =
                            items.into_iter().map(|(n, b)| Item::bytes(n, b)).collect();
                        let part = local.write_part(step, rank, world, chunk, &items)?;
                        if world == 1 {
                            let m = Manifest::from_parts(
                                step,
                                1,
                                vec![part.clone()],
                                vec![Tier::Local],
                            )
                            .map_err(CkptError::Invalid)?;
                            local.write_manifest(&m)?;
                        }
                        Ok::<_, CkptError>(part)
                    })
                    .await
                    .map_err(|e| CkptError::Invalid(format!("drain task: {e}")))??;
                    drop(permit);
                    (part, None)
                }
                None => {
                    let chunk = cfg.chunk_size;
                    let files = items
                        .iter()
                        .map(|(n, b)| {
                            let (crc32c, chunks) = checksums(b, chunk);
                            crate::manifest::FileEntry {
                                name: n.clone(),
                                size: b.len() as u64,
                                crc32c,
                                chunks,
                            }
                        })
                        .collect();
                    let part = RankPart {
                        format: crate::manifest::FORMAT_VERSION,
                        step,
                        rank: cfg.rank,
                        world_size: cfg.world_size,
                        chunk_size: chunk,
                        files,
                        saved_unix_ms: chrono::Utc::now().timestamp_millis(),
                    };
                    (part, Some((items, permit)))
                }
            },
        };
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
        if remote.manifest(step).await?.is_some() {
            return Err(CkptError::Exists {
                root: remote.display(),
                step,
            });
        }
        // 3. Jitter, then admission.
        let t_wait = Instant::now();
        let jitter = cfg.drain.jitter.mul_f64(rand::random::<f64>());
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
        drained
            .total
            .store(part.bytes(), std::sync::atomic::Ordering::Relaxed);
        let t_up = Instant::now();
        let opts = self.transfer();
        let upload = async {
            let staged_items = staged.as_ref().map(|(items, _)| items);
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
                        let report = match from_memory {
                            Some(b) => remote.upload_bytes(b, &rel, &opts, Some(progress)).await,
                            None => {
                                let src = self
                                    .local
                                    .as_ref()
                                    .expect("a local part")
                                    .path(&rel);
                                remote.upload_file(&src, &rel, &opts, Some(progress)).await
                            }
                        };
                        fire();
                        let report = report?;
                        if report.bytes != f.size || report.crc32c != f.crc32c {
                            return Err(CkptError::Corrupt {
                                root: remote.display(),
                                step,
                                file: rel,
                                cause: format!(
                                    "uploaded {} bytes with CRC32C {:08x}; the part says {} bytes, {:08x} (the local file changed?)",
                                    report.bytes, report.crc32c, f.size, f.crc32c
                                ),
                            });
                        }
                        Ok::<_, CkptError>((Instant::now(), report.complete_secs))
                    }
                })
                .collect();
            let done = futures::future::try_join_all(uploads).await?;
            remote.put_marker(&part).await?;
            // The completion of the file that finished last: nothing overlapped it.
            Ok::<_, CkptError>(done.into_iter().max_by_key(|d| d.0).map_or(0.0, |d| d.1))
        }
        .await;
        held.release().await;
        let last_complete_secs = upload?;
        drop(staged);
        let upload_secs = t_up.elapsed().as_secs_f64();
        // 5. The commit (rank 0), or waiting for it (the others).
        let t_commit = Instant::now();
        let manifest = if cfg.rank == 0 {
            self.commit(remote, step).await?
        } else {
            self.await_commit(remote, step).await?
        };
        let commit_secs = t_commit.elapsed().as_secs_f64();
        // 6. The local copy of the manifest says the store holds it too; retention.
        if let Some(local) = &self.local {
            let mut m = manifest.clone();
            m.tiers = vec![Tier::Local, Tier::Remote];
            let local2 = local.clone();
            tokio::task::spawn_blocking(move || local2.write_manifest(&m))
                .await
                .map_err(|e| CkptError::Invalid(format!("drain task: {e}")))??;
        }
        if let Err(e) = self.apply_retention(cfg.rank == 0).await {
            tracing::warn!("checkpoint retention: {e}");
        }
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

    /// Rank 0: waits for every marker, checks the objects, writes the manifest.
    async fn commit(&self, remote: &RemoteTier, step: u64) -> Result<Manifest> {
        let world = self.cfg.world_size;
        let deadline = Instant::now() + self.cfg.commit_timeout;
        let mut poll = Duration::from_millis(100);
        let parts = loop {
            let parts = remote.markers(step).await?;
            let mut have: Vec<u32> = parts.iter().map(|p| p.rank).collect();
            have.sort_unstable();
            have.dedup();
            if have.len() == world as usize && parts.iter().all(|p| p.world_size == world) {
                break parts;
            }
            if Instant::now() >= deadline {
                let missing = (0..world).filter(|r| !have.contains(r)).collect();
                return Err(CkptError::CommitTimeout {
                    root: remote.display(),
                    step,
                    missing,
                    secs: self.cfg.commit_timeout.as_secs_f64(),
                });
            }
            tokio::time::sleep(poll).await;
            poll = (poll * 2).min(Duration::from_secs(2));
        };
        let m = Manifest::from_parts(step, world, parts, vec![Tier::Remote]).map_err(|cause| {
            CkptError::Manifest {
                path: remote.loc.display(&layout::step_dir(step)),
                cause,
            }
        })?;
        // Every file must be there with its size before the commit says so.
        let objects = remote.step_objects(step).await?;
        for p in &m.parts {
            for f in &p.files {
                let key = remote.loc.key(&layout::file_rel(step, p.rank, &f.name));
                match objects.iter().find(|o| o.key == key) {
                    Some(o) if o.size == f.size => {}
                    Some(o) => {
                        return Err(CkptError::Corrupt {
                            root: remote.display(),
                            step,
                            file: layout::file_rel(step, p.rank, &f.name),
                            cause: format!(
                                "{} bytes in the store, the marker says {}",
                                o.size, f.size
                            ),
                        });
                    }
                    None => {
                        return Err(CkptError::Corrupt {
                            root: remote.display(),
                            step,
                            file: layout::file_rel(step, p.rank, &f.name),
                            cause: "missing from the store".into(),
                        });
                    }
                }
            }
        }
        remote.put_manifest(&m).await?;
        Ok(m)
    }

    /// Other ranks: wait until rank 0 has committed.
    async fn await_commit(&self, remote: &RemoteTier, step: u64) -> Result<Manifest> {
        let deadline = Instant::now() + self.cfg.commit_timeout;
        let mut poll = Duration::from_millis(100);
        loop {
            if let Some(m) = remote.manifest(step).await? {
                return Ok(m);
            }
            if Instant::now() >= deadline {
                return Err(CkptError::CommitTimeout {
                    root: remote.display(),
                    step,
                    missing: vec![0],
                    secs: self.cfg.commit_timeout.as_secs_f64(),
                });
            }
            tokio::time::sleep(poll).await;
            poll = (poll * 2).min(Duration::from_secs(2));
        }
    }

    /// Applies retention: on the local tier always, in the store when `remote_too`.
    async fn apply_retention(&self, remote_too: bool) -> Result<(Vec<u64>, Vec<u64>, usize)> {
        let r = &self.cfg.retention;
        let now = chrono::Utc::now().timestamp_millis();
        let mut retired_local = Vec::new();
        if let Some(local) = &self.local {
            let local = local.clone();
            let keep = r.local_keep_last;
            let rules = r.clone();
            retired_local = tokio::task::spawn_blocking(move || {
                let complete: Vec<(u64, Manifest)> = local
                    .steps()
                    .into_iter()
                    .filter_map(|s| local.manifest(s).map(|m| (s, m)))
                    .collect();
                let mut out = Vec::new();
                // Durable in the store: keep the newest `keep`.
                let durable: Vec<u64> = complete
                    .iter()
                    .filter(|(_, m)| m.tiers.contains(&Tier::Remote))
                    .map(|(s, _)| *s)
                    .collect();
                if durable.len() > keep {
                    out.extend(durable[..durable.len() - keep].iter().copied());
                }
                // Local-only checkpoints (no store): the store's rules apply here.
                let only_local: Vec<(u64, i64)> = complete
                    .iter()
                    .filter(|(_, m)| !m.tiers.contains(&Tier::Remote))
                    .map(|(s, m)| (*s, m.committed_unix_ms))
                    .collect();
                if !only_local.is_empty() && durable.is_empty() {
                    out.extend(rules.to_delete(&only_local, now));
                }
                for s in &out {
                    local.remove_step(*s)?;
                }
                Ok::<_, CkptError>(out)
            })
            .await
            .map_err(|e| CkptError::Invalid(format!("retention task: {e}")))??;
        }
        let mut retired_remote = Vec::new();
        let mut deleted = 0;
        if remote_too && let Some(remote) = &self.remote {
            let rules_apply = r.keep_last.is_some() || r.max_age.is_some();
            if rules_apply {
                let mut complete = Vec::new();
                for s in remote.steps().await? {
                    if let Some(m) = remote.manifest(s).await? {
                        complete.push((s, m.committed_unix_ms));
                    }
                }
                for s in r.to_delete(&complete, now) {
                    deleted += remote.remove_step(s).await?;
                    retired_remote.push(s);
                }
            }
        }
        Ok((retired_local, retired_remote, deleted))
    }

    async fn load(&self, want: Option<u64>) -> Result<Restored> {
        let t = Instant::now();
        let mut steps: Vec<u64> = match want {
            Some(s) => vec![s],
            None => {
                let mut s = self.local.as_ref().map(|l| l.steps()).unwrap_or_default();
                if let Some(r) = &self.remote {
                    s.extend(r.steps().await?);
                }
                s
            }
        };
        steps.sort_unstable();
        steps.dedup();
        let mut warnings = Vec::new();
        for &step in steps.iter().rev() {
            match self.load_step(step).await {
                Ok(Some((m, tier, items))) => {
                    return Ok(Restored {
                        step,
                        tier,
                        manifest: m,
                        items,
                        warnings,
                        secs: t.elapsed().as_secs_f64(),
                    });
                }
                Ok(None) => continue, // incomplete: not a checkpoint
                Err(e) => {
                    if want.is_some() || self.cfg.on_corrupt == OnCorrupt::Fail {
                        return Err(e);
                    }
                    let w = format!(
                        "checkpoint step {step} cannot be restored ({e}); falling back to the previous complete checkpoint"
                    );
                    tracing::warn!("{w}");
                    warnings.push(w);
                }
            }
        }
        Err(CkptError::NotFound {
            root: self.root_display(),
            step: want,
        })
    }

    /// `Ok(None)`: no valid manifest on any tier. `Err`: complete but unreadable.
    async fn load_step(&self, step: u64) -> Result<Option<(Manifest, Tier, Vec<(String, Bytes)>)>> {
        let rank = self.cfg.rank;
        let mut local_err = None;
        if let Some(local) = &self.local
            && let Some(m) = local.manifest(step)
        {
            let l = local.clone();
            let m2 = m.clone();
            let r = tokio::task::spawn_blocking(move || read_part_local(&l, &m2, rank))
                .await
                .map_err(|e| CkptError::Invalid(format!("load task: {e}")))?;
            match r {
                Ok(items) => return Ok(Some((m, Tier::Local, items))),
                Err(e) => {
                    tracing::warn!("checkpoint step {step}: local copy: {e}; trying the store");
                    local_err = Some(e);
                }
            }
        }
        let Some(remote) = &self.remote else {
            return match local_err {
                Some(e) => Err(e),
                None => Ok(None),
            };
        };
        let Some(m) = remote.manifest(step).await? else {
            return match local_err {
                Some(e) => Err(e),
                None => Ok(None),
            };
        };
        let part = m.part(rank).ok_or_else(|| {
            CkptError::Invalid(format!(
                "checkpoint step {step} has {} rank(s); this is rank {rank}",
                m.world_size
            ))
        })?;
        let opts = self.transfer();
        let reads: Vec<_> = part
            .files
            .iter()
            .map(|f| {
                let opts = opts.clone();
                async move {
                    let b = remote.read_file(step, rank, f, m.chunk_size, &opts).await?;
                    Ok::<_, CkptError>((f.name.clone(), b))
                }
            })
            .collect();
        let items: Vec<(String, Bytes)> = stream::iter(reads)
            .buffered(self.cfg.drain.files_in_flight.max(1))
            .try_collect()
            .await?;
        Ok(Some((m, Tier::Remote, items)))
    }

    async fn list(&self) -> Result<Vec<CheckpointInfo>> {
        let mut out: std::collections::BTreeMap<u64, CheckpointInfo> = Default::default();
        let blank = |step| CheckpointInfo {
            step,
            complete: false,
            tiers: vec![],
            world_size: 0,
            files: 0,
            bytes: 0,
            committed_unix_ms: None,
        };
        let fill = |info: &mut CheckpointInfo, m: &Manifest, tier: Tier| {
            info.complete = true;
            if !info.tiers.contains(&tier) {
                info.tiers.push(tier);
                info.tiers.sort();
            }
            info.world_size = m.world_size;
            info.files = m.parts.iter().map(|p| p.files.len()).sum();
            info.bytes = m.bytes();
            info.committed_unix_ms = Some(m.committed_unix_ms);
        };
        if let Some(l) = &self.local {
            for s in l.steps() {
                let info = out.entry(s).or_insert_with(|| blank(s));
                if let Some(m) = l.manifest(s) {
                    fill(info, &m, Tier::Local);
                }
            }
        }
        if let Some(r) = &self.remote {
            // Manifests are read 16 at a time: a root with thousands of steps is listed in
            // hundreds of round trips, not thousands.
            use futures::stream::{self, StreamExt, TryStreamExt};
            let manifests: Vec<(u64, Option<Manifest>)> = stream::iter(r.steps().await?)
                .map(|s| async move { Ok::<_, CkptError>((s, r.manifest(s).await?)) })
                .buffered(16)
                .try_collect()
                .await?;
            for (s, m) in manifests {
                let info = out.entry(s).or_insert_with(|| blank(s));
                if let Some(m) = m {
                    fill(info, &m, Tier::Remote);
                }
            }
        }
        Ok(out.into_values().collect())
    }

    async fn verify(&self, step: u64) -> Result<Vec<(Tier, usize, Vec<String>)>> {
        let mut out = Vec::new();
        let world_ranks = |m: &Manifest| (0..m.world_size).collect::<Vec<u32>>();
        if let Some(l) = &self.local
            && let Some(m) = l.manifest(step)
        {
            let l = l.clone();
            let r = tokio::task::spawn_blocking(move || {
                let mut n = 0;
                let mut bad = Vec::new();
                for rank in world_ranks(&m) {
                    let part = &m.parts[rank as usize];
                    // A node holds the parts of its own ranks.
                    if !l
                        .path(&format!(
                            "{}/{}",
                            layout::step_dir(step),
                            layout::rank_dir(rank)
                        ))
                        .exists()
                    {
                        continue;
                    }
                    for f in &part.files {
                        n += 1;
                        if let Err(e) = l.read_file(step, rank, f, m.chunk_size) {
                            bad.push(e.to_string());
                        }
                    }
                }
                (n, bad)
            })
            .await
            .map_err(|e| CkptError::Invalid(format!("verify task: {e}")))?;
            out.push((Tier::Local, r.0, r.1));
        }
        if let Some(remote) = &self.remote
            && let Some(m) = remote.manifest(step).await?
        {
            let opts = self.transfer();
            let mut n = 0;
            let mut bad = Vec::new();
            for p in &m.parts {
                for f in &p.files {
                    n += 1;
                    if let Err(e) = remote.read_file(step, p.rank, f, m.chunk_size, &opts).await {
                        bad.push(e.to_string());
                    }
                }
            }
            out.push((Tier::Remote, n, bad));
        }
        if out.is_empty() {
            return Err(CkptError::NotFound {
                root: self.root_display(),
                step: Some(step),
            });
        }
        Ok(out)
    }

    async fn gc(&self, abandoned_after: Duration) -> Result<GcReport> {
        let mut report = GcReport::default();
        let now = std::time::SystemTime::now();
        if let Some(l) = &self.local {
            let l = l.clone();
            report.incomplete_local = tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                for s in l.steps() {
                    let old = l
                        .step_touched(s)
                        .and_then(|t| now.duration_since(t).ok())
                        .is_none_or(|age| age >= abandoned_after);
                    if l.manifest(s).is_none() && old {
                        l.remove_step(s)?;
                        out.push(s);
                    } else if old {
                        // Hidden leftovers (temporary files of a crashed write) in a
                        // complete step.
                        let dir = l.path(&layout::step_dir(s));
                        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                            if e.file_name().to_string_lossy().starts_with('.') {
                                let p = e.path();
                                let _ = std::fs::remove_dir_all(&p)
                                    .or_else(|_| std::fs::remove_file(&p));
                            }
                        }
                        let ranks = dir.join(layout::RANKS);
                        for e in std::fs::read_dir(&ranks).into_iter().flatten().flatten() {
                            if e.file_name().to_string_lossy().starts_with('.') {
                                let _ = std::fs::remove_file(e.path());
                            }
                        }
                    }
                }
                Ok::<_, CkptError>(out)
            })
            .await
            .map_err(|e| CkptError::Invalid(format!("gc task: {e}")))??;
        }
        if let Some(r) = &self.remote {
            for s in r.steps().await? {
                if r.manifest(s).await?.is_some() {
                    continue;
                }
                let objects = r.step_objects(s).await?;
                let newest = objects.iter().map(|o| o.last_modified).max();
                let old = newest.is_none_or(|t| {
                    (chrono::Utc::now() - t)
                        .to_std()
                        .is_ok_and(|age| age >= abandoned_after)
                });
                if old {
                    for o in &objects {
                        r.loc.store.delete(&o.key).await?;
                    }
                    report.objects_deleted += objects.len();
                    report.incomplete_remote.push(s);
                }
            }
        }
        if let Some(r) = &self.remote {
            // Leases of holders that died (a live holder rewrites its lease every third of
            // its lifetime, so its object is young).
            let leases = self
                .cfg
                .drain
                .admission
                .lease_root
                .clone()
                .unwrap_or_else(|| strata_store::Location {
                    store: r.loc.store.clone(),
                    prefix: r.loc.key(layout::LEASES),
                });
            for o in leases.store.list(&leases.prefix).await? {
                let old = (chrono::Utc::now() - o.last_modified)
                    .to_std()
                    .is_ok_and(|age| age >= abandoned_after);
                if old {
                    leases.store.delete(&o.key).await?;
                    report.objects_deleted += 1;
                    report.stale_leases += 1;
                }
            }
            // Multipart uploads of drains that died mid-file: invisible to listings of
            // objects, billed until aborted. A live drain's uploads are younger than
            // `abandoned_after`.
            let prefix = if r.loc.prefix.is_empty() {
                String::new()
            } else {
                format!("{}/", r.loc.prefix)
            };
            match r.loc.store.pending_uploads(&prefix).await? {
                None => report.uploads_not_listed = true,
                Some(uploads) => {
                    for u in uploads {
                        let old = match u.initiated {
                            Some(t) => (chrono::Utc::now() - t)
                                .to_std()
                                .is_ok_and(|age| age >= abandoned_after),
                            None => abandoned_after.is_zero(),
                        };
                        if old {
                            r.loc.store.abort_upload(&u.key, &u.upload_id).await?;
                            report.aborted_uploads += 1;
                        }
                    }
                }
            }
        }
        let (rl, rr, n) = self.apply_retention(true).await?;
        report.retired_local = rl;
        report.retired_remote = rr;
        report.objects_deleted += n;
        Ok(report)
    }
}

fn read_part_local(l: &LocalTier, m: &Manifest, rank: u32) -> Result<Vec<(String, Bytes)>> {
    let part = m.part(rank).ok_or_else(|| {
        CkptError::Invalid(format!(
            "checkpoint step {} has {} rank(s); this is rank {rank}",
            m.step, m.world_size
        ))
    })?;
    // Files are read (and checked) side by side, a few threads at a time: one reader does
    // not keep an NVMe device busy.
    const READERS: usize = 4;
    let mut out: Vec<Option<Result<Bytes>>> = (0..part.files.len()).map(|_| None).collect();
    for (files, slots) in part.files.chunks(READERS).zip(out.chunks_mut(READERS)) {
        std::thread::scope(|s| {
            for (f, slot) in files.iter().zip(slots.iter_mut()) {
                s.spawn(move || *slot = Some(l.read_file(m.step, rank, f, m.chunk_size)));
            }
        });
    }
    part.files
        .iter()
        .zip(out)
        .map(|(f, r)| Ok((f.name.clone(), r.expect("every file read")?)))
        .collect()
}
