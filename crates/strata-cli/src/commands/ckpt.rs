//! `strata ckpt save|ls|show|verify|restore|gc`.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use strata_ckpt::{Checkpointer, CkptConfig, CkptLayer, CkptSettings, Item, Purpose, Tier};
use strata_config::DurationValue;
use strata_store::{Location, StoreUrl};
use strata_units::format_size;
use strata_units::parse_duration;

use crate::args::{CkptCommand, CkptGcArgs, CkptRestoreArgs, CkptRootArgs, CkptSaveArgs};
use crate::output;
use crate::settings::Settings;

fn duration(flag: &str, text: &str) -> Result<Duration> {
    parse_duration(text).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

/// The checkpointer's settings: the `[ckpt]` section (file, `$STRATA_CKPT_LOCAL`) with
/// `flags` and `--local` over it, for `purpose` (see [`CkptConfig::from_settings`]).
fn config(
    root: &CkptRootArgs,
    s: &Settings,
    mut flags: CkptLayer,
    purpose: Purpose,
) -> Result<CkptConfig> {
    let url = StoreUrl::parse(&root.url)?;
    if let Some(l) = &root.local {
        flags.local = Some(l.display().to_string());
    }
    let mut sources = s.sources.clone();
    sources.set_flags::<CkptSettings>(flags);
    let settings: CkptSettings = sources.get().context("checkpoint settings")?;
    let remote = Location::open(&url, &s.store)?;
    Ok(CkptConfig::from_settings(
        &settings,
        &s.store,
        Some(remote),
        purpose,
    )?)
}

fn step_arg(ck: &Checkpointer, text: &str, list: &[strata_ckpt::CheckpointInfo]) -> Result<u64> {
    if text == "latest" {
        return list
            .iter()
            .rev()
            .find(|c| c.complete)
            .map(|c| c.step)
            .with_context(|| format!("no complete checkpoint in {}", ck.root_display()));
    }
    text.parse()
        .map_err(|_| anyhow::anyhow!("step {text:?}: give a number or `latest`"))
}

pub async fn run(c: &CkptCommand, s: &Settings) -> Result<()> {
    match c {
        CkptCommand::Save(a) => save(a, s).await,
        CkptCommand::Ls(a) => {
            let ck = Checkpointer::open(config(a, s, CkptLayer::default(), Purpose::Read)?)?;
            let list = ck.list().await?;
            if s.json {
                output::json(&list);
                return Ok(());
            }
            println!(
                "{:>14}  {:<10} {:<13} {:>6} {:>6} {:>12}  committed",
                "step", "state", "tiers", "ranks", "files", "size"
            );
            for c in &list {
                let tiers: Vec<&str> = c
                    .tiers
                    .iter()
                    .map(|t| match t {
                        Tier::Local => "local",
                        Tier::Remote => "remote",
                    })
                    .collect();
                let when = c
                    .committed_unix_ms
                    .and_then(chrono::DateTime::from_timestamp_millis)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default();
                println!(
                    "{:>14}  {:<10} {:<13} {:>6} {:>6} {:>12}  {when}",
                    c.step,
                    if c.complete { "complete" } else { "incomplete" },
                    tiers.join("+"),
                    c.world_size,
                    c.files,
                    format_size(c.bytes),
                );
            }
            Ok(())
        }
        CkptCommand::Show(a) => {
            let ck = Checkpointer::open(config(&a.root, s, CkptLayer::default(), Purpose::Read)?)?;
            let list = ck.list().await?;
            let step = step_arg(&ck, &a.step, &list)?;
            let Some((m, tier)) = ck.manifest(step).await? else {
                bail!(
                    "no complete checkpoint at step {step} in {}",
                    ck.root_display()
                );
            };
            if s.json {
                output::json(&m);
                return Ok(());
            }
            let tiers = list
                .iter()
                .find(|c| c.step == step)
                .map(|c| format!("{:?}", c.tiers))
                .unwrap_or_default();
            println!(
                "step {step}: {} rank(s), {} in {} file(s), chunk {}; held by {tiers} (manifest read from {tier:?})",
                m.world_size,
                format_size(m.bytes()),
                m.parts.iter().map(|p| p.files.len()).sum::<usize>(),
                format_size(m.chunk_size)
            );
            for p in &m.parts {
                for f in &p.files {
                    println!(
                        "  rank {:>5}  {:>12}  crc32c {:08x}  {}",
                        p.rank,
                        format_size(f.size),
                        f.crc32c,
                        f.name
                    );
                }
            }
            Ok(())
        }
        CkptCommand::Verify(a) => {
            let ck = Checkpointer::open(config(&a.root, s, CkptLayer::default(), Purpose::Read)?)?;
            let list = ck.list().await?;
            let step = step_arg(&ck, &a.step, &list)?;
            let results = ck.verify(step).await?;
            let bad: usize = results.iter().map(|r| r.2.len()).sum();
            if s.json {
                output::json(&serde_json::json!({
                    "step": step,
                    "tiers": results.iter().map(|(t, n, b)| serde_json::json!({"tier": t, "files": n, "problems": b})).collect::<Vec<_>>(),
                }));
            } else {
                for (t, n, problems) in &results {
                    println!(
                        "step {step} on {t:?}: {n} file(s) checked, {}",
                        if problems.is_empty() {
                            "all chunks verified".to_string()
                        } else {
                            format!("{} problem(s)", problems.len())
                        }
                    );
                    for p in problems {
                        println!("  {p}");
                    }
                }
            }
            if bad > 0 {
                bail!("checkpoint step {step}: {bad} file(s) failed verification");
            }
            Ok(())
        }
        CkptCommand::Restore(a) => restore(a, s).await,
        CkptCommand::Gc(a) => gc(a, s).await,
        CkptCommand::Sync(a) => {
            let cfg = config(a, s, CkptLayer::default(), Purpose::Read)?;
            if cfg.local.is_none() {
                anyhow::bail!("ckpt sync drains a local tier: give --local DIR (or ckpt.local)");
            }
            let ck = Checkpointer::open(cfg)?;
            let drained = ck.sync().await?;
            if s.json {
                output::json(&drained);
            } else if drained.is_empty() {
                println!(
                    "nothing to drain: every complete local checkpoint newer than the store's newest is in the store"
                );
            } else {
                for d in &drained {
                    println!(
                        "drained step {} ({}) to {} in {:.2}s",
                        d.step,
                        format_size(d.bytes),
                        ck.root_display(),
                        d.total_secs
                    );
                }
            }
            Ok(())
        }
    }
}

async fn save(a: &CkptSaveArgs, s: &Settings) -> Result<()> {
    let flags = CkptLayer {
        mode: a.mode.clone(),
        commit_timeout: a.commit_timeout.as_deref().map(DurationValue::from),
        jitter: a.jitter.as_deref().map(DurationValue::from),
        admission: a.admission.clone(),
        max_writers: a.max_writers,
        lease_root: a.lease_root.clone(),
        keep_last: a.keep_last,
        local_keep_last: a.local_keep_last,
        ..Default::default()
    };
    let mut cfg = config(&a.root, s, flags, Purpose::Save)?;
    cfg.rank = a.rank;
    cfg.world_size = a.world;
    let mut items = Vec::new();
    for f in &a.files {
        let (name, path) = match f.split_once('=') {
            Some((n, p)) => (n.to_string(), p.to_string()),
            None => (
                Path::new(f)
                    .file_name()
                    .and_then(|n| n.to_str())
                    .with_context(|| format!("{f}: not a file name"))?
                    .to_string(),
                f.clone(),
            ),
        };
        if !Path::new(&path).is_file() {
            bail!("{path}: not a file");
        }
        items.push(Item::file(name, path));
    }
    let ck = Checkpointer::open(cfg)?;
    let h = ck.save(a.step, items).await?;
    let (step, stall, bytes) = (h.step, h.stall, h.bytes);
    let report = if a.no_wait {
        None
    } else {
        Some(h.wait().await?)
    };
    if s.json {
        output::json(&serde_json::json!({
            "step": step, "bytes": bytes, "stall_secs": stall.as_secs_f64(), "drain": report,
        }));
    } else {
        print!(
            "saved step {step}: {} in {:.3}s of stall",
            format_size(bytes),
            stall.as_secs_f64()
        );
        match &report {
            Some(r) if r.remote => println!(
                "; committed in the store after {:.2}s (upload {:.1} MiB/s, waited {:.2}s, admission {})",
                r.total_secs,
                r.upload_mib_per_sec(),
                r.wait_secs,
                r.admission
            ),
            _ => println!(),
        }
    }
    if a.no_wait {
        // The drain may still run; a CLI process ends here, so say so.
        eprintln!("strata: the drain was not waited for (--no-wait): run without it to commit");
    }
    ck.close().await;
    Ok(())
}

async fn restore(a: &CkptRestoreArgs, s: &Settings) -> Result<()> {
    let base = config(&a.root, s, CkptLayer::default(), Purpose::Read)?;
    let ck = Checkpointer::open(base.clone())?;
    let list = ck.list().await?;
    let want = if a.step == "latest" {
        None
    } else {
        Some(step_arg(&ck, &a.step, &list)?)
    };
    // The ranks to restore: one, or all of the checkpoint's.
    let probe = ck.load(want).await?;
    let (step, tier, secs, world) = (
        probe.step,
        probe.tier,
        probe.secs,
        probe.manifest.world_size,
    );
    let ranks: Vec<u32> = match a.rank {
        Some(r) => vec![r],
        None => (0..world).collect(),
    };
    let mut files = 0;
    let mut bytes = 0u64;
    let mut warnings = Vec::new();
    // The probe's load is the checkpointer's own rank's: used, not loaded again.
    let mut probe = Some(probe);
    for &rank in &ranks {
        let r = match probe.take() {
            Some(p) if rank == base.rank => p,
            _ => {
                let mut cfg = base.clone();
                cfg.rank = rank;
                cfg.world_size = world;
                Checkpointer::open(cfg)?.load(Some(step)).await?
            }
        };
        warnings.extend(r.warnings.iter().cloned());
        let dir = if a.rank.is_some() {
            a.dir.clone()
        } else {
            a.dir.join(format!("rank-{rank:05}"))
        };
        for (name, data) in &r.items {
            let dest = dir.join(name);
            if let Some(p) = dest.parent() {
                std::fs::create_dir_all(p).with_context(|| format!("create {}", p.display()))?;
            }
            let tmp = strata_store::local::temp_path(&dest);
            let guard = strata_store::local::TempGuard::new(&tmp);
            std::fs::write(&tmp, data).with_context(|| format!("write {}", tmp.display()))?;
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("fsync {}", tmp.display()))?;
            std::fs::rename(&tmp, &dest).with_context(|| format!("rename {}", dest.display()))?;
            guard.keep();
            files += 1;
            bytes += data.len() as u64;
        }
    }
    for w in &warnings {
        eprintln!("strata: warning: {w}");
    }
    if s.json {
        output::json(&serde_json::json!({
            "step": step, "tier": tier, "files": files, "bytes": bytes,
            "secs": secs, "warnings": warnings,
        }));
    } else {
        println!(
            "restored step {step} ({} file(s), {}) from the {:?} tier into {}",
            files,
            format_size(bytes),
            tier,
            a.dir.display()
        );
    }
    Ok(())
}

async fn gc(a: &CkptGcArgs, s: &Settings) -> Result<()> {
    let flags = CkptLayer {
        keep_last: a.keep_last,
        keep_every: a.keep_every,
        max_age: a.max_age.as_deref().map(DurationValue::from),
        local_keep_last: a.local_keep_last,
        ..Default::default()
    };
    // gc only reads and deletes: the mode never matters.
    let cfg = config(&a.root, s, flags, Purpose::Read)?;
    let older = duration("older-than", &a.older_than)?;
    let ck = Checkpointer::open(cfg)?;
    let r = ck.gc(older).await?;
    if s.json {
        output::json(&r);
    } else {
        println!(
            "removed incomplete: local {:?}, store {:?}; retired: local {:?}, store {:?}; {} object(s) deleted; {} stale lease(s); {} abandoned upload(s) aborted",
            r.incomplete_local,
            r.incomplete_remote,
            r.retired_local,
            r.retired_remote,
            r.objects_deleted,
            r.stale_leases,
            r.aborted_uploads
        );
    }
    if r.uploads_not_listed {
        eprintln!(
            "note: this store cannot list multipart uploads here; abandoned ones are left to an AbortIncompleteMultipartUpload lifecycle rule on the bucket"
        );
    }
    Ok(())
}
