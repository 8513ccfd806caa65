//! `strata bench plan`: does the planner predict what the engine does?
//!
//! For each MLPerf workload and layout of `strata bench train`, in one run:
//!
//! 1. **Probe** the emulated link with `strata probe`'s object-store probe, at the request
//!    sizes and depths the engine uses: 8 MiB blocks 32 at a time (the cache's fetchers for
//!    shards) and one sample 64 at a time (raw objects).
//! 2. **Plan**: a scenario of the bench's setup (dataset, accelerators, batch and step after
//!    scaling, the object tier calibrated by that probe, no cache reuse in one epoch), and
//!    the planner's predicted accelerator utilization and throughput.
//! 3. **Measure**: one epoch of emulated training through the engine at two accelerator
//!    counts, one asking half of what the plan says the link supplies and one asking 1.5×,
//!    and compare: the prediction must be within ±15% of the measurement (AU steady, and
//!    MiB/s delivered).
//!
//! Accelerators are scaled (as in `strata bench train`) so that one demands a quarter of the
//! link: the two counts are then small and the runs short. Each accelerator takes at least
//! [`MIN_STEPS`] steps: where one epoch has too few samples for that (unet3d's 140 MB samples),
//! the batch is made smaller (and the step shorter with it, so that the demand stays), and
//! then epochs are added, each read from the link again (no cache reuse, in the plan too).

use crate::error::BenchError;
use std::sync::Arc;

use strata_dataset::{Dataset, Location};
use strata_plan::probe::ProbeReport;
use strata_plan::probe::object::ObjectProbe;
use strata_plan::scenario::{Scenario, TierKind};
use strata_testkit::LinkProfile;

use crate::machine::MachineLimits;
use crate::train::{TrainBench, Workload};

/// Settings of the calibration benchmark.
#[derive(Debug, Clone)]
pub struct PlanBench {
    /// The MLPerf workloads to compare.
    pub workloads: Vec<Workload>,
    /// The layouts to compare (shards, raw).
    pub layouts: Vec<strata_dataset::Layout>,
    /// Dataset size per workload; None: 2 GiB (4 GiB for unet3d, whose samples are 140 MB).
    pub dataset_size: Option<u64>,
    /// Bytes per shard.
    pub shard_size: u64,
    /// One accelerator's demand as a fraction of the link cap. Default: 0.25.
    pub per_accelerator: f64,
    /// Seconds per probe point. Default: 3.
    pub probe_secs: f64,
    /// The emulated link. Default: `s3`.
    pub profile: LinkProfile,
    /// Relative error allowed. Default: 0.15.
    pub tolerance: f64,
    /// Where the datasets are generated (kept between runs); default a temporary directory.
    pub data_dir: Option<std::path::PathBuf>,
    /// Where the caches live; default a temporary directory.
    pub work_dir: Option<std::path::PathBuf>,
}

impl Default for PlanBench {
    fn default() -> Self {
        Self {
            workloads: ["resnet50", "cosmoflow", "unet3d"]
                .iter()
                .filter_map(|w| Workload::named(w))
                .collect(),
            layouts: vec![strata_dataset::Layout::Shards, strata_dataset::Layout::Raw],
            dataset_size: None,
            shard_size: 256 << 20,
            per_accelerator: 0.25,
            probe_secs: 3.0,
            profile: LinkProfile::s3(),
            tolerance: 0.15,
            data_dir: None,
            work_dir: None,
        }
    }
}

/// One prediction against one measurement.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Comparison {
    /// The workload.
    pub workload: String,
    /// The layout.
    pub layout: String,
    /// Emulated accelerators.
    pub accelerators: u32,
    /// Samples per step (after [`enough_steps`]) and epochs, each read from the link.
    pub batch: u64,
    /// Epochs run.
    pub epochs: u32,
    /// What the accelerators ask over what the plan says the link supplies.
    pub demand_over_supply: f64,
    /// Utilization the planner predicted.
    pub predicted_au: f64,
    /// Utilization measured.
    pub measured_au: f64,
    /// Throughput the planner predicted, MiB/s.
    pub predicted_mib_per_sec: f64,
    /// Throughput measured, MiB/s.
    pub measured_mib_per_sec: f64,
    /// (predicted − measured) / measured utilization.
    pub au_error: f64,
    /// (predicted − measured) / measured throughput.
    pub throughput_error: f64,
    /// Both errors within the tolerance.
    pub within: bool,
}

