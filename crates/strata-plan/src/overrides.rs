//! Changes to a scenario from outside its file: `strata plan`'s flags and the workbench's
//! sliders. Validated here once, for both; an error names the knob (`download`, `nodes`, …).

use serde::Deserialize;

use crate::scenario::{Layout, Scenario, ScenarioError, Shuffle, TierKind, err};
use crate::sizing::Knobs;

/// Knobs over a scenario; every one optional. Quantities are text with units (`25 Gbps`,
/// `8 GiB`, `30 min`), as in a scenario file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Overrides {
    /// Nodes of accelerators (the checkpoint section keeps its own count).
    pub nodes: Option<u32>,
    /// Epochs of the dataset.
    pub epochs: Option<u32>,
    /// The source tier's per-node read bandwidth.
    pub download: Option<String>,
    /// The NVMe tier's read bandwidth.
    pub nvme_bandwidth: Option<String>,
    /// The prefetch buffer (DRAM for reads in flight).
    pub buffer: Option<String>,
    /// The NVMe cache per node.
    pub cache_size: Option<String>,
    /// How samples are stored.
    pub layout: Option<Layout>,
    /// How they are shuffled.
    pub shuffle: Option<Shuffle>,
    /// The checkpoint interval in use.
    pub checkpoint_interval: Option<String>,
    /// The store's shared write bandwidth for checkpoints.
    pub write_bandwidth: Option<String>,
    /// One node's mean time between failures.
    pub node_mtbf: Option<String>,
}

fn positive(
    field: &str,
    v: Option<&str>,
    parse: fn(&str) -> Result<f64, strata_units::UnitError>,
) -> Result<Option<f64>, ScenarioError> {
    v.map(|t| {
        let x = parse(t).map_err(|m| err(field, m))?;
        if x.is_finite() && x > 0.0 {
            Ok(x)
        } else {
            Err(err(field, "must be > 0"))
        }
    })
    .transpose()
}

impl Overrides {
    /// Whether no knob is set.
    pub fn is_empty(&self) -> bool {
        // Destructured, so a new knob cannot be forgotten here.
        let Self {
            nodes,
            epochs,
            download,
            nvme_bandwidth,
            buffer,
            cache_size,
            layout,
            shuffle,
            checkpoint_interval,
            write_bandwidth,
            node_mtbf,
        } = self;
        nodes.is_none()
            && epochs.is_none()
            && download.is_none()
            && nvme_bandwidth.is_none()
            && buffer.is_none()
            && cache_size.is_none()
            && layout.is_none()
            && shuffle.is_none()
            && checkpoint_interval.is_none()
            && write_bandwidth.is_none()
            && node_mtbf.is_none()
    }

