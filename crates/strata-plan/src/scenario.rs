//! A scenario: what `strata plan SCENARIO.toml` reads, validated once into numbers.
//!
//! Every section is optional, but what is given must be whole: the data pipeline needs
//! `[dataset]`, `[accelerators]` and a source tier (`kind = "object"` or `"file"`); the
//! checkpoint model needs `[checkpoint]`; the cost model needs `[cost]`. Quantities take units
//! (see [`crate::units`]). Errors name the field: `dataset.size: "-5 GB" is negative`.
//!
//! ```toml
//! name = "resnet50 on 8 nodes"
//!
//! [dataset]
//! size = "10 TB"            # the whole dataset
//! sample_size = "114660 B"
//! layout = "shards"         # shards | raw (one object per sample)
//! shuffle = "window"        # none | window (shards + buffer) | global (sample order)
//! window = 1024             # samples shuffled together (window shuffle); default 1024
//! epochs = 10
//!
//! [accelerators]
//! nodes = 8
//! per_node = 8
//! batch = 400               # samples per accelerator and step
//! step_time = "0.224 s"     # compute time per step
//!
//! [[tier]]
//! name = "S3"
//! kind = "object"           # object | file | nvme | dram
//! read_bandwidth = "25 Gbps"        # per node
//! shared_read_bandwidth = "400 GB/s" # all nodes together (optional)
//! latency = "30 ms"                  # to first byte
//! per_request_bandwidth = "80 MB/s"  # one GET stream (optional)
//! request_rate = 5500                # GET/s the store serves per prefix (optional)
//! price_class = "s3_standard"
//!
//! [[tier]]
//! name = "local NVMe"
//! kind = "nvme"
//! read_bandwidth = "6 GB/s"
//! write_bandwidth = "3 GB/s"
//! latency = "80 us"
//! iops = 800000
//! capacity = "3.5 TB"
//!
//! [pipeline]
//! buffer = "8 GiB"          # DRAM for reads in flight and prefetched (per node)
//! concurrency = 64          # requests in flight per node
//! block_size = "8 MiB"      # request size when reading shards
//! cache = "3 TB"            # NVMe cache per node (default: the NVMe tier's capacity)
//! ```

use serde::Deserialize;

use strata_units::Quantity;

/// A field that failed validation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ScenarioError {
    /// The dotted path of the field, e.g. `dataset.size` or `tier[1].read_bandwidth`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// The error of `field`: `message` (text, or the error that says what is wrong).
pub(crate) fn err(field: impl Into<String>, message: impl std::fmt::Display) -> ScenarioError {
    ScenarioError {
        field: field.into(),
        message: message.to_string(),
    }
}

/// How samples are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Large shards (WebDataset tar, TFRecord): requests of `pipeline.block_size`.
    Shards,
    /// One object or file per sample: one request per sample.
    Raw,
}

/// The order samples are read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shuffle {
    /// In order.
    None,
    /// Shards in shuffled order, samples shuffled in a bounded window (Strata's default):
    /// the I/O stays sequential.
    Window,
    /// Every sample in random order: small random reads, the I/O wall.
    Global,
}

impl std::str::FromStr for Layout {
    type Err = ScenarioError;
    fn from_str(s: &str) -> Result<Self, ScenarioError> {
        match s {
            "shards" => Ok(Self::Shards),
            "raw" => Ok(Self::Raw),
            _ => Err(err(
                "layout",
                format!("{s:?} is not a layout: choose shards or raw"),
            )),
        }
    }
}

impl std::str::FromStr for Shuffle {
    type Err = ScenarioError;
    fn from_str(s: &str) -> Result<Self, ScenarioError> {
        match s {
            "none" => Ok(Self::None),
            "window" => Ok(Self::Window),
            "global" => Ok(Self::Global),
            _ => Err(err(
                "shuffle",
                format!("{s:?} is not a shuffle: choose none, window or global"),
            )),
        }
    }
}

/// What a tier is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TierKind {
    /// An object store (S3, GCS, Azure Blob, Ceph, MinIO, Garage).
    Object,
    /// A shared file system (NFS, EFS, Lustre, FSx).
    File,
    /// Node-local NVMe.
    Nvme,
    /// Node memory.
    Dram,
}

