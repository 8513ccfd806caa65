//! `strata plan …` and `strata probe …`: the planner and the probe.

use std::path::Path;

use anyhow::{Context, Result, bail};
use strata_plan::probe::device::DeviceProbe;
use strata_plan::probe::object::ObjectProbe;
use strata_plan::probe::{ProbeKind, ProbeReport};
use strata_plan::scenario::{Scenario, TierKind};
use strata_store::{Store, StoreUrl};
use strata_units::format as units;
use strata_units::parse_duration;
use strata_units::parse_size;

use crate::args::{PlanArgs, PlanCommand, PlanIntervalArgs, ProbeArgs};
use crate::output;
use crate::settings::Settings;

fn secs(flag: &str, text: &str) -> Result<f64> {
    parse_duration(text)
        .map(|d| d.as_secs_f64())
        .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

pub async fn run(a: &PlanArgs, s: &Settings) -> Result<()> {
    match &a.command {
        Some(PlanCommand::Interval(i)) => interval(i, s),
        None => plan(a, s).await,
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
}

async fn plan(a: &PlanArgs, s: &Settings) -> Result<()> {
    if let Some(p) = &a.persona {
        return persona(p, a, s);
    }
    let mut scenario = if let Some(dir) = &a.machine {
        let (probe, text, scenario) = machine(dir).await?;
        if a.print_scenario {
            print!("{text}");
            return Ok(());
        }
        if !s.json {
            println!(
                "probed {} in {:.1} s: sequential read {}, random 4 KiB read {} ({:.0}×)",
                probe.target,
                probe.secs,
                units::rate(probe.sequential_read),
                units::rate(probe.random_read),
                probe.sequential_over_random
            );
        }
        scenario
    } else {
        let Some(path) = &a.scenario else {
            bail!("give a scenario file, --persona NAME or --machine DIR (see docs/planner.md)");
        };
        let book = match &a.prices {
            Some(p) => strata_plan::cost::PriceBook::load_over_defaults(
                &read(p)?,
                &p.display().to_string(),
            )
            .map_err(anyhow::Error::msg)?,
            None => strata_plan::cost::PriceBook::default(),
        };
        Scenario::from_toml_with(&read(path)?, &path.display().to_string(), book)?
    };
    for c in &a.calibrate {
        calibrate(&mut scenario, c)?;
    }
    apply_overrides(&mut scenario, a)?;
    let p = strata_plan::plan(&scenario);
    if let Some(dir) = &a.svg {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        for (name, svg) in p.svgs() {
            let f = dir.join(&name);
            std::fs::write(&f, svg).with_context(|| format!("{}: cannot write", f.display()))?;
        }
    }
    if s.json {
        output::json(&p);
        return Ok(());
    }
    print!("{}", p.to_text());
    if a.machine.is_some()
        && let Some(n) = strata_plan::machine::accelerators_fed(&scenario)
    {
        println!(
            "- this disk streams shards fast enough for {n:.1} H100-class accelerator(s) on resnet50 at {:.0}% utilization",
            scenario.accelerators.as_ref().map_or(0.9, |a| a.target) * 100.0
        );
    }
    if let Some(dir) = &a.svg {
        println!("plots written to {}", dir.display());
    }
    Ok(())
}

/// Probes `dir` quickly and builds this machine's scenario.
pub async fn machine(dir: &Path) -> Result<(ProbeReport, String, Scenario)> {
    let d = dir.to_path_buf();
    let probe = tokio::task::spawn_blocking(move || DeviceProbe::new(d, true).run())
        .await?
        .map_err(anyhow::Error::msg)?;
    let (text, scenario) =
        strata_plan::machine::this_machine(dir, &probe).map_err(anyhow::Error::msg)?;
    Ok((probe, text, scenario))
}

fn calibrate(s: &mut Scenario, arg: &str) -> Result<()> {
    let (tier, file) = match arg.split_once('=') {
        Some((t, f)) if !t.contains('/') => (Some(t), f),
        _ => (None, arg),
    };
    let report =
        ProbeReport::from_json(&read(Path::new(file))?, file).map_err(anyhow::Error::msg)?;
    let t = match tier {
        Some(name) => s
            .tiers
            .iter_mut()
            .find(|t| t.name == name)
            .with_context(|| format!("--calibrate {arg}: the scenario has no tier named {name:?}"))?,
        None => match report.kind {
            ProbeKind::Object => s.source_mut().with_context(|| {
                format!("--calibrate {file}: an object-store probe, but the scenario has no source tier")
            })?,
            ProbeKind::Device => s.tier_mut(TierKind::Nvme).with_context(|| {
                format!("--calibrate {file}: a device probe, but the scenario has no NVMe tier (name one: --calibrate TIER={file})")
            })?,
        },
    };
    t.calibrate(report.curve());
    Ok(())
}

fn apply_overrides(s: &mut Scenario, a: &PlanArgs) -> Result<()> {
    overrides(a)
        .apply(s)
        .map_err(|e| anyhow::anyhow!("--{}: {}", e.field, e.message))
}

/// The knobs the flags set (the workbench's sliders are the same knobs).
fn overrides(a: &PlanArgs) -> strata_plan::Overrides {
    strata_plan::Overrides {
        nodes: a.nodes,
        epochs: a.epochs,
        download: a.download.clone(),
        nvme_bandwidth: a.nvme_bandwidth.clone(),
        buffer: a.buffer.clone(),
        cache_size: a.cache_size.clone(),
        layout: a.layout,
        shuffle: a.shuffle,
        checkpoint_interval: a.checkpoint_interval.clone(),
        write_bandwidth: a.write_bandwidth.clone(),
        node_mtbf: a.node_mtbf.clone(),
    }
}

fn persona(key: &str, a: &PlanArgs, s: &Settings) -> Result<()> {
    let own = strata_plan::personas::scenario_text(key).with_context(|| {
        format!(
            "unknown persona {key:?}: choose {}",
            strata_plan::personas::NAMES.join(", ")
        )
    })?;
    if a.print_scenario {
        print!("{own}");
        return Ok(());
    }
    // A persona's answer is written for its own figures: flags would be silently lost.
    if !overrides(a).is_empty() || !a.calibrate.is_empty() {
        bail!(
            "--persona takes no overrides: print its scenario (`strata plan --persona {key} --print-scenario > {key}.toml`), then plan that file with the flags"
        );
    }
    let p = match &a.scenario {
        Some(path) => {
            strata_plan::personas::run_with(key, &read(path)?, &path.display().to_string())
        }
        None => strata_plan::personas::run(key),
    }
    .map_err(anyhow::Error::msg)?;
    if let Some(dir) = &a.svg
        && let Some(plan) = &p.plan
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        for (name, svg) in plan.svgs() {
            std::fs::write(dir.join(&name), svg)
                .with_context(|| format!("{}: cannot write", dir.join(&name).display()))?;
        }
    }
    if s.json {
        output::json(&p);
        return Ok(());
    }
    print!("{}", p.to_text());
    if let Some(plan) = &p.plan {
        println!("\nthe planner's full output for this persona:\n");
        print!("{}", plan.to_text());
    }
    Ok(())
}

pub async fn probe(a: &ProbeArgs, s: &Settings) -> Result<()> {
    let url = StoreUrl::parse(&a.target)?;
    let report = match url.local_path() {
        Some(dir) => {
            let mut p = DeviceProbe::new(&dir, a.quick);
            if let Some(sz) = &a.size {
                p.file_size = parse_size(sz).map_err(|e| anyhow::anyhow!("--size: {e}"))?;
                if p.file_size < 16 << 20 {
                    bail!("--size: at least 16 MiB, so random reads do not all hit one region");
                }
            }
            if !s.json {
                eprintln!(
                    "probing {} ({} test file, {} points; {})",
                    dir.display(),
                    units::bytes(p.file_size as f64),
                    p.blocks.len() * p.depths.len() * 2,
                    if a.quick { "quick" } else { "about a minute" }
                );
            }
            tokio::task::spawn_blocking(move || p.run())
                .await?
                .map_err(anyhow::Error::msg)?
        }
        None => {
            if a.size.is_some() {
                bail!("--size applies to directories, not object stores");
            }
            let store = Store::open(&url, &s.store)?;
            let p = ObjectProbe::new(a.quick);
            if !s.json {
                eprintln!(
                    "probing {url} ({} object sizes × {} concurrencies)",
                    p.sizes.len(),
                    p.concurrency.len()
                );
            }
            p.run(&store, url.key()).await.map_err(anyhow::Error::msg)?
        }
    };
    if let Some(f) = &a.out {
        std::fs::write(f, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("{}: cannot write", f.display()))?;
    }
    if let Some(f) = &a.svg {
        std::fs::write(f, report.svg())
            .with_context(|| format!("{}: cannot write", f.display()))?;
    }
    if s.json {
        output::json(&report);
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}

fn interval(a: &PlanIntervalArgs, s: &Settings) -> Result<()> {
    let advice = strata_plan::interval::advise(
        secs("ckpt-cost", &a.ckpt_cost)?,
        secs("mtbf", &a.mtbf)?,
        a.nodes,
        secs("restart", &a.restart)?,
        a.interval
            .as_deref()
            .map(|t| secs("interval", t))
            .transpose()?,
        a.drain.as_deref().map(|t| secs("drain", t)).transpose()?,
    )
    .map_err(anyhow::Error::msg)?;
    if s.json {
        output::json(&advice);
        return Ok(());
    }
    println!(
        "checkpoint cost δ = {}, node MTBF {} × {} node(s): job MTBF M = {}",
        units::secs(advice.cost_secs),
        units::secs(advice.node_mtbf_secs),
        advice.nodes,
        units::secs(advice.job_mtbf_secs)
    );
    println!(
        "Young  τ = √(2δM)                          = {}",
        units::secs(advice.young_secs)
    );
    println!(
        "Daly   τ = √(2δM)(1 + ⅓√(δ/2M) + δ/18M) − δ = {}   expected waste {:.1}%",
        units::secs(advice.daly_secs),
        advice.waste_at_daly * 100.0
    );
    if let (Some(i), Some(w)) = (advice.interval_secs, advice.waste_at_interval) {
        println!("your interval {} wastes {:.1}%", units::secs(i), w * 100.0);
    }
    for w in &advice.warnings {
        println!("warning: {w}");
    }
    Ok(())
}
