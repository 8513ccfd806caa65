//! Store faults through the link emulator, and fleet-wide admission under contention.

mod common;

use std::time::{Duration, Instant};

use common::{as_items, assert_items, cfg, items, remote};
use strata_ckpt::{AdmissionKind, Checkpointer, SaveMode};
use strata_testkit::{LinkEmulator, LinkProfile, S3Server};

/// 503s, 500s and resets on a fifth of the requests: saves complete (the store layer
/// retries) and restore is exact. Then every request fails: the save fails with an error
/// naming the store, and the previous checkpoint is intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_retried_or_fail_clearly_and_lose_nothing() {
    let server = S3Server::start();
    let emu = LinkEmulator::start(server.addr(), LinkProfile::nfs().with_faults(0.15, 0.05));
    let mut root = remote(&server, Some(&emu), "faults/job");
    let mut sc = root.store.config().clone();
    sc.retry.initial_backoff = Duration::from_millis(10);
    sc.retry.max_backoff = Duration::from_millis(200);
    sc.retry.max_attempts = 8;
    root.store = strata_store::Store::open(root.store.root(), &sc).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ck = Checkpointer::open(cfg(Some(root.clone()), Some(tmp.path()))).unwrap();
    for step in 1..=3 {
        ck.save(step, as_items(&items(step, 0)))
            .await
            .unwrap()
            .wait()
            .await
            .unwrap_or_else(|e| panic!("step {step}: {e}"));
    }
    let s = emu.stats();
    assert!(
        s.injected_errors + s.resets > 0,
        "faults were injected: {s:?}"
    );

    // Every request fails now.
    let mut p = LinkProfile::nfs();
    p.error_rate = 1.0;
    emu.set_profile(p);
    let h = ck.save(4, as_items(&items(4, 0))).await.unwrap();
    let err = h.wait().await.err().unwrap().to_string();
    assert!(err.contains("step 4") && err.contains("127.0.0.1"), "{err}");
    emu.set_profile(LinkProfile::nfs());
    // The store still says step 3 is the newest complete; restore from it alone is exact.
    let other = Checkpointer::open(cfg(Some(root.clone()), None)).unwrap();
    let r = other.load(None).await.unwrap();
    assert_eq!(r.step, 3);
    assert_items(&r, &items(3, 0));
    // Locally, step 4 is complete (durable-local returned) and restorable.
    let r = ck.load(None).await.unwrap();
    assert_eq!(r.step, 4);
    assert_items(&r, &items(4, 0));
}

/// Four writers share a lease root with one slot: their uploads never overlap, so together
/// they take at least four uploads' time, and three of them waited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_lease_slot_serializes_the_drains() {
    let server = S3Server::start();
    let mut p = LinkProfile::nfs();
    p.total_bytes_per_sec = Some(32 << 20);
    let emu = LinkEmulator::start(server.addr(), p);
    let leases = remote(&server, Some(&emu), "fleet/.leases");
    let mut handles = Vec::new();
    let t = Instant::now();
    for w in 0..4 {
        let mut c = cfg(
            Some(remote(&server, Some(&emu), &format!("fleet/job-{w}"))),
            None,
        );
        c.mode = SaveMode::Snapshot;
        c.drain.admission.kind = AdmissionKind::Leases;
        c.drain.admission.max_writers = 1;
        c.drain.admission.poll = Duration::from_millis(50);
        c.drain.admission.lease_root = Some(leases.clone());
        let ck = Checkpointer::open(c).unwrap();
        handles.push(tokio::spawn(async move {
            let r = ck
                .save(1, as_items(&items(1, w)))
                .await
                .unwrap()
                .wait()
                .await;
            r.unwrap()
        }));
    }
    let mut reports = Vec::new();
    for h in handles {
        reports.push(h.await.unwrap());
    }
    let wall = t.elapsed().as_secs_f64();
    let uploads: f64 = reports.iter().map(|r| r.upload_secs).sum();
    assert!(
        wall >= uploads * 0.95,
        "uploads overlapped: wall {wall:.2}s < sum of uploads {uploads:.2}s ({reports:?})"
    );
    let waited = reports
        .iter()
        .filter(|r| r.admission_wait_secs > 0.05)
        .count();
    assert!(waited >= 3, "{reports:?}");
    assert!(reports.iter().all(|r| r.admission == "leases"));
    let left = leases.store.list(&leases.prefix).await.unwrap();
    assert!(left.is_empty(), "leases left: {left:?}");
}
