//! `strata plan …`: the planner's models.

use anyhow::Result;
use strata_store::duration::parse_duration;

use crate::args::{PlanCommand, PlanIntervalArgs};
use crate::output;
use crate::settings::Settings;

fn secs(flag: &str, text: &str) -> Result<f64> {
    parse_duration(text)
        .map(|d| d.as_secs_f64())
        .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

/// Seconds as people read them.
pub fn human(secs: f64) -> String {
    if secs >= 86_400.0 {
        format!("{:.1} d", secs / 86_400.0)
    } else if secs >= 3600.0 {
        format!("{:.2} h", secs / 3600.0)
    } else if secs >= 60.0 {
        format!("{:.1} min", secs / 60.0)
    } else {
        format!("{secs:.1} s")
    }
}

pub fn run(c: &PlanCommand, s: &Settings) -> Result<()> {
    match c {
        PlanCommand::Interval(a) => interval(a, s),
    }
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
        human(advice.cost_secs),
        human(advice.node_mtbf_secs),
        advice.nodes,
        human(advice.job_mtbf_secs)
    );
    println!(
        "Young  τ = √(2δM)                          = {}",
        human(advice.young_secs)
    );
    println!(
        "Daly   τ = √(2δM)(1 + ⅓√(δ/2M) + δ/18M) − δ = {}   expected waste {:.1}%",
        human(advice.daly_secs),
        advice.waste_at_daly * 100.0
    );
    if let (Some(i), Some(w)) = (advice.interval_secs, advice.waste_at_interval) {
        println!("your interval {} wastes {:.1}%", human(i), w * 100.0);
    }
    for w in &advice.warnings {
        println!("warning: {w}");
    }
    Ok(())
}
