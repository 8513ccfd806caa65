//! The workbench's four personas (`shared/seeds/004_*.txt`), each with its crisis reproduced in
//! numbers and an answer.
//!
//! Every figure the seeds do not give is an assumption stated in the output, so a reader can
//! disagree with it and change it: Cloud Titan and Edge Guardian are scenario files
//! (`data/personas/*.toml`, printed by `strata plan --persona NAME --print-scenario`) run through
//! the planner; Mobile Nomad and Tiny Pioneer are device-level streaming budgets computed here.

use crate::error::PlanError;
use serde::Serialize;

use crate::plan::{Plan, plan};
use crate::scenario::Scenario;
use crate::units::{bytes, rate, secs};

/// The persona names, as `--persona` takes them.
pub const NAMES: [&str; 4] = [
    "cloud-titan",
    "edge-guardian",
    "mobile-nomad",
    "tiny-pioneer",
];

/// A persona's crisis and answer.
#[derive(Debug, Clone, Serialize)]
pub struct Persona {
    /// `cloud-titan`, `edge-guardian`, `mobile-nomad` or `tiny-pioneer`.
    pub key: &'static str,
    /// The persona's name.
    pub title: &'static str,
    /// Who they are.
    pub role: &'static str,
    /// Their fixed mission.
    pub mission: &'static str,
    /// The storage crisis they face.
    pub crisis: &'static str,
    /// Figures not in the seeds, stated.
    pub assumptions: Vec<String>,
    /// The crisis in numbers.
    pub findings: Vec<String>,
    /// What to do.
    pub answer: Vec<String>,
    /// `local-first` or `cloud-native`.
    pub choice: &'static str,
    /// The planner's full plan, for the personas that are scenarios.
    pub plan: Option<Plan>,
}

/// The scenario file of a persona that has one.
pub fn scenario_text(key: &str) -> Option<&'static str> {
    match key {
        "cloud-titan" => Some(include_str!("../data/personas/cloud-titan.toml")),
        "edge-guardian" => Some(include_str!("../data/personas/edge-guardian.toml")),
        "mobile-nomad" => Some(include_str!("../data/personas/mobile-nomad.toml")),
        "tiny-pioneer" => Some(include_str!("../data/personas/tiny-pioneer.toml")),
        _ => None,
    }
}

/// Runs persona `key` with its own figures.
pub fn run(key: &str) -> Result<Persona, PlanError> {
    let text = scenario_text(key).ok_or_else(|| {
        PlanError::Invalid(format!(
            "unknown persona {key:?}: choose {}",
            NAMES.join(", ")
        ))
    })?;
    run_with(key, text, key)
}

/// Runs persona `key` with the figures of `text` (a persona file as `scenario_text` gives,
/// edited); `origin` names it in errors.
pub fn run_with(key: &str, text: &str, origin: &str) -> Result<Persona, PlanError> {
    let params = |origin: &str| -> Result<toml::Value, PlanError> {
        let t: toml::Table =
            toml::from_str(text).map_err(|e| PlanError::Invalid(format!("{origin}: {e}")))?;
        Ok(t.get("persona")
            .cloned()
            .unwrap_or(toml::Value::Table(toml::Table::new())))
    };
    match key {
        "cloud-titan" => cloud_titan(Scenario::from_toml(text, origin)?),
        "edge-guardian" => edge_guardian(Scenario::from_toml(text, origin)?),
        "mobile-nomad" => {
            Ok(mobile_nomad(&params(origin)?.try_into().map_err(|e| {
                PlanError::Invalid(format!("{origin}: persona: {e}"))
            })?))
        }
        "tiny-pioneer" => {
            Ok(tiny_pioneer(&params(origin)?.try_into().map_err(|e| {
                PlanError::Invalid(format!("{origin}: persona: {e}"))
            })?))
        }
        other => Err(PlanError::Invalid(format!(
            "unknown persona {other:?}: choose {}",
            NAMES.join(", ")
        ))),
    }
}

