//! A whole plan for one scenario: every model that applies, the recommendation, the text a
//! person reads and the plots.

use std::fmt::Write as _;

use serde::Serialize;

use crate::checkpoint::{self, CheckpointPlan};
use crate::cost::{self, CostPlan};
use crate::lessons::{self, Lesson};
use crate::pipeline::{self, PipelinePlan};
use crate::recommend::{self, Recommendation};
use crate::scenario::Scenario;
use crate::sizing::{self, Sizing};
use crate::units::{bytes, rate, secs};

/// Everything the planner says about a scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The scenario planned.
    pub scenario: Scenario,
    /// The data pipeline, when the scenario has a dataset.
    pub pipeline: Option<PipelinePlan>,
    /// Balanced tierings, when it has a dataset.
    pub sizing: Option<Sizing>,
    /// The checkpoint plan, when it has a `[checkpoint]` section.
    pub checkpoint: Option<CheckpointPlan>,
    /// The monthly cost, when it has a `[cost]` section.
    pub cost: Option<CostPlan>,
    /// Local-first or cloud-native, with reasons.
    pub recommendation: Recommendation,
    /// The workbench's three lessons, answered for this scenario.
    pub lessons: Vec<Lesson>,
}

/// Plans a validated scenario.
pub fn plan(s: &Scenario) -> Plan {
    let p = pipeline::evaluate(s);
    let z = sizing::size(s);
    let c = s.checkpoint.as_ref().map(checkpoint::evaluate);
    let k = s.cost.as_ref().map(|c| cost::evaluate(c, &s.prices));
    let r = recommend::recommend(s, p.as_ref(), z.as_ref(), c.as_ref(), k.as_ref());
    Plan {
        scenario: s.clone(),
        pipeline: p,
        sizing: z,
        checkpoint: c,
        cost: k,
        recommendation: r,
        lessons: lessons::lessons(s),
    }
}

impl Plan {
    /// The plan as text, section by section.
    pub fn to_text(&self) -> String {
        let s = &self.scenario;
        let mut o = String::new();
        let _ = writeln!(o, "plan: {}", s.name);
        if !s.description.is_empty() {
            let _ = writeln!(o, "{}", s.description);
        }
        self.text_tiers(&mut o);
        self.text_pipeline(&mut o);
        self.text_sizing(&mut o);
        self.text_checkpoints(&mut o);
        self.text_cost(&mut o);
        self.text_lessons(&mut o);
        o
    }

    /// Each tier's bandwidths, latency and capacity.
    fn text_tiers(&self, o: &mut String) {
        let s = &self.scenario;
        for t in &s.tiers {
            let _ = writeln!(
                o,
                "  tier {:<14} {:<6} read {:>12}  write {:>12}  latency {:>8}{}{}",
                t.name,
                format!("{:?}", t.kind).to_lowercase(),
                rate(t.read_bandwidth),
                rate(t.write_bandwidth),
                secs(t.latency),
                t.capacity
                    .map_or(String::new(), |c| format!("  capacity {}", bytes(c))),
                if t.curve.is_some() {
                    "  (calibrated by probe)"
                } else {
                    ""
                }
            );
        }
    }

