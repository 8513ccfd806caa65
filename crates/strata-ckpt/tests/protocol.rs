//! The commit protocol against real S3 servers: the in-process one (conditional create
//! enforced) and Garage (conditional create ignored). One suite, both servers.

mod common;

use std::time::Duration;

use common::{as_items, assert_items, cfg, items, remote};
use strata_ckpt::{AdmissionKind, Checkpointer, CkptError, Retention, SaveMode, Tier};
use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, S3Server};

async fn suite(server: &dyn S3Endpoint, emu: Option<&LinkEmulator>) {
    drain_commit_and_restore(server, emu).await;
    ranks_commit_when_every_part_is_in(server, emu).await;
    a_missing_rank_times_out_and_commits_nothing(server, emu).await;
    retention_in_the_store_and_on_the_local_tier(server, emu).await;
    admission_auto_picks_what_the_store_supports(server, emu).await;
}

/// Save durable-local, drain, restore from the store alone bit-exact; a corrupt local copy
/// is read from the store instead (the same step, not an older one).
async fn drain_commit_and_restore(server: &dyn S3Endpoint, emu: Option<&LinkEmulator>) {
    let tmp = tempfile::tempdir().unwrap();
    let root = remote(server, emu, "p1/job");
    let ck = Checkpointer::open(cfg(Some(root.clone()), Some(&tmp.path().join("l")))).unwrap();
    for step in [100, 200] {
        let h = ck.save(step, as_items(&items(step, 0))).await.unwrap();
        let tracker = h.tracker();
        let r = h.wait().await.unwrap();
        assert!(r.remote && r.bytes > 6 << 20, "{r:?}");
        // The drain's progress, as a dashboard reporter sees it: all of it, and ended.
        assert!(tracker.is_done());
        assert_eq!(tracker.progress(), (r.bytes, r.bytes));
    }
    let list = ck.list().await.unwrap();
    assert_eq!(list.len(), 2);
    assert!(
        list.iter()
            .all(|c| c.complete && c.tiers == vec![Tier::Local, Tier::Remote])
    );
    // From the store alone (another node).
    let other = Checkpointer::open(cfg(Some(root.clone()), None)).unwrap();
    let r = other.load(None).await.unwrap();
    assert_eq!((r.step, r.tier), (200, Tier::Remote));
    assert_items(&r, &items(200, 0));
    // A damaged local copy: the same step comes from the store.
    let f = tmp
        .path()
        .join("l/step-000000000200/rank-00000/optim/shard-0.bin");
    let mut b = std::fs::read(&f).unwrap();
    b[0] ^= 1;
    std::fs::write(&f, b).unwrap();
    let r = ck.load(None).await.unwrap();
    assert_eq!((r.step, r.tier), (200, Tier::Remote));
    assert_items(&r, &items(200, 0));
    // Verify reports the damage on the local tier only.
    let v = ck.verify(200).await.unwrap();
    let local = v.iter().find(|x| x.0 == Tier::Local).unwrap();
    let store = v.iter().find(|x| x.0 == Tier::Remote).unwrap();
    assert_eq!((local.2.len(), store.2.len()), (1, 0), "{v:?}");
    // Immutable in the store too: another node cannot commit step 200 again.
    let err = other
        .save(200, as_items(&items(200, 0)))
        .await
        .unwrap()
        .wait()
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("already exists"), "{err}");
}

/// Three ranks save at once (snapshot mode, no local tier); rank 0 commits once all three
/// markers are in; every rank restores its own part.
async fn ranks_commit_when_every_part_is_in(server: &dyn S3Endpoint, emu: Option<&LinkEmulator>) {
    let root = remote(server, emu, "p2/job");
    let mut handles = Vec::new();
    for rank in 0..3 {
        let mut c = cfg(Some(root.clone()), None);
        c.rank = rank;
        c.world_size = 3;
        let ck = Checkpointer::open(c).unwrap();
        handles.push(tokio::spawn(async move {
            let r = ck
                .save(7, as_items(&items(7, rank)))
                .await
                .unwrap()
                .wait()
                .await;
            (ck, r)
        }));
    }
    let mut cks = Vec::new();
    for h in handles {
        let (ck, r) = h.await.unwrap();
        r.unwrap();
        cks.push(ck);
    }
    for (rank, ck) in cks.iter().enumerate() {
        let r = ck.load(None).await.unwrap();
        assert_eq!(r.manifest.world_size, 3);
        assert_items(&r, &items(7, rank as u32));
    }
}

