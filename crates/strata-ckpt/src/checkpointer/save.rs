//! Saving: a step's items go to the local tier (durable-local mode) or into staging memory
//! (snapshot mode) before `save` returns; the drain is queued behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, watch};

use super::drain::DrainReport;
use super::{Inner, blocking};
use crate::error::{CkptError, Result};
use crate::local::{Item, ItemData, LocalTier};
use crate::manifest::{Manifest, RankPart, Tier};

/// Staging memory is counted in units of 64 KiB (a semaphore counts in u32).
pub(super) const STAGING_UNIT: u64 = 64 << 10;

/// What a save cost the caller, and how to wait for its drain.
pub struct SaveHandle {
    /// The step saved.
    pub step: u64,
    /// The time `save` blocked the caller.
    pub stall: Duration,
    /// Bytes saved by this rank.
    pub bytes: u64,
    pub(super) done: watch::Receiver<Option<Result<DrainReport, Arc<CkptError>>>>,
    pub(super) progress: Arc<DrainProgress>,
}

/// How far a drain has come: bytes uploaded to the store and bytes to upload (0 until the
/// drain starts uploading).
#[derive(Debug, Default)]
pub struct DrainProgress {
    pub(super) uploaded: std::sync::atomic::AtomicU64,
    pub(super) total: std::sync::atomic::AtomicU64,
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

/// Where a saved part waits for its drain.
pub(super) enum Payload {
    /// Already on the local tier.
    Local(RankPart),
    /// In staging memory (snapshot mode).
    Staged(Vec<(String, Bytes)>, OwnedSemaphorePermit),
}

/// A save queued for the drain task.
pub(super) struct Job {
    pub(super) step: u64,
    pub(super) started: Instant,
    pub(super) payload: Payload,
    pub(super) progress: Arc<DrainProgress>,
    pub(super) done: watch::Sender<Option<Result<DrainReport, Arc<CkptError>>>>,
}

/// Checks a save's item names: valid, and each given once.
pub(super) fn check_names(items: &[Item]) -> Result<()> {
    let mut names = std::collections::HashSet::new();
    for it in items {
        crate::manifest::validate_name(&it.name).map_err(|e| CkptError::Invalid(e.to_string()))?;
        if !names.insert(it.name.clone()) {
            return Err(CkptError::Invalid(format!(
                "item {:?} given twice",
                it.name
            )));
        }
    }
    Ok(())
}

/// Writes this rank's part of `step` to the local tier (each file fsynced and renamed into
/// place), and with one rank the manifest after it; returns the part.
pub(super) fn write_local(
    local: &LocalTier,
    step: u64,
    (rank, world, chunk, piece): (u32, u32, u64, u64),
    items: &[Item],
) -> Result<RankPart> {
    let mut part = local.write_part(step, rank, world, chunk, items)?;
    // The local tier holds whole files; in the store, large ones go in pieces.
    for f in &mut part.files {
        f.piece_size = crate::manifest::piece_size_for(f.size, chunk, piece);
    }
    part.format = crate::manifest::format_for(&part.files);
    if world == 1 {
        let m = Manifest::from_parts(step, 1, vec![part.clone()], vec![Tier::Local])
            .map_err(|e| CkptError::Invalid(e.to_string()))?;
        local.write_manifest(&m)?;
    }
    Ok(part)
}

impl Inner {
    /// Rank, world size and checksum chunk: what a part is written with.
    pub(super) fn shape(&self) -> (u32, u32, u64, u64) {
        (
            self.cfg.rank,
            self.cfg.world_size,
            self.cfg.chunk_size,
            self.cfg.piece_size,
        )
    }

    /// Durable-local mode: the part on the local tier before `save` returns.
    pub(super) async fn stage_durable(
        &self,
        step: u64,
        items: Vec<Item>,
    ) -> Result<(Payload, u64)> {
        let local = self
            .local
            .clone()
            .expect("validated: durable-local has a local tier");
        let shape = self.shape();
        let part = blocking("save", move || write_local(&local, step, shape, &items)).await?;
        let bytes = part.bytes();
        Ok((Payload::Local(part), bytes))
    }

    /// Snapshot mode: the items copied into staging memory (waiting for room) before `save`
    /// returns; the caller may change its buffers at once.
    pub(super) async fn stage_snapshot(
        &self,
        step: u64,
        items: Vec<Item>,
    ) -> Result<(Payload, u64)> {
        let mut total = 0u64;
        for it in &items {
            total += it.size()?;
        }
        if total > self.cfg.staging_bytes {
            return Err(CkptError::Invalid(format!(
                "snapshot of step {step}: {total} bytes do not fit the staging memory of {} bytes (raise staging_bytes, or use durable-local mode)",
                self.cfg.staging_bytes
            )));
        }
        let units = total.div_ceil(STAGING_UNIT).max(1) as u32;
        let permit = self
            .staging
            .clone()
            .acquire_many_owned(units)
            .await
            .expect("never closed");
        let pool = self.pool.clone();
        let staged = blocking("save", move || {
            let mut out = Vec::with_capacity(items.len());
            for it in items {
                let data = match it.data {
                    // The copy is the snapshot: the caller may change its buffers as soon as
                    // save returns.
                    ItemData::Bytes(b) => pool.copy(&b),
                    ItemData::Segments(segs) => {
                        let slices: Vec<&[u8]> = segs.iter().map(|b| &b[..]).collect();
                        pool.gather(&slices)
                    }
                    ItemData::File(p) => {
                        Bytes::from(std::fs::read(&p).map_err(|e| CkptError::io("read", &p, e))?)
                    }
                };
                out.push((it.name, data));
            }
            Ok(out)
        })
        .await?;
        Ok((Payload::Staged(staged, permit), total))
    }

    /// Counts a save's stall.
    pub(super) fn record_stall(&self, stall: std::time::Duration) {
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.saves += 1;
        s.last_stall_secs = stall.as_secs_f64();
        s.mean_stall_secs += (stall.as_secs_f64() - s.mean_stall_secs) / s.saves as f64;
    }
}
