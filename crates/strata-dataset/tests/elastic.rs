//! Resume and elasticity: an epoch stopped after k steps and resumed with another world size
//! visits every sample exactly once (padding aside), with equal counts per rank in each run.

use strata_dataset::manifest::Manifest;
use strata_dataset::plan::{Plan, PlanSpec, ShuffleMode};
use strata_dataset::{Partition, Remainder, ResumeState, World};

fn manifest(counts: &[u64]) -> Manifest {
    Manifest::synthetic(counts, 1)
}

/// Runs `steps` lockstep steps (one sample per rank each) of world `ranks × workers`, starting
/// from `state`; returns the ids read by each rank and the state after.
fn run(
    plan: &Plan,
    state: ResumeState,
    ranks: u32,
    workers: u32,
    steps: Option<u64>,
) -> (Vec<Vec<u64>>, ResumeState) {
    let mut per_rank = vec![Vec::new(); ranks as usize];
    let mut taken = 0;
    for r in 0..ranks {
        // A rank consumes its workers' samples round robin, as a DataLoader does.
        let parts: Vec<Partition> = (0..workers)
            .map(|w| {
                Partition::new(
                    plan.len(),
                    state.consumed,
                    World {
                        ranks,
                        rank: r,
                        workers,
                        worker: w,
                    },
                    Remainder::Pad,
                )
            })
            .collect();
        let per = parts[0].per_rank();
        let limit = steps.map_or(per, |s| s.min(per));
        for j in 0..limit {
            let p = &parts[(j % workers as u64) as usize];
            let pos = p.position(j / workers as u64);
            per_rank[r as usize].push(plan.order[pos as usize]);
        }
        taken = limit;
    }
    let state = ResumeState {
        consumed: (state.consumed + taken * ranks as u64).min(plan.len()),
        ..state
    };
    (per_rank, state)
}

#[test]
fn resuming_with_another_world_size_loses_and_repeats_nothing() {
    let m = manifest(&[97, 50, 3, 120, 64]);
    for mode in [ShuffleMode::Window, ShuffleMode::Global] {
        let plan = Plan::new(
            &m,
            PlanSpec {
                seed: 9,
                epoch: 2,
                mode,
                window: 32,
                streams: 2,
            },
        );
        let n = plan.len();
        for (r1, w1, r2, w2, steps) in [
            (4, 2, 3, 1, 17),
            (4, 2, 6, 4, 40),
            (1, 1, 8, 2, 5),
            (3, 3, 2, 1, 0),
            (8, 1, 5, 2, 41),
        ] {
            let start = ResumeState {
                seed: 9,
                epoch: 2,
                consumed: 0,
            };
            let (first, state) = run(&plan, start, r1, w1, Some(steps));
            assert!(first.iter().all(|v| v.len() == first[0].len()));
            let (second, end) = run(&plan, state, r2, w2, None);
            assert!(
                second.iter().all(|v| v.len() == second[0].len()),
                "unequal ranks"
            );
            assert_eq!(end.consumed, n);
            let mut count = vec![0u32; n as usize];
            for id in first.iter().chain(&second).flatten() {
                count[*id as usize] += 1;
            }
            assert!(count.iter().all(|&c| c >= 1), "a sample was lost");
            // Only the second run's padding may repeat samples: fewer than r2 of them.
            let repeats: u32 = count.iter().map(|&c| c - 1).sum();
            assert!(repeats < r2, "{repeats} repeats with {r2} ranks");
            // And the repeats are padding: no sample of the first run is read again before
            // the second run's last step.
            let first_ids: std::collections::HashSet<u64> =
                first.iter().flatten().copied().collect();
            let padded_steps = if (n - state.consumed).is_multiple_of(r2 as u64) {
                0
            } else {
                1
            };
            for v in &second {
                for id in &v[..v.len() - padded_steps] {
                    assert!(!first_ids.contains(id), "sample {id} repeated mid-epoch");
                }
            }
        }
    }
}
