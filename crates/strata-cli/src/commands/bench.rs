//! `strata bench …`.

use anyhow::{Result, anyhow};
use strata_bench::TransferBench;
use strata_store::size::parse_size;
use strata_testkit::LinkProfile;

use crate::args::{BenchCacheArgs, BenchCommand, BenchTransferArgs};
use crate::output;
use crate::settings::Settings;

pub fn run(cmd: &BenchCommand, s: &Settings) -> Result<()> {
    match cmd {
        BenchCommand::Transfer(a) => transfer(a, s),
        BenchCommand::Cache(a) => cache(a, s),
    }
}

fn cache(a: &BenchCacheArgs, s: &Settings) -> Result<()> {
    let size = parse_size(&a.size).map_err(|e| anyhow!("--size: {e}"))?;
    let block_size = parse_size(&a.block_size).map_err(|e| anyhow!("--block-size: {e}"))?;
    if size < 8 * block_size {
        return Err(anyhow!(
            "--size must hold at least one block per object (8 × --block-size)"
        ));
    }
    let mut bench = strata_bench::CacheBench {
        size,
        block_size,
        profile: LinkProfile::named(&a.profile)
            .ok_or_else(|| anyhow!("--profile {:?}: use s3, nfs, lustre or local", a.profile))?,
        work_dir: a.dir.clone(),
        concurrency: a.concurrency.max(1),
        ..Default::default()
    };
    if a.no_sweep {
        bench.sweep.clear();
    }
    if !s.json {
        eprintln!(
            "running: {} dataset through the '{}' link profile …",
            strata_store::size::format_size(size),
            bench.profile.name
        );
    }
    let report = bench.run().map_err(|e| anyhow!("bench cache: {e}"))?;
    if s.json {
        output::json(&report);
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}

fn transfer(a: &BenchTransferArgs, s: &Settings) -> Result<()> {
    let bench = TransferBench {
        size: parse_size(&a.size).map_err(|e| anyhow!("--size: {e}"))?,
        single_sample: parse_size(&a.single_sample).map_err(|e| anyhow!("--single-sample: {e}"))?,
        profile: LinkProfile::named(&a.profile)
            .ok_or_else(|| anyhow!("--profile {:?}: use s3, nfs, lustre or local", a.profile))?,
        config: s.store.clone(),
        work_dir: a.dir.clone(),
    };
    if bench.size == 0 {
        return Err(anyhow!("--size must be at least one byte"));
    }
    if !s.json {
        eprintln!(
            "running: {} object through the '{}' link profile …",
            strata_store::size::format_size(bench.size),
            bench.profile.name
        );
    }
    let report = bench.run().map_err(|e| anyhow!("bench transfer: {e}"))?;
    if s.json {
        output::json(&report);
    } else {
        print!("{}", report.to_table());
        if let (Some(d), Some(cap)) = (
            report.row("emulated", "download", "strata"),
            report.profile.total_bytes_per_sec,
        ) {
            let per_conn = report.profile.per_conn_bytes_per_sec.unwrap_or(cap);
            println!(
                "\ndownload: {:.0}% of the link cap (target ≥ 85%), {:.1}× one stream (target ≥ 5× when per-connection cap ≤ 1/16 of total; here 1/{:.0})",
                d.of_link_cap.unwrap_or(0.0) * 100.0,
                d.vs_single_stream.unwrap_or(0.0),
                cap as f64 / per_conn as f64
            );
        }
    }
    Ok(())
}
