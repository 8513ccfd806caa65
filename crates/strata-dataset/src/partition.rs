//! Partitioning an epoch's plan across ranks and workers, and the resume state.
//!
//! Rank `r` of `R` takes global positions `c + r, c + r + R, c + r + 2R, …` of the plan, where
//! `c` is the number of positions consumed before this run started (0 for a fresh epoch);
//! worker `w` of `K` within a rank takes every `K`-th of the rank's samples, starting at `w`
//! (the order a PyTorch DataLoader hands them back in). Every rank gets the same count:
//! - **pad** (the default): `ceil((N - c) / R)` each; positions past the end wrap around to
//!   the start of the epoch's order, so a few samples are seen twice;
//! - **drop-last**: `floor((N - c) / R)` each; up to `R - 1` samples are left out.
//!
//! Because the ranks advance in lockstep (each step takes one sample, or one batch, from every
//! rank), the samples consumed are always a prefix of the plan, so the resume state is
//! `(seed, epoch, consumed)` and holds for any world size: a run with another `R` takes the
//! rest of the same order.

use crate::error::DatasetError;
use serde::{Deserialize, Serialize};

/// What to do with the samples left when they do not divide among the ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Remainder {
    /// Repeat samples from the start of the order. Default.
    #[default]
    Pad,
    /// Leave them out.
    DropLast,
}

/// Where this reader sits in the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct World {
    /// Number of ranks (≥ 1).
    pub ranks: u32,
    /// This rank (`< ranks`).
    pub rank: u32,
    /// Workers per rank (≥ 1).
    pub workers: u32,
    /// This worker (`< workers`).
    pub worker: u32,
}

impl World {
    /// One rank, one worker.
    pub const SINGLE: World = World {
        ranks: 1,
        rank: 0,
        workers: 1,
        worker: 0,
    };

    /// Checks the numbers.
    pub fn validate(&self) -> crate::Result<()> {
        if self.ranks == 0 || self.workers == 0 {
            return Err(DatasetError::Invalid(
                "ranks and workers must be at least 1".into(),
            ));
        }
        if self.rank >= self.ranks || self.worker >= self.workers {
            return Err(DatasetError::Invalid(format!(
                "rank {} of {} / worker {} of {} is out of range",
                self.rank, self.ranks, self.worker, self.workers
            )));
        }
        Ok(())
    }
}

/// Where an epoch stands: enough to resume it exactly, with any world size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ResumeState {
    /// The plan's seed.
    pub seed: u64,
    /// The epoch.
    pub epoch: u64,
    /// Plan positions consumed, counted over all ranks.
    pub consumed: u64,
}

/// The positions one worker of one rank reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    n: u64,
    start: u64,
    world: World,
    per_rank: u64,
}

impl Partition {
    /// The share of `world` in an epoch of `n` samples of which `consumed` are done.
    pub fn new(n: u64, consumed: u64, world: World, remainder: Remainder) -> Self {
        let ranks = world.ranks.max(1) as u64;
        let left = n.saturating_sub(consumed);
        let per_rank = match remainder {
            Remainder::Pad => left.div_ceil(ranks),
            Remainder::DropLast => left / ranks,
        };
        Self {
            n,
            start: consumed.min(n),
            world,
            per_rank,
        }
    }

    /// Samples each rank reads in this run.
    pub fn per_rank(&self) -> u64 {
        self.per_rank
    }

    /// Samples this worker reads.
    pub fn len(&self) -> u64 {
        let k = self.world.workers.max(1) as u64;
        let w = self.world.worker as u64;
        if self.per_rank <= w {
            0
        } else {
            (self.per_rank - w).div_ceil(k)
        }
    }

    /// Whether this worker reads nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The plan position of this worker's `i`-th sample (padding wraps to the order's start).
    pub fn position(&self, i: u64) -> u64 {
        let j = i * self.world.workers.max(1) as u64 + self.world.worker as u64;
        self.rank_position(self.world.rank, j)
    }

    /// The plan position of rank `rank`'s `j`-th sample in this run.
    pub fn rank_position(&self, rank: u32, j: u64) -> u64 {
        let p = self.start + j * self.world.ranks.max(1) as u64 + rank as u64;
        if p < self.n || self.n == 0 {
            p
        } else {
            (p - self.n) % self.n
        }
    }

    /// Plan positions this worker reads, in order.
    pub fn positions(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len()).map(|i| self.position(i))
    }

    /// The resume state after every rank consumed `per_rank_done` samples of this run.
    pub fn state_after(&self, seed: u64, epoch: u64, per_rank_done: u64) -> ResumeState {
        ResumeState {
            seed,
            epoch,
            consumed: (self.start + per_rank_done * self.world.ranks.max(1) as u64).min(self.n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(ranks: u32, rank: u32, workers: u32, worker: u32) -> World {
        World {
            ranks,
            rank,
            workers,
            worker,
        }
    }

    #[test]
    fn equal_counts_and_full_coverage() {
        for n in [0u64, 1, 7, 100, 101, 1023] {
            for ranks in [1u32, 2, 3, 8] {
                for workers in [1u32, 2, 3] {
                    for rem in [Remainder::Pad, Remainder::DropLast] {
                        let mut seen = vec![0u32; n as usize];
                        let mut per_rank = Vec::new();
                        for r in 0..ranks {
                            let mut count = 0;
                            for w in 0..workers {
                                let p = Partition::new(n, 0, world(ranks, r, workers, w), rem);
                                for pos in p.positions() {
                                    seen[pos as usize] += 1;
                                    count += 1;
                                }
                            }
                            per_rank.push(count);
                        }
                        assert!(per_rank.windows(2).all(|w| w[0] == w[1]), "{per_rank:?}");
                        let missing = seen.iter().filter(|&&c| c == 0).count() as u64;
                        let extra: u64 = seen.iter().map(|&c| c.saturating_sub(1) as u64).sum();
                        match rem {
                            Remainder::Pad => {
                                assert_eq!(missing, 0, "n={n} ranks={ranks}");
                                assert!(extra < ranks as u64);
                            }
                            Remainder::DropLast => {
                                assert_eq!(extra, 0);
                                assert!(missing < ranks as u64);
                            }
                        }
                    }
                }
            }
        }
    }
}
