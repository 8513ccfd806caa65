//! Damaged shards, missing shards, a manifest that disagrees, unindexed tars, TFRecords, the
//! raw layout: each read correctly or refused with an error naming the object.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use common::*;
use futures::{StreamExt, TryStreamExt};
use strata_dataset::indexer::{index_prefix, stream_unindexed};
use strata_dataset::pack::{PackOptions, PackSource, pack};
use strata_dataset::plan::{PlanSpec, ShuffleMode};
use strata_dataset::tar::TarWriter;
use strata_dataset::{Dataset, Reader, ReaderConfig, ShardIndex};

async fn packed(tmp: &std::path::Path, n: u64) -> std::path::PathBuf {
    raw_files(&tmp.join("raw"), n);
    let out = tmp.join("ds");
    pack(
        &PackSource::Dir(tmp.join("raw")),
        &local(&out),
        &PackOptions {
            shard_size: 128 << 10,
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    out
}

fn sequential() -> ReaderConfig {
    ReaderConfig {
        plan: PlanSpec {
            mode: ShuffleMode::Sequential,
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_names_the_shard_and_sample_or_is_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let ds_dir = packed(tmp.path(), 60).await;
    // Flip a byte in the data of sample 3 of the first shard.
    let idx = ShardIndex::from_json(&std::fs::read(ds_dir.join("shard-000000.tar.idx")).unwrap())
        .unwrap();
    let s = &idx.samples[3];
    let at = (s.offset + s.members[0].offset + 5) as usize;
    let shard = ds_dir.join("shard-000000.tar");
    let mut bytes = std::fs::read(&shard).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(&shard, &bytes).unwrap();
    let ds = Arc::new(Dataset::open(local(&ds_dir)).await.unwrap());
    for mode in [ShuffleMode::Sequential, ShuffleMode::Global] {
        let mut cfg = sequential();
        cfg.plan.mode = mode;
        let r = Reader::new(ds.clone(), None, cfg).await.unwrap();
        let err = r
            .stream()
            .try_collect::<Vec<_>>()
            .await
            .expect_err("a corrupt sample is an error")
            .to_string();
        assert!(err.contains("shard-000000.tar"), "{err}");
        assert!(err.contains("sample 3"), "{err}");
        assert!(err.contains(&s.key), "{err}");
        assert!(err.contains("checksum"), "{err}");
    }
    let mut cfg = sequential();
    cfg.skip_corrupt = true;
    let r = Reader::new(ds.clone(), None, cfg).await.unwrap();
    let got: Vec<_> = r.stream().try_collect().await.unwrap();
    assert_eq!(got.len(), 59);
    assert_eq!(r.stats().skipped.load(Ordering::Relaxed), 1);
    assert!(got.iter().all(|x| x.key != s.key));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_shards_and_disagreeing_manifests_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let ds_dir = packed(tmp.path(), 60).await;
    let manifest = std::fs::read(ds_dir.join("manifest.json")).unwrap();
    // A shard truncated: the manifest's size disagrees.
    let shard = ds_dir.join("shard-000001.tar");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() - 512]).unwrap();
    let err = Dataset::open(local(&ds_dir))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("shard-000001.tar") && err.contains("manifest"),
        "{err}"
    );
    std::fs::write(&shard, &bytes).unwrap();
    // A shard missing.
    std::fs::rename(&shard, ds_dir.join("elsewhere")).unwrap();
    let err = Dataset::open(local(&ds_dir))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("shard-000001.tar") && err.contains("missing"),
        "{err}"
    );
    std::fs::rename(ds_dir.join("elsewhere"), &shard).unwrap();
    // Totals that do not add up.
    let text = String::from_utf8(manifest.clone()).unwrap();
    let bad = text.replacen("\"samples\": 60", "\"samples\": 61", 1);
    assert_ne!(bad, text);
    std::fs::write(ds_dir.join("manifest.json"), bad).unwrap();
    let err = Dataset::open(local(&ds_dir))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("manifest.json") && err.contains("disagree"),
        "{err}"
    );
    // An index that disagrees with the manifest's sample count.
    std::fs::write(ds_dir.join("manifest.json"), &manifest).unwrap();
    let idx_path = ds_dir.join("shard-000000.tar.idx");
    let mut idx = ShardIndex::from_json(&std::fs::read(&idx_path).unwrap()).unwrap();
    idx.samples.pop();
    std::fs::write(&idx_path, idx.to_json()).unwrap();
    let ds = Arc::new(Dataset::open(local(&ds_dir)).await.unwrap());
    let err = Reader::new(ds, None, sequential())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("shard-000000.tar") && err.contains("index"),
        "{err}"
    );
    // No manifest at all.
    std::fs::remove_file(ds_dir.join("manifest.json")).unwrap();
    let err = Dataset::open(local(&ds_dir))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("manifest.json"), "{err}");
}

