//! Shuffle plans: the order in which one epoch visits every sample, as a pure function of
//! (seed, epoch, manifest, plan settings). Golden tests pin the exact orders: a change here is a
//! change of promise and must come with a new [`PLAN_VERSION`].
//!
//! Three modes:
//! - **Sequential**: canonical order (shards in manifest order, samples in shard order).
//! - **Window** (the default): the shard order is shuffled, the shards are dealt to
//!   `streams` interleaved streams (round robin), and each stream cuts its sample sequence into
//!   consecutive windows of `window` samples and permutes each window. Reads stay sequential:
//!   a window's samples are read as one run, and no sample is needed before its window starts
//!   or after it ends. That bound is why this is not WebDataset's shuffle buffer: there a
//!   sample may wait in the buffer for many buffer lengths (the stay is geometric), so the
//!   blocks holding the stragglers stay in use long after they were read, which for a block
//!   cache multiplies the working set (measured: 8 MiB blocks of 114 KB samples held ~35
//!   blocks for a 585-sample buffer; a window holds 9).
//! - **Global**: a full permutation of all samples (Fisher–Yates), read with single-sample
//!   ranged reads.
//!
//! Streams are the world-layout part of the plan: with `streams` equal to the number of nodes
//! (or ranks) of the first run, rank `r` of `R = streams` reads only stream `r`'s shards, so
//! nodes do not all fetch every shard. The plan does not depend on the current world size,
//! which is what keeps a resume state valid when it changes ([`crate::partition`]).

use serde::{Deserialize, Serialize};

use crate::manifest::Manifest;
use crate::rng::Rng;

/// Version of the plan algorithm; part of every generator's seed.
pub const PLAN_VERSION: u64 = 1;

/// Shuffle mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShuffleMode {
    /// Canonical order.
    Sequential,
    /// Shard order shuffled, samples shuffled within a window.
    Window,
    /// Full permutation.
    Global,
}

/// What a plan depends on besides the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSpec {
    /// Seed. Default: 0.
    pub seed: u64,
    /// Epoch.
    pub epoch: u64,
    /// Mode. Default: window.
    pub mode: ShuffleMode,
    /// Shuffle buffer in samples (window mode). Default: 1,024.
    pub window: u64,
    /// Interleaved streams (window mode). Default: 1.
    pub streams: u32,
}

impl Default for PlanSpec {
    fn default() -> Self {
        Self {
            seed: 0,
            epoch: 0,
            mode: ShuffleMode::Window,
            window: 1024,
            streams: 1,
        }
    }
}

/// How well a plan mixes the samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ShuffleQuality {
    /// Mean distance between a sample's plan position and its canonical position, over the
    /// mean for a uniformly random permutation (N/3): 0 for sequential, about 1 when shuffled.
    pub displacement: f64,
    /// Mean number of distinct shards per batch of 256 consecutive samples, over what a full
    /// shuffle gives (the expected count of distinct shards in 256 draws): how decorrelated a
    /// training batch is. 1.0 is a full shuffle's mixing.
    pub batch_diversity: f64,
}

/// One epoch's order.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Global sample ids (canonical numbering) in visiting order.
    pub order: Vec<u64>,
    /// Prefix sums of samples per shard: shard `i` holds ids `starts[i]..starts[i + 1]`.
    pub starts: Vec<u64>,
    /// The spec it came from.
    pub spec: PlanSpec,
}

impl Plan {
    /// Computes the plan of `spec` over `manifest`.
    pub fn new(manifest: &Manifest, spec: PlanSpec) -> Self {
        let mut starts = Vec::with_capacity(manifest.shards.len() + 1);
        let mut acc = 0u64;
        starts.push(0);
        for s in &manifest.shards {
            acc += s.samples;
            starts.push(acc);
        }
        let n = acc;
        let order = match spec.mode {
            ShuffleMode::Sequential => (0..n).collect(),
            ShuffleMode::Global => {
                let mut v: Vec<u64> = (0..n).collect();
                Rng::new(&[PLAN_VERSION, spec.seed, spec.epoch, 3]).shuffle(&mut v);
                v
            }
            ShuffleMode::Window => window_order(&starts, spec),
        };
        Self {
            order,
            starts,
            spec,
        }
    }

    /// Number of samples.
    pub fn len(&self) -> u64 {
        self.order.len() as u64
    }

    /// Whether the dataset is empty.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The (shard, sample in shard) of a global sample id.
    pub fn locate(&self, id: u64) -> (usize, u64) {
        let shard = self.starts.partition_point(|&s| s <= id) - 1;
        (shard, id - self.starts[shard])
    }

