//! The workbench's three lessons (the seeds' lab, `004_*.txt`): for each, the question a
//! student answers ("locks") before looking, and the planner's answer for the scenario at
//! hand, found by planning variants of it.
//!
//! 1. **The access pattern audit**: shuffled at random every epoch, one sample per request,
//!    is training limited by the accelerators or by storage? The scenario is planned again
//!    with `layout = "raw"` and `shuffle = "global"`.
//! 2. **Sizing the pipeline**: when the download link is the bottleneck, does a larger local
//!    NVMe cache speed training up? The scenario is planned with its link (if it is not the
//!    bottleneck already, at half the demand), once with no NVMe cache and once with a cache
//!    that holds the whole dataset (shuffled, a node reads a different part of it each
//!    epoch, so its cache fills over the epochs). Epoch 1 cannot gain (every byte crosses the link
//!    once); later epochs can, so the answer depends on the epochs.
//! 3. **The checkpoint wall**: does checkpointing every 10 minutes, instead of at the interval
//!    in use, make the run finish sooner or later? When no interval is set, or it is 10
//!    minutes, the comparison is with the recommended one (Daly's, or the drain time when
//!    that is longer). The expected run time is `work / (1 − waste(τ))` for
//!    Strata's way of saving (staged and staggered when the scenario has a local tier, else
//!    direct).
//!
//! A lesson the scenario has no section for (no `[checkpoint]`, no data pipeline) is left out.

use serde::Serialize;

use crate::checkpoint;
use crate::pipeline::{self, PipelinePlan};
use crate::scenario::{Layout, Scenario, Shuffle};
use crate::sizing::Knobs;
use crate::units::{bytes, rate, secs};

/// The interval lesson 3 asks about, seconds (the seeds' "every 10 minutes").
pub const TEN_MINUTES: f64 = 600.0;

/// One lesson: the question, the choices, and the planner's answer with its figures.
#[derive(Debug, Clone, Serialize)]
pub struct Lesson {
    /// `audit`, `sizing` or `checkpoint`.
    pub key: &'static str,
    /// The question, with the scenario's figures.
    pub question: String,
    /// What a student may answer; `answer` is one of them.
    pub choices: Vec<&'static str>,
    /// The planner's answer: one of `choices`.
    pub answer: &'static str,
    /// The figures behind the answer, in a sentence or three.
    pub because: String,
}

/// The lessons that apply to `s`, in the workbench's order.
pub fn lessons(s: &Scenario) -> Vec<Lesson> {
    let mut out = Vec::new();
    if let Some(p) = pipeline::evaluate(s) {
        out.extend(audit(s, &p));
        out.extend(sizing(s, &p));
    }
    out.extend(checkpoint_wall(s));
    out
}

fn limited_by(p: &PipelinePlan) -> &'static str {
    if p.bottleneck == "compute" {
        "the accelerators"
    } else {
        "storage"
    }
}

/// Lesson 1: random access against the accelerators.
fn audit(s: &Scenario, p: &PipelinePlan) -> Option<Lesson> {
    let d = s.dataset.as_ref()?;
    let mut r = s.clone();
    let rd = r.dataset.as_mut()?;
    rd.layout = Layout::Raw;
    rd.shuffle = Shuffle::Global;
    let q = pipeline::evaluate(&r)?;
    let answer = limited_by(&q);
    let because = format!(
        "Shuffled at random, one {} sample per request, the bottleneck is {}: the node gets {} \
         against a demand of {}, so the accelerators are busy {:.1}% of the time. \
         The scenario as set ({} layout, {} shuffle) gets {} ({:.1}%, bottleneck {}).",
        bytes(d.sample_size),
        q.bottleneck,
        rate(q.node_bytes_per_sec),
        rate(q.node_demand),
        q.utilization * 100.0,
        layout_name(d.layout),
        shuffle_name(d.shuffle),
        rate(p.node_bytes_per_sec),
        p.utilization * 100.0,
        p.bottleneck,
    );
    Some(Lesson {
        key: "audit",
        question: format!(
            "If you shuffle all {} at random every epoch, reading one sample per request, \
             what limits training?",
            bytes(d.size)
        ),
        choices: vec!["the accelerators", "storage"],
        answer,
        because,
    })
}

