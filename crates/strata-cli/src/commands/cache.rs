//! `strata warm URL` and `strata cache stats|clear|invalidate`.

use anyhow::{Result, bail};
use strata_store::{Store, StoreUrl};
use strata_units::format_size;

use crate::args::{CacheCommand, WarmArgs};
use crate::output;
use crate::settings::Settings;

/// The summary line of a warm-up: objects, bytes, time, rate, fetched and already cached.
fn warmed(objects: usize, bytes: u64, secs: f64, fetched: u64) -> String {
    format!(
        "warmed {objects} object(s), {} in {secs:.2}s ({:.1} MiB/s); fetched {}, {} already cached",
        format_size(bytes),
        bytes as f64 / (1 << 20) as f64 / secs.max(1e-9),
        format_size(fetched),
        format_size(bytes - fetched.min(bytes)),
    )
}

pub async fn warm(a: &WarmArgs, s: &Settings) -> Result<()> {
    let dram = match a.tier.as_str() {
        "nvme" => false,
        "dram" => true,
        other => bail!("--tier {other:?}: use nvme or dram"),
    };
    let url = StoreUrl::parse(&a.url)?;
    if let Some(d) = s.daemon_client()? {
        return warm_through_daemon(&d, &url, dram, s).await;
    }
    let store = Store::open(&url, &s.store)?;
    let versions = strata_cache::objects_named(&store, &url).await?;
    let total: u64 = versions.iter().map(|v| v.size).sum();
    // A CLI process's DRAM dies with it: warm the NVMe tier (and, for --tier dram, the page
    // cache over it, which outlives this process).
    let cache = s.open_cache(false)?;
    let (bar, progress) = output::bytes_bar(total, s.progress, "warming");
    let report = strata_cache::warm(
        &cache,
        &store,
        &versions,
        s.store.transfer.concurrency,
        &*progress,
    )
    .await?;
    bar.finish_and_clear();
    let held = if dram {
        Some(strata_cache::hold_in_page_cache(&cache, &versions).await?)
    } else {
        None
    };
    if s.json {
        let mut v = serde_json::to_value(&report)?;
        if let Some(h) = &held {
            v["page_cache"] = serde_json::to_value(h)?;
        }
        output::json(&v);
    } else {
        println!(
            "{}; cache {}",
            warmed(
                report.objects,
                report.bytes,
                report.elapsed_secs,
                report.fetched_bytes
            ),
            s.cache.dir.display()
        );
        if let Some(h) = &held {
            println!(
                "page cache: loaded {} in {:.2}s, {} resident",
                format_size(h.loaded_bytes),
                h.elapsed_secs,
                format_size(h.resident_bytes)
            );
        }
    }
    if let Some(why) = report.incomplete(&s.cache.dir) {
        bail!("{why}");
    }
    if let Some(h) = &held {
        if h.missing_blocks > 0 {
            bail!(
                "cache {}: {} block(s) were not in the NVMe tier to load into memory (evicted by its capacity?)",
                s.cache.dir.display(),
                h.missing_blocks
            );
        }
        if h.resident_bytes < h.loaded_bytes / 10 * 9 {
            eprintln!(
                "warning: only {} of {} stayed in the page cache: the node's free memory cannot hold the data",
                format_size(h.resident_bytes),
                format_size(h.loaded_bytes)
            );
        }
    }
    Ok(())
}