// ---------- the file as written ----------

#[allow(missing_docs)] // Raw* mirror the scenario file key for key; docs/planner.md documents each key.
/// A scenario file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: Option<String>,
    pub description: Option<String>,
    pub dataset: Option<RawDataset>,
    pub accelerators: Option<RawAccelerators>,
    #[serde(default)]
    pub tier: Vec<RawTier>,
    pub pipeline: Option<RawPipeline>,
    pub checkpoint: Option<RawCheckpoint>,
    pub cost: Option<crate::cost::RawCost>,
    /// Price overrides: `storage.s3_standard = 0.021` and the like (see the price book).
    pub prices: Option<toml::Table>,
}

#[allow(missing_docs)] // see RawScenario.
/// `[dataset]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDataset {
    pub size: Option<Quantity>,
    pub sample_size: Option<Quantity>,
    pub layout: Option<Layout>,
    pub shuffle: Option<Shuffle>,
    pub window: Option<f64>,
    pub epochs: Option<f64>,
}

#[allow(missing_docs)] // see RawScenario.
/// `[accelerators]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccelerators {
    pub nodes: Option<f64>,
    pub per_node: Option<f64>,
    pub batch: Option<f64>,
    pub step_time: Option<Quantity>,
    /// Accelerator utilization to size for. Default: 0.95.
    pub target_utilization: Option<f64>,
}

#[allow(missing_docs)] // see RawScenario.
/// One `[[tier]]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTier {
    pub name: Option<String>,
    pub kind: Option<TierKind>,
    pub read_bandwidth: Option<Quantity>,
    pub write_bandwidth: Option<Quantity>,
    pub shared_read_bandwidth: Option<Quantity>,
    pub shared_write_bandwidth: Option<Quantity>,
    pub latency: Option<Quantity>,
    pub per_request_bandwidth: Option<Quantity>,
    pub iops: Option<f64>,
    pub request_rate: Option<f64>,
    pub capacity: Option<Quantity>,
    pub price_class: Option<String>,
}

#[allow(missing_docs)] // see RawScenario.
/// `[pipeline]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    pub buffer: Option<Quantity>,
    pub concurrency: Option<f64>,
    pub block_size: Option<Quantity>,
    pub cache: Option<Quantity>,
}

#[allow(missing_docs)] // see RawScenario.
/// `[checkpoint]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheckpoint {
    /// The whole checkpoint (all nodes' shards together).
    pub size: Option<Quantity>,
    pub nodes: Option<f64>,
    pub node_mtbf: Option<Quantity>,
    pub restart: Option<Quantity>,
    /// Per node, to the local staging tier. Default: the NVMe tier's write bandwidth.
    pub local_write_bandwidth: Option<Quantity>,
    /// Per node, to the shared store. Default: the source tier's write bandwidth.
    pub node_write_bandwidth: Option<Quantity>,
    /// All nodes together. Default: the source tier's shared write bandwidth.
    pub shared_write_bandwidth: Option<Quantity>,
    /// PUT requests per second the store accepts. Default: the source tier's request rate.
    pub put_rate: Option<f64>,
    pub part_size: Option<Quantity>,
    /// Training work to finish (failure-free time), e.g. `30 d`.
    pub work: Option<Quantity>,
    /// The interval in use, to compare with the optimum.
    pub interval: Option<Quantity>,
}

// ---------- validated ----------

/// The dataset, validated. Bytes and counts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Dataset {
    /// Bytes of the whole dataset.
    pub size: f64,
    /// Bytes per sample (mean).
    pub sample_size: f64,
    /// How samples are stored.
    pub layout: Layout,
    /// How they are shuffled.
    pub shuffle: Shuffle,
    /// Samples shuffled together by the window shuffle (Strata's reader default: 1024).
    pub window: u32,
    /// Epochs of the run.
    pub epochs: u32,
}

