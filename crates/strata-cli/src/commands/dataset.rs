//! `strata pack`, `strata index`, `strata dataset info|read`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, bail};
use futures::StreamExt;
use strata_dataset::pack::{PackOptions, PackSource};
use strata_dataset::plan::{Plan, PlanSpec, ShuffleMode};
use strata_dataset::{Dataset, Location, Reader, ReaderConfig, Remainder, World};
use strata_store::StoreUrl;
use strata_units::{format_size, parse_size};

use crate::args::{DatasetCommand, DatasetReadArgs, IndexArgs, PackArgs};
use crate::output;
use crate::settings::Settings;

fn location(url: &str, s: &Settings) -> Result<Location> {
    Ok(Location::open(&StoreUrl::parse(url)?, &s.store)?)
}

pub async fn pack(a: &PackArgs, s: &Settings) -> Result<()> {
    let shard_size = parse_size(&a.shard_size).map_err(anyhow::Error::msg)?;
    let src = if Path::new(&a.src).is_dir() {
        PackSource::Dir(a.src.clone().into())
    } else {
        PackSource::Store(location(&a.src, s)?)
    };
    let dst = location(&a.dst, s)?;
    let total = match &src {
        PackSource::Dir(_) => 0,
        PackSource::Store(l) => l.store.list(&l.prefix).await?.iter().map(|o| o.size).sum(),
    };
    let (bar, _) = output::bytes_bar(total, s.progress, "packing");
    let b = bar.clone();
    let progress: strata_dataset::pack::PackProgress = Arc::new(move |n| b.set_position(n));
    let opts = PackOptions {
        shard_size,
        parallel: a.parallel.max(1),
        ..Default::default()
    };
    let (manifest, report) = strata_dataset::pack::pack(&src, &dst, &opts, Some(progress)).await?;
    bar.finish_and_clear();
    if report.skipped_count > 0 {
        eprintln!(
            "strata: warning: skipped {} file(s) that cannot be sample members, e.g. {}",
            report.skipped_count,
            report.skipped.join(", ")
        );
    }
    if s.json {
        output::json(&report);
    } else {
        println!(
            "packed {} samples ({} files, {}) into {} shards ({}) at {} in {:.2}s",
            report.samples,
            report.files,
            format_size(report.input_bytes),
            manifest.shards.len(),
            format_size(report.shard_bytes),
            dst.display(""),
            report.elapsed_secs
        );
    }
    Ok(())
}

pub async fn index(a: &IndexArgs, s: &Settings) -> Result<()> {
    let loc = location(&a.url, s)?;
    let out = match &a.out {
        Some(u) => location(u, s)?,
        None => loc.clone(),
    };
    let m = if a.raw {
        strata_dataset::indexer::index_raw_into(&loc, &out).await?
    } else {
        let total: u64 = loc
            .store
            .list(&loc.prefix)
            .await?
            .iter()
            .filter(|o| strata_dataset::indexer::is_shard(&o.key))
            .map(|o| o.size)
            .sum();
        let (bar, _) = output::bytes_bar(total, s.progress, "indexing");
        let b = bar.clone();
        let m = strata_dataset::indexer::index_prefix_into(&loc, &out, &move |n| b.set_position(n))
            .await?;
        bar.finish_and_clear();
        m
    };
    if s.json {
        output::json(&m);
    } else if a.raw {
        println!(
            "listed {} objects, {}; wrote {}",
            m.samples,
            format_size(m.bytes),
            out.display(strata_dataset::manifest::MANIFEST_NAME)
        );
    } else {
        println!(
            "indexed {} shards, {} samples, {}; wrote {} and one .idx per shard{}",
            m.shards.len(),
            m.samples,
            format_size(m.bytes),
            out.display(strata_dataset::manifest::MANIFEST_NAME),
            if a.out.is_some() { " there" } else { "" }
        );
    }
    Ok(())
}

pub async fn run(c: &DatasetCommand, s: &Settings) -> Result<()> {
    match c {
        DatasetCommand::Info(a) => info(a, s).await,
        DatasetCommand::Read(a) => read(a, s).await,
    }
}

fn spec(a: &DatasetReadArgs) -> Result<PlanSpec> {
    let mode = match a.shuffle.as_str() {
        "none" | "sequential" => ShuffleMode::Sequential,
        "window" => ShuffleMode::Window,
        "global" => ShuffleMode::Global,
        other => bail!("--shuffle {other:?}: expected none, window or global"),
    };
    Ok(PlanSpec {
        seed: a.seed,
        epoch: a.epoch,
        mode,
        window: a.window.max(1),
        streams: a.streams.max(1),
    })
}