/// What the calibration benchmark found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlanBenchReport {
    /// When it ran (UTC).
    pub date: String,
    /// The machine's limits, measured in the same run.
    pub machine: MachineLimits,
    /// The emulated link.
    pub link: LinkProfile,
    /// The link's cap, MiB/s.
    pub link_cap_mib_per_sec: f64,
    /// The relative error allowed.
    pub tolerance: f64,
    /// The probes that calibrated the planner.
    pub probes: Vec<ProbeReport>,
    /// One row per workload, layout and size.
    pub rows: Vec<Comparison>,
    /// Largest relative errors over all rows.
    pub worst_au_error: f64,
    /// The largest throughput error.
    pub worst_throughput_error: f64,
    /// Every row within the tolerance.
    pub passed: bool,
}

const MIB: f64 = (1u64 << 20) as f64;

/// Steps each accelerator takes in a calibration run, at the least. Its steady AU leaves the
/// first step out, and a few steps measure little: a 4 GiB epoch of unet3d holds 4 batches
/// of 7, fewer than the accelerators of the 1.5× row.
pub const MIN_STEPS: u64 = 12;

/// The setup of a run of `n` accelerators over `samples` samples per epoch that gives each at
/// least [`MIN_STEPS`] steps: the workload's batch made smaller (its compute per step with it,
/// so that one accelerator demands the same bytes per second), then epochs added, each read
/// from the store again. Returns the bench and the epochs.
pub fn enough_steps(t: &TrainBench, samples: u64, n: u32) -> (TrainBench, u32) {
    let mut t = t.clone();
    let want = MIN_STEPS * n as u64;
    let target = (samples / want).max(1);
    if t.batch() > target {
        let scale = t.scale();
        let w = &mut t.workload;
        let batch = ((target as f64 * scale).round() as u64).clamp(1, w.batch);
        w.compute_secs *= batch as f64 / w.batch as f64;
        w.batch = batch;
    }
    let epochs = want
        .saturating_mul(t.batch())
        .div_ceil(samples.max(1))
        .max(1);
    t.cold_epochs = epochs > 1;
    (t, epochs.min(u32::MAX as u64) as u32)
}

impl PlanBench {
    fn bench_for(&self, w: &Workload) -> TrainBench {
        let mut t = TrainBench::new(w.clone());
        t.profile = self.profile.clone();
        t.dataset_size =
            self.dataset_size
                .unwrap_or(if w.name == "unet3d" { 4 << 30 } else { 2 << 30 });
        t.shard_size = self.shard_size;
        let cap = t.cap();
        t.compute_scale = Some((w.demand() / (cap * self.per_accelerator)).max(1.0));
        t.data_dir = self.data_dir.clone();
        t.work_dir = self.work_dir.clone();
        t
    }

    /// The scenario of one setup, its source tier calibrated by `probe`.
    pub fn scenario(
        t: &TrainBench,
        layout: strata_dataset::Layout,
        dataset_bytes: u64,
        samples: u64,
        n: u32,
        epochs: u32,
        probe: &ProbeReport,
    ) -> Result<Scenario, BenchError> {
        let raw = layout == strata_dataset::Layout::Raw;
        let cap = t.cap();
        let text = format!(
            r#"
            name = "bench plan: {w} {layout}"
            [dataset]
            size = {size}
            sample_size = {sample}
            layout = "{layout}"
            shuffle = "{shuffle}"
            epochs = {epochs}
            [accelerators]
            nodes = 1
            per_node = {n}
            batch = {batch}
            step_time = {step}
            [[tier]]
            name = "emulated S3"
            kind = "object"
            read_bandwidth = {cap}
            [pipeline]
            concurrency = {conc}
            block_size = {block}
            buffer = "64 GiB"
            "#,
            w = t.workload.name,
            layout = if raw { "raw" } else { "shards" },
            shuffle = if raw { "global" } else { "window" },
            size = dataset_bytes,
            sample = dataset_bytes as f64 / samples.max(1) as f64,
            batch = t.batch(),
            step = t.step_secs(),
            conc = if raw {
                64
            } else {
                crate::train::READ_CONCURRENCY
            },
            block = t.block_size,
        );
        let mut s = Scenario::from_toml(&text, "bench plan")?;
        s.tier_mut(TierKind::Object)
            .expect("the scenario has an object tier")
            .calibrate(probe.curve());
        Ok(s)
    }