/// The accelerators, validated.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Accelerators {
    /// Nodes.
    pub nodes: u32,
    /// Accelerators per node.
    pub per_node: u32,
    /// Samples per accelerator per step.
    pub batch: u32,
    /// Compute seconds per step.
    pub step_time: f64,
    /// Utilization to size for (0–1). Default: 0.95.
    pub target: f64,
}

impl Accelerators {
    /// Bytes per second one node consumes at full compute speed: the pipeline equation's
    /// demand, per_node × batch × sample size / step time.
    pub fn node_demand(&self, sample_size: f64) -> f64 {
        self.per_node as f64 * self.batch as f64 * sample_size / self.step_time
    }
}

/// A measured throughput curve (from `strata probe`): bytes/s for (request size, requests in
/// flight, random or sequential). See [`crate::tier`].
pub use crate::tier::Curve;

/// A storage tier, validated. Bandwidths are bytes/s per node unless named `shared_`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Tier {
    /// The tier's name, for reports.
    pub name: String,
    /// What it is.
    pub kind: TierKind,
    /// Read bandwidth per node, bytes/s.
    pub read_bandwidth: f64,
    /// Write bandwidth per node, bytes/s.
    pub write_bandwidth: f64,
    /// Read bandwidth of the whole tier shared by all nodes, bytes/s.
    pub shared_read_bandwidth: Option<f64>,
    /// Write bandwidth of the whole tier shared by all nodes, bytes/s.
    pub shared_write_bandwidth: Option<f64>,
    /// Seconds to first byte.
    pub latency: f64,
    /// One request's streaming rate, bytes/s. Default: the read bandwidth.
    pub per_request_bandwidth: Option<f64>,
    /// Random 4 KiB reads per second at depth.
    pub iops: Option<f64>,
    /// Requests per second the tier serves (object stores: per prefix).
    pub request_rate: Option<f64>,
    /// Bytes (per node for nvme and dram).
    pub capacity: Option<f64>,
    /// Its class in the price book.
    pub price_class: Option<String>,
    /// Measured figures that replace the parametric model (from `--calibrate`).
    pub curve: Option<Curve>,
}

/// The node's pipeline knobs, validated.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Pipeline {
    /// Bytes of DRAM for reads in flight and prefetched data, per node. Default: 4 GiB.
    pub buffer: f64,
    /// Requests in flight per node. Default: 64.
    pub concurrency: u32,
    /// Request size for shards. Default: 8 MiB.
    pub block_size: f64,
    /// NVMe cache per node. Default: the NVMe tier's capacity, or 0 without one.
    pub cache: f64,
}

/// The checkpoint section, validated.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Checkpoint {
    /// Bytes of the whole checkpoint (all nodes' shards).
    pub size: f64,
    /// Nodes saving it.
    pub nodes: u32,
    /// MTBF of one node, seconds.
    pub node_mtbf: f64,
    /// Seconds to restart after a failure.
    pub restart: f64,
    /// A node's local (NVMe) write bandwidth for staging, bytes/s.
    pub local_write_bandwidth: Option<f64>,
    /// A node's bandwidth to the shared store, bytes/s.
    pub node_write_bandwidth: f64,
    /// The shared store's write bandwidth for all nodes, bytes/s.
    pub shared_write_bandwidth: f64,
    /// PUT requests per second the store serves.
    pub put_rate: Option<f64>,
    /// Bytes per PUT (multipart part).
    pub part_size: f64,
    /// Seconds of work the job must do.
    pub work: f64,
    /// The interval in use, seconds, if any.
    pub interval: Option<f64>,
}

/// A scenario, validated: every number finite and in range.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Scenario {
    /// The scenario's name.
    pub name: String,
    /// What it describes.
    pub description: String,
    /// The training data, if any.
    pub dataset: Option<Dataset>,
    /// The accelerators, if any.
    pub accelerators: Option<Accelerators>,
    /// The storage tiers, source first.
    pub tiers: Vec<Tier>,
    /// The node's pipeline knobs.
    pub pipeline: Pipeline,
    /// The checkpoints, if any.
    pub checkpoint: Option<Checkpoint>,
    /// The stored items to price, if any.
    pub cost: Option<crate::cost::Cost>,
    /// Prices: the embedded book with the scenario's overrides.
    #[serde(skip)]
    pub prices: crate::cost::PriceBook,
}

