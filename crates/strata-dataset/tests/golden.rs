//! Golden plans: the exact orders of small plans are pinned here. A failure means a version of
//! Strata would visit samples in another order for the same seed, which silently changes
//! training runs: bump `PLAN_VERSION` and say so in the release notes instead.

use strata_dataset::manifest::Manifest;
use strata_dataset::plan::{Plan, PlanSpec, ShuffleMode};
use strata_dataset::{Partition, Remainder, World};

fn manifest() -> Manifest {
    Manifest::synthetic(&[5, 3, 6, 4], 100)
}

fn order(mode: ShuffleMode, seed: u64, epoch: u64, window: u64, streams: u32) -> Vec<u64> {
    Plan::new(
        &manifest(),
        PlanSpec {
            seed,
            epoch,
            mode,
            window,
            streams,
        },
    )
    .order
}

#[test]
fn golden_orders() {
    let got = [
        order(ShuffleMode::Sequential, 0, 0, 4, 1),
        order(ShuffleMode::Window, 0, 0, 4, 1),
        order(ShuffleMode::Window, 0, 1, 4, 1),
        order(ShuffleMode::Window, 7, 0, 4, 2),
        order(ShuffleMode::Global, 0, 0, 1, 1),
        order(ShuffleMode::Global, 1234, 5, 1, 1),
    ];
    let want: [&[u64]; 6] = GOLDEN;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.as_slice(), w, "golden plan {i} changed: {g:?}");
    }
}

#[test]
fn golden_partition() {
    // Rank 1 of 3, worker 1 of 2, padded, on the window plan above.
    let plan = Plan::new(
        &manifest(),
        PlanSpec {
            window: 4,
            ..Default::default()
        },
    );
    let world = World {
        ranks: 3,
        rank: 1,
        workers: 2,
        worker: 1,
    };
    let p = Partition::new(plan.len(), 0, world, Remainder::Pad);
    let ids: Vec<u64> = p.positions().map(|pos| plan.order[pos as usize]).collect();
    assert_eq!(ids, GOLDEN_PARTITION, "golden partition changed: {ids:?}");
}

const GOLDEN: [&[u64]; 6] = [
    &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17],
    &[3, 0, 1, 2, 14, 15, 4, 16, 7, 5, 17, 6, 8, 10, 11, 9, 12, 13],
    &[1, 0, 2, 3, 6, 4, 5, 7, 10, 11, 8, 9, 15, 14, 13, 12, 16, 17],
    &[16, 0, 14, 2, 17, 3, 15, 1, 5, 8, 6, 10, 7, 9, 4, 13, 11, 12],
    &[14, 1, 13, 12, 8, 7, 15, 10, 3, 17, 9, 0, 6, 4, 2, 11, 16, 5],
    &[4, 14, 9, 13, 1, 8, 16, 5, 11, 10, 12, 15, 0, 3, 2, 17, 7, 6],
];
const GOLDEN_PARTITION: &[u64] = &[14, 17, 12];
