//! Items made of memory segments (how the Python package hands over a safetensors header and
//! each tensor's own memory), restore into the engine's buffers, and what a hostile store
//! can do to them.

mod common;

use bytes::Bytes;
use common::{cfg, remote};
use strata_ckpt::{Checkpointer, Item, SaveMode};
use strata_testkit::S3Server;

/// Cuts `data` into segments of odd sizes, an empty one among them.
fn segments(data: &[u8]) -> Vec<Bytes> {
    let cuts = [0, 1, 1, 4097, data.len() / 2 + 3, data.len()];
    cuts.windows(2)
        .map(|w| Bytes::copy_from_slice(&data[w[0]..w[1]]))
        .collect()
}

/// In both modes, a file given as segments is stored as their concatenation: restored from
/// the local tier (mapped) and from the store (read into memory) byte for byte, with the
/// checksums of the joined bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_save_as_one_file_in_both_modes() {
    let server = S3Server::start();
    let data = strata_testkit::data::bytes(7, (3 << 20) + 77);
    for (i, mode) in [SaveMode::DurableLocal, SaveMode::Snapshot]
        .into_iter()
        .enumerate()
    {
        let tmp = tempfile::tempdir().unwrap();
        let root = remote(&server, None, &format!("seg/{i}"));
        let mut c = cfg(Some(root.clone()), Some(tmp.path()));
        c.mode = mode;
        let ck = Checkpointer::open(c).unwrap();
        let item = Item::segments("tensors.safetensors", segments(&data));
        assert_eq!(item.size().unwrap(), data.len() as u64);
        ck.save(1, vec![item, Item::segments("none", vec![])])
            .await
            .unwrap()
            .wait()
            .await
            .unwrap();
        let r = ck.load(Some(1)).await.unwrap();
        let got = r.get("tensors.safetensors").unwrap();
        assert!(got == &data[..], "{mode:?}: local restore differs");
        assert!(
            r.items
                .iter()
                .any(|(n, b)| n == "tensors.safetensors" && b.is_mapped())
        );
        assert_eq!(r.get("none").unwrap().len(), 0);
        let other = Checkpointer::open(cfg(Some(root), None)).unwrap();
        let r = other.load(Some(1)).await.unwrap();
        assert!(
            r.get("tensors.safetensors").unwrap() == &data[..],
            "{mode:?}: store restore differs"
        );
        let entry = &r.manifest.parts[0].files[0];
        assert_eq!(
            entry.crc32c,
            crc32c::crc32c(&data),
            "the whole-file CRC is the joined bytes'"
        );
    }
}

/// A store whose object was changed after the commit: the restore names the chunk and the
/// file instead of returning wrong bytes, and a manifest that lists too few chunk CRCs (so
/// bytes past them would go unchecked) is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_object_or_a_short_chunk_list_is_refused() {
    let server = S3Server::start();
    let root = remote(&server, None, "seg/hostile");
    let data = strata_testkit::data::bytes(9, 1 << 20);
    let ck = Checkpointer::open(cfg(Some(root.clone()), None)).unwrap();
    ck.save(3, vec![Item::bytes("a.bin", Bytes::from(data.clone()))])
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let key = root.key(&strata_ckpt::layout::file_rel(3, 0, "a.bin"));
    let mut bad = data.clone();
    bad[700_000] ^= 0x40;
    root.store.put(&key, Bytes::from(bad)).await.unwrap();
    let err = ck.load(Some(3)).await.unwrap_err().to_string();
    assert!(err.contains("a.bin") && err.contains("chunk 10"), "{err}");
    // The newest complete checkpoint is damaged and there is no older one: the load says
    // so, instead of "no complete checkpoint" (which a training script reads as "start
    // from scratch").
    let err = ck.load(None).await.unwrap_err();
    assert!(
        matches!(err, strata_ckpt::CkptError::Corrupt { .. }),
        "{err}"
    );

    // The right bytes again, but a manifest with its last chunk CRC cut off.
    root.store.put(&key, Bytes::from(data)).await.unwrap();
    let mkey = root.key(&strata_ckpt::layout::manifest_rel(3));
    let mut m = strata_ckpt::Manifest::from_json(&root.store.get(&mkey).await.unwrap()).unwrap();
    m.parts[0].files[0].chunks.pop();
    root.store
        .put(&mkey, Bytes::from(m.to_json()))
        .await
        .unwrap();
    let err = ck.load(Some(3)).await.unwrap_err().to_string();
    assert!(err.contains("chunk checksums"), "{err}");
}