fn req<T: Clone>(v: &Option<T>, field: &str) -> Result<T, ScenarioError> {
    v.clone().ok_or_else(|| err(field, "missing"))
}

fn size_of(q: &Option<Quantity>, field: &str) -> Result<Option<f64>, ScenarioError> {
    q.as_ref()
        .map(|q| q.bytes())
        .transpose()
        .map_err(|m| err(field, m))
}

fn rate(q: &Option<Quantity>, field: &str) -> Result<Option<f64>, ScenarioError> {
    q.as_ref()
        .map(|q| q.rate())
        .transpose()
        .map_err(|m| err(field, m))
}

fn secs(q: &Option<Quantity>, field: &str) -> Result<Option<f64>, ScenarioError> {
    q.as_ref()
        .map(|q| q.secs())
        .transpose()
        .map_err(|m| err(field, m))
}

fn positive(v: f64, field: &str) -> Result<f64, ScenarioError> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(err(field, format!("{v} must be > 0")))
    }
}

fn count(v: Option<f64>, field: &str, default: Option<u32>) -> Result<u32, ScenarioError> {
    match v {
        None => default.ok_or_else(|| err(field, "missing")),
        Some(n) if n.is_finite() && n >= 1.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => {
            Ok(n as u32)
        }
        Some(n) => Err(err(field, format!("{n} must be a whole number ≥ 1"))),
    }
}

