//! The dataset manifest: the shards, their sample counts and sizes, and totals.
//!
//! Stored at the dataset's root as `manifest.json`. A [`Manifest`] is also what shuffle plans
//! are computed from; a raw dataset (one object per sample) is described by one with a
//! single-sample "shard" per sample.

use serde::{Deserialize, Serialize};

use crate::index::ShardFormat;

/// Manifest format version.
pub const MANIFEST_VERSION: u32 = 1;
/// The most samples a dataset may have (a plan holds 8 bytes per sample in memory).
pub const MAX_SAMPLES: u64 = 1 << 32;
/// The manifest's file name at the dataset root.
pub const MANIFEST_NAME: &str = "manifest.json";

/// How samples are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Samples packed in shards, each with an index.
    Shards,
    /// One object per sample member, grouped by key (the baseline).
    Raw,
}

/// One shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// Path relative to the dataset root.
    pub path: String,
    /// Format.
    pub format: ShardFormat,
    /// Number of samples.
    pub samples: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// The object's ETag when it was indexed (`strata index`; `strata pack` leaves it out).
    /// A raw manifest's ETags spare a reader one HEAD per object; a shard whose ETag no
    /// longer matches has changed since its index was built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// The manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `"strata-dataset"`.
    pub format: String,
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// Layout.
    pub layout: Layout,
    /// The shards, in canonical order.
    pub shards: Vec<ShardInfo>,
    /// Total samples.
    pub samples: u64,
    /// Total bytes of the shards.
    pub bytes: u64,
}

impl Manifest {
    /// Reads the manifest at the root of `loc`.
    pub async fn load(loc: &strata_store::Location) -> crate::Result<Self> {
        Self::try_load(loc)
            .await?
            .ok_or_else(|| crate::DatasetError::Manifest {
                path: loc.display(MANIFEST_NAME),
                cause: "not found: no dataset here (make one with `strata pack`, or `strata \
                        index` for existing shards)"
                    .into(),
            })
    }

    /// Reads the manifest at the root of `loc`; None when there is none.
    pub async fn try_load(loc: &strata_store::Location) -> crate::Result<Option<Self>> {
        let path = loc.display(MANIFEST_NAME);
        let bytes = match loc.store.get(&loc.key(MANIFEST_NAME)).await {
            Ok(b) => b,
            Err(e) if e.kind() == strata_store::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(crate::DatasetError::Manifest {
                    path,
                    cause: e.to_string(),
                });
            }
        };
        Self::from_json(&bytes)
            .map(Some)
            .map_err(|e| crate::DatasetError::Manifest {
                path,
                cause: e.to_string(),
            })
    }

    /// A manifest over `shards`, totals computed.
    pub fn new(layout: Layout, shards: Vec<ShardInfo>) -> Self {
        Self {
            format: "strata-dataset".into(),
            version: MANIFEST_VERSION,
            layout,
            samples: shards.iter().map(|s| s.samples).sum(),
            bytes: shards.iter().map(|s| s.bytes).sum(),
            shards,
        }
    }

    /// A manifest of tar shards with `counts[i]` samples of `sample_bytes` bytes each, named
    /// `shard-000000.tar`, ...: a dataset's shape without its bytes, for plans, tests and
    /// benchmarks (a plan depends on the counts alone).
    pub fn synthetic(counts: &[u64], sample_bytes: u64) -> Self {
        Self::new(
            Layout::Shards,
            counts
                .iter()
                .enumerate()
                .map(|(i, &c)| ShardInfo {
                    path: format!("shard-{i:06}.tar"),
                    format: crate::index::ShardFormat::Tar,
                    samples: c,
                    bytes: c * sample_bytes,
                    etag: None,
                })
                .collect(),
        )
    }

    /// Serialized form (pretty JSON).
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a manifest serializes");
        v.push(b'\n');
        v
    }

    /// Parses and checks a manifest: format, version, totals that add up, safe paths.
    pub fn from_json(bytes: &[u8]) -> Result<Self, crate::error::FormatError> {
        use crate::error::FormatError as F;
        let m: Manifest = serde_json::from_slice(bytes)?;
        if m.format != "strata-dataset" {
            return Err(F::Inconsistent(format!(
                "format is {:?}, not \"strata-dataset\"",
                m.format
            )));
        }
        if m.version != MANIFEST_VERSION {
            return Err(F::Version {
                what: "manifest",
                found: m.version,
                reads: MANIFEST_VERSION,
            });
        }
        let sum = |f: fn(&ShardInfo) -> u64| {
            m.shards
                .iter()
                .try_fold(0u64, |acc, s| acc.checked_add(f(s)))
                .ok_or_else(|| F::Inconsistent("the shards' totals overflow".into()))
        };
        let samples = sum(|s| s.samples)?;
        let bytes = sum(|s| s.bytes)?;
        if samples > MAX_SAMPLES {
            return Err(F::Inconsistent(format!(
                "{samples} samples is more than this build plans for ({MAX_SAMPLES})"
            )));
        }
        if samples != m.samples || bytes != m.bytes {
            return Err(F::Inconsistent(format!(
                "totals disagree with the shards: {} samples and {} bytes listed, {samples} and {bytes} summed",
                m.samples, m.bytes
            )));
        }
        for s in &m.shards {
            if s.path.is_empty()
                || s.path.starts_with('/')
                || s.path.split('/').any(|c| c == ".." || c == ".")
            {
                return Err(F::Inconsistent(format!(
                    "shard path {:?} is not a relative path",
                    s.path
                )));
            }
        }
        Ok(m)
    }

    /// The index of the sample at global position `n` in canonical order: (shard, sample).
    /// Linear in shards; plans use [`crate::plan`]'s prefix sums instead.
    pub fn locate(&self, mut n: u64) -> Option<(usize, u64)> {
        for (i, s) in self.shards.iter().enumerate() {
            if n < s.samples {
                return Some((i, n));
            }
            n -= s.samples;
        }
        None
    }
}
