//! The checkpoint interval against failures.
//!
//! With a checkpoint cost δ (the time a checkpoint stalls training, seconds) and a mean time
//! between failures M of the whole job (seconds; a node MTBF divided by the node count):
//!
//! - Young (1974): τ = √(2δM).
//! - Daly (2006), a higher-order estimate: τ = √(2δM) · (1 + ⅓·√(δ/2M) + δ/(18M)) − δ when
//!   δ < 2M, else τ = M.
//! - Expected waste (fraction of wall time lost), first order: δ/τ (checkpointing) +
//!   (τ + δ)/(2M) (rework after a failure, half an interval on average) + R/M (restart).

use crate::error::PlanError;
use serde::Serialize;

/// Young's interval, seconds.
pub fn young(cost: f64, mtbf: f64) -> f64 {
    (2.0 * cost * mtbf).sqrt()
}

/// Daly's interval, seconds.
pub fn daly(cost: f64, mtbf: f64) -> f64 {
    if cost >= 2.0 * mtbf {
        return mtbf;
    }
    let y = young(cost, mtbf);
    y * (1.0 + (cost / (2.0 * mtbf)).sqrt() / 3.0 + cost / (18.0 * mtbf)) - cost
}

/// Expected fraction of wall time lost at interval `tau` (first-order model above).
pub fn waste(tau: f64, cost: f64, mtbf: f64, restart: f64) -> f64 {
    (cost / tau + (tau + cost) / (2.0 * mtbf) + restart / mtbf).min(1.0)
}

/// Advice for a job.
#[derive(Debug, Clone, Serialize)]
pub struct IntervalAdvice {
    /// Checkpoint cost δ (stall), seconds.
    pub cost_secs: f64,
    /// MTBF of one node, seconds.
    pub node_mtbf_secs: f64,
    /// Nodes in the job.
    pub nodes: u64,
    /// MTBF of the job (node MTBF / nodes), seconds.
    pub job_mtbf_secs: f64,
    /// Young's interval √(2δM), seconds.
    pub young_secs: f64,
    /// Daly's interval, seconds.
    pub daly_secs: f64,
    /// Expected waste at Daly's interval (fraction).
    pub waste_at_daly: f64,
    /// The interval in use, if given, and its expected waste.
    pub interval_secs: Option<f64>,
    /// Expected waste at the interval in use (fraction), if given.
    pub waste_at_interval: Option<f64>,
    /// The measured drain time (save to durable in the store), if known.
    pub drain_secs: Option<f64>,
    /// Warnings: the interval is shorter than the drain (the drain cannot keep up), the
    /// cost is not small against the MTBF (the models lose accuracy), and so on.
    pub warnings: Vec<String>,
}

/// Computes the advice. `restart` is the time to restart after a failure (seconds).
pub fn advise(
    cost: f64,
    node_mtbf: f64,
    nodes: u64,
    restart: f64,
    interval: Option<f64>,
    drain: Option<f64>,
) -> Result<IntervalAdvice, PlanError> {
    if !(cost.is_finite() && cost > 0.0) {
        return Err(PlanError::Invalid(format!(
            "checkpoint cost {cost} s must be > 0"
        )));
    }
    if !(node_mtbf.is_finite() && node_mtbf > 0.0) {
        return Err(PlanError::Invalid(format!(
            "MTBF {node_mtbf} s must be > 0"
        )));
    }
    if nodes == 0 {
        return Err(PlanError::Invalid("nodes must be ≥ 1".into()));
    }
    let m = node_mtbf / nodes as f64;
    let y = young(cost, m);
    let d = daly(cost, m);
    let mut warnings = Vec::new();
    if cost >= m / 10.0 {
        warnings.push(format!(
            "the checkpoint cost ({cost:.1} s) is not small against the job MTBF ({m:.0} s): the job spends much of its time checkpointing and recovering; make checkpoints cheaper (snapshot mode, smaller state) or failures rarer"
        ));
    }
    let shortest = interval.unwrap_or(d);
    if let Some(dr) = drain
        && dr > shortest
    {
        warnings.push(format!(
            "the drain takes {dr:.1} s, longer than the interval of {shortest:.1} s: checkpoints queue up faster than they reach the store (raise the drain bandwidth or lengthen the interval)"
        ));
    }
    Ok(IntervalAdvice {
        cost_secs: cost,
        node_mtbf_secs: node_mtbf,
        nodes,
        job_mtbf_secs: m,
        young_secs: y,
        daly_secs: d,
        waste_at_daly: waste(d, cost, m, restart),
        interval_secs: interval,
        waste_at_interval: interval.map(|t| waste(t, cost, m, restart)),
        drain_secs: drain,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn young_and_daly_match_hand_computed_values() {
        // δ = 30 s, node MTBF 4 h, 1024 nodes: M = 14 400 / 1024 = 14.0625 s.
        let m = 4.0 * 3600.0 / 1024.0;
        assert!((young(30.0, m) - (2.0f64 * 30.0 * m).sqrt()).abs() < 1e-9);
        // δ ≥ 2M: Daly says checkpoint every M.
        assert_eq!(daly(30.0, m), m);
        // δ = 60 s, M = 24 h: √(2·60·86400) = 3220 s; Daly adds the correction.
        let y = young(60.0, 86_400.0);
        assert!((y - 3219.94).abs() < 0.01, "{y}");
        let d = daly(60.0, 86_400.0);
        let want = y * (1.0 + (60.0f64 / 172_800.0).sqrt() / 3.0 + 60.0 / (18.0 * 86_400.0)) - 60.0;
        assert!((d - want).abs() < 1e-9 && d < y, "{d}");
    }

    #[test]
    fn waste_is_lowest_near_the_optimum() {
        let (c, m) = (60.0, 86_400.0);
        let d = daly(c, m);
        let at = waste(d, c, m, 0.0);
        assert!(waste(d / 4.0, c, m, 0.0) > at);
        assert!(waste(d * 4.0, c, m, 0.0) > at);
    }

    #[test]
    fn advice_warns_when_the_drain_cannot_keep_up() {
        let a = advise(10.0, 86_400.0 * 30.0, 100, 60.0, Some(300.0), Some(400.0)).unwrap();
        assert!(
            a.warnings.iter().any(|w| w.contains("drain")),
            "{:?}",
            a.warnings
        );
        let a = advise(10.0, 86_400.0 * 30.0, 100, 60.0, Some(600.0), Some(400.0)).unwrap();
        assert!(a.warnings.is_empty(), "{:?}", a.warnings);
        assert!(advise(0.0, 1.0, 1, 0.0, None, None).is_err());
        assert!(advise(1.0, 1.0, 0, 0.0, None, None).is_err());
    }
}
