//! The pages' API; every figure comes from the Rust planner, the probe or the node's own
//! counters.
//!
//! - `GET /api/stats`: the node's counters now (the dashboard differentiates them into
//!   rates): per tier hits, misses, bytes, used and capacity; bytes fetched upstream;
//!   prefetch queue; response memory; the jobs' reports.
//! - `GET /api/scenario`: the workbench's default scenario (TOML).
//! - `POST /api/plan` `{scenario?: TOML, overrides?: {...}}`: the plan (JSON, with the
//!   three lessons answered: [`strata_plan::lessons`]), its text, its SVG plots and the
//!   scenario's TOML. Without a scenario, the workbench's default. `overrides` are
//!   [`strata_plan::Overrides`], the same knobs as `strata plan`'s flags.
//! - `GET /api/personas`, `GET /api/personas/NAME`: a persona's crisis, answer and, for the
//!   personas that are scenarios, its scenario text and plan with plots.
//! - `POST /api/probe`: a quick probe of the cache directory's device (a few seconds), as
//!   `strata probe --quick` reports it, with its plot.
//! - `GET /api/jobs`, `POST /api/jobs/NAME`: jobs' reports (see [`crate::jobs`]).

use std::sync::Arc;

use http::StatusCode;
use http_body_util::BodyExt;
use strata_plan::{Overrides, Scenario};

use crate::http::{ApiError, Req, Resp, json};
use crate::jobs::{JobReport, valid_job_name};
use crate::node::Node;

/// The workbench's scenario until the user loads another: resnet50 on 8 nodes from S3.
pub const DEFAULT_SCENARIO: &str = include_str!("../../../examples/plan/resnet50-8-nodes.toml");

/// Request bodies larger than this are refused (a scenario is a few KiB).
const MAX_BODY: usize = 1 << 20;

/// The body of a request, at most [`MAX_BODY`] bytes.
pub async fn body(req: Req) -> Result<bytes::Bytes, ApiError> {
    let limited = http_body_util::Limited::new(req.into_body(), MAX_BODY);
    limited.collect().await.map(|c| c.to_bytes()).map_err(|e| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "TooLarge",
            format!("request body: {e}"),
        )
    })
}

/// `/api/stats`.
pub fn stats(node: &Node) -> Resp {
    let s = node.cache.stats();
    let tier = |snap: Option<strata_cache::stats::TierSnapshot>, usage: Option<(u64, u64)>| {
        snap.map(|t| {
            serde_json::json!({
                "hits": t.hits, "misses": t.misses, "bytes_read": t.bytes_read,
                "bytes_written": t.bytes_written, "evictions": t.evictions,
                "corrupt": t.corrupt, "pass_through": t.pass_through,
                "used": usage.map(|u| u.0), "capacity": usage.map(|u| u.1),
            })
        })
    };
    let (used, total) = node.response_blocks();
    let block = node.cache.geometry().block_size;
    let jobs = jobs_json(node);
    json(
        StatusCode::OK,
        &serde_json::json!({
            "uptime_secs": node.started.elapsed().as_secs_f64(),
            "dram": tier(s.dram, node.cache.dram().map(|d| (d.usage().0, d.capacity()))),
            "nvme": tier(s.nvme, node.cache.nvme().map(|n| (n.usage().0, n.capacity()))),
            "upstream": {
                "bytes": s.fetched_bytes, "demand_fetches": s.demand_fetches,
                "prefetch_fetches": s.prefetch_fetches, "shared_fetches": s.shared_fetches,
            },
            "prefetch_queue": node.prefetch_in_flight.load(std::sync::atomic::Ordering::Relaxed),
            "response_memory": {"used": used as u64 * block, "capacity": total as u64 * block},
            "jobs": jobs,
        }),
    )
}

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct PlanRequest {
    scenario: Option<String>,
    overrides: Overrides,
}

fn plan_json(s: &Scenario, text: &str) -> serde_json::Value {
    let p = strata_plan::plan(s);
    let svgs: serde_json::Map<String, serde_json::Value> = p
        .svgs()
        .into_iter()
        .map(|(name, svg)| (name.trim_end_matches(".svg").to_string(), svg.into()))
        .collect();
    serde_json::json!({"plan": p, "text": p.to_text(), "svgs": svgs, "scenario_text": text})
}