fn cloud_titan(s: Scenario) -> Result<Persona, PlanError> {
    let p = plan(&s);
    let (Some(c), Some(ck)) = (p.checkpoint.as_ref(), s.checkpoint.as_ref()) else {
        return Err(PlanError::Invalid(
            "cloud-titan: the scenario needs a [checkpoint] section".into(),
        ));
    };
    let Some(st) = c.staged.as_ref() else {
        return Err(PlanError::Invalid(
            "cloud-titan: the scenario needs an NVMe tier to stage on".into(),
        ));
    };
    let d = &c.direct;
    let findings = vec![
        format!(
            "{} from {} nodes is {} per node; all at once through {} of shared write bandwidth the storm lasts {}, and every GPU waits for it",
            bytes(ck.size),
            ck.nodes,
            bytes(c.shard),
            rate(ck.shared_write_bandwidth),
            secs(c.storm_secs)
        ),
        format!(
            "with a node MTBF of {}, the job fails every {} on average: at the 10-minute interval in use the storm wastes {:.1}% of the month (Daly's interval {} would waste {:.1}%)",
            secs(ck.node_mtbf),
            secs(c.job_mtbf),
            d.interval_waste.unwrap_or(0.0) * 100.0,
            secs(d.daly),
            d.waste * 100.0
        ),
        format!(
            "{:.0} writers × {} in flight ask {:.0} PUT/s of a store that serves {:.0}{}",
            ck.nodes,
            bytes(ck.part_size),
            d.put_rate_asked,
            ck.put_rate.unwrap_or(f64::INFINITY),
            if c.storm_overloads {
                ": it answers 503 SlowDown and the retries pile up"
            } else {
                ""
            }
        ),
    ];
    let answer = vec![
        format!(
            "stage each shard on local NVMe: the stall drops from {} to {}",
            secs(d.stall),
            secs(st.stall)
        ),
        format!(
            "drain in staggered waves of {} node(s) (paced by leases in the store): durable after {}, shorter than the interval",
            st.writers_at_once,
            secs(st.durable_after)
        ),
        format!(
            "checkpoint every {} ({}): waste {:.2}% instead of {:.1}%; the month of work finishes {} sooner",
            secs(st.recommended),
            if st.recommended > st.daly * 1.001 {
                format!(
                    "the drain's length; Daly's {} is shorter than a drain",
                    secs(st.daly)
                )
            } else {
                "Daly, with the new stall".to_string()
            },
            st.waste * 100.0,
            d.interval_waste.unwrap_or(d.waste) * 100.0,
            secs(d.interval_run_secs.unwrap_or(d.run_secs) - st.run_secs)
        ),
    ];
    Ok(Persona {
        key: "cloud-titan",
        title: "Cloud Titan",
        role: "LLM Architect",
        mission: "Maximize Llama-3-70B serving.",
        crisis: "The Checkpoint Storm: a 1024-node cluster saves a 350 GB checkpoint at once, and the shared storage collapses under the write pressure.",
        assumptions: vec![
            "the 350 GB is the whole checkpoint, sharded over the 1024 nodes".into(),
            "node MTBF 265 days: Llama 3's report had 419 interruptions in 54 days on 16,384 GPUs (2,048 nodes)".into(),
            "shared file system 1 GB/s of writes (the seeds' FSx for Lustre tier: 1000 MB/s), 3,500 PUT/s; 25 Gbps per node; local NVMe writes 2 GB/s".into(),
            "a 1-month run, checkpoints every 10 minutes today, 10 minutes to restart".into(),
        ],
        findings,
        answer,
        choice: "local-first",
        plan: Some(p),
    })
}

