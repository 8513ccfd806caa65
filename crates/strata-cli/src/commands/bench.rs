//! `strata bench …`.

use anyhow::{Result, anyhow};
use strata_bench::TransferBench;
use strata_testkit::LinkProfile;
use strata_units::parse_size;

use crate::args::{
    BenchCacheArgs, BenchCkptArgs, BenchCommand, BenchDaemonArgs, BenchModelsArgs, BenchPlanArgs,
    BenchSoakArgs, BenchStormArgs, BenchTrainArgs, BenchTransferArgs,
};
use crate::output;
use crate::settings::Settings;

pub fn run(cmd: &BenchCommand, s: &Settings) -> Result<()> {
    match cmd {
        BenchCommand::Transfer(a) => transfer(a, s),
        BenchCommand::Cache(a) => cache(a, s),
        BenchCommand::Train(a) => train(a, s),
        BenchCommand::Ckpt(a) => ckpt(a, s),
        BenchCommand::CkptStorm(a) => storm(a, s),
        BenchCommand::Soak(a) => soak(a, s),
        BenchCommand::Models(a) => models(a, s),
        BenchCommand::Plan(a) => plan(a, s),
        BenchCommand::Daemon(a) => daemon(a, s),
    }
}

fn plan(a: &BenchPlanArgs, s: &Settings) -> Result<()> {
    if a.probe_secs.is_nan() || a.probe_secs <= 0.0 {
        return Err(anyhow!("--probe-secs must be > 0"));
    }
    let bench = strata_bench::PlanBench {
        workloads: a
            .workloads
            .split(',')
            .map(|w| {
                strata_bench::Workload::named(w.trim())
                    .ok_or_else(|| anyhow!("--workloads {w:?}: use resnet50, unet3d or cosmoflow"))
            })
            .collect::<Result<_>>()?,
        layouts: match a.layout.as_str() {
            "shards" => vec![strata_dataset::Layout::Shards],
            "raw" => vec![strata_dataset::Layout::Raw],
            "both" => vec![strata_dataset::Layout::Shards, strata_dataset::Layout::Raw],
            other => return Err(anyhow!("--layout {other:?}: use raw, shards or both")),
        },
        dataset_size: a
            .dataset_size
            .as_deref()
            .map(|t| parse_size(t).map_err(|e| anyhow!("--dataset-size: {e}")))
            .transpose()?,
        shard_size: parse_size(&a.shard_size).map_err(|e| anyhow!("--shard-size: {e}"))?,
        probe_secs: a.probe_secs,
        profile: LinkProfile::named(&a.link)
            .ok_or_else(|| anyhow!("--link {:?}: use s3, nfs, lustre or local", a.link))?,
        data_dir: a.data_dir.clone(),
        work_dir: a.dir.clone(),
        tolerance: a.tolerance / 100.0,
        ..Default::default()
    };
    if !(a.tolerance.is_finite() && a.tolerance >= 0.0) {
        return Err(anyhow!(
            "--tolerance {}: a percentage, 0 or more",
            a.tolerance
        ));
    }
    let report = bench.run().map_err(|e| anyhow!("bench plan: {e}"))?;
    if s.json {
        output::json(&report);
    } else {
        print!("{}", report.to_table());
    }
    if a.strict && !report.passed {
        // The report printed says which rows failed (with --json, its `passed` is false):
        // one document, no second one for the error.
        return Err(anyhow::Error::new(crate::Reported(format!(
            "bench plan: a prediction is outside ±{:.0}% of the measurement",
            report.tolerance * 100.0
        ))));
    }
    Ok(())
}

