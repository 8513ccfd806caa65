//! Property tests of the planner: monotone in bandwidth and cache, costs additive and
//! non-negative, invalid scenarios refused with the field named.

use proptest::prelude::*;
use strata_plan::scenario::Scenario;
use strata_plan::sizing::{Knobs, utilization};

#[allow(clippy::too_many_arguments)] // One argument per figure the property tests vary.
fn scenario(
    size_gb: f64,
    sample_kb: f64,
    nodes: u32,
    per_node: u32,
    step: f64,
    link_gbps: f64,
    latency_ms: f64,
    raw: bool,
    epochs: u32,
) -> Scenario {
    let text = format!(
        r#"
        [dataset]
        size = "{size_gb} GB"
        sample_size = "{sample_kb} KB"
        layout = "{}"
        epochs = {epochs}
        [accelerators]
        nodes = {nodes}
        per_node = {per_node}
        batch = 64
        step_time = {step}
        [[tier]]
        kind = "object"
        read_bandwidth = "{link_gbps} Gbps"
        latency = "{latency_ms} ms"
        per_request_bandwidth = "80 MB/s"
        [[tier]]
        kind = "nvme"
        read_bandwidth = "3 GB/s"
        write_bandwidth = "1.5 GB/s"
        iops = 500000
        capacity = "{size_gb} GB"
        [[tier]]
        kind = "dram"
        read_bandwidth = "10 GB/s"
        "#,
        if raw { "raw" } else { "shards" }
    );
    Scenario::from_toml(&text, "prop").unwrap()
}

prop_compose! {
    fn any_scenario()(
        size_gb in 1.0f64..5000.0,
        sample_kb in 1.0f64..200_000.0,
        nodes in 1u32..64,
        per_node in 1u32..9,
        step in 0.001f64..2.0,
        link in 0.1f64..400.0,
        lat in 0.05f64..200.0,
        raw in any::<bool>(),
        epochs in 1u32..6,
    ) -> Scenario {
        let sample_kb = sample_kb.min(size_gb * 1e6);
        scenario(size_gb, sample_kb, nodes, per_node, step, link, lat, raw, epochs)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn more_bandwidth_never_lowers_utilization(s in any_scenario(), k in 1.0f64..20.0) {
        let link = s.source().unwrap().read_bandwidth;
        let u0 = utilization(&s, Knobs::default());
        let u1 = utilization(&s, Knobs { download: Some(link * k), ..Default::default() });
        prop_assert!(u1 >= u0 - 1e-9, "download ×{k}: {u0} → {u1}");
        let nv = utilization(&s, Knobs { nvme_bandwidth: Some(3e9 * k), ..Default::default() });
        prop_assert!(nv >= u0 - 1e-9, "nvme ×{k}: {u0} → {nv}");
        prop_assert!((0.0..=1.0 + 1e-9).contains(&u0));
    }

    #[test]
    fn more_cache_or_buffer_never_lowers_utilization(s in any_scenario(), a in 0.0f64..1.0, b in 0.0f64..1.0) {
        let size = s.dataset.as_ref().unwrap().size;
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let u_lo = utilization(&s, Knobs { cache: Some(lo * size), ..Default::default() });
        let u_hi = utilization(&s, Knobs { cache: Some(hi * size), ..Default::default() });
        prop_assert!(u_hi >= u_lo - 1e-9, "cache {lo} → {hi}: {u_lo} → {u_hi}");
        // A bigger buffer allows more requests in flight: the epochs never take longer once
        // the pipeline is full. (The first batch may come a hair later, as it shares the link
        // with more requests, so the whole-run figure is not held to it; nor is the last
        // epoch alone: a faster download leaves a disk that writes slower than it less time
        // to store the misses, so later epochs may hit less, as in the engine.)
        let epochs = |b: f64| {
            strata_plan::pipeline::evaluate(&Knobs { buffer: Some(b), ..Default::default() }.apply(&s))
                .unwrap()
                .epochs
                .iter()
                .map(|e| e.secs)
                .sum::<f64>()
        };
        let (small, big) = (epochs(1e6 + lo * 1e9), epochs(1e6 + hi * 1e9));
        prop_assert!(big <= small * (1.0 + 1e-9), "buffer: epochs {small} s → {big} s");
    }

    #[test]
    fn costs_are_additive_and_non_negative(
        sizes in proptest::collection::vec(0.0f64..1e15, 1..5),
        inflow in 0.0f64..1e14,
        months in 1u32..36,
        gets in 0.0f64..1e9,
    ) {
        let classes = ["s3_standard", "s3_standard_ia", "s3_glacier", "efs_standard", "fsx_scratch_2"];
        let mut text = format!("[cost]\nmonths = {months}\n");
        for (i, sz) in sizes.iter().enumerate() {
            text += &format!(
                "[[cost.data]]\nname = \"d{i}\"\nsize = {sz}\ninflow = {}\nclass = \"{}\"\ngets_per_month = {gets}\ntransitions = [{{ after = \"30 d\", class = \"s3_standard_ia\" }}, {{ after = \"90 d\", class = \"s3_deep_archive\" }}]\nexpire = \"400 d\"\n",
                inflow + 1.0,
                classes[i % classes.len()]
            );
        }
        let s = Scenario::from_toml(&text, "prop").unwrap();
        let c = s.cost.as_ref().unwrap();
        let whole = strata_plan::cost::evaluate(c, &s.prices);
        let mut parts = 0.0;
        for d in &c.data {
            let one = strata_plan::cost::Cost { months: c.months, data: vec![d.clone()] };
            let p = strata_plan::cost::evaluate(&one, &s.prices);
            prop_assert!(p.total >= 0.0);
            for m in &p.items[0].months {
                prop_assert!(m.storage >= 0.0 && m.requests >= 0.0 && m.transitions >= 0.0 && m.total >= 0.0);
            }
            parts += p.total;
        }
        prop_assert!((whole.total - parts).abs() <= 1e-9 * whole.total.max(1.0));
        let monthly: f64 = whole.monthly.iter().sum();
        prop_assert!((monthly - whole.total).abs() <= 1e-9 * whole.total.max(1.0));
    }

    #[test]
    fn garbage_never_panics_and_errors_name_a_field(text in "[a-z_\\[\\]=\" .0-9\n-]{0,200}") {
        if let Err(e) = Scenario::from_toml(&text, "fuzz.toml") {
            prop_assert!(!e.field.is_empty() && !e.message.is_empty());
        }
    }
}