/// `strata warm --daemon ADDR URL`: the daemon hydrates its own cache (NVMe, and its DRAM
/// tier as far as it holds), which serves every process on the node after this one exits.
async fn warm_through_daemon(
    d: &strata_daemon_client::DaemonClient,
    url: &StoreUrl,
    dram: bool,
    s: &Settings,
) -> Result<()> {
    let (bar, _) = output::bytes_bar(0, s.progress, "warming (daemon)");
    let status = d
        .warm(&url.to_string(), &|st| {
            bar.set_length(st.total_bytes);
            bar.set_position(st.done_bytes);
        })
        .await?;
    bar.finish_and_clear();
    if s.json {
        output::json(&serde_json::to_value(&status)?);
    } else {
        println!(
            "{}; into the daemon's cache",
            warmed(
                status.objects,
                status.total_bytes,
                status.elapsed_secs,
                status.fetched_bytes
            )
        );
        if status.dram_capacity > 0 {
            println!(
                "daemon DRAM tier: {} of it held ({} tier)",
                format_size(status.dram_bytes),
                format_size(status.dram_capacity)
            );
        }
    }
    if status.not_cached_blocks > 0 {
        bail!(
            "the daemon's cache: {} block(s) were read but not stored: {}",
            status.not_cached_blocks,
            status
                .not_cached_reason
                .as_deref()
                .unwrap_or("the tier declined them")
        );
    }
    if dram && status.dram_bytes < status.total_bytes {
        bail!(
            "--tier dram: the daemon's DRAM tier holds {} of {} ({}); raise its [cache] dram_size, or warm less",
            format_size(status.dram_bytes),
            format_size(status.total_bytes),
            if status.dram_capacity == 0 {
                "it has none".to_string()
            } else {
                format!("its size is {}", format_size(status.dram_capacity))
            }
        );
    }
    Ok(())
}

pub async fn run(c: &CacheCommand, s: &Settings) -> Result<()> {
    let cache = s.open_cache(false)?;
    let nvme = cache.nvme().expect("the CLI opens an NVMe tier");
    match c {
        CacheCommand::Stats => {
            let (bytes, blocks) = nvme.usage();
            let free = strata_cache::nvme::free_fraction(nvme.dir());
            if s.json {
                output::json(&serde_json::json!({
                    "dir": nvme.dir().display().to_string(), "blocks": blocks, "bytes": bytes,
                    "capacity": nvme.capacity(), "block_size": cache.geometry().block_size,
                    "filesystem_free_fraction": free,
                }));
            } else {
                println!("dir:        {}", nvme.dir().display());
                println!("blocks:     {blocks}");
                println!(
                    "bytes:      {} of {} ({:.1}%)",
                    format_size(bytes),
                    format_size(nvme.capacity()),
                    bytes as f64 / nvme.capacity().max(1) as f64 * 100.0
                );
                println!("block size: {}", format_size(cache.geometry().block_size));
                if let Some(f) = free {
                    println!("disk free:  {:.1}%", f * 100.0);
                }
            }
        }
        CacheCommand::Clear { yes } => {
            let (bytes, blocks) = nvme.usage();
            if !yes
                && !crate::commands::rm::confirm(&format!(
                    "delete {blocks} cached block(s), {}, in {}?",
                    format_size(bytes),
                    nvme.dir().display()
                ))?
            {
                bail!("nothing deleted (answer y, or pass --yes)");
            }
            let n = nvme.clear()?;
            if s.json {
                output::json(&serde_json::json!({"deleted_blocks": n}));
            } else {
                eprintln!("deleted {n} block(s)");
            }
        }
        CacheCommand::Invalidate(a) => {
            let url = StoreUrl::parse(&a.url)?;
            let store = Store::open(&url, &s.store)?;
            let root = store.root().to_string();
            // A single object is found by its name alone (it may be gone from the store);
            // a prefix is listed.
            let keys: Vec<String> = if url.is_prefix_syntax() {
                strata_cache::list_named(&store, &url)
                    .await?
                    .into_iter()
                    .map(|o| o.key)
                    .collect()
            } else {
                vec![url.key().to_string()]
            };
            let mut n = 0;
            for k in &keys {
                n += cache.invalidate_object(&root, k).await;
            }
            if s.json {
                output::json(&serde_json::json!({"objects": keys.len(), "deleted_blocks": n}));
            } else {
                eprintln!("dropped {n} cached block(s) of {} object(s)", keys.len());
            }
        }
    }
    Ok(())
}