    /// The data pipeline: demand, stages against their tiers, epochs, the I/O wall.
    fn text_pipeline(&self, o: &mut String) {
        let s = &self.scenario;
        if let (Some(p), Some(d), Some(a)) = (&self.pipeline, &s.dataset, &s.accelerators) {
            let _ = writeln!(o, "\n== data pipeline ==");
            let _ = writeln!(
                o,
                "demand per node D = per_node × batch × sample / step = {} × {} × {} / {} = {}   (cluster: {} over {} node(s))",
                a.per_node,
                a.batch,
                bytes(d.sample_size),
                secs(a.step_time),
                rate(p.node_demand),
                rate(p.cluster_demand),
                a.nodes
            );
            let _ = writeln!(
                o,
                "each node reads {} per epoch in requests of {} ({}), {} in flight",
                bytes(p.node_epoch_bytes),
                bytes(p.request_size),
                if p.random { "random" } else { "sequential" },
                p.depth
            );
            let _ = writeln!(
                o,
                "{:<8} {:<28} {:>14} {:>14} {:>8} {:>10}",
                "stage", "tier", "required", "available", "ratio", "secs/epoch"
            );
            for st in &p.stages {
                let _ = writeln!(
                    o,
                    "{:<8} {:<28} {:>14} {:>14} {:>8} {:>10}",
                    st.role,
                    st.tier,
                    rate(st.required),
                    rate(st.available),
                    if st.available.is_finite() && st.required > 0.0 {
                        format!("{:.2}", st.available / st.required)
                    } else {
                        "-".into()
                    },
                    secs(st.secs)
                );
            }
            let _ = writeln!(o, "bottleneck (steady epoch): {}", p.bottleneck);
            for e in p.epochs.iter().take(4) {
                let _ = writeln!(
                    o,
                    "  epoch {:<3} cache hits {:>5.1}%  {:>10}  utilization {:>5.1}%",
                    e.epoch,
                    e.hit_ratio * 100.0,
                    secs(e.secs),
                    e.utilization * 100.0
                );
            }
            if p.epochs.len() > 4 {
                let _ = writeln!(o, "  … {} epochs in all", p.epochs.len());
            }
            let _ = writeln!(
                o,
                "predicted accelerator utilization {:.1}% (steady {:.1}%), run {} (first batch after {}), {:.0} samples/s",
                p.utilization * 100.0,
                p.steady_utilization * 100.0,
                secs(p.total_secs),
                secs(p.first_batch_secs),
                p.samples_per_sec
            );
            let w = &p.io_wall;
            let _ = writeln!(
                o,
                "I/O wall: sequential shard reads {} (epoch {}) vs shuffled samples {} (epoch {}): {:.1}×",
                rate(w.sequential_bytes_per_sec),
                secs(w.sequential_epoch_secs),
                rate(w.shuffled_bytes_per_sec),
                secs(w.shuffled_epoch_secs),
                w.factor
            );
        }
    }

