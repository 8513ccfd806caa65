//! The planner's plots, as standalone SVG: the data-flow Sankey, IOPS versus throughput, the
//! Young–Daly curve with its optimum, the I/O waterfall and the pipeline saturation plot.

use crate::checkpoint::CheckpointPlan;
use crate::pipeline::PipelinePlan;
use crate::probe::ProbeReport;
use crate::scenario::{Scenario, TierKind};
use crate::sizing::{self, Knobs};
use crate::svg::{COLORS, LineChart, Marker, Series, Svg};
use crate::units;

fn mb(v: f64) -> String {
    units::sig(v)
}

/// A percentage tick: as few decimals as tell the ticks apart (0.25%, 1.5%, 40%).
fn pct(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

/// One flow of a Sankey diagram: from column node `from` to `to`, `value` bytes/s.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Index of the source node.
    pub from: usize,
    /// Index of the target node.
    pub to: usize,
    /// Bytes/s along the link.
    pub value: f64,
}

/// A left-to-right Sankey: `nodes` are (label, column); flows join them with bands whose
/// width is proportional to their value.
pub fn sankey(title: &str, nodes: &[(String, usize)], flows: &[Flow]) -> String {
    let (w, h) = (760.0, 360.0);
    let mut svg = Svg::new(w, h);
    svg.text(w / 2.0, 22.0, title, 15.0, "middle", "#111");
    let cols = nodes.iter().map(|n| n.1).max().unwrap_or(0) + 1;
    let colx = |c: usize| 40.0 + c as f64 * (w - 160.0) / (cols.max(2) - 1) as f64;
    let through = |i: usize| {
        let inn: f64 = flows.iter().filter(|f| f.to == i).map(|f| f.value).sum();
        let out: f64 = flows.iter().filter(|f| f.from == i).map(|f| f.value).sum();
        inn.max(out)
    };
    let max = nodes
        .iter()
        .enumerate()
        .map(|(i, _)| through(i))
        .fold(0.0, f64::max)
        .max(1e-9);
    let scale = 200.0 / max;
    // Stack the nodes of each column.
    let mut pos = vec![(0.0, 0.0); nodes.len()];
    for c in 0..cols {
        let mut y = 60.0;
        for (i, n) in nodes.iter().enumerate().filter(|(_, n)| n.1 == c) {
            let hgt = (through(i) * scale).max(2.0);
            pos[i] = (colx(c), y);
            svg.rect(
                colx(c),
                y,
                14.0,
                hgt,
                "#444",
                Some(&format!("{}: {}", n.0, units::rate(through(i)))),
            );
            svg.text(colx(c) + 18.0, y + 12.0, &n.0, 12.0, "start", "#111");
            svg.text(
                colx(c) + 18.0,
                y + 27.0,
                &units::rate(through(i)),
                11.0,
                "start",
                "#555",
            );
            y += hgt + 40.0;
        }
    }
    let mut out_off = vec![0.0; nodes.len()];
    let mut in_off = vec![0.0; nodes.len()];
    for (k, f) in flows.iter().enumerate() {
        if f.value <= 0.0 {
            continue;
        }
        let t = f.value * scale;
        let (x0, y0) = (pos[f.from].0 + 14.0, pos[f.from].1 + out_off[f.from]);
        let (x1, y1) = (pos[f.to].0, pos[f.to].1 + in_off[f.to]);
        out_off[f.from] += t;
        in_off[f.to] += t;
        let mx = (x0 + x1) / 2.0;
        let d = format!(
            "M{x0:.1},{y0:.1} C{mx:.1},{y0:.1} {mx:.1},{y1:.1} {x1:.1},{y1:.1} L{x1:.1},{:.1} C{mx:.1},{:.1} {mx:.1},{:.1} {x0:.1},{:.1} Z",
            y1 + t,
            y1 + t,
            y0 + t,
            y0 + t
        );
        let label = format!(
            "{} → {}: {}",
            nodes[f.from].0,
            nodes[f.to].0,
            units::rate(f.value)
        );
        svg.path(&d, COLORS[k % COLORS.len()], 0.45, Some(&label));
    }
    svg.finish()
}