/// `POST /api/plan`.
pub async fn plan(req: Req) -> Result<Resp, ApiError> {
    let b = body(req).await?;
    let r: PlanRequest = if b.is_empty() {
        PlanRequest::default()
    } else {
        serde_json::from_slice(&b).map_err(|e| ApiError::bad_request(format!("request: {e}")))?
    };
    let text = r.scenario.unwrap_or_else(|| DEFAULT_SCENARIO.to_string());
    let mut s =
        Scenario::from_toml(&text, "scenario").map_err(|e| ApiError::bad_request(e.to_string()))?;
    r.overrides
        .apply(&mut s)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    // The planner is pure but not free (the sizing bisects): off the I/O threads.
    let v = tokio::task::spawn_blocking(move || plan_json(&s, &text))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal", e.to_string()))?;
    Ok(json(StatusCode::OK, &v))
}

/// `GET /api/personas`.
pub fn personas() -> Resp {
    json(
        StatusCode::OK,
        &serde_json::json!({"personas": strata_plan::personas::NAMES}),
    )
}

/// `GET /api/personas/NAME`.
pub async fn persona(name: &str) -> Result<Resp, ApiError> {
    let key = name.to_string();
    let v = tokio::task::spawn_blocking(move || {
        let p = strata_plan::personas::run(&key)
            .map_err(|m| ApiError::not_found("NoSuchPersona", m.to_string()))?;
        let svgs: serde_json::Map<String, serde_json::Value> = p
            .plan
            .as_ref()
            .map(|pl| {
                pl.svgs()
                    .into_iter()
                    .map(|(n, s)| (n.trim_end_matches(".svg").to_string(), s.into()))
                    .collect()
            })
            .unwrap_or_default();
        let scenario = p
            .plan
            .is_some()
            .then(|| strata_plan::personas::scenario_text(&key))
            .flatten();
        Ok::<_, ApiError>(serde_json::json!({
            "persona": p, "text": p.to_text(), "svgs": svgs, "scenario": scenario,
        }))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal", e.to_string()))??;
    Ok(json(StatusCode::OK, &v))
}

/// `POST /api/probe`: one at a time; a second request while one runs gets 409.
pub async fn probe(node: &Arc<Node>) -> Result<Resp, ApiError> {
    static RUNNING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
    let _one = RUNNING.try_acquire().map_err(|_| {
        ApiError::new(
            StatusCode::CONFLICT,
            "ProbeRunning",
            "a probe is already running",
        )
    })?;
    let dir = node.config.cache.dir.join("probe");
    std::fs::create_dir_all(&dir).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Io",
            format!("{}: {e}", dir.display()),
        )
    })?;
    let p = strata_plan::probe::device::DeviceProbe::new(&dir, true);
    let report = tokio::task::spawn_blocking(move || p.run())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal", e.to_string()))?
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ProbeFailed",
                e.to_string(),
            )
        })?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"report": report, "text": report.to_table(), "svg": report.svg()}),
    ))
}

/// The jobs reported lately, as the pages show them.
fn jobs_json(node: &Node) -> Vec<serde_json::Value> {
    node.jobs
        .list()
        .into_iter()
        .map(|(name, age, r)| serde_json::json!({"name": name, "age_secs": age, "report": r}))
        .collect()
}

/// `GET /api/jobs`.
pub fn jobs(node: &Node) -> Resp {
    let v = jobs_json(node);
    json(StatusCode::OK, &serde_json::json!({"jobs": v}))
}

/// `POST /api/jobs/NAME`.
pub async fn report(node: &Node, name: &str, req: Req) -> Result<Resp, ApiError> {
    if !valid_job_name(name) {
        return Err(ApiError::bad_request(format!(
            "job name {name:?}: use 1–64 of A-Z a-z 0-9 - _ ."
        )));
    }
    let b = body(req).await?;
    let r: JobReport =
        serde_json::from_slice(&b).map_err(|e| ApiError::bad_request(format!("report: {e}")))?;
    r.validate()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    node.jobs.report(name, r);
    Ok(json(StatusCode::OK, &serde_json::json!({"ok": true})))
}