fn webdataset_tar(samples: u64) -> Vec<u8> {
    let mut w = TarWriter::new(Vec::new());
    for i in 0..samples {
        w.append(&format!("s{i:04}.txt"), format!("text {i}").as_bytes())
            .unwrap();
        w.append(
            &format!("s{i:04}.json"),
            format!("{{\"i\":{i}}}").as_bytes(),
        )
        .unwrap();
    }
    w.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tars_without_an_index_stream_and_get_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wds");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.tar"), webdataset_tar(10)).unwrap();
    std::fs::write(dir.join("b.tar"), webdataset_tar(5)).unwrap();
    let loc = local(&dir);
    let got: Vec<_> = stream_unindexed(loc.clone(), "a.tar".into())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got.len(), 10);
    assert_eq!(got[3].key, "s0003");
    assert_eq!(&got[3].get("txt").unwrap()[..], b"text 3");
    let m = index_prefix(&loc, &|_| {}).await.unwrap();
    assert_eq!(m.samples, 15);
    let ds = Arc::new(Dataset::open(loc.clone()).await.unwrap());
    let all = read_all(ds, ReaderConfig::default()).await;
    assert_eq!(all.len(), 15);
    assert!(all.iter().all(|s| s.get("json").is_some()));
    // A truncated tar: streaming and indexing both name it.
    let full = webdataset_tar(10);
    std::fs::write(dir.join("a.tar"), &full[..full.len() - 1024 - 700]).unwrap();
    let err = stream_unindexed(loc.clone(), "a.tar".into())
        .try_collect::<Vec<_>>()
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("a.tar") && err.contains("truncated"), "{err}");
    let err = index_prefix(&loc, &|_| {}).await.err().unwrap().to_string();
    assert!(err.contains("a.tar") && err.contains("truncated"), "{err}");
    // A member header with a bad checksum.
    let mut bad = full.clone();
    bad[512 * 2 + 10] ^= 0x40;
    std::fs::write(dir.join("a.tar"), &bad).unwrap();
    let err = index_prefix(&loc, &|_| {}).await.err().unwrap().to_string();
    assert!(
        err.contains("a.tar") && err.contains("bad tar header"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tfrecords_are_read_with_their_checksums() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tfr");
    std::fs::create_dir_all(&dir).unwrap();
    let mut f = Vec::new();
    for i in 0..25u32 {
        strata_dataset::tfrecord::encode(&i.to_le_bytes().repeat(i as usize + 1), &mut f);
    }
    std::fs::write(dir.join("train-0.tfrecord"), &f).unwrap();
    let loc = local(&dir);
    index_prefix(&loc, &|_| {}).await.unwrap();
    let ds = Arc::new(Dataset::open(loc.clone()).await.unwrap());
    let all = read_all(ds, sequential()).await;
    assert_eq!(all.len(), 25);
    for (i, s) in all.iter().enumerate() {
        let want = (i as u32).to_le_bytes().repeat(i + 1);
        assert_eq!(&s.get("tfrecord").unwrap()[..], &want[..]);
    }
    // A flipped data byte: indexing refuses the file.
    let mut bad = f.clone();
    bad[20] ^= 1;
    std::fs::write(dir.join("train-0.tfrecord"), &bad).unwrap();
    let err = index_prefix(&loc, &|_| {}).await.err().unwrap().to_string();
    assert!(
        err.contains("train-0.tfrecord") && err.contains("checksum"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raw_layout_reads_one_object_per_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("raw");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..30u64 {
        std::fs::write(
            dir.join(format!("{i:03}.npy")),
            strata_testkit::data::bytes(i, 3000),
        )
        .unwrap();
    }
    let ds = Arc::new(Dataset::open_raw(local(&dir)).await.unwrap());
    let r = Reader::new(ds, None, ReaderConfig::default())
        .await
        .unwrap();
    let all: Vec<_> = r.stream().collect::<Vec<_>>().await;
    assert_eq!(all.len(), 30);
    for s in all {
        let s = s.unwrap();
        let i: u64 = s.key.parse().unwrap();
        assert_eq!(
            s.get("npy").unwrap(),
            &Bytes::from(strata_testkit::data::bytes(i, 3000))
        );
    }
    // One request per sample: nothing to coalesce across objects.
    assert_eq!(r.stats().direct_requests.load(Ordering::Relaxed), 30);
}

/// Shards indexed into another location (`strata index --out`), read with that index and
/// nothing written beside them; a shard rewritten after indexing is refused by name, and the
/// node-cache index (`OpenOptions::index_cache`) is rebuilt instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_elsewhere_reads_the_shards_and_a_changed_shard_is_named() {
    use strata_dataset::OpenOptions;
    use strata_dataset::indexer::index_prefix_into;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shards");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.tar"), webdataset_tar(10)).unwrap();
    let (loc, out) = (local(&dir), local(&tmp.path().join("index")));
    let m = index_prefix_into(&loc, &out, &|_| {}).await.unwrap();
    assert_eq!(m.samples, 10);
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["a.tar"], "the index was written beside the shards");
    let ds = Arc::new(
        Dataset::open_indexed(loc.clone(), out.clone())
            .await
            .unwrap(),
    );
    assert_eq!(read_all(ds, sequential()).await.len(), 10);
    // Rewritten in place, same size: its ETag is not the indexed one.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut other = webdataset_tar(10);
    let at = other.len() / 2;
    other[at] ^= 1;
    std::fs::write(dir.join("a.tar"), &other).unwrap();
    let err = Dataset::open_indexed(loc.clone(), out.clone())
        .await
        .err()
        .expect("a changed shard was read with its old index")
        .to_string();
    assert!(
        err.contains("a.tar") && err.contains("changed since it was indexed"),
        "{err}"
    );
    // The node's index cache indexes on first use, then rebuilds after the change.
    std::fs::write(dir.join("a.tar"), webdataset_tar(10)).unwrap();
    let opts = OpenOptions {
        index_cache: Some(tmp.path().join("node")),
        ..Default::default()
    };
    let ds = Dataset::open_with(loc.clone(), &opts).await.unwrap();
    assert!(ds.index_location.display("").contains("node"));
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(dir.join("a.tar"), webdataset_tar(12)).unwrap();
    let ds = Arc::new(Dataset::open_with(loc.clone(), &opts).await.unwrap());
    assert_eq!(ds.manifest.samples, 12, "the stale node index was used");
    assert_eq!(read_all(ds, sequential()).await.len(), 12);
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["a.tar"]);
}