/// World of three, rank 2 never saves: rank 0 fails with a clear error naming rank 2 after
/// the timeout, nothing is committed, and gc collects the parts.
async fn a_missing_rank_times_out_and_commits_nothing(
    server: &dyn S3Endpoint,
    emu: Option<&LinkEmulator>,
) {
    let root = remote(server, emu, "p3/job");
    let mut waits = Vec::new();
    for rank in 0..2 {
        let mut c = cfg(Some(root.clone()), None);
        c.rank = rank;
        c.world_size = 3;
        c.commit_timeout = Duration::from_secs(2);
        let ck = Checkpointer::open(c).unwrap();
        let h = ck.save(9, as_items(&items(9, rank))).await.unwrap();
        waits.push((ck, h));
    }
    let mut errors = Vec::new();
    for (_ck, h) in waits {
        errors.push(h.wait().await.err().unwrap());
    }
    match &errors[0] {
        CkptError::Drain { source, .. } => match &**source {
            CkptError::CommitTimeout { missing, step, .. } => {
                assert_eq!((missing.clone(), *step), (vec![2], 9));
            }
            e => panic!("rank 0: {e}"),
        },
        e => panic!("rank 0: {e}"),
    }
    assert!(
        errors[0].to_string().contains("nothing was committed"),
        "{}",
        errors[0]
    );
    let ck = Checkpointer::open(cfg(Some(root.clone()), None)).unwrap();
    let list = ck.list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert!(!list[0].complete);
    assert!(matches!(
        ck.load(None).await,
        Err(CkptError::NotFound { .. })
    ));
    let g = ck.gc(Duration::ZERO).await.unwrap();
    assert_eq!(g.incomplete_remote, vec![9]);
    assert!(root.store.list(&root.prefix).await.unwrap().is_empty());
}

/// keep_last 2 and keep_every 3 in the store; the newest drained one on the local tier.
async fn retention_in_the_store_and_on_the_local_tier(
    server: &dyn S3Endpoint,
    emu: Option<&LinkEmulator>,
) {
    let tmp = tempfile::tempdir().unwrap();
    let root = remote(server, emu, "p4/job");
    let mut c = cfg(Some(root.clone()), Some(tmp.path()));
    c.retention = Retention {
        keep_last: Some(2),
        keep_every: Some(3),
        local_keep_last: 1,
        ..Default::default()
    };
    let ck = Checkpointer::open(c).unwrap();
    for step in 1..=7 {
        ck.save(
            step,
            vec![strata_ckpt::Item::bytes("x", vec![step as u8; 100])],
        )
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    }
    let remote_only = Checkpointer::open(cfg(Some(root.clone()), None)).unwrap();
    let steps: Vec<u64> = remote_only
        .list()
        .await
        .unwrap()
        .iter()
        .map(|c| c.step)
        .collect();
    assert_eq!(steps, vec![3, 6, 7]);
    let local: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(local, vec!["step-000000000007".to_string()]);
}

/// Auto admission uses leases where conditional create holds, else time slots, and both
/// drain.
async fn admission_auto_picks_what_the_store_supports(
    server: &dyn S3Endpoint,
    emu: Option<&LinkEmulator>,
) {
    let root = remote(server, emu, "p5/job");
    let mut c = cfg(Some(root.clone()), None);
    c.mode = SaveMode::Snapshot;
    c.drain.admission.kind = AdmissionKind::Auto;
    let ck = Checkpointer::open(c).unwrap();
    let r = ck
        .save(1, as_items(&items(1, 0)))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let enforced = root.store.probe().await.unwrap().conditional_create
        == strata_store::ConditionalCreate::Enforced;
    assert_eq!(r.admission, if enforced { "leases" } else { "slots" });
    // The lease was given back.
    if enforced {
        let leases = root.store.list(&root.key(".strata-leases")).await.unwrap();
        assert!(leases.is_empty(), "{leases:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_server_through_the_emulator() {
    let server = S3Server::start();
    let emu = LinkEmulator::start(server.addr(), LinkProfile::nfs());
    suite(&server, Some(&emu)).await;
    assert!(
        server.pending_uploads().is_empty(),
        "{:?}",
        server.pending_uploads()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage() {
    let started = tokio::task::spawn_blocking(strata_testkit::garage::start_or_skip);
    let Some(garage) = started.await.unwrap() else {
        return;
    };
    suite(&garage, None).await;
}
