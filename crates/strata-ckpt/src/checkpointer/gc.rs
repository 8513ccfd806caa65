//! Collection: incomplete checkpoints abandoned by a crash, stale leases, multipart uploads a
//! killed drain left open, and complete checkpoints the retention rules retire.

use std::time::Duration;

use serde::Serialize;

use super::{Inner, blocking};
use crate::error::Result;
use crate::layout;
use crate::local::LocalTier;
use crate::manifest::{Manifest, Tier};
use crate::remote::RemoteTier;

/// What `gc` removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// Incomplete steps removed, per tier.
    pub incomplete_local: Vec<u64>,
    /// Incomplete steps removed from the store.
    pub incomplete_remote: Vec<u64>,
    /// Complete steps removed by the retention rules, per tier.
    pub retired_local: Vec<u64>,
    /// Complete steps the retention rules removed from the store.
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

impl Inner {
    /// Applies retention: on the local tier always, in the store when `remote_too`.
    pub(super) async fn apply_retention(
        &self,
        remote_too: bool,
    ) -> Result<(Vec<u64>, Vec<u64>, usize)> {
        let r = &self.cfg.retention;
        let now = chrono::Utc::now().timestamp_millis();
        let mut retired_local = Vec::new();
        if let Some(local) = &self.local {
            let local = local.clone();
            let keep = r.local_keep_last;
            let rules = r.clone();
            retired_local = blocking("retention", move || {
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
                Ok(out)
            })
            .await?;
        }
        let mut retired_remote = Vec::new();
        let mut deleted = 0;
        if remote_too && let Some(remote) = &self.remote {
            let rules_apply = r.keep_last.is_some() || r.max_age.is_some();
            if rules_apply {
                let mut complete = Vec::new();
                for s in remote.steps().await? {
                    if let Some(m) = remote.valid_manifest(s).await? {
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

    pub(super) async fn gc(&self, abandoned_after: Duration) -> Result<GcReport> {
        let mut report = GcReport::default();
        if let Some(l) = &self.local {
            report.incomplete_local = gc_local(l.clone(), abandoned_after).await?;
        }
        if let Some(r) = &self.remote {
            let (steps, deleted) = gc_remote_steps(r, abandoned_after).await?;
            report.incomplete_remote = steps;
            report.objects_deleted += deleted;
            report.stale_leases = self.gc_leases(r, abandoned_after).await?;
            report.objects_deleted += report.stale_leases;
            report.objects_deleted += gc_probes(r, abandoned_after).await?;
            match gc_uploads(r, abandoned_after).await? {
                None => report.uploads_not_listed = true,
                Some(n) => report.aborted_uploads = n,
            }
        }
        let (rl, rr, n) = self.apply_retention(true).await?;
        report.retired_local = rl;
        report.retired_remote = rr;
        report.objects_deleted += n;
        Ok(report)
    }

    /// Deletes leases of holders that died (a live holder rewrites its lease every third of
    /// its lifetime, so its object is young); returns how many.
    async fn gc_leases(&self, r: &RemoteTier, abandoned_after: Duration) -> Result<usize> {
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
        let mut n = 0;
        for o in leases.store.list(&leases.prefix).await? {
            if older_than(o.last_modified, abandoned_after) {
                leases.store.delete(&o.key).await?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// Deletes what capability probes killed mid-way left under the root (a live probe's
/// objects live for milliseconds); returns how many.
async fn gc_probes(r: &RemoteTier, abandoned_after: Duration) -> Result<usize> {
    let dir = r.loc.key(strata_store::capability::PROBE_PREFIX);
    let mut n = 0;
    for o in r.loc.store.list(&dir).await? {
        if older_than(o.last_modified, abandoned_after) {
            r.loc.store.delete(&o.key).await?;
            n += 1;
        }
    }
    r.loc.store.prune_empty_dirs(&dir).await?;
    Ok(n)
}

/// Whether `t` is at least `age` ago.
fn older_than(t: chrono::DateTime<chrono::Utc>, age: Duration) -> bool {
    (chrono::Utc::now() - t).to_std().is_ok_and(|a| a >= age)
}

/// Removes the local tier's incomplete steps untouched for `abandoned_after`, and the hidden
/// leftovers (temporary files of a crashed write) in old complete ones; returns the steps
/// removed.
async fn gc_local(l: LocalTier, abandoned_after: Duration) -> Result<Vec<u64>> {
    let now = std::time::SystemTime::now();
    blocking("gc", move || {
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
                let dir = l.path(&layout::step_dir(s));
                for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                    if e.file_name().to_string_lossy().starts_with('.') {
                        let p = e.path();
                        let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
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
        Ok(out)
    })
    .await
}

/// Removes the store's incomplete steps (no manifest) whose newest object is at least
/// `abandoned_after` old; returns the steps and the objects deleted.
async fn gc_remote_steps(r: &RemoteTier, abandoned_after: Duration) -> Result<(Vec<u64>, usize)> {
    let (mut steps, mut deleted) = (Vec::new(), 0);
    for s in r.steps().await? {
        if r.valid_manifest(s).await?.is_some() {
            continue;
        }
        let objects = r.step_objects(s).await?;
        let newest = objects.iter().map(|o| o.last_modified).max();
        if newest.is_none_or(|t| older_than(t, abandoned_after)) {
            for o in &objects {
                r.loc.store.delete(&o.key).await?;
            }
            r.loc
                .store
                .prune_empty_dirs(&r.loc.key(&layout::step_dir(s)))
                .await?;
            deleted += objects.len();
            steps.push(s);
        }
    }
    Ok((steps, deleted))
}

/// Aborts the multipart uploads of drains that died mid-file: invisible to listings of
/// objects, billed until aborted. A live drain's uploads are younger than
/// `abandoned_after`. `None` when the store cannot list them.
async fn gc_uploads(r: &RemoteTier, abandoned_after: Duration) -> Result<Option<usize>> {
    let prefix = if r.loc.prefix.is_empty() {
        String::new()
    } else {
        format!("{}/", r.loc.prefix)
    };
    let Some(uploads) = r.loc.store.pending_uploads(&prefix).await? else {
        return Ok(None);
    };
    let mut n = 0;
    for u in uploads {
        let old = match u.initiated {
            Some(t) => older_than(t, abandoned_after),
            None => abandoned_after.is_zero(),
        };
        if old {
            r.loc.store.abort_upload(&u.key, &u.upload_id).await?;
            n += 1;
        }
    }
    Ok(Some(n))
}
