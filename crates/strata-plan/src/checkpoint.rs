//! The checkpoint wall: stall, storm, interval (Young, Daly), wasted work and run time.
//!
//! A job of `nodes` nodes saves a checkpoint of `size` bytes in total (each node its shard,
//! `size / nodes`). Two ways to save:
//!
//! - **Direct** (every node writes to the shared store at once, training stalled until the
//!   last byte lands): the *storm*. It takes `max(size / shared_write_bandwidth,
//!   shard / node_write_bandwidth, parts / put_rate)` seconds, and that is the stall.
//! - **Staged and staggered** (Strata): each node writes its shard to local NVMe
//!   (`shard / local_write_bandwidth`, the only stall), then drains it in the background,
//!   at most `k` nodes at a time, `k` chosen so the writers neither exceed the shared
//!   bandwidth nor the store's PUT rate. The drain takes as long as the storm's bytes need,
//!   but no one waits for it and the store sees no overload; it must finish within the
//!   interval.
//!
//! The interval follows from the stall δ and the job's MTBF `M = node_mtbf / nodes`
//! ([`crate::interval`]); expected run time for `work` seconds of training is
//! `work / (1 − waste(τ))`.

use serde::Serialize;

use crate::interval;
use crate::scenario::Checkpoint;

/// One way of saving.
#[derive(Debug, Clone, Serialize)]
pub struct Strategy {
    /// `direct` (every node to the shared store at once) or `staged` (to local NVMe, drained behind).
    pub name: &'static str,
    /// Seconds training waits per checkpoint.
    pub stall: f64,
    /// Seconds until the checkpoint is durable in the shared store.
    pub durable_after: f64,
    /// Writers at once against the store.
    pub writers_at_once: u32,
    /// PUT requests per second asked of the store while saving.
    pub put_rate_asked: f64,
    /// Young's interval √(2δM), seconds.
    pub young: f64,
    /// Daly's interval, seconds.
    pub daly: f64,
    /// The interval to use: Daly's, or the drain time when the drain is longer (a drain
    /// must finish before the next checkpoint starts one), seconds.
    pub recommended: f64,
    /// Expected fraction of wall time lost at the recommended interval.
    pub waste: f64,
    /// Expected wall time to finish the work, seconds.
    pub run_secs: f64,
    /// Lost time over the run (run − work), seconds.
    pub lost_secs: f64,
    /// The interval in use, if given: its waste and run time.
    pub interval_waste: Option<f64>,
    /// The run time at the interval in use, seconds.
    pub interval_run_secs: Option<f64>,
    /// What the figures warn about (a drain longer than the interval, a cost large against the MTBF).
    pub warnings: Vec<String>,
}

/// The checkpoint plan.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointPlan {
    /// Bytes each node writes.
    pub shard: f64,
    /// The job's MTBF (node MTBF / nodes), seconds.
    pub job_mtbf: f64,
    /// The storm: all nodes at once, seconds.
    pub storm_secs: f64,
    /// Whether the storm asks more PUTs per second than the store serves (it answers 503
    /// SlowDown, and retries make it worse).
    pub storm_overloads: bool,
    /// Every node writing to the shared store at once.
    pub direct: Strategy,
    /// Saving to local NVMe and draining behind, when the scenario has NVMe.
    pub staged: Option<Strategy>,
    /// Waste at intervals from a tenth to ten times the recommended one, widened to half and
    /// twice the interval in use (for the Young–Daly plot): (interval seconds, waste) of the
    /// better strategy.
    pub curve: Vec<(f64, f64)>,
}

fn strategy(
    name: &'static str,
    c: &Checkpoint,
    stall: f64,
    durable_after: f64,
    writers: u32,
    put_rate_asked: f64,
) -> Strategy {
    let m = c.node_mtbf / c.nodes as f64;
    let y = interval::young(stall, m);
    let d = interval::daly(stall, m);
    let drain = durable_after - stall;
    let recommended = d.max(drain);
    let waste = interval::waste(recommended, stall, m, c.restart);
    let run = |w: f64| {
        if w >= 1.0 {
            f64::INFINITY
        } else {
            c.work / (1.0 - w)
        }
    };
    let mut warnings = Vec::new();
    if stall >= m / 10.0 {
        warnings.push(format!(
            "the stall ({}) is not small against the job's MTBF ({}): the job spends much of its life saving and redoing work",
            crate::units::secs(stall),
            crate::units::secs(m)
        ));
    }
    if recommended > d * 1.001 {
        warnings.push(format!(
            "the drain ({}) is longer than Daly's interval ({}): checkpoint every {} at most, or drain faster",
            crate::units::secs(drain),
            crate::units::secs(d),
            crate::units::secs(recommended)
        ));
    }
    if let Some(t) = c.interval
        && drain > t
    {
        warnings.push(format!(
            "the drain takes {}, longer than the interval in use of {}: drains queue up",
            crate::units::secs(drain),
            crate::units::secs(t)
        ));
    }
    if let Some(r) = c.put_rate
        && put_rate_asked > r
    {
        warnings.push(format!(
            "{:.0} PUT/s asked of a store that serves {:.0}: it answers 503 SlowDown",
            put_rate_asked, r
        ));
    }
    let iw = c.interval.map(|t| interval::waste(t, stall, m, c.restart));
    Strategy {
        name,
        stall,
        durable_after,
        writers_at_once: writers,
        put_rate_asked,
        young: y,
        daly: d,
        recommended,
        waste,
        run_secs: run(waste),
        lost_secs: run(waste) - c.work,
        interval_waste: iw,
        interval_run_secs: iw.map(run),
        warnings,
    }
}

