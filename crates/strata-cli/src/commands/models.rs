//! `strata models pull|inspect|ls|verify|rm`.

use std::sync::Arc;

use anyhow::{Result, bail};
use strata_models::{Model, ModelError, ModelRepo, PullOptions};
use strata_store::{Store, StoreUrl};
use strata_units::format_size;

use crate::args::{ModelsCommand, ModelsInspectArgs, ModelsPullArgs, ModelsRefArgs};
use crate::output;
use crate::settings::Settings;

pub async fn run(c: &ModelsCommand, s: &Settings) -> Result<()> {
    let repo = ModelRepo::open(&s.cache.dir)?;
    match c {
        ModelsCommand::Pull(a) => pull(a, s, &repo).await,
        ModelsCommand::Inspect(a) => inspect(a, s).await,
        ModelsCommand::Ls => {
            let all = repo.list();
            if s.json {
                output::json(&all);
                return Ok(());
            }
            if all.is_empty() {
                println!("no models in {}", repo.dir().display());
            }
            for m in all {
                let when = chrono::DateTime::from_timestamp_millis(m.manifest.pulled_unix_ms)
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default();
                let sel = if m.manifest.selectors.is_empty() {
                    String::new()
                } else {
                    format!("  tensors {}", m.manifest.selectors.join(","))
                };
                println!(
                    "{}  {}  {:>3} file(s)  {:>10}  {}  {}{sel}",
                    m.manifest.source,
                    m.manifest.version,
                    m.manifest.files.len(),
                    format_size(m.manifest.bytes()),
                    when,
                    m.dir.display()
                );
            }
            Ok(())
        }
        ModelsCommand::Verify(a) => {
            let found = find(&repo, a, true)?;
            let mut bad = 0;
            for m in &found {
                let problems = Model::verify(&m.dir)?;
                if s.json {
                    output::json(&serde_json::json!({
                        "dir": m.dir, "source": m.manifest.source, "problems": problems,
                    }));
                } else if problems.is_empty() {
                    println!(
                        "{}: {} file(s) intact ({})",
                        m.dir.display(),
                        m.manifest.files.len(),
                        format_size(m.manifest.bytes())
                    );
                } else {
                    for p in &problems {
                        eprintln!("{p}");
                    }
                }
                bad += problems.len();
            }
            if bad > 0 {
                bail!("{bad} problem(s) found; `strata models rm` and pull again");
            }
            Ok(())
        }
        ModelsCommand::Rm(a) => {
            let found = find(&repo, a, false)?;
            for m in &found {
                repo.remove(m)?;
                if !s.json {
                    println!("removed {} ({})", m.dir.display(), m.manifest.source);
                }
            }
            if s.json {
                output::json(&found.iter().map(|m| &m.dir).collect::<Vec<_>>());
            }
            Ok(())
        }
    }
}

fn find(
    repo: &ModelRepo,
    a: &ModelsRefArgs,
    newest: bool,
) -> Result<Vec<strata_models::CachedModel>> {
    let found = repo.find(&a.model, newest);
    if found.is_empty() {
        return Err(ModelError::NotCached(a.model.clone()).into());
    }
    Ok(found)
}

async fn pull(a: &ModelsPullArgs, s: &Settings, repo: &ModelRepo) -> Result<()> {
    let url = StoreUrl::parse(&a.url)?;
    let store = Store::open(&url, &s.store)?;
    let first: Arc<std::sync::Mutex<Option<(String, f64)>>> = Arc::default();
    let f2 = first.clone();
    let (bar, progress) = output::bytes_bar(0, s.progress, "pulling");
    let bar2 = bar.clone();
    let opts = PullOptions {
        tensors: a.tensors.clone(),
        parts_in_flight: a.parts_in_flight.max(1),
        verify: a.verify,
        on_tensor: Some(Arc::new(move |t| {
            let mut f = f2.lock().unwrap_or_else(|e| e.into_inner());
            if f.is_none() {
                *f = Some((t.tensor.name.clone(), t.secs));
            }
        })),
        progress: Some(Arc::new(move |n| {
            bar2.inc_length(n);
            progress(n);
        })),
        ..Default::default()
    };
    let r = strata_models::pull(repo, &store, &url, &opts).await?;
    bar.finish_and_clear();
    if s.json {
        output::json(&r);
        return Ok(());
    }
    if r.already_cached {
        println!("{} is cached: {}", r.source, r.dir.display());
    } else if r.waited_for_other {
        println!(
            "{} was pulled by another process while this one waited: {}",
            r.source,
            r.dir.display()
        );
    } else {
        println!(
            "pulled {}: {} file(s), {} tensor(s), {} in {:.2}s ({:.1} MiB/s){}",
            r.source,
            r.files,
            r.tensors,
            format_size(r.bytes),
            r.elapsed_secs,
            r.mib_per_sec(),
            if r.resumed_bytes > 0 {
                format!(
                    "; resumed {} from an interrupted pull",
                    format_size(r.resumed_bytes)
                )
            } else {
                String::new()
            }
        );
        if let Some((name, secs)) = first.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            println!("first tensor ({name}) on disk after {secs:.3}s");
        }
        println!("{}", r.dir.display());
    }
    Ok(())
}

async fn inspect(a: &ModelsInspectArgs, s: &Settings) -> Result<()> {
    let url = StoreUrl::parse(&a.url)?;
    let store = Store::open(&url, &s.store)?;
    let key = url.key().trim_end_matches('/');
    let mut objects = store.list(key).await?;
    if objects.is_empty() {
        objects.push(store.head(key).await?);
    }
    let mut out = Vec::new();
    for o in objects.iter().filter(|o| o.key.ends_with(".safetensors")) {
        let h = strata_models::read_header(&store, &o.key, o).await?;
        for t in h.select(&a.tensors) {
            out.push((o.key.clone(), t.clone()));
        }
    }
    if s.json {
        output::json(
            &out.iter()
                .map(|(f, t)| serde_json::json!({"file": f, "tensor": t}))
                .collect::<Vec<_>>(),
        );
        return Ok(());
    }
    for (f, t) in &out {
        println!(
            "{:<48} {:<8} {:<20} {:>10}  {}",
            t.name,
            t.dtype.name(),
            format!("{:?}", t.shape),
            format_size(t.len()),
            f.rsplit('/').next().unwrap_or(f)
        );
    }
    println!(
        "{} tensor(s), {} in {} file(s)",
        out.len(),
        format_size(out.iter().map(|(_, t)| t.len()).sum()),
        objects
            .iter()
            .filter(|o| o.key.ends_with(".safetensors"))
            .count()
    );
    Ok(())
}