fn models(a: &BenchModelsArgs, s: &Settings) -> Result<()> {
    let size = parse_size(&a.size).map_err(|e| anyhow!("--size: {e}"))?;
    if size < (1 << 20) || a.shards == 0 || a.processes == 0 {
        return Err(anyhow!(
            "--size must be at least 1 MiB, --shards and --processes > 0"
        ));
    }
    let bench = strata_bench::ModelsBench {
        size,
        shards: a.shards,
        processes: a.processes,
        profile: LinkProfile::named(&a.link)
            .ok_or_else(|| anyhow!("--link {:?}: use s3, nfs, lustre or local", a.link))?,
        server: strata_bench::BenchServer::named(&a.server)
            .ok_or_else(|| anyhow!("--server {:?}: use in-process or garage", a.server))?,
        ..strata_bench::ModelsBench::new(std::env::current_exe()?)
    };
    let report = bench.run().map_err(|e| anyhow!("bench models: {e}"))?;
    if s.json {
        output::json(&report);
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}

fn daemon(a: &BenchDaemonArgs, s: &Settings) -> Result<()> {
    let size = parse_size(&a.size).map_err(|e| anyhow!("--size: {e}"))?;
    if size < (1 << 20) || a.objects == 0 || a.processes == 0 {
        return Err(anyhow!(
            "--size must be at least 1 MiB, --objects and --processes > 0"
        ));
    }
    let bench = strata_bench::DaemonBench {
        size,
        objects: a.objects,
        processes: a.processes,
        profile: LinkProfile::named(&a.link)
            .ok_or_else(|| anyhow!("--link {:?}: use s3, nfs, lustre or local", a.link))?,
        server: strata_bench::BenchServer::named(&a.server)
            .ok_or_else(|| anyhow!("--server {:?}: use in-process or garage", a.server))?,
        ..strata_bench::DaemonBench::new(std::env::current_exe()?)
    };
    let report = bench.run().map_err(|e| anyhow!("bench daemon: {e}"))?;
    if s.json {
        output::json(&report);
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}

fn ckpt(a: &BenchCkptArgs, s: &Settings) -> Result<()> {
    let size = parse_size(&a.size).map_err(|e| anyhow!("--size: {e}"))?;
    if size == 0 || a.files == 0 {
        return Err(anyhow!("--size and --files must be > 0"));
    }
    let bench = strata_bench::CkptBench {
        size,
        files: a.files,
        profile: LinkProfile::named(&a.link)
            .ok_or_else(|| anyhow!("--link {:?}: use s3, nfs, lustre or local", a.link))?,
        work_dir: a.dir.clone(),
        server: strata_bench::BenchServer::named(&a.server)
            .ok_or_else(|| anyhow!("--server {:?}: use in-process or garage", a.server))?,
        ..Default::default()
    };
    let report = bench.run().map_err(|e| anyhow!("bench ckpt: {e}"))?;
    if s.json {
        output::json(&report);
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}

fn soak(a: &BenchSoakArgs, s: &Settings) -> Result<()> {
    if !(a.minutes > 0.0 && a.minutes.is_finite()) {
        return Err(anyhow!("--minutes {}: give a positive number", a.minutes));
    }
    let mut bench = strata_bench::SoakBench::new(std::env::current_exe()?, a.minutes);
    bench.rss_budget = parse_size(&a.rss_budget).map_err(|e| anyhow!("--rss-budget: {e}"))?;
    let report = bench.run().map_err(|e| anyhow!("bench soak: {e}"))?;
    if s.json {
        output::json(&report);
    } else {
        print!("{}", report.to_table());
    }
    if !report.passed() {
        return Err(anyhow!(
            "bench soak: wrong bytes, lost checkpoints, an idle worker or RSS over budget (see above)"
        ));
    }
    Ok(())
}

fn storm(a: &BenchStormArgs, s: &Settings) -> Result<()> {
    let size = parse_size(&a.size).map_err(|e| anyhow!("--size: {e}"))?;
    if size == 0 || a.writers == 0 || a.overload_above == 0 {
        return Err(anyhow!(
            "--size, --writers and --overload-above must be > 0"
        ));
    }
    let bench = strata_bench::StormBench {
        exe: std::env::current_exe()?,
        writers: a.writers,
        size,
        overload_above: a.overload_above,
        max_writers: a.max_writers,
    };
    let report = bench.run().map_err(|e| anyhow!("bench ckpt-storm: {e}"))?;
    if s.json {
        output::json(&report);
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}

fn train(a: &BenchTrainArgs, s: &Settings) -> Result<()> {
    let workload = strata_bench::Workload::named(&a.workload).ok_or_else(|| {
        anyhow!(
            "--workload {:?}: use resnet50, unet3d or cosmoflow",
            a.workload
        )
    })?;
    let mut bench = strata_bench::TrainBench::new(workload);
    bench.accelerators = a.accelerators;
    bench.epochs = a.epochs.max(1);
    bench.profile = LinkProfile::named(&a.link)
        .ok_or_else(|| anyhow!("--link {:?}: use s3, nfs, lustre or local", a.link))?;
    bench.layouts = match a.layout.as_str() {
        "shards" => vec![strata_dataset::Layout::Shards],
        "raw" => vec![strata_dataset::Layout::Raw],
        "both" => vec![strata_dataset::Layout::Shards, strata_dataset::Layout::Raw],
        other => return Err(anyhow!("--layout {other:?}: use raw, shards or both")),
    };
    bench.dataset_size = parse_size(&a.dataset_size).map_err(|e| anyhow!("--dataset-size: {e}"))?;
    bench.shard_size = parse_size(&a.shard_size).map_err(|e| anyhow!("--shard-size: {e}"))?;
    if let Some(c) = a.compute_scale {
        if !(c > 0.0 && c.is_finite()) {
            return Err(anyhow!("--compute-scale must be a positive number"));
        }
        bench.compute_scale = Some(c);
    }
    bench.find_max = a.find_max;
    bench.trial_secs = a.trial_secs.max(1.0);
    bench.training_only = a.training_only;
    bench.data_dir = a.data_dir.clone();
    bench.work_dir = a.dir.clone();
    if bench.dataset_size < bench.workload.sample_mean {
        return Err(anyhow!(
            "--dataset-size must hold at least one sample ({})",
            strata_units::format_size(bench.workload.sample_mean)
        ));
    }
    if !s.json {
        eprintln!(
            "running: {} on a {} dataset through the '{}' link profile …",
            bench.workload.name,
            strata_units::format_size(bench.dataset_size),
            bench.profile.name
        );
    }
    let report = bench.run().map_err(|e| anyhow!("bench train: {e}"))?;
    if s.json {
        output::json(&report);
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
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
            strata_units::format_size(size),
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
            strata_units::format_size(bench.size),
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
