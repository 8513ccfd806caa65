//! Packing files into shards and reading them back, in every mode, locally and through the
//! cache over an emulated S3 link; deterministic output; bad input.

mod common;

use std::sync::Arc;

use common::*;
use futures::TryStreamExt;
use strata_cache::nvme::NvmeConfig;
use strata_cache::policy::PolicyKind;
use strata_cache::{BlockCache, CacheConfig};
use strata_dataset::pack::{PackOptions, PackSource, pack};
use strata_dataset::plan::{PlanSpec, ShuffleMode};
use strata_dataset::{Dataset, Location, Reader, ReaderConfig};
use strata_store::{Store, StoreConfig};
use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, S3Server};

fn opts(shard_size: u64) -> PackOptions {
    PackOptions {
        shard_size,
        ..Default::default()
    }
}

fn files_under(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        out.push((
            e.file_name().to_string_lossy().into_owned(),
            std::fs::read(e.path()).unwrap(),
        ));
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packs_deterministically_and_reads_back_in_every_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let want = raw_files(&tmp.path().join("raw"), 300);
    let src = PackSource::Dir(tmp.path().join("raw"));
    let (m1, report) = pack(&src, &local(&tmp.path().join("a")), &opts(256 << 10), None)
        .await
        .unwrap();
    pack(&src, &local(&tmp.path().join("b")), &opts(256 << 10), None)
        .await
        .unwrap();
    assert_eq!(report.samples, 300);
    assert_eq!(report.files, 600);
    assert_eq!(report.skipped_count, 1, "README has no extension");
    assert!(m1.shards.len() > 5, "{} shards", m1.shards.len());
    for s in &m1.shards {
        assert!(s.bytes <= 256 << 10, "{} is {} bytes", s.path, s.bytes);
    }
    assert_eq!(
        files_under(&tmp.path().join("a")),
        files_under(&tmp.path().join("b")),
        "two packs of the same input differ"
    );
    let ds = Arc::new(Dataset::open(local(&tmp.path().join("a"))).await.unwrap());
    for mode in [
        ShuffleMode::Sequential,
        ShuffleMode::Window,
        ShuffleMode::Global,
    ] {
        let samples = read_all(
            ds.clone(),
            ReaderConfig {
                plan: PlanSpec {
                    mode,
                    window: 32,
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await;
        assert_eq!(samples.len(), 300, "{mode:?}");
        let mut keys: Vec<&str> = samples.iter().map(|s| s.key.as_str()).collect();
        if mode == ShuffleMode::Sequential {
            assert!(keys.windows(2).all(|w| w[0] < w[1]));
        }
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 300, "{mode:?}: a sample repeated");
        check(&samples, &want);
    }
}

/// A cache of 64 KiB blocks in `dir` (1 GiB, next-use) with `dram` bytes of DRAM.
fn small_cache(dir: &std::path::Path, dram: u64) -> Arc<BlockCache> {
    Arc::new(
        BlockCache::open(&CacheConfig {
            block_size: 64 << 10,
            dram_bytes: dram,
            nvme: Some(NvmeConfig {
                dir: dir.to_path_buf(),
                capacity: 1 << 30,
                min_free_fraction: 0.0,
                policy: PolicyKind::NextUse,
            }),
            read_concurrency: 8,
        })
        .unwrap(),
    )
}

/// The raw files under `dir/raw` packed (512 KiB shards) to `prefix` of an S3 server reached
/// through a link emulator with `link`, and opened.
async fn packed_on_s3(
    dir: &std::path::Path,
    prefix: &str,
    link: LinkProfile,
) -> (S3Server, LinkEmulator, Arc<Dataset>) {
    let server = S3Server::start();
    let emu = LinkEmulator::start(server.addr(), link);
    let cfg = StoreConfig::from_layer(&server.config_layer_through(&emu)).unwrap();
    let loc = Location {
        store: Store::open(&server.url(""), &cfg).unwrap(),
        prefix: prefix.into(),
    };
    pack(
        &PackSource::Dir(dir.join("raw")),
        &loc,
        &opts(512 << 10),
        None,
    )
    .await
    .unwrap();
    let ds = Arc::new(Dataset::open(loc).await.unwrap());
    (server, emu, ds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_through_the_cache_over_s3_and_the_second_epoch_stays_local() {
    let tmp = tempfile::tempdir().unwrap();
    let want = raw_files(&tmp.path().join("raw"), 200);
    let (_server, emu, ds) = packed_on_s3(tmp.path(), "datasets/train", LinkProfile::local()).await;
    let cache = small_cache(&tmp.path().join("cache"), 0);
    for epoch in 0..2 {
        let before = emu.stats().requests;
        let r = Reader::new(
            ds.clone(),
            Some(cache.clone()),
            ReaderConfig {
                plan: PlanSpec {
                    epoch,
                    window: 16,
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let samples: Vec<_> = r.stream().try_collect().await.unwrap();
        assert_eq!(samples.len(), 200);
        check(&samples, &want);
        let requests = emu.stats().requests - before;
        if epoch == 0 {
            assert!(requests > 10, "{requests} requests");
            assert!(
                r.stats()
                    .prefetch_submitted
                    .load(std::sync::atomic::Ordering::Relaxed)
                    > 0
            );
        } else {
            assert_eq!(requests, 0, "the second epoch went to the store");
        }
        cache.flush().await;
    }
}

/// A window shuffle that scatters samples over more than the prefetch horizon (here 64
/// samples of ~11 KB against a horizon of 8 samples, the shape of cosmoflow's 1,024 × 2.8 MB
/// against 512 MiB) is read sample by sample, one request each, past the cache: in the same
/// order, byte for byte, each sample once. Through blocks, in-order delivery waited for most
/// of a window's blocks (`strata bench plan`: cosmoflow shards at 1.5× the link's demand
/// read 95 MiB/s where raw objects read 154).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_wider_than_the_horizon_is_read_by_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let want = raw_files(&tmp.path().join("raw"), 200);
    let (_server, emu, ds) = packed_on_s3(tmp.path(), "datasets/wide", LinkProfile::local()).await;
    let read = |lookahead_bytes: u64, dir: &str| {
        let ds = ds.clone();
        let cache = small_cache(&tmp.path().join(dir), 0);
        async move {
            let r = Reader::new(
                ds,
                Some(cache.clone()),
                ReaderConfig {
                    plan: PlanSpec {
                        window: 64,
                        ..Default::default()
                    },
                    lookahead_bytes,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            let samples: Vec<_> = r.stream().try_collect().await.unwrap();
            (samples, r.stats(), cache.stats())
        }
    };
    let before = emu.stats().requests;
    let (wide, stats, cache) = read(1, "narrow-horizon").await;
    let requests = emu.stats().requests - before;
    let direct = stats
        .direct_requests
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(wide.len(), 200);
    check(&wide, &want);
    assert_eq!(direct, 200, "one read per sample");
    // And one per shard index, read when the reader opens.
    assert_eq!(requests, 200 + ds.manifest.shards.len() as u64);
    assert_eq!(
        stats
            .prefetch_submitted
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_eq!(
        cache.demand_fetches + cache.prefetch_fetches,
        0,
        "{cache:?}"
    );
    // The default horizon covers the window: blocks through the cache, the same order.
    let (blocks, stats, cache) = read(512 << 20, "default-horizon").await;
    assert_eq!(
        stats
            .direct_requests
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert!(cache.demand_fetches + cache.prefetch_fetches > 0);
    let keys = |v: &[strata_dataset::Sample]| v.iter().map(|s| s.key.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&wide), keys(&blocks));
}

/// Two DataLoader workers as two caches on one directory (two open lock files, as two
/// processes have): worker 0 reads one sample and then waits, as a worker does until the
/// loader asks it for the next one, with its reads in flight. Worker 1 must still read its
/// whole share: the blocks worker 0 was filling are finished without worker 0 polling, so
/// their cross-process fetch locks come free. (They were held until worker 0 was polled
/// again, and the loader, waiting for worker 1, never asked: a DataLoader hung.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_worker_never_blocks_the_other_workers_blocks() {
    use futures::StreamExt;
    let tmp = tempfile::tempdir().unwrap();
    let want = raw_files(&tmp.path().join("raw"), 300);
    let mut link = LinkProfile::local();
    link.first_byte_latency = std::time::Duration::from_millis(40);
    let (_server, _emu, ds) = packed_on_s3(tmp.path(), "datasets/paused", link).await;
    let cache = || small_cache(&tmp.path().join("cache"), 8 << 20);
    let worker = |cache, worker| {
        Reader::new(
            ds.clone(),
            Some(cache),
            ReaderConfig {
                plan: PlanSpec {
                    window: 64,
                    ..Default::default()
                },
                world: strata_dataset::World {
                    ranks: 1,
                    rank: 0,
                    workers: 2,
                    worker,
                },
                ..Default::default()
            },
        )
    };
    let (a, b) = (
        worker(cache(), 0).await.unwrap(),
        worker(cache(), 1).await.unwrap(),
    );
    let mut paused = a.stream();
    let first = paused.next().await.unwrap().unwrap();
    let rest: Vec<_> = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        b.stream().try_collect::<Vec<_>>(),
    )
    .await
    .expect("worker 1 waited for blocks the paused worker 0 was filling")
    .unwrap();
    let mut got = vec![first];
    got.extend(rest);
    got.extend(paused.try_collect::<Vec<_>>().await.unwrap());
    assert_eq!(got.len(), 300);
    check(&got, &want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_input_is_named_and_no_dataset_appears() {
    let tmp = tempfile::tempdir().unwrap();
    raw_files(&tmp.path().join("raw"), 20);
    let bad = tmp.path().join("raw/train/00007.bin");
    std::fs::remove_file(&bad).unwrap();
    // A dangling link: listed, unreadable.
    std::os::unix::fs::symlink(tmp.path().join("nowhere"), &bad).unwrap();
    let dst = tmp.path().join("out");
    let err = pack(
        &PackSource::Dir(tmp.path().join("raw")),
        &local(&dst),
        &opts(64 << 10),
        None,
    )
    .await
    .expect_err("the pack fails")
    .to_string();
    assert!(err.contains("00007.bin"), "{err}");
    assert!(!dst.join("manifest.json").exists());
    // A missing source directory.
    let err = pack(
        &PackSource::Dir(tmp.path().join("absent")),
        &local(&dst),
        &opts(64 << 10),
        None,
    )
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("absent"), "{err}");
}
