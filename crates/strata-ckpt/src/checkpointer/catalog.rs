//! What a root holds: every checkpoint either tier knows of (`list`), and a check of every
//! chunk of one (`verify`).

use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;

use super::{Inner, blocking};
use crate::error::{CkptError, Result};
use crate::layout;
use crate::manifest::{Manifest, Tier};

/// A checkpoint as `list` sees it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointInfo {
    /// The step.
    pub step: u64,
    /// A valid manifest exists (on some tier).
    pub complete: bool,
    /// Tiers holding a valid manifest.
    pub tiers: Vec<Tier>,
    /// Ranks that saved it (0 when incomplete).
    pub world_size: u32,
    /// Files over all ranks.
    pub files: usize,
    /// Bytes over all ranks.
    pub bytes: u64,
    /// When the manifest was committed (Unix milliseconds).
    pub committed_unix_ms: Option<i64>,
}

impl Inner {
    pub(super) async fn list(&self) -> Result<Vec<CheckpointInfo>> {
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
            let manifests: Vec<(u64, Option<Manifest>)> = stream::iter(r.steps().await?)
                .map(|s| async move { Ok::<_, CkptError>((s, r.valid_manifest(s).await?)) })
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

    pub(super) async fn verify(&self, step: u64) -> Result<Vec<(Tier, usize, Vec<String>)>> {
        let mut out = Vec::new();
        let world_ranks = |m: &Manifest| (0..m.world_size).collect::<Vec<u32>>();
        if let Some(l) = &self.local
            && let Some(m) = l.manifest(step)
        {
            let l = l.clone();
            let r = blocking("verify", move || {
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
                        if let Err(e) = l.read_file(step, rank, f, m.chunk_size, 2) {
                            bad.push(e.to_string());
                        }
                    }
                }
                Ok((n, bad))
            })
            .await?;
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
}