    /// Runs the benchmark.
    pub fn run(&self) -> Result<PlanBenchReport, BenchError> {
        let machine = MachineLimits::measure();
        let rt = crate::machine::runtime()?;
        let mut rows = Vec::new();
        let mut probes = Vec::new();
        let mut cap = 0.0;
        for w in &self.workloads {
            let t = self.bench_for(w);
            cap = t.cap();
            let rig = t.rig()?;
            rt.block_on(async {
                t.ensure_dataset(&rig).await?;
                let prefix = t.prefix();
                let shards = Arc::new(
                    Dataset::open(Location {
                        store: rig.linked.clone(),
                        prefix: format!("{prefix}/shards"),
                    })
                    .await?,
                );
                let raw = Arc::new(
                    Dataset::open_raw(Location {
                        store: rig.linked.clone(),
                        prefix: format!("{prefix}/raw"),
                    })
                    .await?,
                );
                let sample = (shards.manifest.bytes / shards.manifest.samples.max(1)).max(1);
                let probe = ObjectProbe {
                    sizes: vec![sample.min(t.block_size), t.block_size, sample]
                        .into_iter()
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect(),
                    concurrency: vec![crate::train::READ_CONCURRENCY as u32, 64],
                    point_secs: self.probe_secs,
                    bytes_per_size: 256 << 20,
                }
                .run(&rig.linked, "calibration-probe")
                .await?;
                for &layout in &self.layouts {
                    let (name, ds) = match layout {
                        strata_dataset::Layout::Shards => ("shards", shards.clone()),
                        strata_dataset::Layout::Raw => ("raw", raw.clone()),
                    };
                    let setup = |t: &TrainBench, n: u32, epochs: u32| {
                        Self::scenario(
                            t,
                            layout,
                            shards.manifest.bytes,
                            shards.manifest.samples,
                            n,
                            epochs,
                            &probe,
                        )
                    };
                    let s1 = setup(&t, 1, 1)?;
                    let (req, random) = strata_plan::pipeline::access(&s1);
                    let supply = strata_plan::pipeline::source_rate(
                        &s1,
                        s1.source().expect("object tier"),
                        req,
                        random,
                    );
                    let one = w.demand() / t.scale();
                    let under = ((0.5 * supply / one).floor() as u32).max(1);
                    let over = ((1.5 * supply / one).ceil() as u32).max(under + 1);
                    for n in [under, over] {
                        let (t, epochs) = enough_steps(&t, shards.manifest.samples, n);
                        let s = setup(&t, n, epochs)?;
                        let plan = strata_plan::pipeline::evaluate(&s).ok_or("no pipeline")?;
                        let cache = match layout {
                            strata_dataset::Layout::Shards => Some(t.cache(
                                &rig,
                                &format!("calib-{n}"),
                                shards.manifest.bytes * 2 + (1 << 30),
                                256 << 20,
                                strata_cache::policy::PolicyKind::Auto,
                            )?),
                            strata_dataset::Layout::Raw => None,
                        };
                        let run = t
                            .train(
                                &rig,
                                ds.clone(),
                                cache,
                                crate::train::RunSpec {
                                    layout: name,
                                    accelerators: n,
                                    epochs,
                                    limit: None,
                                },
                            )
                            .await?;
                        let _ = std::fs::remove_dir_all(rig.work.join(format!("calib-{n}")));
                        let pm = plan.node_bytes_per_sec / MIB;
                        // AU in steady state on both sides (the bench leaves each
                        // accelerator's first step out); throughput over the whole run on
                        // both sides (the plan counts the first batch's wait and the last
                        // step).
                        let au_err =
                            (plan.steady_utilization - run.au_steady) / run.au_steady.max(1e-9);
                        let tp_err = (pm - run.mib_per_sec) / run.mib_per_sec.max(1e-9);
                        rows.push(Comparison {
                            workload: w.name.to_string(),
                            layout: name.to_string(),
                            accelerators: n,
                            batch: t.batch(),
                            epochs,
                            demand_over_supply: n as f64 * one / supply,
                            predicted_au: plan.steady_utilization,
                            measured_au: run.au_steady,
                            predicted_mib_per_sec: pm,
                            measured_mib_per_sec: run.mib_per_sec,
                            au_error: au_err,
                            throughput_error: tp_err,
                            within: au_err.abs() <= self.tolerance
                                && tp_err.abs() <= self.tolerance,
                        });
                    }
                }
                probes.push(probe);
                Ok::<_, BenchError>(())
            })?;
        }
        let worst = |f: &dyn Fn(&Comparison) -> f64| rows.iter().map(f).fold(0.0, f64::max);
        Ok(PlanBenchReport {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            machine,
            link: self.profile.clone(),
            link_cap_mib_per_sec: cap / MIB,
            tolerance: self.tolerance,
            probes,
            worst_au_error: worst(&|r| r.au_error.abs()),
            worst_throughput_error: worst(&|r| r.throughput_error.abs()),
            passed: rows.iter().all(|r| r.within),
            rows,
        })
    }
}