    /// The balanced tiering options for the target utilization.
    fn text_sizing(&self, o: &mut String) {
        if let Some(z) = &self.sizing {
            let _ = writeln!(
                o,
                "\n== balanced tiering for {:.0}% utilization ==",
                z.target * 100.0
            );
            let _ = writeln!(
                o,
                "{:>12} {:>8} {:>16} {:>12}",
                "NVMe cache", "of data", "download/node", "buffer"
            );
            for (i, t) in z.options.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "{:>12} {:>7.0}% {:>16} {:>12}{}",
                    bytes(t.cache),
                    t.cache_fraction * 100.0,
                    t.download.map_or("unreachable".into(), rate),
                    t.buffer.map_or("-".into(), bytes),
                    if z.pick == Some(i) {
                        "   <- balanced"
                    } else {
                        ""
                    }
                );
            }
            let _ = writeln!(o, "{}", z.reason);
        }
    }

    /// The checkpoint storm and each drain strategy's interval and waste.
    fn text_checkpoints(&self, o: &mut String) {
        let s = &self.scenario;
        if let (Some(c), Some(ck)) = (&self.checkpoint, &s.checkpoint) {
            let _ = writeln!(o, "\n== checkpoints ==");
            let _ = writeln!(
                o,
                "{} from {} node(s) ({} each); node MTBF {} → job MTBF M = {}",
                bytes(ck.size),
                ck.nodes,
                bytes(c.shard),
                secs(ck.node_mtbf),
                secs(c.job_mtbf)
            );
            let _ = writeln!(
                o,
                "storm: all nodes at once = max({} / {}, parts / PUT rate) = {}{}",
                bytes(ck.size),
                rate(ck.shared_write_bandwidth),
                secs(c.storm_secs),
                if c.storm_overloads {
                    "  (more PUT/s than the store serves: 503 SlowDown)"
                } else {
                    ""
                }
            );
            for st in std::iter::once(&c.direct).chain(c.staged.iter()) {
                let _ = writeln!(o, "- {}:", st.name);
                let _ = writeln!(
                    o,
                    "    stall δ {}, durable after {}, {} writer(s) at once, {:.0} PUT/s",
                    secs(st.stall),
                    secs(st.durable_after),
                    st.writers_at_once,
                    st.put_rate_asked
                );
                let _ = writeln!(
                    o,
                    "    Young √(2δM) = {}   Daly = {}   use {}: waste {:.2}%, run {} for {} of work (lost {})",
                    secs(st.young),
                    secs(st.daly),
                    secs(st.recommended),
                    st.waste * 100.0,
                    secs(st.run_secs),
                    secs(ck.work),
                    secs(st.lost_secs)
                );
                if let (Some(t), Some(w), Some(r)) =
                    (ck.interval, st.interval_waste, st.interval_run_secs)
                {
                    let _ = writeln!(
                        o,
                        "    your interval {}: waste {:.2}%, run {}",
                        secs(t),
                        w * 100.0,
                        secs(r)
                    );
                }
                for w in &st.warnings {
                    let _ = writeln!(o, "    warning: {w}");
                }
            }
        }
    }

    /// The monthly cost table.
    fn text_cost(&self, o: &mut String) {
        if let Some(k) = &self.cost {
            let _ = writeln!(o, "\n== monthly cost (USD) ==");
            let months = k.monthly.len();
            let show: Vec<usize> = if months <= 6 {
                (0..months).collect()
            } else {
                vec![0, 1, 2, 3, months / 2, months - 1]
            };
            let _ = write!(o, "{:<24}", "item");
            for m in &show {
                let _ = write!(o, " {:>11}", format!("month {}", m + 1));
            }
            let _ = writeln!(o, " {:>12} {:>14}", "total", "no lifecycle");
            for it in &k.items {
                let _ = write!(o, "{:<24}", it.name);
                for &m in &show {
                    let _ = write!(o, " {:>11.2}", it.months[m].total);
                }
                let _ = writeln!(
                    o,
                    " {:>12.2} {:>14.2}",
                    it.total, it.total_without_lifecycle
                );
            }
            let _ = write!(o, "{:<24}", "all");
            for &m in &show {
                let _ = write!(o, " {:>11.2}", k.monthly[m]);
            }
            let _ = writeln!(o, " {:>12.2} {:>14.2}", k.total, k.total_without_lifecycle);
        }
    }

    /// The workbench's questions answered, and the recommendation.
    fn text_lessons(&self, o: &mut String) {
        if !self.lessons.is_empty() {
            let _ = writeln!(
                o,
                "\n== the workbench's questions, answered for this scenario =="
            );
            for l in &self.lessons {
                let _ = writeln!(o, "- {} {}.", l.question, capitalized(l.answer));
                let _ = writeln!(o, "  {}", l.because);
            }
        }
        let r = &self.recommendation;
        let _ = writeln!(o, "\n== recommendation: {} ==", r.choice);
        for reason in &r.reasons {
            let _ = writeln!(o, "- {reason}");
        }
    }

    /// The plots that apply: (file name, SVG).
    pub fn svgs(&self) -> Vec<(String, String)> {
        let s = &self.scenario;
        let mut v = Vec::new();
        if let Some(p) = &self.pipeline {
            v.push(("sankey.svg".into(), crate::plots::pipeline_sankey(s, p)));
            v.push((
                "waterfall.svg".into(),
                crate::plots::pipeline_waterfall(s, p),
            ));
            v.push(("saturation.svg".into(), crate::plots::saturation(s)));
        }
        if let Some(c) = &self.checkpoint {
            v.push((
                "young-daly.svg".into(),
                crate::plots::young_daly(c, s.checkpoint.as_ref().and_then(|c| c.interval)),
            ));
        }
        for t in &s.tiers {
            if let Some(curve) = &t.curve {
                let r = crate::probe::ProbeReport::new(
                    t.name.clone(),
                    if matches!(t.kind, crate::scenario::TierKind::Object) {
                        crate::probe::ProbeKind::Object
                    } else {
                        crate::probe::ProbeKind::Device
                    },
                    true,
                    0,
                    0.0,
                    curve.points.clone(),
                    Vec::new(),
                );
                let name: String = t
                    .name
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_lowercase()
                        } else {
                            '-'
                        }
                    })
                    .collect();
                v.push((format!("iops-{name}.svg"), r.svg()));
            }
        }
        v
    }
}

/// "storage" → "Storage".
fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
}