async fn open(a: &DatasetReadArgs, s: &Settings) -> Result<Dataset> {
    let opts = strata_dataset::OpenOptions {
        index: a.index.as_deref().map(|u| location(u, s)).transpose()?,
        raw: a.raw,
        index_cache: None,
    };
    Ok(Dataset::open_with(location(&a.url, s)?, &opts).await?)
}

async fn info(a: &DatasetReadArgs, s: &Settings) -> Result<()> {
    let ds = open(a, s).await?;
    let spec = spec(a)?;
    let plan = Plan::new(&ds.manifest, spec);
    let q = plan.quality();
    if s.json {
        output::json(&serde_json::json!({
            "manifest": ds.manifest,
            "plan": spec,
            "quality": q,
        }));
    } else {
        let m = &ds.manifest;
        println!(
            "{}: {:?} layout, {} shards, {} samples, {} (mean sample {})",
            ds.location.display(""),
            m.layout,
            m.shards.len(),
            m.samples,
            format_size(m.bytes),
            format_size(m.bytes / m.samples.max(1))
        );
        println!(
            "plan {:?} (seed {}, epoch {}, window {}, streams {}): displacement {:.3}, batch diversity {:.3} (1.0 = a full shuffle's)",
            spec.mode,
            spec.seed,
            spec.epoch,
            spec.window,
            spec.streams,
            q.displacement,
            q.batch_diversity
        );
    }
    Ok(())
}

/// `--stream`: every .tar under the URL, in key order, read without an index.
async fn stream_tars(a: &DatasetReadArgs, s: &Settings) -> Result<()> {
    let loc = location(&a.url, s)?;
    let strip = if loc.prefix.is_empty() {
        0
    } else {
        loc.prefix.len() + 1
    };
    let tars: Vec<String> = loc
        .store
        .list(&loc.prefix)
        .await?
        .into_iter()
        .map(|o| o.key[strip..].to_string())
        .filter(|k| k.to_ascii_lowercase().ends_with(".tar"))
        .collect();
    if tars.is_empty() {
        bail!("{}: no .tar shard under this prefix", loc.display(""));
    }
    let limit = a.limit.unwrap_or(u64::MAX);
    let mut n = 0u64;
    'shards: for rel in tars {
        let mut st = strata_dataset::indexer::stream_unindexed(loc.clone(), rel.clone());
        while let Some(sample) = st.next().await {
            let sample = sample?;
            if n >= limit {
                break 'shards;
            }
            let members: Vec<String> = sample
                .members
                .iter()
                .map(|(e, b)| format!("{e}:{}", b.len()))
                .collect();
            println!("{n}\t{}\t{}\t{rel}", sample.key, members.join(" "));
            n += 1;
        }
    }
    eprintln!("streamed {n} samples without an index");
    Ok(())
}

async fn read(a: &DatasetReadArgs, s: &Settings) -> Result<()> {
    if a.stream {
        return stream_tars(a, s).await;
    }
    let ds = Arc::new(open(a, s).await?);
    let cache = if s.read_through {
        Some(Arc::new(s.open_cache(true)?))
    } else {
        None
    };
    let cfg = ReaderConfig {
        plan: spec(a)?,
        world: World {
            ranks: a.ranks.max(1),
            rank: a.rank,
            workers: 1,
            worker: 0,
        },
        remainder: if a.drop_last {
            Remainder::DropLast
        } else {
            Remainder::Pad
        },
        consumed: a.consumed,
        skip_corrupt: a.skip_corrupt,
        ..Default::default()
    };
    let reader = Reader::new(ds, cache.clone(), cfg).await?;
    let mut stream = reader.stream();
    let limit = a.limit.unwrap_or(u64::MAX);
    let mut n = 0u64;
    let mut bytes = 0u64;
    let t = std::time::Instant::now();
    while n < limit {
        let Some(sample) = stream.next().await else {
            break;
        };
        let sample = sample?;
        n += 1;
        bytes += sample.bytes();
        if s.json {
            output::json(&serde_json::json!({
                "position": sample.position,
                "key": sample.key,
                "shard": sample.shard,
                "members": sample.members.iter().map(|(e, b)| (e.clone(), b.len())).collect::<Vec<_>>(),
            }));
        } else {
            let members: Vec<String> = sample
                .members
                .iter()
                .map(|(e, b)| format!("{e}:{}", b.len()))
                .collect();
            println!("{}\t{}\t{}", sample.position, sample.key, members.join(" "));
        }
    }
    drop(stream);
    if let Some(c) = &cache {
        c.flush().await;
    }
    let secs = t.elapsed().as_secs_f64();
    let st = reader.stats();
    eprintln!(
        "read {n} samples, {} in {secs:.2}s ({:.1} MiB/s); {} skipped as corrupt",
        format_size(bytes),
        bytes as f64 / (1 << 20) as f64 / secs.max(1e-9),
        st.skipped.load(std::sync::atomic::Ordering::Relaxed)
    );
    Ok(())
}