impl PlanBenchReport {
    /// A table for people.
    pub fn to_table(&self) -> String {
        use std::fmt::Write as _;
        let mut o = String::new();
        let _ = writeln!(o, "strata bench plan  {}", self.date);
        let _ = writeln!(
            o,
            "link {} capped at {:.0} MiB/s; machine: {} cores, memcpy {:.1} GiB/s",
            self.link.name,
            self.link_cap_mib_per_sec,
            self.machine.cores,
            self.machine.memcpy_gib_per_sec
        );
        for p in &self.probes {
            let _ = writeln!(o, "probe of the link (same run):");
            for pt in p.points.iter().filter(|p| p.op == "read") {
                let _ = writeln!(
                    o,
                    "  GET {:>10} × {:>2} in flight: {:>7.1} MiB/s ({:.2} of the cap), p50 {:.0} ms",
                    strata_units::format_size(pt.block),
                    pt.depth,
                    pt.bytes_per_sec / MIB,
                    pt.bytes_per_sec / MIB / self.link_cap_mib_per_sec,
                    pt.p50 * 1e3
                );
            }
        }
        let _ = writeln!(
            o,
            "{:<10} {:<7} {:>3} {:>5} {:>2} {:>8} {:>9} {:>9} {:>7} {:>10} {:>10} {:>7}",
            "workload",
            "layout",
            "N",
            "batch",
            "ep",
            "demand/S",
            "AU plan",
            "AU bench",
            "error",
            "MiB/s plan",
            "MiB/s bench",
            "error"
        );
        for r in &self.rows {
            let _ = writeln!(
                o,
                "{:<10} {:<7} {:>3} {:>5} {:>2} {:>8.2} {:>8.1}% {:>8.1}% {:>+6.1}% {:>10.1} {:>11.1} {:>+6.1}% {}",
                r.workload,
                r.layout,
                r.accelerators,
                r.batch,
                r.epochs,
                r.demand_over_supply,
                r.predicted_au * 100.0,
                r.measured_au * 100.0,
                r.au_error * 100.0,
                r.predicted_mib_per_sec,
                r.measured_mib_per_sec,
                r.throughput_error * 100.0,
                if r.within { "ok" } else { "OUTSIDE" }
            );
        }
        let _ = writeln!(
            o,
            "worst error: AU {:.1}%, throughput {:.1}% (target within ±{:.0}%): {}",
            self.worst_au_error * 100.0,
            self.worst_throughput_error * 100.0,
            self.tolerance * 100.0,
            if self.passed { "pass" } else { "FAIL" }
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enough_steps_keeps_the_demand_and_gives_every_accelerator_its_steps() {
        let w = Workload::named("unet3d").expect("a workload");
        let mut t = TrainBench::new(w.clone());
        t.compute_scale = Some(1.0);
        // 4 GiB of 140 MB samples: 29 per epoch.
        for n in [1u32, 2, 6, 40] {
            let (u, epochs) = enough_steps(&t, 29, n);
            let steps = 29 * epochs as u64 / (u.batch() * n as u64);
            assert!(steps >= MIN_STEPS, "n={n}: {steps} steps each");
            assert!(u.batch() >= 1 && u.batch() <= w.batch);
            let demand = |b: &TrainBench| b.batch() as f64 * w.sample_mean as f64 / b.step_secs();
            assert!((demand(&u) / demand(&t) - 1.0).abs() < 1e-9, "n={n}");
            assert_eq!(u.cold_epochs, epochs > 1);
        }
        // Enough samples: nothing changes.
        let (u, epochs) = enough_steps(&t, 100_000, 4);
        assert_eq!((u.batch(), epochs, u.cold_epochs), (t.batch(), 1, false));
    }
}