fn edge_guardian(s: Scenario) -> Result<Persona, PlanError> {
    let p = plan(&s);
    // The fleet, from the seed: 10,000 vehicles, 5 TB per hour in all.
    let vehicles = 10_000.0;
    let fleet_per_hour = 5e12;
    let hours_per_day = 8.0;
    let per_vehicle_rate = fleet_per_hour / vehicles / 3600.0;
    let per_day = fleet_per_hour / vehicles * hours_per_day;
    let local = 1e12;
    let cellular_price = s.prices.or_zero("transfer", "cellular");
    let event_fraction = 0.02;
    let all_cell = per_day * 30.0 * vehicles / 1e9 * cellular_price;
    let events_cell = all_cell * event_fraction;
    let depot = 1e9 / 8.0;
    let loop_period = 0.010;
    let ssd_stall = 0.050;
    let ring = (per_vehicle_rate * ssd_stall * 4.0).max(4096.0);
    let Some(k) = p.cost.as_ref() else {
        return Err(PlanError::Invalid(
            "edge-guardian: the scenario needs a [cost] section".into(),
        ));
    };
    let month12 = *k.monthly.last().unwrap_or(&0.0);
    let findings = vec![
        format!(
            "5 TB/hour over {} vehicles is {} per vehicle ({}), {} per {}-hour driving day, {} per month for the fleet",
            vehicles,
            bytes(fleet_per_hour / vehicles),
            rate(per_vehicle_rate),
            bytes(per_day),
            hours_per_day,
            bytes(per_day * 30.0 * vehicles)
        ),
        format!(
            "uploading everything over cellular at ${cellular_price:.2}/GB costs ${all_cell:.0} a month; a 1 TB black box holds {:.0} days of driving",
            local / per_day
        ),
        format!(
            "the 10 ms safety loop writes {} per cycle; an SSD flush can stall {}: a synchronous write in the loop misses its deadline",
            bytes(per_vehicle_rate * loop_period),
            secs(ssd_stall)
        ),
        format!(
            "kept in S3 with lifecycle (Standard → IA at 30 days → Glacier at 90, deleted at 1 year), month 12 costs ${month12:.0}; without lifecycle ${:.0} over the year instead of ${:.0}",
            k.total_without_lifecycle, k.total
        ),
    ];
    let answer = vec![
        format!(
            "log locally first: the loop writes into a {} RAM ring (4 × the worst flush stall), a writer thread drains it to the SSD; the loop never waits on storage",
            bytes(ring)
        ),
        format!(
            "upload only flagged events ({:.0}%) over cellular: ${events_cell:.0} a month instead of ${all_cell:.0}",
            event_fraction * 100.0
        ),
        format!(
            "offload the rest at the depot over Wi-Fi (1 Gbps: {} per vehicle per day), into S3 with the lifecycle above",
            secs(per_day / depot)
        ),
    ];
    Ok(Persona {
        key: "edge-guardian",
        title: "Edge Guardian",
        role: "AV Systems Lead",
        mission: "Deterministic 10ms safety loop.",
        crisis: "The Black-Box Log: a 10,000-vehicle fleet generates 5 TB/hour of lidar; decide what to log locally and what to upload.",
        assumptions: vec![
            "5 TB/hour is the whole fleet's output while driving, 8 hours a day".into(),
            "a 1 TB SSD per vehicle; flushes stall up to 50 ms; cellular at $1.00/GB (price book `transfer.cellular`); depot Wi-Fi 1 Gbps".into(),
            "2% of the data is flagged as events worth sending at once".into(),
        ],
        findings,
        answer,
        choice: "local-first",
        plan: Some(p),
    })
}

/// Mobile Nomad's budget: model weights streamed from flash into a RAM budget at 60 FPS.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MobileNomad {
    /// Model weights, bytes. Default: 3 GB.
    pub weights: f64,
    /// RAM the app may use for weights, bytes (of the glasses' 8 GB). Default: 2 GB.
    pub ram_for_weights: f64,
    /// Flash sequential read, bytes/s. Default: 2 GB/s (UFS 3.1).
    pub flash_bandwidth: f64,
    /// Flash read latency p50 and worst stall, seconds. Default: 100 µs, 20 ms.
    pub flash_latency: f64,
    /// The worst stall of a flash read, seconds. Default: 20 ms.
    pub flash_stall: f64,
    /// Frames per second. Default: 60.
    pub fps: f64,
    /// The frame skip to avoid, seconds. Default: 50 ms.
    pub skip: f64,
    /// Share of a frame the flash may be busy (the rest is left to the camera and GPU). Default: 0.5.
    pub io_share: f64,
}

impl Default for MobileNomad {
    fn default() -> Self {
        Self {
            weights: 3e9,
            ram_for_weights: 2e9,
            flash_bandwidth: 2e9,
            flash_latency: 100e-6,
            flash_stall: 0.020,
            fps: 60.0,
            skip: 0.050,
            io_share: 0.5,
        }
    }
}