    /// The shuffle-quality figures of this plan.
    pub fn quality(&self) -> ShuffleQuality {
        let n = self.order.len();
        if n < 2 {
            return ShuffleQuality {
                displacement: 0.0,
                batch_diversity: 1.0,
            };
        }
        let disp: f64 = self
            .order
            .iter()
            .enumerate()
            .map(|(i, &id)| (i as f64 - id as f64).abs())
            .sum::<f64>()
            / n as f64;
        let shards = (self.starts.len() - 1) as f64;
        let b = 256.min(n);
        // Expected distinct shards among b samples drawn without replacement (a full
        // shuffle's batch): sum over shards of 1 - C(N - n_i, b) / C(N, b).
        let expected: f64 = self
            .starts
            .windows(2)
            .map(|w| {
                let ni = (w[1] - w[0]) as f64;
                let nf = n as f64;
                let mut none = 1.0f64;
                for k in 0..b {
                    let k = k as f64;
                    none *= ((nf - ni - k) / (nf - k)).max(0.0);
                    if none == 0.0 {
                        break;
                    }
                }
                1.0 - none
            })
            .sum::<f64>()
            .clamp(1.0, shards.max(1.0));
        let mut seen = std::collections::HashSet::new();
        let mut total = 0.0f64;
        let mut batches = 0.0f64;
        for chunk in self.order.chunks(b) {
            if chunk.len() < b {
                break;
            }
            seen.clear();
            seen.extend(chunk.iter().map(|&id| self.locate(id).0));
            total += seen.len() as f64;
            batches += 1.0;
        }
        ShuffleQuality {
            displacement: disp / (n as f64 / 3.0),
            batch_diversity: (total / batches.max(1.0)) / expected,
        }
    }
}

fn window_order(starts: &[u64], spec: PlanSpec) -> Vec<u64> {
    let shard_count = starts.len() - 1;
    let mut shards: Vec<usize> = (0..shard_count).collect();
    Rng::new(&[PLAN_VERSION, spec.seed, spec.epoch, 1]).shuffle(&mut shards);
    let streams = (spec.streams.max(1) as usize).min(shard_count.max(1));
    let window = spec.window.max(1) as usize;
    let mut outs: Vec<Vec<u64>> = Vec::with_capacity(streams);
    for k in 0..streams {
        let mut rng = Rng::new(&[PLAN_VERSION, spec.seed, spec.epoch, 2, k as u64]);
        let mut out: Vec<u64> = shards
            .iter()
            .skip(k)
            .step_by(streams)
            .flat_map(|&s| starts[s]..starts[s + 1])
            .collect();
        for chunk in out.chunks_mut(window) {
            rng.shuffle(chunk);
        }
        outs.push(out);
    }
    // Round robin over the streams, skipping the ones that ran out.
    let total: usize = outs.iter().map(Vec::len).sum();
    let mut order = Vec::with_capacity(total);
    let mut at = vec![0usize; outs.len()];
    while order.len() < total {
        for (k, out) in outs.iter().enumerate() {
            if at[k] < out.len() {
                order.push(out[at[k]]);
                at[k] += 1;
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn manifest(counts: &[u64]) -> Manifest {
        Manifest::synthetic(counts, 1000)
    }

    fn is_permutation(order: &[u64], n: u64) -> bool {
        let mut v = order.to_vec();
        v.sort_unstable();
        v == (0..n).collect::<Vec<_>>()
    }

    #[test]
    fn every_mode_is_a_permutation_and_pure() {
        let m = manifest(&[10, 7, 0, 13, 5]);
        for mode in [
            ShuffleMode::Sequential,
            ShuffleMode::Window,
            ShuffleMode::Global,
        ] {
            for streams in [1, 2, 3, 9] {
                let spec = PlanSpec {
                    seed: 42,
                    epoch: 3,
                    mode,
                    window: 4,
                    streams,
                };
                let a = Plan::new(&m, spec);
                assert!(is_permutation(&a.order, 35), "{mode:?} {streams}");
                assert_eq!(a.order, Plan::new(&m, spec).order);
            }
        }
    }

    #[test]
    fn epochs_and_seeds_differ() {
        let m = manifest(&[100; 10]);
        let p = |seed, epoch| {
            Plan::new(
                &m,
                PlanSpec {
                    seed,
                    epoch,
                    ..Default::default()
                },
            )
            .order
        };
        assert_ne!(p(0, 0), p(0, 1));
        assert_ne!(p(0, 0), p(1, 0));
    }

    #[test]
    fn window_bounds_how_far_a_sample_moves_within_its_stream() {
        // Each window of 16 read positions is emitted as a permutation of itself.
        let m = manifest(&[50; 20]);
        let spec = PlanSpec {
            window: 16,
            ..Default::default()
        };
        let plan = Plan::new(&m, spec);
        // With one stream, the sample emitted at position i was read at position ≤ i + window.
        let mut shards: Vec<usize> = (0..20).collect();
        Rng::new(&[PLAN_VERSION, 0, 0, 1]).shuffle(&mut shards);
        let read_pos: std::collections::HashMap<u64, usize> = shards
            .iter()
            .flat_map(|&s| (s as u64 * 50)..(s as u64 * 50 + 50))
            .enumerate()
            .map(|(i, id)| (id, i))
            .collect();
        for (i, id) in plan.order.iter().enumerate() {
            assert_eq!(read_pos[id] / 16, i / 16, "sample {id} at {i}");
        }
    }

    #[test]
    fn quality_orders_the_modes() {
        let m = manifest(&[1000; 100]);
        let q = |mode, window| {
            Plan::new(
                &m,
                PlanSpec {
                    mode,
                    window,
                    ..Default::default()
                },
            )
            .quality()
        };
        let seq = q(ShuffleMode::Sequential, 1);
        let small = q(ShuffleMode::Window, 64);
        let big = q(ShuffleMode::Window, 8192);
        let global = q(ShuffleMode::Global, 1);
        assert!(
            seq.displacement < 0.01 && seq.batch_diversity < 0.05,
            "{seq:?}"
        );
        assert!(
            small.batch_diversity < big.batch_diversity,
            "{small:?} {big:?}"
        );
        assert!(
            global.displacement > 0.95 && global.batch_diversity > 0.95,
            "{global:?}"
        );
    }
}
