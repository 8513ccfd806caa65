//! The local tier alone: save, restore, immutability, corruption, retention.

mod common;

use std::time::Duration;

use common::{as_items, assert_items, cfg, items};
use strata_ckpt::{Checkpointer, CkptError, Item, OnCorrupt, Retention, SaveMode, Tier};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_and_restore_exactly_files_and_buffers() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = Checkpointer::open(cfg(None, Some(&tmp.path().join("local")))).unwrap();
    // A file item as well as buffers.
    let src = tmp.path().join("weights.bin");
    let weights = strata_testkit::data::bytes(9, 300_000);
    std::fs::write(&src, &weights).unwrap();
    for step in [10, 20] {
        let mut it = as_items(&items(step, 0));
        it.push(Item::file("weights.bin", &src));
        let h = ck.save(step, it).await.unwrap();
        assert!(h.stall > Duration::ZERO);
        let r = h.wait().await.unwrap();
        assert!(!r.remote);
    }
    let r = ck.load(None).await.unwrap();
    assert_eq!((r.step, r.tier), (20, Tier::Local));
    let mut want = items(20, 0);
    want.push(("weights.bin".into(), weights.clone()));
    assert_items(&r, &want);
    let r = ck.load(Some(10)).await.unwrap();
    assert_eq!(r.step, 10);
    // Checkpoints are immutable.
    let err = ck.save(20, as_items(&items(20, 0))).await.err().unwrap();
    assert!(matches!(err, CkptError::Exists { step: 20, .. }), "{err}");
    // Bad names are refused before anything is written.
    for bad in ["../x", "/abs", ".hidden", "a//b"] {
        let err = ck
            .save(30, vec![Item::bytes(bad, vec![1u8])])
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("item name"), "{err}");
    }
    let err = ck
        .save(
            30,
            vec![Item::bytes("a", vec![1u8]), Item::bytes("a", vec![2u8])],
        )
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("twice"), "{err}");
    let list = ck.list().await.unwrap();
    assert_eq!(
        list.iter()
            .map(|c| (c.step, c.complete))
            .collect::<Vec<_>>(),
        vec![(10, true), (20, true)]
    );
    // The checkpointer measures its own stalls and drains (what `strata_plan::interval`
    // turns into interval advice).
    let s = ck.stats();
    assert_eq!((s.saves, s.drains), (2, 2));
    assert!(s.mean_stall_secs > 0.0 && s.mean_drain_secs > 0.0, "{s:?}");
    assert!(ck.load(Some(15)).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_checkpoint_falls_back_with_a_warning_or_fails_by_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("local");
    let ck = Checkpointer::open(cfg(None, Some(&local))).unwrap();
    for step in 1..=3 {
        ck.save(step, as_items(&items(step, 0)))
            .await
            .unwrap()
            .wait()
            .await
            .unwrap();
    }
    // Step 3: one flipped bit in the middle of the big file.
    let f = local.join("step-000000000003/rank-00000/model.safetensors");
    let mut b = std::fs::read(&f).unwrap();
    b[3 << 20] ^= 0x10;
    std::fs::write(&f, &b).unwrap();
    let r = ck.load(None).await.unwrap();
    assert_eq!(r.step, 2);
    assert_items(&r, &items(2, 0));
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(
        r.warnings[0].contains("step 3") && r.warnings[0].contains("model.safetensors"),
        "{:?}",
        r.warnings
    );
    // Asked for step 3 by number: an error naming the file and the chunk.
    let err = ck.load(Some(3)).await.err().unwrap();
    assert!(err.to_string().contains("chunk 48"), "{err}");
    // By setting: fail instead of falling back.
    let mut c = cfg(None, Some(&local));
    c.on_corrupt = OnCorrupt::Fail;
    let strict = Checkpointer::open(c).unwrap();
    assert!(matches!(
        strict.load(None).await,
        Err(CkptError::Corrupt { step: 3, .. })
    ));
    // A torn manifest makes step 2 incomplete, not an error: step 1 is the newest complete.
    std::fs::write(
        local.join("step-000000000002/MANIFEST.json"),
        b"{\"format\":1,",
    )
    .unwrap();
    std::fs::remove_file(local.join("step-000000000003/MANIFEST.json")).unwrap();
    let r = ck.load(None).await.unwrap();
    assert_eq!(r.step, 1);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    // gc removes the incomplete steps and leaves the complete one.
    let g = ck.gc(Duration::ZERO).await.unwrap();
    assert_eq!(g.incomplete_local, vec![2, 3]);
    assert_eq!(
        std::fs::read_dir(&local).unwrap().count(),
        1,
        "only step 1 is left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_mode_copies_the_bytes_and_bounds_staging() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = cfg(None, Some(&tmp.path().join("local")));
    c.mode = SaveMode::Snapshot;
    c.staging_bytes = 8 << 20;
    let ck = Checkpointer::open(c).unwrap();
    let h = ck.save(5, as_items(&items(5, 0))).await.unwrap();
    h.wait().await.unwrap();
    assert_items(&ck.load(None).await.unwrap(), &items(5, 0));
    let big = vec![Item::bytes("big", vec![0u8; 9 << 20])];
    let err = ck.save(6, big).await.err().unwrap();
    assert!(err.to_string().contains("staging"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_retention_keeps_the_store_rules_without_a_store() {
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("local");
    let mut c = cfg(None, Some(&local));
    c.retention = Retention {
        keep_last: Some(2),
        keep_every: Some(3),
        ..Default::default()
    };
    let ck = Checkpointer::open(c).unwrap();
    for step in 1..=7 {
        ck.save(step, vec![Item::bytes("x", vec![step as u8; 10])])
            .await
            .unwrap()
            .wait()
            .await
            .unwrap();
    }
    // Applied after each save, without a gc.
    let steps: Vec<u64> = ck.list().await.unwrap().iter().map(|c| c.step).collect();
    assert_eq!(steps, vec![3, 6, 7]);
}