fn layout_name(l: Layout) -> &'static str {
    match l {
        Layout::Shards => "shards",
        Layout::Raw => "raw",
    }
}

fn shuffle_name(s: Shuffle) -> &'static str {
    match s {
        Shuffle::None => "no",
        Shuffle::Window => "window",
        Shuffle::Global => "global",
    }
}

/// Lesson 2: NVMe cache behind a slow link.
fn sizing(s: &Scenario, p: &PipelinePlan) -> Option<Lesson> {
    let d = s.dataset.as_ref()?;
    let source_bound = p.bottleneck.starts_with("source");
    // A link that is not the bottleneck is lowered to half the demand, so the question's
    // premise holds.
    let download = if source_bound {
        None
    } else {
        Some(p.node_demand / 2.0)
    };
    let without = Knobs {
        download,
        cache: Some(0.0),
        ..Knobs::default()
    };
    // The whole dataset: with the shuffle, a node reads a different part of it each epoch.
    let with = Knobs {
        download,
        cache: Some(d.size),
        ..Knobs::default()
    };
    let a = pipeline::evaluate(&without.apply(s))?;
    let b = pipeline::evaluate(&with.apply(s))?;
    let first = |x: &PipelinePlan| x.epochs.first().map_or(0.0, |e| e.secs);
    let gain = a.total_secs / b.total_secs.max(f64::MIN_POSITIVE);
    let answer = if gain > 1.01 { "yes" } else { "no" };
    let link = s.source().map_or(0.0, |t| t.read_bandwidth);
    let premise = match download {
        Some(bw) => format!(
            "With the download lowered to {} (half the demand of {})",
            rate(bw),
            rate(p.node_demand)
        ),
        None => format!(
            "With the download at {} against a demand of {}",
            rate(link),
            rate(p.node_demand)
        ),
    };
    let later = if d.epochs > 1 {
        format!(
            " Over {} epochs the run takes {} without a cache and {} with one ({:.2}×): by \
             the last epoch the cache serves {:.0}% of the reads.",
            d.epochs,
            secs(a.total_secs),
            secs(b.total_secs),
            gain,
            b.epochs.last().map_or(0.0, |e| e.hit_ratio) * 100.0
        )
    } else {
        " With one epoch nothing is read twice, so a cache cannot help.".to_string()
    };
    Some(Lesson {
        key: "sizing",
        question: "If the download link from the object store is the bottleneck, will a larger \
                   local NVMe cache make training faster?"
            .to_string(),
        choices: vec!["yes", "no"],
        answer,
        because: format!(
            "{premise}, epoch 1 takes {} with no cache and {} with a cache of {} (the whole dataset): every byte \
             crosses the link once either way.{later}",
            secs(first(&a)),
            secs(first(&b)),
            bytes(d.size),
        ),
    })
}