impl Scenario {
    /// Parses and validates TOML text. `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ScenarioError> {
        let raw: RawScenario =
            toml::from_str(text).map_err(|e| err(origin, e.to_string().trim().to_string()))?;
        Self::from_raw(&raw)
    }

    /// Parses and validates TOML text, pricing with `book` (the scenario's own `[prices]`
    /// still override it).
    pub fn from_toml_with(
        text: &str,
        origin: &str,
        book: crate::cost::PriceBook,
    ) -> Result<Self, ScenarioError> {
        let raw: RawScenario =
            toml::from_str(text).map_err(|e| err(origin, e.to_string().trim().to_string()))?;
        Self::from_raw_with(&raw, book)
    }

    /// Validates a parsed scenario with the default price book.
    pub fn from_raw(raw: &RawScenario) -> Result<Self, ScenarioError> {
        Self::from_raw_with(raw, crate::cost::PriceBook::default())
    }

    /// Validates a parsed scenario, pricing with `book`.
    pub fn from_raw_with(
        raw: &RawScenario,
        book: crate::cost::PriceBook,
    ) -> Result<Self, ScenarioError> {
        let mut prices = book;
        if let Some(t) = &raw.prices {
            prices.overlay(t).map_err(|m| err("prices", m))?;
        }
        let mut tiers = Vec::new();
        for (i, t) in raw.tier.iter().enumerate() {
            tiers.push(Self::raw_tier(t, i)?);
        }
        let dataset = match &raw.dataset {
            None => None,
            Some(d) => {
                let f = |n: &str| format!("dataset.{n}");
                let size = positive(
                    size_of(&d.size, &f("size"))?.ok_or_else(|| err(f("size"), "missing"))?,
                    &f("size"),
                )?;
                let sample_size = positive(
                    size_of(&d.sample_size, &f("sample_size"))?
                        .ok_or_else(|| err(f("sample_size"), "missing"))?,
                    &f("sample_size"),
                )?;
                if sample_size > size {
                    return Err(err(
                        f("sample_size"),
                        "a sample is larger than the whole dataset",
                    ));
                }
                Some(Dataset {
                    size,
                    sample_size,
                    layout: d.layout.unwrap_or(Layout::Shards),
                    shuffle: d.shuffle.unwrap_or(Shuffle::Window),
                    window: count(d.window, &f("window"), Some(1024))?,
                    epochs: count(d.epochs, &f("epochs"), Some(1))?,
                })
            }
        };
        let accelerators = match &raw.accelerators {
            None => None,
            Some(a) => {
                let f = |n: &str| format!("accelerators.{n}");
                let target = a.target_utilization.unwrap_or(0.95);
                if !(target > 0.0 && target <= 1.0) {
                    return Err(err(
                        f("target_utilization"),
                        format!("{target} must be in (0, 1]"),
                    ));
                }
                Some(Accelerators {
                    nodes: count(a.nodes, &f("nodes"), Some(1))?,
                    per_node: count(a.per_node, &f("per_node"), Some(1))?,
                    batch: count(a.batch, &f("batch"), None)?,
                    step_time: positive(
                        secs(&a.step_time, &f("step_time"))?
                            .ok_or_else(|| err(f("step_time"), "missing"))?,
                        &f("step_time"),
                    )?,
                    target,
                })
            }
        };
        if dataset.is_some() != accelerators.is_some() {
            let missing = if dataset.is_none() {
                "dataset"
            } else {
                "accelerators"
            };
            return Err(err(
                missing,
                "missing: the data pipeline needs both [dataset] and [accelerators]",
            ));
        }
        let source = tiers
            .iter()
            .find(|t| matches!(t.kind, TierKind::Object | TierKind::File));
        if dataset.is_some() && source.is_none() {
            return Err(err(
                "tier",
                "missing: the data pipeline needs a source tier ([[tier]] with kind = \"object\" or \"file\")",
            ));
        }
        let nvme = tiers.iter().find(|t| t.kind == TierKind::Nvme);
        let p = raw.pipeline.clone().unwrap_or_default();
        let pipeline = Pipeline {
            buffer: positive(
                size_of(&p.buffer, "pipeline.buffer")?.unwrap_or(4.0 * (1u64 << 30) as f64),
                "pipeline.buffer",
            )?,
            concurrency: count(p.concurrency, "pipeline.concurrency", Some(64))?,
            block_size: positive(
                size_of(&p.block_size, "pipeline.block_size")?.unwrap_or(8.0 * (1u64 << 20) as f64),
                "pipeline.block_size",
            )?,
            cache: match size_of(&p.cache, "pipeline.cache")? {
                Some(c) => {
                    match nvme {
                        None if c > 0.0 => {
                            return Err(err(
                                "pipeline.cache",
                                "a cache needs an NVMe tier ([[tier]] with kind = \"nvme\")",
                            ));
                        }
                        Some(n) if n.capacity.is_some_and(|cap| c > cap) => {
                            return Err(err(
                                "pipeline.cache",
                                format!(
                                    "{} is more than the NVMe tier's capacity of {}",
                                    crate::units::bytes(c),
                                    crate::units::bytes(n.capacity.unwrap_or(0.0))
                                ),
                            ));
                        }
                        _ => {}
                    }
                    c
                }
                None => nvme.and_then(|n| n.capacity).unwrap_or(0.0),
            },
        };
        let checkpoint = match &raw.checkpoint {
            None => None,
            Some(c) => Some(Self::checkpoint(
                c,
                source,
                nvme,
                accelerators.as_ref().map(|a| a.nodes),
            )?),
        };
        let cost = match &raw.cost {
            None => None,
            Some(c) => Some(crate::cost::Cost::from_raw(c, &prices)?),
        };
        if dataset.is_none() && checkpoint.is_none() && cost.is_none() {
            return Err(err(
                "scenario",
                "nothing to plan: give [dataset] and [accelerators], [checkpoint] or [cost]",
            ));
        }
        Ok(Scenario {
            name: raw.name.clone().unwrap_or_else(|| "scenario".into()),
            description: raw.description.clone().unwrap_or_default(),
            dataset,
            accelerators,
            tiers,
            pipeline,
            checkpoint,
            cost,
            prices,
        })
    }

    fn raw_tier(t: &RawTier, i: usize) -> Result<Tier, ScenarioError> {
        let f = |n: &str| format!("tier[{i}].{n}");
        let kind = req(&t.kind, &f("kind"))?;
        let read = rate(&t.read_bandwidth, &f("read_bandwidth"))?
            .ok_or_else(|| err(f("read_bandwidth"), "missing"))?;
        let read = positive(read, &f("read_bandwidth"))?;
        let write = match rate(&t.write_bandwidth, &f("write_bandwidth"))? {
            Some(w) => positive(w, &f("write_bandwidth"))?,
            None => read,
        };
        let opt_pos = |v: Option<f64>, n: &str| v.map(|v| positive(v, &f(n))).transpose();
        let latency = secs(&t.latency, &f("latency"))?.unwrap_or(match kind {
            TierKind::Object => 0.03,
            TierKind::File => 0.001,
            TierKind::Nvme => 100e-6,
            TierKind::Dram => 100e-9,
        });
        Ok(Tier {
            name: t
                .name
                .clone()
                .unwrap_or_else(|| format!("{kind:?}").to_lowercase()),
            kind,
            read_bandwidth: read,
            write_bandwidth: write,
            shared_read_bandwidth: opt_pos(
                rate(&t.shared_read_bandwidth, &f("shared_read_bandwidth"))?,
                "shared_read_bandwidth",
            )?,
            shared_write_bandwidth: opt_pos(
                rate(&t.shared_write_bandwidth, &f("shared_write_bandwidth"))?,
                "shared_write_bandwidth",
            )?,
            latency,
            per_request_bandwidth: opt_pos(
                rate(&t.per_request_bandwidth, &f("per_request_bandwidth"))?,
                "per_request_bandwidth",
            )?,
            iops: opt_pos(t.iops, "iops")?,
            request_rate: opt_pos(t.request_rate, "request_rate")?,
            capacity: opt_pos(size_of(&t.capacity, &f("capacity"))?, "capacity")?,
            price_class: t.price_class.clone(),
            curve: None,
        })
    }

    fn checkpoint(
        c: &RawCheckpoint,
        source: Option<&Tier>,
        nvme: Option<&Tier>,
        nodes: Option<u32>,
    ) -> Result<Checkpoint, ScenarioError> {
        let f = |n: &str| format!("checkpoint.{n}");
        let size = positive(
            size_of(&c.size, &f("size"))?.ok_or_else(|| err(f("size"), "missing"))?,
            &f("size"),
        )?;
        let node_mtbf = positive(
            secs(&c.node_mtbf, &f("node_mtbf"))?.ok_or_else(|| err(f("node_mtbf"), "missing"))?,
            &f("node_mtbf"),
        )?;
        let node_write = match rate(&c.node_write_bandwidth, &f("node_write_bandwidth"))? {
            Some(v) => positive(v, &f("node_write_bandwidth"))?,
            None => source.map(|s| s.write_bandwidth).ok_or_else(|| {
                err(
                    f("node_write_bandwidth"),
                    "missing (and no source tier to take it from)",
                )
            })?,
        };
        let shared = match rate(&c.shared_write_bandwidth, &f("shared_write_bandwidth"))? {
            Some(v) => positive(v, &f("shared_write_bandwidth"))?,
            None => source
                .and_then(|s| s.shared_write_bandwidth)
                .ok_or_else(|| {
                    err(
                        f("shared_write_bandwidth"),
                        "missing (and the source tier has no shared_write_bandwidth)",
                    )
                })?,
        };
        let local = match rate(&c.local_write_bandwidth, &f("local_write_bandwidth"))? {
            Some(v) => Some(positive(v, &f("local_write_bandwidth"))?),
            None => nvme.map(|n| n.write_bandwidth),
        };
        let put_rate = match c.put_rate {
            Some(v) => Some(positive(v, &f("put_rate"))?),
            None => source.and_then(|s| s.request_rate),
        };
        Ok(Checkpoint {
            size,
            nodes: count(c.nodes, &f("nodes"), nodes.or(Some(1)))?,
            node_mtbf,
            restart: secs(&c.restart, &f("restart"))?.unwrap_or(0.0),
            local_write_bandwidth: local,
            node_write_bandwidth: node_write,
            shared_write_bandwidth: shared,
            put_rate,
            part_size: positive(
                size_of(&c.part_size, &f("part_size"))?.unwrap_or(16.0 * (1u64 << 20) as f64),
                &f("part_size"),
            )?,
            work: positive(
                secs(&c.work, &f("work"))?.unwrap_or(30.0 * 86_400.0),
                &f("work"),
            )?,
            interval: secs(&c.interval, &f("interval"))?
                .map(|v| positive(v, &f("interval")))
                .transpose()?,
        })
    }

    /// The source tier (the first of kind object or file).
    pub fn source(&self) -> Option<&Tier> {
        self.tiers
            .iter()
            .find(|t| matches!(t.kind, TierKind::Object | TierKind::File))
    }

    /// The first tier of `kind`.
    pub fn tier(&self, kind: TierKind) -> Option<&Tier> {
        self.tiers.iter().find(|t| t.kind == kind)
    }

    /// The first tier of `kind`, to change.
    pub fn tier_mut(&mut self, kind: TierKind) -> Option<&mut Tier> {
        self.tiers.iter_mut().find(|t| t.kind == kind)
    }

    /// The source tier, to change.
    pub fn source_mut(&mut self) -> Option<&mut Tier> {
        self.tiers
            .iter_mut()
            .find(|t| matches!(t.kind, TierKind::Object | TierKind::File))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [dataset]
        size = "1 TB"
        sample_size = "114660 B"
        [accelerators]
        nodes = 2
        per_node = 8
        batch = 400
        step_time = "0.224 s"
        [[tier]]
        kind = "object"
        read_bandwidth = "25 Gbps"
        [[tier]]
        kind = "nvme"
        read_bandwidth = "6 GB/s"
        capacity = "2 TB"
    "#;

    #[test]
    fn a_whole_scenario_validates_with_defaults() {
        let s = Scenario::from_toml(GOOD, "good.toml").unwrap();
        let d = s.dataset.as_ref().unwrap();
        assert_eq!(d.size, 1e12);
        assert_eq!(d.layout, Layout::Shards);
        assert_eq!(
            s.pipeline.cache, 2e12,
            "the cache defaults to the NVMe capacity"
        );
        assert_eq!(s.source().unwrap().read_bandwidth, 25e9 / 8.0);
        assert_eq!(s.accelerators.as_ref().unwrap().target, 0.95);
    }

    fn error_of(text: &str) -> ScenarioError {
        Scenario::from_toml(text, "bad.toml").unwrap_err()
    }

    #[test]
    fn invalid_scenarios_name_the_field() {
        let cases = [
            (GOOD.replace("\"1 TB\"", "\"-5 GB\""), "dataset.size"),
            (GOOD.replace("\"1 TB\"", "0"), "dataset.size"),
            (GOOD.replace("\"25 Gbps\"", "0"), "tier[0].read_bandwidth"),
            (
                GOOD.replace("\"25 Gbps\"", "\"fast\""),
                "tier[0].read_bandwidth",
            ),
            (
                GOOD.replace("batch = 400", "batch = -3"),
                "accelerators.batch",
            ),
            (GOOD.replace("batch = 400", ""), "accelerators.batch"),
            (GOOD.replace("kind = \"object\"", "kind = \"nvme\""), "tier"),
            (
                GOOD.replace("\"0.224 s\"", "\"0 s\""),
                "accelerators.step_time",
            ),
            (
                GOOD.replace("[accelerators]", "[accelerators]\ntarget_utilization = 1.5"),
                "accelerators.target_utilization",
            ),
            (
                GOOD.replace(
                    "capacity = \"2 TB\"",
                    "capacity = \"2 TB\"\n[pipeline]\ncache = \"3 TB\"",
                ),
                "pipeline.cache",
            ),
            (
                "[checkpoint]\nsize = \"1 GB\"".to_string(),
                "checkpoint.node_mtbf",
            ),
            ("name = \"x\"".to_string(), "scenario"),
            (GOOD.replace("[dataset]", "[dataset]\nsise = 1"), "bad.toml"),
        ];
        for (text, field) in cases {
            let e = error_of(&text);
            assert_eq!(e.field, field, "{e}");
            assert!(!e.message.is_empty());
        }
        assert!(
            error_of(
                &GOOD
                    .replace("\"-5 GB\"", "x")
                    .replace("\"1 TB\"", "\"-5 GB\"")
            )
            .to_string()
            .contains("negative")
        );
    }
}
