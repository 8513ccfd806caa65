//! `strata plan` and `strata probe` as a user runs them: scenarios, personas, calibration
//! from a real probe (a directory, and an S3 server behind the link emulator), plots, and
//! bad input.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, S3Server};

fn strata(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .env_remove("STRATA_CONFIG")
        .output()
        .expect("run strata")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&common::ok(out)).expect("JSON output")
}

/// The two probes measure throughput: run one at a time, so the directory probe's reads and
/// writes do not take the cores the object probe's GETs need (the object probe measured 0.36
/// of the link's cap beside it on a loaded 2-core machine).
static PROBES: std::sync::Mutex<()> = std::sync::Mutex::new(());

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/plan/resnet50-8-nodes.toml"
);

/// Parses an SVG document with an XML parser: well-formed, and returns the text it shows.
fn svg_text(path: &Path) -> String {
    let body = std::fs::read_to_string(path).unwrap();
    let mut r = quick_xml::Reader::from_str(&body);
    let mut text = String::new();
    let mut root = None;
    loop {
        match r
            .read_event()
            .unwrap_or_else(|e| panic!("{}: not XML: {e}", path.display()))
        {
            quick_xml::events::Event::Start(e) if root.is_none() => {
                root = Some(String::from_utf8_lossy(e.name().as_ref()).into_owned())
            }
            quick_xml::events::Event::Text(t) => {
                text.push_str(&String::from_utf8_lossy(&t));
                text.push('\n');
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(root.as_deref(), Some("svg"), "{}", path.display());
    text
}

#[test]
fn a_scenario_plans_every_section_and_writes_the_plots() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("plots");
    let out = strata(&["plan", EXAMPLE, "--svg", svg.to_str().unwrap()]);
    let text = common::ok(&out);
    for want in [
        "demand per node D",
        "bottleneck",
        "I/O wall",
        "balanced tiering",
        "Young",
        "Daly",
        "storm",
        "monthly cost",
        "recommendation:",
        "the workbench's questions",
        "what limits training? Storage.",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    for f in [
        "sankey.svg",
        "waterfall.svg",
        "saturation.svg",
        "young-daly.svg",
    ] {
        let t = svg_text(&svg.join(f));
        assert!(!t.trim().is_empty(), "{f} has no text");
    }
    assert!(svg_text(&svg.join("young-daly.svg")).contains("Daly"));
    // JSON: the numbers behind the text, and flags that move them the right way.
    let base = json(&strata(&["--json", "plan", EXAMPLE]));
    let u = |v: &serde_json::Value| v["pipeline"]["utilization"].as_f64().unwrap();
    assert!(u(&base) > 0.0 && u(&base) <= 1.0);
    let slow = json(&strata(&[
        "--json",
        "plan",
        EXAMPLE,
        "--download",
        "1Gbps",
        "--cache-size",
        "0",
    ]));
    assert!(
        u(&slow) < u(&base),
        "a slower link must predict less: {} vs {}",
        u(&slow),
        u(&base)
    );
    assert_eq!(
        slow["pipeline"]["bottleneck"].as_str().unwrap(),
        "source (S3)"
    );
    let fast = json(&strata(&[
        "--json",
        "plan",
        EXAMPLE,
        "--download",
        "1Gbps",
        "--cache-size",
        "1.4TB",
        "--epochs",
        "20",
        "--nodes",
        "1",
    ]));
    assert!(
        u(&fast) > u(&slow),
        "a cache must help a slow link over many epochs"
    );
    assert!(base["cost"]["total"].as_f64().unwrap() > 0.0);
    assert!(base["checkpoint"]["direct"]["daly"].as_f64().unwrap() > 0.0);
    // The workbench's other knobs are flags too, so its ledger's command plans the same.
    let random = json(&strata(&[
        "--json",
        "plan",
        EXAMPLE,
        "--layout",
        "raw",
        "--shuffle",
        "global",
    ]));
    assert!(
        u(&random) < u(&base) * 0.5,
        "{} vs {}",
        u(&random),
        u(&base)
    );
    let ck = |v: &serde_json::Value, f: &str| v["checkpoint"][f].as_f64().unwrap();
    let fragile = json(&strata(&[
        "--json",
        "plan",
        EXAMPLE,
        "--node-mtbf",
        "2d",
        "--write-bandwidth",
        "5GB/s",
        "--checkpoint-interval",
        "10min",
    ]));
    assert!(ck(&fragile, "job_mtbf") < ck(&base, "job_mtbf"));
    assert!(ck(&fragile, "storm_secs") > ck(&base, "storm_secs"));
    assert_eq!(
        fragile["scenario"]["checkpoint"]["interval"].as_f64(),
        Some(600.0)
    );
    let lessons = base["lessons"].as_array().unwrap();
    assert_eq!(lessons.len(), 3);
    for l in lessons {
        let choices: Vec<&str> = l["choices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert!(choices.contains(&l["answer"].as_str().unwrap()), "{l}");
    }
}

#[test]
fn every_persona_answers() {
    for p in [
        "cloud-titan",
        "edge-guardian",
        "mobile-nomad",
        "tiny-pioneer",
    ] {
        let text = common::ok(&strata(&["plan", "--persona", p]));
        assert!(
            text.contains("the crisis in numbers") && text.contains("answer"),
            "{p}:\n{text}"
        );
        let v = json(&strata(&["--json", "plan", "--persona", p]));
        assert!(!v["answer"].as_array().unwrap().is_empty());
        // The persona's file round-trips: printed, edited, read back.
        let file = common::ok(&strata(&["plan", "--persona", p, "--print-scenario"]));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.toml");
        std::fs::write(&f, &file).unwrap();
        common::ok(&strata(&["plan", "--persona", p, f.to_str().unwrap()]));
    }
    let titan = json(&strata(&["--json", "plan", "--persona", "cloud-titan"]));
    let storm = titan["plan"]["checkpoint"]["storm_secs"].as_f64().unwrap();
    assert!((storm - 350.0).abs() < 1.0, "350 GB over 1 GB/s: {storm}");
    let out = strata(&["plan", "--persona", "cloud-titan", "--node-mtbf", "2d"]);
    assert!(
        !out.status.success(),
        "a persona's flags must not be lost silently"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--print-scenario"));
    let out = strata(&["plan", "--persona", "captain-planet"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cloud-titan"));
}

#[test]
fn bad_scenarios_fail_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(EXAMPLE).unwrap();
    for (from, to, field) in [
        (
            "size = \"1.4 TB\"            # ten ImageNets",
            "size = \"-5 GB\"",
            "dataset.size",
        ),
        (
            "read_bandwidth = \"25 Gbps\"",
            "read_bandwidth = 0",
            "tier[0].read_bandwidth",
        ),
        ("batch = 400", "batch = 0", "accelerators.batch"),
        (
            "class = \"s3_standard\"\nobject_size = \"256 MiB\"",
            "class = \"s3_gold\"\nobject_size = \"256 MiB\"",
            "cost.data[0].class",
        ),
        ("kind = \"object\"", "kind = \"tape\"", "bad.toml"),
    ] {
        assert!(example.contains(from), "{from}");
        let f = dir.path().join("bad.toml");
        std::fs::write(&f, example.replacen(from, to, 1)).unwrap();
        let out = strata(&["plan", f.to_str().unwrap()]);
        assert!(!out.status.success(), "{field}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(field), "{field} not named in: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = strata(&["plan", "/nonexistent/scenario.toml"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/scenario.toml"));
    let out = strata(&["plan", EXAMPLE, "--download", "fast"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--download"));
    let out = strata(&["plan", EXAMPLE, "--layout", "tape"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--layout") && err.contains("shards or raw"),
        "{err}"
    );
    let out = strata(&["plan", EXAMPLE, "--node-mtbf=0d"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--node-mtbf: must be > 0"), "{err}");
    let out = strata(&["plan", EXAMPLE, "--calibrate", "/nonexistent/probe.json"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/probe.json"));
}

#[test]
fn a_directory_probe_calibrates_the_plan() {
    let _one = PROBES.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe.json");
    let svg = dir.path().join("iops.svg");
    let out = strata(&[
        "probe",
        dir.path().to_str().unwrap(),
        "--quick",
        "--size",
        "32MiB",
        "--out",
        probe.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let table = common::ok(&out);
    assert!(table.contains("sequential/random"), "{table}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&probe).unwrap()).unwrap();
    let points = report["points"].as_array().unwrap();
    assert!(points.len() >= 16, "{}", points.len());
    assert!(
        points
            .iter()
            .all(|p| p["bytes_per_sec"].as_f64().unwrap() > 0.0)
    );
    assert!(svg_text(&svg).contains("IOPS"));
    // Only the report and the plot are left: the test file is gone.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    let seq = report["sequential_read"].as_f64().unwrap();
    let cal = format!("local NVMe={}", probe.display());
    let plan = json(&strata(&["--json", "plan", EXAMPLE, "--calibrate", &cal]));
    let nvme = plan["scenario"]["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "local NVMe")
        .unwrap()
        .clone();
    assert_eq!(
        nvme["read_bandwidth"].as_f64().unwrap(),
        seq,
        "the probe's figure replaces the datasheet's"
    );
    let out = strata(&[
        "plan",
        EXAMPLE,
        "--calibrate",
        &format!("tape={}", probe.display()),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tier named \"tape\""));
}

#[test]
fn an_object_store_probe_measures_the_link_and_cleans_up() {
    let _one = PROBES.lock().unwrap_or_else(|e| e.into_inner());
    let server = S3Server::start();
    let emu = LinkEmulator::start(server.addr(), LinkProfile::s3());
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("s3.json");
    let url = format!("s3://{}/probe/", server.bucket());
    let out = common::command(
        &server,
        &emu.endpoint(),
        &["probe", &url, "--quick", "--out", probe.to_str().unwrap()],
    )
    .output()
    .unwrap();
    let table = common::ok(&out);
    assert!(table.contains("object"), "{table}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&probe).unwrap()).unwrap();
    let cap = LinkProfile::s3().cap_mib_per_sec() * (1 << 20) as f64;
    let best = report["sequential_read"].as_f64().unwrap();
    assert!(
        best > 0.5 * cap && best < 1.1 * cap,
        "best GET rate {best} against the cap {cap}"
    );
    // One GET at a time of a small object is latency-bound (30 ms to first byte).
    let p50 = report["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["op"] == "read" && p["depth"] == 1)
        .unwrap()["p50"]
        .as_f64()
        .unwrap();
    assert!(p50 > 0.025, "first-byte latency {p50}");
    // The probe's objects are gone.
    let ls = common::ok(&common::run(&server, &["ls", "-r", &url]));
    assert!(ls.trim().is_empty(), "left behind: {ls}");
    // Its figures calibrate a plan's source tier.
    let plan = json(&strata(&[
        "--json",
        "plan",
        EXAMPLE,
        "--calibrate",
        probe.to_str().unwrap(),
        "--nodes",
        "1",
    ]));
    let src = plan["scenario"]["tiers"][0]["read_bandwidth"]
        .as_f64()
        .unwrap();
    assert_eq!(src, best);
    assert!(
        plan["pipeline"]["utilization"].as_f64().unwrap() < 0.5,
        "a 160 MiB/s link cannot feed 8 H100s"
    );
}

/// `bench plan --strict --json` that fails prints one JSON document (the report, `passed`
/// false) and exits 1 with the message on stderr: before, a second document (the error)
/// followed the report on stdout.
#[test]
fn a_strict_bench_plan_that_fails_prints_one_json_document() {
    let out = strata(&[
        "--json",
        "bench",
        "plan",
        "--workloads",
        "resnet50",
        "--layout",
        "raw",
        "--dataset-size",
        "8MiB",
        "--probe-secs",
        "0.3",
        "--strict",
        "--tolerance",
        "0",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&text)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(docs.len(), 1, "{text}");
    assert_eq!(docs[0]["passed"], false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("outside ±0% of the measurement"), "{err}");
    // A negative tolerance is refused before anything runs.
    let out = strata(&["bench", "plan", "--tolerance=-5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tolerance -5"));
}