/// Lesson 3: checkpoint every 10 minutes against the interval in use.
fn checkpoint_wall(s: &Scenario) -> Option<Lesson> {
    let c = s.checkpoint.as_ref()?;
    let base_plan = checkpoint::evaluate(c);
    let strategy = |p: &checkpoint::CheckpointPlan| p.staged.clone().unwrap_or(p.direct.clone());
    let at = |tau: f64| {
        let mut c2 = c.clone();
        c2.interval = Some(tau);
        let st = strategy(&checkpoint::evaluate(&c2));
        (st.interval_run_secs.unwrap_or(f64::INFINITY), st)
    };
    let ours = strategy(&base_plan);
    let (baseline, named) = match c.interval {
        Some(t) if (t - TEN_MINUTES).abs() > 1.0 => (t, "the interval in use"),
        _ => (ours.recommended, "the recommended interval"),
    };
    let (run10, st10) = at(TEN_MINUTES);
    let (run_base, st_base) = at(baseline);
    let answer = if run10 > run_base {
        "increase"
    } else {
        "decrease"
    };
    let mut because = format!(
        "Saving {}, training stalls {} per checkpoint, and the job fails every {}. \
         Every 10 minutes the {} of work takes {} (waste {:.1}%); every {} ({named}) it takes \
         {} (waste {:.1}%). Daly's interval is {}.",
        st10.name,
        secs(st10.stall),
        secs(base_plan.job_mtbf),
        secs(c.work),
        secs(run10),
        st10.interval_waste.unwrap_or(1.0) * 100.0,
        secs(baseline),
        secs(run_base),
        st_base.interval_waste.unwrap_or(1.0) * 100.0,
        secs(ours.daly),
    );
    if st10.durable_after - st10.stall > TEN_MINUTES {
        because.push_str(&format!(
            " And a drain takes {}, longer than 10 minutes: drains would queue up.",
            secs(st10.durable_after - st10.stall)
        ));
    }
    Some(Lesson {
        key: "checkpoint",
        question: format!(
            "Will saving a checkpoint every 10 minutes, instead of every {}, increase or \
             decrease the time to finish the {} run?",
            secs(baseline),
            secs(c.work)
        ),
        choices: vec!["increase", "decrease"],
        answer,
        because,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = include_str!("../../../examples/plan/resnet50-8-nodes.toml");

    fn scenario(edit: impl FnOnce(&mut Scenario)) -> Scenario {
        let mut s = Scenario::from_toml(BASE, "test").unwrap();
        edit(&mut s);
        s
    }

    fn lesson(s: &Scenario, key: &str) -> Lesson {
        lessons(s).into_iter().find(|l| l.key == key).unwrap()
    }

    #[test]
    fn every_answer_is_one_of_its_choices() {
        let s = scenario(|_| {});
        let all = lessons(&s);
        assert_eq!(
            all.iter().map(|l| l.key).collect::<Vec<_>>(),
            ["audit", "sizing", "checkpoint"]
        );
        for l in &all {
            assert!(l.choices.contains(&l.answer), "{l:?}");
            assert!(!l.because.is_empty());
        }
    }

    #[test]
    fn random_small_reads_from_s3_starve_the_accelerators_but_slow_compute_does_not() {
        // 114 KB samples, one GET each at 30 ms: storage limits.
        let s = scenario(|_| {});
        assert_eq!(lesson(&s, "audit").answer, "storage");
        // A step a thousand times longer needs a thousandth of the data: compute limits.
        let slow = scenario(|s| s.accelerators.as_mut().unwrap().step_time *= 1000.0);
        assert_eq!(lesson(&slow, "audit").answer, "the accelerators");
    }

    #[test]
    fn a_cache_behind_a_slow_link_helps_only_when_data_is_read_again() {
        let many = scenario(|s| s.dataset.as_mut().unwrap().epochs = 10);
        let l = lesson(&many, "sizing");
        assert_eq!(l.answer, "yes", "{}", l.because);
        assert!(l.because.contains("epoch 1"), "{}", l.because);
        let once = scenario(|s| s.dataset.as_mut().unwrap().epochs = 1);
        let l = lesson(&once, "sizing");
        assert_eq!(l.answer, "no", "{}", l.because);
    }

    #[test]
    fn ten_minute_checkpoints_cost_time_when_saving_is_slow_and_save_it_when_failures_are_frequent()
    {
        // A slow store (1 GB/s shared for 100 GB, direct saves: 100 s stall) and a rare
        // failure: 10 minutes is far too often.
        let slow = scenario(|s| {
            let c = s.checkpoint.as_mut().unwrap();
            c.shared_write_bandwidth = 1e9;
            c.local_write_bandwidth = None;
            c.interval = Some(3600.0 * 6.0);
        });
        let l = lesson(&slow, "checkpoint");
        assert_eq!(l.answer, "increase", "{}", l.because);
        // Failures every 42 minutes across a huge job: checkpointing every 10 minutes
        // instead of every 6 hours saves a great deal.
        let fragile = scenario(|s| {
            let c = s.checkpoint.as_mut().unwrap();
            c.nodes = 1024;
            c.node_mtbf = 86400.0 * 30.0;
            c.interval = Some(3600.0 * 6.0);
        });
        let l = lesson(&fragile, "checkpoint");
        assert_eq!(l.answer, "decrease", "{}", l.because);
    }

    #[test]
    fn scenarios_without_a_section_have_no_lesson_for_it() {
        let s = scenario(|s| s.checkpoint = None);
        assert!(lessons(&s).iter().all(|l| l.key != "checkpoint"));
        let s = scenario(|s| s.dataset = None);
        assert_eq!(
            lessons(&s).iter().map(|l| l.key).collect::<Vec<_>>(),
            ["checkpoint"]
        );
    }
}
