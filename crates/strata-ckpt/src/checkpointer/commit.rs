//! The commit: rank 0 waits for every rank's marker, checks that every file is in the store
//! with its size, and writes the manifest (last); the other ranks wait for it.

use std::time::{Duration, Instant};

use super::Inner;
use crate::error::{CkptError, Result};
use crate::layout;
use crate::manifest::{Manifest, Tier};
use crate::remote::RemoteTier;

impl Inner {
    /// Rank 0: waits for every marker, checks the objects, writes the manifest.
    pub(super) async fn commit(&self, remote: &RemoteTier, step: u64) -> Result<Manifest> {
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
                cause: cause.to_string(),
            }
        })?;
        // Every file must be there with its size before the commit says so.
        let objects = remote.step_objects(step).await?;
        // Every object of every file: the file, or each of its pieces.
        let wanted = m
            .parts
            .iter()
            .flat_map(|p| p.files.iter().flat_map(move |f| f.objects(step, p.rank)));
        for (rel, range) in wanted {
            let size = range.end - range.start;
            let key = remote.loc.key(&rel);
            let cause = match objects.iter().find(|o| o.key == key) {
                Some(o) if o.size == size => continue,
                Some(o) => format!("{} bytes in the store, the marker says {size}", o.size),
                None => "missing from the store".into(),
            };
            return Err(CkptError::Corrupt {
                root: remote.display(),
                step,
                file: rel,
                cause,
            });
        }
        remote.put_manifest(&m).await?;
        Ok(m)
    }

    /// Other ranks: wait until rank 0 has committed.
    pub(super) async fn await_commit(&self, remote: &RemoteTier, step: u64) -> Result<Manifest> {
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
}
