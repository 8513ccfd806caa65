//! Steps that never drained: a save killed after its local copy was durable leaves the step
//! complete on the local tier only. The next checkpointer drains those newer than the
//! newest step in the store, oldest first, through the same drain (admission, pieces,
//! commit, retention), before its own first save's drain (or when asked: `sync`).

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use super::drain::DrainReport;
use super::save::{Job, Payload};
use super::{Inner, blocking};
use crate::error::Result;
use crate::manifest::{Manifest, Tier};

impl Inner {
    /// Drains the local tier's complete, never-drained steps that are newer than the newest
    /// complete step in the store (and older than `before`, a step about to be drained),
    /// oldest first; returns their drain reports. Older ones are superseded by the store's
    /// newer checkpoint and left to retention. Only single-rank steps: a multi-rank step is
    /// committed by rank 0 once every rank's part is in the store, which one node cannot do
    /// alone.
    pub(super) async fn sync_local(&self, before: Option<u64>) -> Result<Vec<DrainReport>> {
        let (Some(local), Some(remote)) = (&self.local, &self.remote) else {
            return Ok(Vec::new());
        };
        if self.cfg.world_size != 1 || self.cfg.rank != 0 {
            return Ok(Vec::new());
        }
        let l = local.clone();
        let pending: Vec<(u64, Manifest)> = blocking("sync", move || {
            Ok(l.steps()
                .into_iter()
                .filter_map(|s| l.manifest(s).map(|m| (s, m)))
                .filter(|(_, m)| !m.tiers.contains(&Tier::Remote) && m.world_size == 1)
                .collect())
        })
        .await?;
        let pending: Vec<(u64, Manifest)> = pending
            .into_iter()
            .filter(|(s, _)| before.is_none_or(|b| *s < b))
            .collect();
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let mut newest_remote = None;
        for s in remote.steps().await?.into_iter().rev() {
            if remote.valid_manifest(s).await?.is_some() {
                newest_remote = Some(s);
                break;
            }
        }
        let mut out = Vec::new();
        for (step, m) in pending {
            if newest_remote.is_some_and(|r| step <= r) {
                continue;
            }
            let Some(part) = m.parts.into_iter().next() else {
                continue;
            };
            tracing::warn!(
                "checkpoint step {step}: complete on the local tier only (its save did not drain); draining it to {} now",
                remote.display()
            );
            let job = Job {
                step,
                started: Instant::now(),
                payload: Payload::Local(part),
                progress: Arc::default(),
                done: watch::channel(None).0,
            };
            out.push(self.drain(job).await?);
        }
        Ok(out)
    }
}