/// A file of more than two pieces goes to the store in pieces (from the local file in
/// durable-local mode, from staging memory in snapshot mode): the manifest says format 2, the
/// store holds one object per piece, a restore and `verify` read them back exact, and a
/// changed piece is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_drains_in_pieces_and_restores_exact() {
    let server = S3Server::start();
    let data = strata_testkit::data::bytes(11, (5 << 20) + 4321);
    for (i, mode) in [SaveMode::DurableLocal, SaveMode::Snapshot]
        .into_iter()
        .enumerate()
    {
        let tmp = tempfile::tempdir().unwrap();
        let root = remote(&server, None, &format!("pieces/{i}"));
        let mut c = cfg(Some(root.clone()), Some(tmp.path()));
        c.mode = mode;
        c.piece_size = 1 << 20;
        let ck = Checkpointer::open(c).unwrap();
        let items = vec![
            Item::segments("big.bin", segments(&data)),
            Item::bytes("small.json", Bytes::from_static(b"{}")),
        ];
        ck.save(4, items).await.unwrap().wait().await.unwrap();
        let objects = root
            .store
            .list(&root.key("step-000000000004"))
            .await
            .unwrap();
        let pieces = objects
            .iter()
            .filter(|o| o.key.contains("/.pieces/big.bin/"))
            .count();
        assert_eq!(pieces, 6, "{mode:?}: one object per piece");
        let other = Checkpointer::open(cfg(Some(root.clone()), None)).unwrap();
        let r = other.load(Some(4)).await.unwrap();
        assert_eq!(r.manifest.format, 2);
        assert_eq!(r.manifest.parts[0].files[0].piece_size, Some(1 << 20));
        assert_eq!(
            r.manifest.parts[0].files[1].piece_size, None,
            "small files stay one object"
        );
        assert!(
            r.get("big.bin").unwrap() == &data[..],
            "{mode:?}: restore differs"
        );
        let checked = other.verify(4).await.unwrap();
        assert!(
            checked.iter().all(|(_, _, problems)| problems.is_empty()),
            "{checked:?}"
        );
        // A piece changed in the store is named.
        let key = root.key(&strata_ckpt::layout::piece_rel(4, 0, "big.bin", 3));
        let mut bad = root.store.get(&key).await.unwrap().to_vec();
        bad[10] ^= 1;
        root.store.put(&key, Bytes::from(bad)).await.unwrap();
        let err = other.load(Some(4)).await.unwrap_err().to_string();
        assert!(err.contains("big.bin") && err.contains("chunk 48"), "{err}");
    }
}

/// A full local disk: a durable-local save of segments fails naming the file and the cause,
/// leaves no temporary directory, and the previous checkpoint still loads; a snapshot whose
/// local copy does not fit still commits to the store (the local copy is a cache) and loads
/// from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_local_disk_loses_nothing() {
    let Some(disk) = strata_testkit::SmallFs::mount("4m") else {
        return;
    };
    let small = strata_testkit::data::bytes(1, 1 << 20);
    let big = strata_testkit::data::bytes(2, 6 << 20);
    let local = disk.path().join("ckpt");
    let ck = Checkpointer::open(cfg(None, Some(&local))).unwrap();
    ck.save(1, vec![Item::segments("t", segments(&small))])
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let err = ck
        .save(2, vec![Item::segments("t", segments(&big))])
        .await
        .err()
        .expect("6 MiB do not fit on a 4 MiB disk")
        .to_string();
    assert!(
        err.contains("No space left") && err.contains("step-000000000002"),
        "{err}"
    );
    let leftovers: Vec<_> = walk(&local)
        .into_iter()
        .filter(|p| p.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let r = ck.load(None).await.unwrap();
    assert_eq!(r.step, 1);
    assert!(r.get("t").unwrap() == &small[..]);

    // Snapshot mode with a store: the local copy fails, the checkpoint is in the store.
    let server = S3Server::start();
    let root = remote(&server, None, "full-disk");
    let mut c = cfg(Some(root.clone()), Some(&local));
    c.mode = SaveMode::Snapshot;
    let ck = Checkpointer::open(c).unwrap();
    ck.save(3, vec![Item::segments("t", segments(&big))])
        .await
        .unwrap()
        .wait()
        .await
        .expect("the store's copy stands");
    let other = Checkpointer::open(cfg(Some(root), None)).unwrap();
    let r = other.load(Some(3)).await.unwrap();
    assert!(r.get("t").unwrap() == &big[..]);
    // Locally, step 3 is not a checkpoint (no manifest claims it there).
    assert!(
        ck.load(Some(3))
            .await
            .is_ok_and(|r| r.tier == strata_ckpt::Tier::Remote)
    );
}

/// Every path under `dir`, as text.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        out.push(p.display().to_string());
        if p.is_dir() {
            out.extend(walk(&p));
        }
    }
    out
}