/// Evaluates the checkpoint section.
pub fn evaluate(c: &Checkpoint) -> CheckpointPlan {
    let n = c.nodes as f64;
    let shard = c.size / n;
    let per_node = c.node_write_bandwidth.min(c.shared_write_bandwidth);
    // Each writer keeps its parts in flight; a part takes part / per-node-rate seconds.
    let parts_total = (shard / c.part_size).ceil().max(1.0) * n;
    let bytes_secs = (c.size / c.shared_write_bandwidth).max(shard / per_node);
    let rate_secs = c.put_rate.map_or(0.0, |r| parts_total / r);
    let storm = bytes_secs.max(rate_secs);
    let storm_rate = parts_total / bytes_secs;
    let storm_overloads = c.put_rate.is_some_and(|r| storm_rate > r);
    let direct = strategy(
        "direct to the store (all nodes at once)",
        c,
        storm,
        storm,
        c.nodes,
        storm_rate,
    );
    let staged = c.local_write_bandwidth.map(|local| {
        // Writers at once: as many as the shared bandwidth feeds at the node's rate, and no
        // more than the PUT rate allows.
        let by_bw = (c.shared_write_bandwidth / per_node).floor().max(1.0);
        let per_writer_rate = per_node / c.part_size;
        let by_rate = c
            .put_rate
            .map_or(f64::INFINITY, |r| (r / per_writer_rate).floor().max(1.0));
        let k = by_bw.min(by_rate).min(n).max(1.0);
        let waves = (n / k).ceil();
        let drain = waves * shard / per_node;
        let stall = shard / local;
        strategy(
            "staged on local NVMe, drained in staggered waves",
            c,
            stall,
            stall + drain,
            k as u32,
            k * per_writer_rate,
        )
    });
    let better = staged.as_ref().unwrap_or(&direct);
    let m = c.node_mtbf / n;
    // From a tenth to ten times the recommended interval, widened to take in the interval in
    // use, so the plot shows the waste there too.
    let (lo, hi) = c.interval.map_or(
        (better.recommended / 10.0, better.recommended * 10.0),
        |t| {
            (
                (better.recommended / 10.0).min(t / 2.0),
                (better.recommended * 10.0).max(t * 2.0),
            )
        },
    );
    let curve = (0..=60)
        .map(|i| {
            let t = lo * (hi / lo).powf(i as f64 / 60.0);
            (t, interval::waste(t, better.stall, m, c.restart))
        })
        .collect();
    CheckpointPlan {
        shard,
        job_mtbf: m,
        storm_secs: storm,
        storm_overloads,
        direct,
        staged,
        curve,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn titan() -> Checkpoint {
        Checkpoint {
            size: 350e9,
            nodes: 1024,
            node_mtbf: 5.0 * 365.0 * 86_400.0,
            restart: 600.0,
            local_write_bandwidth: Some(2e9),
            node_write_bandwidth: 1.25e9,
            shared_write_bandwidth: 2e9,
            put_rate: Some(3500.0),
            part_size: 16.0 * (1u64 << 20) as f64,
            work: 30.0 * 86_400.0,
            interval: Some(600.0),
        }
    }

    #[test]
    fn the_storm_by_hand_and_the_staggered_alternative() {
        let p = evaluate(&titan());
        // 350 GB over 2 GB/s of shared bandwidth.
        assert!((p.storm_secs - 175.0).abs() < 1e-6, "{}", p.storm_secs);
        let s = p.staged.as_ref().unwrap();
        // 342 MB per node to local NVMe at 2 GB/s.
        assert!((s.stall - 350e9 / 1024.0 / 2e9).abs() < 1e-9);
        assert!(
            s.waste < p.direct.waste / 5.0,
            "{} vs {}",
            s.waste,
            p.direct.waste
        );
        assert!(s.run_secs < p.direct.run_secs);
        assert!(s.writers_at_once >= 1 && s.writers_at_once <= 2);
        // The 10-minute interval in use is shorter than the direct storm's drain plus …
        assert!(p.direct.interval_waste.unwrap() > p.direct.waste);
        assert_eq!(p.curve.len(), 61);
    }

    #[test]
    fn a_storm_of_small_parts_overloads_the_put_rate() {
        let mut c = titan();
        c.shared_write_bandwidth = 1e12;
        c.part_size = 1e6;
        let p = evaluate(&c);
        assert!(p.storm_overloads);
        assert!(
            p.direct.warnings.iter().any(|w| w.contains("503")),
            "{:?}",
            p.direct.warnings
        );
        let s = p.staged.unwrap();
        assert!(s.put_rate_asked <= 3500.0 + 1e-6, "{}", s.put_rate_asked);
    }
}
