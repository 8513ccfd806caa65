//! Local-first or cloud-native, with the reasons.
//!
//! - **Cloud-native** when streaming from the shared store alone keeps the accelerators at
//!   the target: nothing to hydrate, no cache to size, every node equal.
//! - **Local-first** when only a node-local cache (or staging checkpoints on local NVMe)
//!   reaches it: the store is the source of truth, NVMe and DRAM carry the load.
//! - Neither, with the stage to fix, when no tiering on the given hardware reaches it.

use serde::Serialize;

use crate::checkpoint::CheckpointPlan;
use crate::cost::CostPlan;
use crate::pipeline::PipelinePlan;
use crate::scenario::{Layout, Scenario};
use crate::sizing::{self, Knobs, Sizing};
use crate::units;

/// The recommendation.
#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    /// `local-first`, `cloud-native`, or `neither`.
    pub choice: String,
    /// Why, in sentences.
    pub reasons: Vec<String>,
}

/// Decides from the parts of a plan that exist.
pub fn recommend(
    s: &Scenario,
    pipeline: Option<&PipelinePlan>,
    sizing: Option<&Sizing>,
    ckpt: Option<&CheckpointPlan>,
    cost: Option<&CostPlan>,
) -> Recommendation {
    let mut reasons = Vec::new();
    let mut choice = None;
    if let (Some(p), Some(d), Some(a)) = (pipeline, s.dataset.as_ref(), s.accelerators.as_ref()) {
        let target = a.target;
        let stream = sizing::utilization(
            s,
            Knobs {
                cache: Some(0.0),
                ..Default::default()
            },
        );
        if stream >= target {
            choice = Some("cloud-native");
            reasons.push(format!(
                "streaming from {} alone keeps the accelerators {:.0}% busy (target {:.0}%): no cache to hydrate or size",
                s.source().map_or("the store", |t| t.name.as_str()),
                stream * 100.0,
                target * 100.0
            ));
        } else if p.utilization >= target {
            choice = Some("local-first");
            reasons.push(format!(
                "streaming alone reaches {:.0}%; with {} of NVMe cache per node the run reaches {:.0}% (later epochs read {:.0}% locally)",
                stream * 100.0,
                units::bytes(s.pipeline.cache),
                p.utilization * 100.0,
                p.epochs.last().map_or(0.0, |e| e.hit_ratio) * 100.0
            ));
        } else {
            let pick = sizing.and_then(|z| z.pick.map(|i| &z.options[i]));
            choice = Some(match pick {
                Some(o) if o.cache > 0.0 => "local-first",
                Some(_) => "cloud-native",
                None => "neither",
            });
            reasons.push(format!(
                "the plan reaches {:.0}% (target {:.0}%); the bottleneck is {}",
                p.utilization * 100.0,
                target * 100.0,
                p.bottleneck
            ));
            if let Some(z) = sizing {
                reasons.push(format!("balanced tiering: {}", z.reason));
            }
        }
        if d.layout == Layout::Raw && p.io_wall.factor > 2.0 {
            reasons.push(format!(
                "pack the samples into shards (`strata pack`): reading one sample per request is {:.1}× slower than sequential shard reads here",
                p.io_wall.factor
            ));
        }
        if let Some(src) = s
            .source()
            .filter(|t| t.kind == crate::scenario::TierKind::Object)
        {
            let requests = d.size / p.request_size * d.epochs as f64;
            let class = src.price_class.as_deref().unwrap_or("s3_standard");
            let get = s.prices.or_zero("get", class);
            if get > 0.0 {
                reasons.push(format!(
                    "streaming the run costs {:.0} GET requests (${:.2} at {class} prices); a cache hit costs none",
                    requests,
                    requests / 1000.0 * get
                ));
            }
        }
    }
    if let Some(c) = ckpt
        && let Some(st) = &c.staged
    {
        if st.waste < c.direct.waste {
            reasons.push(format!(
                "stage checkpoints on local NVMe ({} stall instead of {}) and drain {} node(s) at a time: expected waste {:.2}% instead of {:.2}%, {} sooner over the run",
                units::secs(st.stall),
                units::secs(c.direct.stall),
                st.writers_at_once,
                st.waste * 100.0,
                c.direct.waste * 100.0,
                units::secs(c.direct.run_secs - st.run_secs)
            ));
            choice.get_or_insert("local-first");
        }
        if c.storm_overloads {
            reasons.push("the unpaced storm asks the store for more PUTs per second than it serves: pace the drain".into());
        }
    }
    if let Some(cp) = cost
        && cp.total_without_lifecycle > cp.total
    {
        reasons.push(format!(
            "lifecycle transitions save ${:.0} ({:.0}%) over the period",
            cp.total_without_lifecycle - cp.total,
            (1.0 - cp.total / cp.total_without_lifecycle) * 100.0
        ));
        choice.get_or_insert("cloud-native");
    }
    Recommendation {
        choice: choice.unwrap_or("neither").to_string(),
        reasons,
    }
}
