//! The checkpointer: `save` (durable-local or snapshot), the background drain with the
//! commit, `load` from the nearest complete tier, `list`, and `gc`. One file per stage of a
//! checkpoint's life: [`save`](self) stages a step ([`save`] module), the drain task sends it
//! to the store ([`drain`]) and commits it ([`commit`]); [`restore`] loads one back,
//! [`catalog`] lists and verifies what a root holds, and [`gc`] collects what crashes left
//! and what the retention rules retire.

mod catalog;
mod commit;
mod drain;
mod gc;
mod restore;
mod save;
mod sync;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Semaphore, mpsc, watch};

pub use catalog::CheckpointInfo;
pub use drain::DrainReport;
pub use gc::GcReport;
pub use restore::Restored;
pub use save::{DrainProgress, DrainTracker, SaveHandle};

use crate::admission::Admission;
use crate::config::{CkptConfig, SaveMode};
use crate::error::{CkptError, Result};
use crate::local::{Item, LocalTier};
use crate::manifest::{Manifest, Tier};
use crate::remote::RemoteTier;
use save::{Job, STAGING_UNIT};

/// Timings the checkpointer measured on itself (for the Young–Daly advice).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CkptStats {
    /// Saves so far.
    pub saves: u64,
    /// Mean and last stall of `save`, seconds.
    pub mean_stall_secs: f64,
    /// The last save's stall, seconds.
    pub last_stall_secs: f64,
    /// Drains that committed.
    pub drains: u64,
    /// Drains that failed.
    pub failed_drains: u64,
    /// Mean and last time from save to commit, seconds.
    pub mean_drain_secs: f64,
    /// The last drain's time from save to commit, seconds.
    pub last_drain_secs: f64,
}

/// What the checkpointer's parts share: its settings, its tiers, the fleet admission (found on
/// first use), the staging memory, and its own timings.
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
        cfg.validate()?;
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
        let (tx, rx) = mpsc::unbounded_channel::<Job>();
        let worker = tokio::spawn(drain_queue(inner.clone(), rx));
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

    /// Saves this rank's `items` as step `step`. Returns when the configured mode says (see
    /// [`SaveMode`]); the drain to the store runs in the background (see
    /// [`SaveHandle::wait`]).
    pub async fn save(&self, step: u64, items: Vec<Item>) -> Result<SaveHandle> {
        let t = Instant::now();
        let inner = &self.inner;
        if step > crate::layout::MAX_STEP {
            return Err(CkptError::Invalid(format!(
                "step {step} is larger than the largest step, {} (twelve digits)",
                crate::layout::MAX_STEP
            )));
        }
        save::check_names(&items)?;
        if let Some(l) = &inner.local
            && l.manifest(step).is_some()
        {
            return Err(CkptError::Exists {
                root: l.dir().display().to_string(),
                step,
            });
        }
        let (payload, bytes) = match inner.cfg.mode {
            SaveMode::DurableLocal => inner.stage_durable(step, items).await?,
            SaveMode::Snapshot => inner.stage_snapshot(step, items).await?,
        };
        let stall = t.elapsed();
        inner.record_stall(stall);
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

    /// Loads rank `rank`'s part of the complete checkpoint `step` from the nearest tier whose
    /// checksums hold, whatever this checkpointer's own rank (a load into another world size
    /// reads the parts it needs).
    pub async fn load_rank(&self, step: u64, rank: u32) -> Result<Restored> {
        self.inner.load_rank(step, rank).await
    }

    /// Drains the local tier's complete steps that never reached the store (a save killed
    /// after its local copy), those newer than the store's newest complete step, oldest
    /// first, through the same drain as a save. A checkpointer does this by itself before
    /// its first save's drain. Single-rank checkpoints only.
    pub async fn sync(&self) -> Result<Vec<DrainReport>> {
        self.inner.sync_local(None).await
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

/// The drain task: drains queued saves one at a time, in order, and counts how they went.
/// Before the first, the local tier's steps that never drained (see `sync`).
async fn drain_queue(w: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut synced = false;
    while let Some(job) = rx.recv().await {
        if !std::mem::replace(&mut synced, true)
            && let Err(e) = w.sync_local(Some(job.step)).await
        {
            tracing::warn!("checkpoint: draining the local tier's undrained steps: {e}");
        }
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
                    // Said once: by whoever waits on the save's handle, else here.
                    if done.receiver_count() == 0 {
                        tracing::warn!("checkpoint step {step}: drain failed: {e}");
                    }
                }
            }
        }
        let _ = done.send(Some(r.map_err(Arc::new)));
    }
}

/// Runs `f` on the blocking pool (file I/O and checksums); a panic in it is an error that
/// names `what` (`save`, `drain`, `load`, ...).
async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CkptError::Task {
            what,
            cause: e.to_string(),
        })?
}