/// The Mobile Nomad persona with these figures.
pub fn mobile_nomad(m: &MobileNomad) -> Persona {
    let frame = 1.0 / m.fps;
    let per_frame = m.flash_bandwidth * frame * m.io_share;
    // Two chunk buffers (one read, one in use) come out of the RAM budget.
    let chunk =
        (m.flash_bandwidth * (frame - m.flash_stall.min(frame * 0.9)) * m.io_share).max(1e6);
    let resident = (m.ram_for_weights - 2.0 * chunk).max(0.0);
    let missing = (m.weights - resident).max(0.0);
    let need_per_frame_all = missing;
    let frames_per_pass = (missing / per_frame).ceil().max(1.0);
    let lookahead_frames = ((m.flash_stall + m.flash_latency) / frame).ceil();
    let skip_frames = (m.skip / frame).floor();
    let int4 = m.weights / 2.0;
    let findings = vec![
        format!(
            "{} of weights against {} of RAM for them: {} must come from flash",
            bytes(m.weights),
            bytes(m.ram_for_weights),
            bytes(missing)
        ),
        format!(
            "a frame lasts {}; at {} with half the frame for I/O the flash delivers {} per frame: running the whole model every frame would need {}/s",
            secs(frame),
            rate(m.flash_bandwidth),
            bytes(per_frame),
            bytes(need_per_frame_all * m.fps)
        ),
        format!(
            "a flash stall of {} is {:.1} frames; a {} skip is {} frames: a render thread that waits on a weight read skips",
            secs(m.flash_stall),
            m.flash_stall / frame,
            secs(m.skip),
            skip_frames
        ),
    ];
    let answer = vec![
        format!(
            "never read flash on the render path: pin {} of weights in RAM and stream the other {} in {} chunks, double-buffered",
            bytes(resident),
            bytes(missing),
            bytes(chunk)
        ),
        format!(
            "run translation every {} frames ({:.1} updates/s) while rendering at {} FPS: one pass streams {} at {} per frame",
            frames_per_pass,
            m.fps / frames_per_pass,
            m.fps,
            bytes(missing),
            bytes(per_frame)
        ),
        format!(
            "prefetch {} frame(s) ahead, which covers the worst stall of {}; or quantize to 4 bits ({}), which fits the RAM budget and removes the streaming",
            lookahead_frames,
            secs(m.flash_stall),
            bytes(int4)
        ),
    ];
    Persona {
        key: "mobile-nomad",
        title: "Mobile Nomad",
        role: "AR Glasses Dev",
        mission: "60FPS AR translation.",
        crisis: "The App Cache Wall: the glasses' 8 GB of RAM is full; stream model weights from flash without a 50 ms frame skip.",
        assumptions: vec![format!(
            "weights {}, RAM for them {}, flash {} (p50 {}, worst stall {}), half of each frame for I/O",
            bytes(m.weights),
            bytes(m.ram_for_weights),
            rate(m.flash_bandwidth),
            secs(m.flash_latency),
            secs(m.flash_stall)
        )],
        findings,
        answer,
        choice: "local-first",
        plan: None,
    }
}

/// Tiny Pioneer's budget: a hearable's audio ring against flash latency.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TinyPioneer {
    /// The circular buffer, bytes. Default: 64 KB (65,536 B).
    pub buffer: f64,
    /// Audio in, bytes/s. Default: 16 kHz × 16 bit × 2 microphones = 64,000 B/s.
    pub audio_rate: f64,
    /// End-to-end latency budget, seconds. Default: 10 ms.
    pub latency_budget: f64,
    /// Processing hop, seconds. Default: 4 ms.
    pub hop: f64,
    /// Compute per hop, seconds. Default: 0.6 ms.
    pub compute: f64,
    /// Model weights, bytes. Default: 128 KB.
    pub weights: f64,
    /// External flash read bandwidth, bytes/s (quad SPI). Default: 40 MB/s.
    pub flash_bandwidth: f64,
    /// Flash latency jitter, worst case, seconds. Default: 10 ms.
    pub flash_jitter: f64,
    /// Flash active read power, watts. Default: 20 mW.
    pub flash_power: f64,
    /// The power budget, watts. Default: 1 mW.
    pub power_budget: f64,
}

impl Default for TinyPioneer {
    fn default() -> Self {
        Self {
            buffer: 65_536.0,
            audio_rate: 64_000.0,
            latency_budget: 0.010,
            hop: 0.004,
            compute: 0.0006,
            weights: 128_000.0,
            flash_bandwidth: 40e6,
            flash_jitter: 0.010,
            flash_power: 0.020,
            power_budget: 0.001,
        }
    }
}