/// The data flow of a planned pipeline, averaged over the run, for one node.
pub fn pipeline_sankey(s: &Scenario, p: &PipelinePlan) -> String {
    let source = s.source().map_or("source".to_string(), |t| t.name.clone());
    let delivered = p.node_bytes_per_sec;
    let hit: f64 = p
        .epochs
        .iter()
        .map(|e| e.hit_ratio * p.node_epoch_bytes)
        .sum::<f64>()
        / p.epochs
            .iter()
            .map(|_| p.node_epoch_bytes)
            .sum::<f64>()
            .max(1e-9);
    let mut nodes = vec![(source, 0)];
    let mut flows = Vec::new();
    let nvme = s.tier(TierKind::Nvme).filter(|_| s.pipeline.cache > 0.0);
    let dram_name = s
        .tier(TierKind::Dram)
        .map_or("DRAM buffer".to_string(), |t| t.name.clone());
    match nvme {
        Some(t) => {
            nodes.push((format!("{} (cache)", t.name), 1));
            nodes.push((dram_name, 2));
            nodes.push(("accelerators".into(), 3));
            flows.push(Flow {
                from: 0,
                to: 1,
                value: delivered * (1.0 - hit),
            });
            flows.push(Flow {
                from: 1,
                to: 2,
                value: delivered,
            });
            flows.push(Flow {
                from: 2,
                to: 3,
                value: delivered,
            });
        }
        None => {
            nodes.push((dram_name, 1));
            nodes.push(("accelerators".into(), 2));
            flows.push(Flow {
                from: 0,
                to: 1,
                value: delivered,
            });
            flows.push(Flow {
                from: 1,
                to: 2,
                value: delivered,
            });
        }
    }
    sankey(
        &format!(
            "Data flow per node ({}; {:.0}% from the cache)",
            s.name,
            hit * 100.0
        ),
        &nodes,
        &flows,
    )
}

/// IOPS versus throughput of a probe: one series per (op, order, depth), over block sizes.
pub fn iops_vs_throughput(r: &ProbeReport) -> String {
    let mut keys: Vec<(String, bool, u32)> = r
        .points
        .iter()
        .map(|p| (p.op.clone(), p.random, p.depth))
        .collect();
    keys.sort();
    keys.dedup();
    let series = keys
        .iter()
        .map(|(op, random, depth)| {
            let mut pts: Vec<_> = r
                .points
                .iter()
                .filter(|p| &p.op == op && p.random == *random && p.depth == *depth)
                .collect();
            pts.sort_by_key(|p| p.block);
            let order = match (r.kind, random) {
                (crate::probe::ProbeKind::Object, _) => "GET",
                (_, true) => "random",
                (_, false) => "seq",
            };
            let mut s = Series::new(
                format!("{op} {order} qd{depth}"),
                pts.iter()
                    .map(|p| (p.iops, p.bytes_per_sec / 1e6))
                    .collect(),
            );
            s.dots = true;
            s.dashed = op == "write";
            s.labels = pts
                .iter()
                .map(|p| {
                    format!(
                        "{} × {}: {:.0} IOPS, {:.1} MB/s, p99 {}",
                        units::bytes(p.block as f64),
                        p.depth,
                        p.iops,
                        p.bytes_per_sec / 1e6,
                        units::secs(p.p99)
                    )
                })
                .collect();
            s
        })
        .collect();
    LineChart {
        title: format!("IOPS versus throughput: {}", r.target),
        x_label: "requests per second (IOPS)".into(),
        y_label: "MB/s".into(),
        log_x: true,
        log_y: true,
        series,
        x_fmt: Some(mb),
        ..Default::default()
    }
    .render()
}

/// Waste against the checkpoint interval, with Young's and Daly's intervals and the one in use.
pub fn young_daly(c: &CheckpointPlan, interval: Option<f64>) -> String {
    let best = c.staged.as_ref().unwrap_or(&c.direct);
    let mut markers = vec![Marker {
        x: Some(best.daly),
        y: None,
        label: format!("Daly {}", units::secs(best.daly)),
    }];
    if best.recommended > best.daly * 1.05 {
        markers.push(Marker {
            x: Some(best.recommended),
            y: None,
            label: format!("drain-bound {}", units::secs(best.recommended)),
        });
    }
    if (best.young - best.daly).abs() / best.daly > 0.05 {
        markers.push(Marker {
            x: Some(best.young),
            y: None,
            label: format!("Young {}", units::secs(best.young)),
        });
    }
    if let Some(t) = interval {
        markers.push(Marker {
            x: Some(t),
            y: None,
            label: format!("yours {}", units::secs(t)),
        });
    }
    LineChart {
        // The strategy's first word (staged, direct): its whole name does not fit the title.
        title: format!(
            "Young–Daly: expected waste against the interval ({} saves)",
            best.name.split_whitespace().next().unwrap_or(best.name)
        ),
        x_label: "checkpoint interval (seconds)".into(),
        y_label: "expected waste (%)".into(),
        log_x: true,
        series: std::iter::once(Series::new(
            "waste",
            c.curve.iter().map(|&(t, w)| (t, w * 100.0)).collect(),
        ))
        .chain(interval.zip(best.interval_waste).map(|(t, w)| Series {
            dots: true,
            labels: vec![format!("every {}: waste {:.2}%", units::secs(t), w * 100.0)],
            ..Series::new("your interval", vec![(t, w * 100.0)])
        }))
        .collect(),
        markers,
        y_fmt: Some(pct),
        ..Default::default()
    }
    .render()
}