    /// Applies the knobs to `s`, or names the first knob that does not fit it.
    pub fn apply(&self, s: &mut Scenario) -> Result<(), ScenarioError> {
        let size = strata_units::parse_size_f64;
        let knobs = Knobs {
            download: positive(
                "download",
                self.download.as_deref(),
                strata_units::parse_rate,
            )?,
            nvme_bandwidth: positive(
                "nvme-bandwidth",
                self.nvme_bandwidth.as_deref(),
                strata_units::parse_rate,
            )?,
            buffer: positive("buffer", self.buffer.as_deref(), size)?,
            cache: self
                .cache_size
                .as_deref()
                .map(|t| {
                    let c = size(t).map_err(|m| err("cache-size", m))?;
                    if c.is_finite() && c >= 0.0 {
                        Ok(c)
                    } else {
                        Err(err("cache-size", "must be ≥ 0"))
                    }
                })
                .transpose()?,
        };
        if knobs.download.is_some() && s.source().is_none() {
            return Err(err("download", "the scenario has no source tier"));
        }
        if knobs.nvme_bandwidth.is_some() && s.tier(TierKind::Nvme).is_none() {
            return Err(err("nvme-bandwidth", "the scenario has no NVMe tier"));
        }
        if knobs.cache.is_some_and(|c| c > 0.0) && s.tier(TierKind::Nvme).is_none() {
            return Err(err("cache-size", "the scenario has no NVMe tier"));
        }
        *s = knobs.apply(s);
        if let Some(n) = self.nodes {
            if n == 0 {
                return Err(err("nodes", "must be ≥ 1"));
            }
            s.accelerators
                .as_mut()
                .ok_or_else(|| err("nodes", "the scenario has no [accelerators]"))?
                .nodes = n;
        }
        if self.epochs.is_some() || self.layout.is_some() || self.shuffle.is_some() {
            let (field, ds) = match (self.epochs, self.layout, self.shuffle) {
                (Some(_), _, _) => ("epochs", s.dataset.as_mut()),
                (_, Some(_), _) => ("layout", s.dataset.as_mut()),
                _ => ("shuffle", s.dataset.as_mut()),
            };
            let ds = ds.ok_or_else(|| err(field, "the scenario has no [dataset]"))?;
            if let Some(e) = self.epochs {
                if e == 0 {
                    return Err(err("epochs", "must be ≥ 1"));
                }
                ds.epochs = e;
            }
            if let Some(l) = self.layout {
                ds.layout = l;
            }
            if let Some(sh) = self.shuffle {
                ds.shuffle = sh;
            }
        }
        let interval = positive(
            "checkpoint-interval",
            self.checkpoint_interval.as_deref(),
            strata_units::parse_secs,
        )?;
        let write = positive(
            "write-bandwidth",
            self.write_bandwidth.as_deref(),
            strata_units::parse_rate,
        )?;
        let mtbf = positive(
            "node-mtbf",
            self.node_mtbf.as_deref(),
            strata_units::parse_secs,
        )?;
        if interval.is_some() || write.is_some() || mtbf.is_some() {
            let field = if interval.is_some() {
                "checkpoint-interval"
            } else if write.is_some() {
                "write-bandwidth"
            } else {
                "node-mtbf"
            };
            let c = s
                .checkpoint
                .as_mut()
                .ok_or_else(|| err(field, "the scenario has no [checkpoint]"))?;
            if let Some(i) = interval {
                c.interval = Some(i);
            }
            if let Some(w) = write {
                c.shared_write_bandwidth = w;
            }
            if let Some(m) = mtbf {
                c.node_mtbf = m;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../examples/plan/resnet50-8-nodes.toml");

    fn scenario() -> Scenario {
        Scenario::from_toml(EXAMPLE, "example").expect("valid")
    }

    #[test]
    fn knobs_change_the_plan() {
        let mut s = scenario();
        let o = Overrides {
            download: Some("1 Gbps".into()),
            nodes: Some(2),
            layout: Some(Layout::Raw),
            write_bandwidth: Some("5 GB/s".into()),
            ..Default::default()
        };
        o.apply(&mut s).expect("applies");
        assert_eq!(s.accelerators.as_ref().unwrap().nodes, 2);
        assert_eq!(s.dataset.as_ref().unwrap().layout, Layout::Raw);
        assert_eq!(s.source().unwrap().read_bandwidth, 1e9 / 8.0);
        assert_eq!(s.checkpoint.as_ref().unwrap().shared_write_bandwidth, 5e9);
    }

    #[test]
    fn bad_knobs_name_themselves() {
        for (o, field) in [
            (
                Overrides {
                    download: Some("fast".into()),
                    ..Default::default()
                },
                "download",
            ),
            (
                Overrides {
                    buffer: Some("0 B".into()),
                    ..Default::default()
                },
                "buffer",
            ),
            (
                Overrides {
                    nodes: Some(0),
                    ..Default::default()
                },
                "nodes",
            ),
            (
                Overrides {
                    node_mtbf: Some("-3 d".into()),
                    ..Default::default()
                },
                "node-mtbf",
            ),
        ] {
            let e = o.apply(&mut scenario()).expect_err(field);
            assert_eq!(e.field, field, "{e}");
        }
    }
}