/// The Tiny Pioneer persona with these figures.
pub fn tiny_pioneer(t: &TinyPioneer) -> Persona {
    let ring_secs = t.buffer / t.audio_rate;
    let usable = t.latency_budget * t.audio_rate;
    let stream_per_hop = t.weights / t.flash_bandwidth;
    let duty = (stream_per_hop / t.hop).min(1.0);
    let power = duty * t.flash_power;
    let slack = t.latency_budget - t.hop - t.compute - stream_per_hop;
    let ring = 2.0 * t.hop * t.audio_rate;
    let sram_for_weights = t.buffer - ring;
    let int4_params = sram_for_weights * 2.0;
    let mut findings = vec![
        format!(
            "the 64 KB ring holds {} of audio, but the {} latency budget lets only {} of it be queued: the buffer cannot absorb jitter without breaking the latency",
            secs(ring_secs),
            secs(t.latency_budget),
            bytes(usable)
        ),
        format!(
            "streaming {} of weights every {} hop takes {} of flash time ({:.0}% duty) and {:.1} mW, against a 1 mW budget",
            bytes(t.weights),
            secs(t.hop),
            secs(stream_per_hop),
            duty * 100.0,
            power * 1e3
        ),
        format!(
            "slack in the budget after a hop, compute and the weight reads: {}; a flash stall of up to {} overruns it and the audio glitches",
            secs(slack),
            secs(t.flash_jitter)
        ),
    ];
    if stream_per_hop > t.hop {
        findings.push(format!(
            "the weight reads alone ({}) take longer than a hop ({}): the model cannot keep up even without jitter",
            secs(stream_per_hop),
            secs(t.hop)
        ));
    }
    let answer = vec![
        format!(
            "shrink the ring to two hops ({}): the latency it adds is {}",
            bytes(ring),
            secs(2.0 * t.hop)
        ),
        format!(
            "keep the model in SRAM, read from flash once at boot: {} remain for weights, {:.0} parameters at 4 bits",
            bytes(sram_for_weights),
            int4_params
        ),
        "with no flash read on the audio path, flash jitter cannot reach the audio: the glitches stop and flash power drops to boot time only".into(),
    ];
    Persona {
        key: "tiny-pioneer",
        title: "Tiny Pioneer",
        role: "Hearable Lead",
        mission: "Neural isolation in <10ms under 1mW.",
        crisis: "The Circular Buffer: only 64 KB of audio buffer; inconsistent flash-read latency makes the audio glitch.",
        assumptions: vec![format!(
            "16 kHz, 16-bit, 2 microphones ({}); {} hops, {} compute per hop; {} of weights in quad-SPI flash at {} drawing {} mW; jitter up to {}",
            rate(t.audio_rate),
            secs(t.hop),
            secs(t.compute),
            bytes(t.weights),
            rate(t.flash_bandwidth),
            t.flash_power * 1e3,
            secs(t.flash_jitter)
        )],
        findings,
        answer,
        choice: "local-first",
        plan: None,
    }
}

impl Persona {
    /// The persona as text.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut o = String::new();
        let _ = writeln!(o, "{} ({}): {}", self.title, self.role, self.mission);
        let _ = writeln!(o, "crisis: {}", self.crisis);
        let _ = writeln!(o, "assumptions:");
        for a in &self.assumptions {
            let _ = writeln!(o, "  - {a}");
        }
        let _ = writeln!(o, "the crisis in numbers:");
        for f in &self.findings {
            let _ = writeln!(o, "  - {f}");
        }
        let _ = writeln!(o, "answer ({}):", self.choice);
        for a in &self.answer {
            let _ = writeln!(o, "  - {a}");
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_persona_answers_with_numbers() {
        for k in NAMES {
            let p = run(k).unwrap();
            assert!(!p.findings.is_empty() && !p.answer.is_empty(), "{k}");
            assert!(
                p.findings
                    .iter()
                    .all(|l| l.chars().any(|c| c.is_ascii_digit())),
                "{k}: every finding carries a number"
            );
            assert!(
                !p.to_text().contains("NaN") && !p.to_text().contains("inf"),
                "{}",
                p.to_text()
            );
            assert!(scenario_text(k).is_some());
        }
        assert!(run("captain-planet").is_err());
    }

    #[test]
    fn the_titan_storm_is_worse_than_the_staged_drain() {
        let p = run("cloud-titan").unwrap();
        let c = p.plan.as_ref().unwrap().checkpoint.as_ref().unwrap();
        let st = c.staged.as_ref().unwrap();
        assert!((c.storm_secs - 350.0).abs() < 1.0, "{}", c.storm_secs);
        // The restart cost (10 min per failure) is common to both; the stall is not.
        assert!(
            st.waste * 3.0 < c.direct.waste,
            "{} vs {}",
            st.waste,
            c.direct.waste
        );
    }

    #[test]
    fn budgets_move_with_their_figures() {
        let base = tiny_pioneer(&TinyPioneer::default());
        assert!(base.findings[1].contains("mW"));
        let m = mobile_nomad(&MobileNomad {
            ram_for_weights: 4e9,
            ..Default::default()
        });
        assert!(m.findings[0].contains("0 B"), "{:?}", m.findings);
    }
}