/// The I/O waterfall: one bar per row, wait (red) then compute (green).
pub fn waterfall(title: &str, rows: &[(String, f64, f64)]) -> String {
    let (w, row_h) = (760.0, 22.0);
    let h = 70.0 + row_h * rows.len().max(1) as f64;
    let mut svg = Svg::new(w, h);
    svg.text(w / 2.0, 22.0, title, 15.0, "middle", "#111");
    let max = rows
        .iter()
        .map(|r| r.1 + r.2)
        .fold(0.0, f64::max)
        .max(1e-12);
    let (l, r) = (140.0, 110.0);
    let scale = (w - l - r) / max;
    for (i, (label, wait, compute)) in rows.iter().enumerate() {
        let y = 40.0 + i as f64 * row_h;
        svg.text(l - 8.0, y + 14.0, label, 11.0, "end", "#222");
        svg.rect(
            l,
            y + 3.0,
            wait * scale,
            row_h - 6.0,
            "#D55E00",
            Some(&format!("{label}: I/O wait {}", units::secs(*wait))),
        );
        svg.rect(
            l + wait * scale,
            y + 3.0,
            compute * scale,
            row_h - 6.0,
            "#009E73",
            Some(&format!("{label}: compute {}", units::secs(*compute))),
        );
        let share = wait / (wait + compute).max(1e-12) * 100.0;
        svg.text(
            l + (wait + compute) * scale + 6.0,
            y + 14.0,
            &format!("wait {share:.0}%"),
            11.0,
            "start",
            "#555",
        );
    }
    let ly = h - 14.0;
    svg.rect(l, ly - 10.0, 12.0, 10.0, "#D55E00", None);
    svg.text(l + 16.0, ly, "I/O wait", 11.0, "start", "#222");
    svg.rect(l + 90.0, ly - 10.0, 12.0, 10.0, "#009E73", None);
    svg.text(l + 106.0, ly, "compute", 11.0, "start", "#222");
    svg.finish()
}

/// The planned waterfall: per epoch, wait versus compute.
pub fn pipeline_waterfall(s: &Scenario, p: &PipelinePlan) -> String {
    let rows: Vec<(String, f64, f64)> = p
        .epochs
        .iter()
        .take(12)
        .map(|e| {
            (
                format!("epoch {}", e.epoch),
                (e.secs - p.compute_secs_per_epoch).max(0.0),
                p.compute_secs_per_epoch,
            )
        })
        .collect();
    waterfall(&format!("I/O waterfall per epoch ({})", s.name), &rows)
}

/// Utilization against the download bandwidth for a few cache sizes, with the target and
/// the node's current link.
pub fn saturation(s: &Scenario) -> String {
    let Some(src) = s.source() else {
        return Svg::new(10.0, 10.0).finish();
    };
    let d = s.dataset.as_ref().map_or(1.0, |d| d.size);
    let cap = s
        .tier(TierKind::Nvme)
        .map(|t| t.capacity.unwrap_or(d).min(d))
        .unwrap_or(0.0);
    let mut fracs = vec![0.0];
    if cap > 0.0 {
        fracs.extend([0.25, 0.5, 1.0].iter().map(|f| f * cap / d));
    }
    let link = src.read_bandwidth;
    let series = fracs
        .iter()
        .map(|&f| {
            let pts = (0..=48)
                .map(|i| {
                    let bw = link * 10f64.powf(-2.0 + 3.0 * i as f64 / 48.0);
                    let u = sizing::utilization(
                        s,
                        Knobs {
                            download: Some(bw),
                            cache: Some(f * d),
                            ..Default::default()
                        },
                    );
                    (bw / 1e6, u * 100.0)
                })
                .collect();
            Series::new(format!("cache {:.0}% of data", f * 100.0), pts)
        })
        .collect();
    let target = s.accelerators.as_ref().map_or(0.95, |a| a.target);
    LineChart {
        title: format!("Pipeline saturation: {}", s.name),
        x_label: "download bandwidth per node (MB/s)".into(),
        y_label: "accelerator utilization (%)".into(),
        log_x: true,
        series,
        markers: vec![
            Marker {
                x: None,
                y: Some(target * 100.0),
                label: format!("target {:.0}%", target * 100.0),
            },
            Marker {
                x: Some(link / 1e6),
                y: None,
                label: "this link".into(),
            },
        ],
        y_range: Some((0.0, 105.0)),
        x_fmt: Some(mb),
        y_fmt: Some(pct),
        ..Default::default()
    }
    .render()
}
