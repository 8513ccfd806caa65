//! Restore: the newest complete checkpoint (or a given step) from the nearest tier whose
//! checksums hold, falling back past a corrupt one unless told to fail.

use std::time::Instant;

use futures::{StreamExt, TryStreamExt, stream};

use super::{Inner, blocking};
use crate::buffer::Buffer;
use crate::config::OnCorrupt;
use crate::error::{CkptError, Result};
use crate::local::LocalTier;
use crate::manifest::{Manifest, Tier};

/// What `load` returned.
#[derive(Debug)]
pub struct Restored {
    /// The step restored.
    pub step: u64,
    /// Where this rank's files came from.
    pub tier: Tier,
    /// Its manifest.
    pub manifest: Manifest,
    /// This rank's items, by name, verified: mapped from the local tier or read from the
    /// store into memory, with no copy after.
    pub items: Vec<(String, Buffer)>,
    /// Checkpoints skipped on the way (newer ones that were corrupt), with the cause.
    pub warnings: Vec<String>,
    /// Seconds the load took.
    pub secs: f64,
}

impl Restored {
    /// The item called `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.items
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| &b[..])
    }
}

impl Inner {
    pub(super) async fn load(&self, want: Option<u64>) -> Result<Restored> {
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
        // The newest checkpoint that could not be restored: what to report if none can.
        let mut newest_err = None;
        for &step in steps.iter().rev() {
            match self.load_step(step, self.cfg.rank).await {
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
                // Without a valid manifest a checkpoint does not exist: skipped, named.
                Err(CkptError::Manifest { path, cause }) if want.is_none() => {
                    warnings.push(format!(
                        "checkpoint {path}: bad manifest: {cause}; step {step} ignored"
                    ));
                }
                Err(e) => {
                    // Only a damaged checkpoint is skipped (bad bytes, a missing object or
                    // file): a store that fails (down, denied, out of retries) says nothing
                    // about the checkpoint, and falling back past it would silently resume
                    // from older state.
                    let damaged = match &e {
                        CkptError::Store(se) => se.kind() == strata_store::ErrorKind::NotFound,
                        _ => true,
                    };
                    if want.is_some() || self.cfg.on_corrupt == OnCorrupt::Fail || !damaged {
                        return Err(e);
                    }
                    let w = format!(
                        "checkpoint step {step} cannot be restored ({e}); falling back to the previous complete checkpoint"
                    );
                    tracing::warn!("{w}");
                    warnings.push(w);
                    newest_err.get_or_insert(e);
                }
            }
        }
        // Every complete checkpoint was damaged: that, not "none found", is the answer.
        Err(newest_err.unwrap_or(CkptError::NotFound {
            root: self.root_display(),
            step: want,
        }))
    }

    /// Rank `rank`'s part of the complete checkpoint `step` (any rank's: a resharded load
    /// reads the parts it needs).
    pub(super) async fn load_rank(&self, step: u64, rank: u32) -> Result<Restored> {
        let t = Instant::now();
        match self.load_step(step, rank).await? {
            Some((manifest, tier, items)) => Ok(Restored {
                step,
                tier,
                manifest,
                items,
                warnings: Vec::new(),
                secs: t.elapsed().as_secs_f64(),
            }),
            None => Err(CkptError::NotFound {
                root: self.root_display(),
                step: Some(step),
            }),
        }
    }

    /// `Ok(None)`: no valid manifest on any tier. `Err`: complete but unreadable.
    async fn load_step(
        &self,
        step: u64,
        rank: u32,
    ) -> Result<Option<(Manifest, Tier, Vec<(String, Buffer)>)>> {
        let mut local_err = None;
        if let Some(local) = &self.local
            && let Some(m) = local.manifest(step)
        {
            let l = local.clone();
            let m2 = m.clone();
            let r = blocking("load", move || read_part_local(&l, &m2, rank)).await;
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
        let items: Vec<(String, Buffer)> = stream::iter(reads)
            .buffered(self.cfg.drain.files_in_flight.max(1))
            .try_collect()
            .await?;
        Ok(Some((m, Tier::Remote, items)))
    }
}

fn read_part_local(l: &LocalTier, m: &Manifest, rank: u32) -> Result<Vec<(String, Buffer)>> {
    let part = m.part(rank).ok_or_else(|| {
        CkptError::Invalid(format!(
            "checkpoint step {} has {} rank(s); this is rank {rank}",
            m.step, m.world_size
        ))
    })?;
    // Files are mapped and checked side by side, a few threads at a time (one reader does
    // not keep an NVMe device busy); a file checks on as many threads as the readers leave.
    const READERS: usize = 4;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.div_ceil(part.files.len().clamp(1, READERS)).max(2);
    let mut out: Vec<Option<Result<Buffer>>> = (0..part.files.len()).map(|_| None).collect();
    for (files, slots) in part.files.chunks(READERS).zip(out.chunks_mut(READERS)) {
        std::thread::scope(|s| {
            for (f, slot) in files.iter().zip(slots.iter_mut()) {
                s.spawn(move || *slot = Some(l.read_file(m.step, rank, f, m.chunk_size, threads)));
            }
        });
    }
    part.files
        .iter()
        .zip(out)
        .map(|(f, r)| Ok((f.name.clone(), r.expect("every file read")?)))
        .collect()
}
