//! The cache read through to a real S3 server across the link emulator: tiers serve repeats
//! without a request, one fetch per block however many readers (tasks or processes), damaged
//! blocks are refetched, changed objects are never served from old blocks, and kill -9 during
//! fills never leaves a torn block behind.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata_cache::nvme::NvmeConfig;
use strata_cache::policy::PolicyKind;
use strata_cache::{BlockCache, CacheConfig, ObjectVersion, Why};
use strata_store::{Store, StoreConfig};
use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, S3Server, data};

const MIB: u64 = 1 << 20;

fn cache_config(dir: &Path, dram: u64) -> CacheConfig {
    CacheConfig {
        block_size: MIB,
        dram_bytes: dram,
        nvme: Some(NvmeConfig {
            dir: dir.to_path_buf(),
            capacity: 1 << 30,
            min_free_fraction: 0.0,
            policy: PolicyKind::S3Fifo,
        }),
        read_concurrency: 8,
    }
}

struct Rig {
    server: S3Server,
    emu: LinkEmulator,
    store: Store,
}

fn rig(latency_ms: u64) -> Rig {
    let server = S3Server::start();
    let mut p = LinkProfile::local();
    p.first_byte_latency = Duration::from_millis(latency_ms);
    let emu = LinkEmulator::start(server.addr(), p);
    let l = server.config_layer_through(&emu);
    let store = Store::open(&server.url(""), &StoreConfig::from_layer(&l).unwrap()).unwrap();
    Rig { server, emu, store }
}

async fn object(store: &Store, key: &str, len: usize, seed: u64) -> ObjectVersion {
    store
        .put(key, Bytes::from(data::bytes(seed, len)))
        .await
        .unwrap();
    let info = store.head(key).await.unwrap();
    ObjectVersion::new(
        &store.root().to_string(),
        key,
        info.e_tag.as_deref().unwrap_or(""),
        info.size,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_come_from_dram_then_nvme_without_requests() {
    let r = rig(0);
    let dir = tempfile::tempdir().unwrap();
    let len = (20 * MIB + 12_345) as usize;
    let obj = object(&r.store, "ds/a", len, 1).await;
    let want = data::bytes(1, len);
    let cache = BlockCache::open(&cache_config(dir.path(), 256 * MIB)).unwrap();
    let before = r.emu.stats().requests;
    let got = cache.read(&r.store, &obj, 0..len as u64).await.unwrap();
    assert!(got == want);
    assert_eq!(r.emu.stats().requests - before, 21, "one GET per block");
    // Again: DRAM.
    let before = r.emu.stats().requests;
    let got = cache
        .read(&r.store, &obj, 5..(len as u64 - 5))
        .await
        .unwrap();
    assert!(got[..] == want[5..len - 5]);
    assert_eq!(r.emu.stats().requests, before, "served from DRAM");
    assert_eq!(cache.stats().dram.unwrap().hits, 21);
    // A new process (a new cache on the same directory, DRAM cold): NVMe.
    cache.flush().await;
    drop(cache);
    let cache = BlockCache::open(&cache_config(dir.path(), 0)).unwrap();
    let got = cache.read(&r.store, &obj, 0..len as u64).await.unwrap();
    assert!(got == want);
    assert_eq!(
        r.emu.stats().requests,
        before,
        "served from NVMe after a restart"
    );
    assert_eq!(cache.stats().nvme.unwrap().hits, 21);
}

/// A disk that writes slower than the source delivers (one block file written at a time):
/// reads pass through unstored instead of waiting for it, and every byte is still right;
/// a hydration then waits for the disk and stores every block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_pass_through_when_the_disk_falls_behind_and_hydration_waits() {
    let r = rig(0);
    let dir = tempfile::tempdir().unwrap();
    let len = (48 * MIB) as usize;
    let obj = object(&r.store, "ds/slow-disk", len, 9).await;
    let want = data::bytes(9, len);
    let cache = BlockCache::open(&cache_config(dir.path(), 0))
        .unwrap()
        .with_write_behind(1);
    let got = cache.read(&r.store, &obj, 0..len as u64).await.unwrap();
    assert!(got == want);
    cache.flush().await;
    let passed = cache.stats().nvme.unwrap().pass_through;
    assert!(
        passed > 0,
        "8 blocks in flight, 1 write slot: some must pass through"
    );
    assert!(passed < 48, "the first block found its slot free");
    let stored = (0..48).filter(|&i| cache.contains(&obj, i)).count() as u64;
    assert_eq!(
        stored + passed,
        48,
        "every block stored or passed through, once"
    );
    // Hydration waits for the disk: afterwards every block is on NVMe.
    let report = strata_cache::warm::warm(&cache, &r.store, std::slice::from_ref(&obj), 8, &|_| {})
        .await
        .unwrap();
    assert_eq!(report.not_cached_blocks, 0);
    assert_eq!(report.fetched_bytes, passed * MIB);
    assert!((0..48).all(|i| cache.contains(&obj, i)));
    let before = r.emu.stats().requests;
    let got = cache.read(&r.store, &obj, 0..len as u64).await.unwrap();
    assert!(got == want);
    assert_eq!(r.emu.stats().requests, before, "all from NVMe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_readers_share_one_fetch() {
    let r = rig(100);
    let dir = tempfile::tempdir().unwrap();
    let obj = object(&r.store, "ds/b", (4 * MIB) as usize, 2).await;
    let cache = Arc::new(BlockCache::open(&cache_config(dir.path(), 64 * MIB)).unwrap());
    let before = r.emu.stats().requests;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (cache, store, obj) = (cache.clone(), r.store.clone(), obj.clone());
        tasks.push(tokio::spawn(async move {
            cache.get_block(&store, &obj, 1, Why::Demand).await.unwrap()
        }));
    }
    for t in tasks {
        assert!(
            t.await.unwrap()[..]
                == data::bytes(2, (4 * MIB) as usize)[MIB as usize..2 * MIB as usize]
        );
    }
    assert_eq!(r.emu.stats().requests - before, 1, "16 readers, one GET");
    assert_eq!(cache.stats().demand_fetches, 1);
}

/// A read cancelled while it waits for another process's fetch lock (a DataLoader worker
/// whose reader is dropped with reads in flight) must not take the lock afterwards and keep
/// it: the other processes would wait for that block for as long as the process lives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_cancelled_while_waiting_for_the_lock_leaves_it_free() {
    let r = rig(0);
    let dir = tempfile::tempdir().unwrap();
    let obj = object(&r.store, "ds/cancel", (2 * MIB) as usize, 6).await;
    let cache = Arc::new(BlockCache::open(&cache_config(dir.path(), 64 * MIB)).unwrap());
    // Another process's lock on block 0 (another open file description of the lock file).
    let other = Arc::new(strata_cache::lock::FetchLocks::open(dir.path()).unwrap());
    let held = other.lock(obj.block(0)).unwrap();
    let read = tokio::time::timeout(
        Duration::from_millis(200),
        cache.get_block(&r.store, &obj, 0, Why::Prefetch),
    )
    .await;
    assert!(
        read.is_err(),
        "the read waits for the other process's fetch"
    );
    drop(held);
    // The cancelled read's wait ends now; the lock must come free again.
    let free = async {
        while other.try_lock(obj.block(0)).unwrap().is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), free)
        .await
        .expect("a cancelled read kept the block's fetch lock");
    // (The probe's own lock went with its guard.) A read now goes through.
    let got = cache
        .get_block(&r.store, &obj, 0, Why::Demand)
        .await
        .unwrap();
    assert!(got[..] == data::bytes(6, (2 * MIB) as usize)[..MIB as usize]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_blocks_are_refetched_and_correct() {
    let r = rig(0);
    let dir = tempfile::tempdir().unwrap();
    let len = (3 * MIB) as usize;
    let obj = object(&r.store, "ds/c", len, 3).await;
    let cache = BlockCache::open(&cache_config(dir.path(), 0)).unwrap();
    cache.read(&r.store, &obj, 0..len as u64).await.unwrap();
    cache.flush().await;
    for i in 0..3 {
        let p = cache.nvme().unwrap().path_of(obj.block(i));
        let mut b = std::fs::read(&p).unwrap();
        if i == 2 {
            b.truncate(b.len() / 2);
        } else {
            let at = b.len() - 1000 * (i as usize + 1);
            b[at] ^= 0xff;
        }
        std::fs::write(&p, b).unwrap();
    }
    let before = r.emu.stats().requests;
    let got = cache.read(&r.store, &obj, 0..len as u64).await.unwrap();
    cache.flush().await;
    assert!(got == data::bytes(3, len), "damaged blocks were served");
    assert_eq!(
        r.emu.stats().requests - before,
        3,
        "each damaged block fetched again"
    );
    assert_eq!(cache.stats().nvme.unwrap().corrupt, 3);
    // And they are good on disk again.
    let before = r.emu.stats().requests;
    let cache = BlockCache::open(&cache_config(dir.path(), 0)).unwrap();
    cache.read(&r.store, &obj, 0..len as u64).await.unwrap();
    assert_eq!(r.emu.stats().requests, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_object_is_never_served_from_old_blocks() {
    let r = rig(0);
    let dir = tempfile::tempdir().unwrap();
    let len = (2 * MIB) as usize;
    let old = object(&r.store, "ds/d", len, 4).await;
    let cache = BlockCache::open(&cache_config(dir.path(), 64 * MIB)).unwrap();
    cache.read(&r.store, &old, 0..len as u64).await.unwrap();
    let new = object(&r.store, "ds/d", len, 5).await;
    assert_ne!(old.version, new.version);
    let got = cache.read(&r.store, &new, 0..len as u64).await.unwrap();
    assert!(got == data::bytes(5, len), "new version served");
    // Asking for the old version now fails at the store (ETag mismatch) once the cache is
    // emptied, rather than returning new bytes under the old name.
    cache.invalidate_object(&old.store, &old.path).await;
    let err = cache.read(&r.store, &old, 0..10).await.unwrap_err();
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(e) = source {
        chain.push_str(&format!(": {e}"));
        source = e.source();
    }
    assert!(chain.contains("changed while it was read"), "{chain}");
}

/// Child role: read the whole object through the shared cache directory.
fn child_read(dir: &str, endpoint: &str, ak: &str, sk: &str, key: &str) {
    let mut l = strata_store::StoreLayer::default();
    l.s3.endpoint = Some(endpoint.into());
    l.s3.access_key_id = Some(ak.into());
    l.s3.secret_access_key = Some(strata_store::Secret::new(sk));
    let store = Store::open(
        &strata_store::StoreUrl::parse(&format!("s3://strata-test/{key}")).unwrap(),
        &StoreConfig::from_layer(&l).unwrap(),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let info = store.head(key).await.unwrap();
        let obj = ObjectVersion::new(
            &store.root().to_string(),
            key,
            info.e_tag.as_deref().unwrap(),
            info.size,
        );
        let cache = BlockCache::open(&cache_config(Path::new(dir), 0)).unwrap();
        loop {
            let got = cache.read(&store, &obj, 0..info.size).await.unwrap();
            cache.flush().await;
            assert_eq!(got.len() as u64, info.size);
            if std::env::var("STRATA_CHILD_LOOP").is_err() {
                break;
            }
            cache.nvme().unwrap().clear().unwrap();
        }
    });
}

/// Re-runs this test binary as a child in the given role.
fn spawn_child(test: &str, envs: &[(&str, String)]) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads", "1"]);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn child_reader() {
    // Only does something when started by a parent test with STRATA_CHILD_DIR set.
    let Ok(dir) = std::env::var("STRATA_CHILD_DIR") else {
        return;
    };
    let g = |k: &str| std::env::var(k).unwrap();
    child_read(
        &dir,
        &g("STRATA_CHILD_ENDPOINT"),
        &g("STRATA_CHILD_AK"),
        &g("STRATA_CHILD_SK"),
        &g("STRATA_CHILD_KEY"),
    );
}

fn child_env(r: &Rig, dir: &Path, key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("STRATA_CHILD_DIR", dir.display().to_string()),
        ("STRATA_CHILD_ENDPOINT", r.emu.endpoint()),
        ("STRATA_CHILD_AK", r.server.access_key().to_string()),
        ("STRATA_CHILD_SK", r.server.secret_key().to_string()),
        ("STRATA_CHILD_KEY", key.to_string()),
    ]
}

/// Four processes read the same object through one cache directory at once: the store sees
/// one GET per block.
#[test]
fn processes_sharing_a_directory_fetch_each_block_once() {
    let r = rig(150);
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let len = 8 * MIB as usize;
    rt.block_on(object(&r.store, "ds/shared", len, 6));
    let before = r.emu.stats();
    let env = child_env(&r, dir.path(), "ds/shared");
    let children: Vec<_> = (0..4).map(|_| spawn_child("child_reader", &env)).collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a child failed");
    }
    let after = r.emu.stats();
    // One HEAD per child, one GET per block in all.
    let gets = after.requests - before.requests - 4;
    assert_eq!(gets, 8, "8 blocks fetched {gets} times by 4 processes");
}

/// kill -9 a process while it fills the cache, over and over; then every block file on disk
/// is whole and every read is correct.
#[test]
fn kill_9_during_fills_leaves_no_torn_block() {
    let r = rig(0);
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let len = 24 * MIB as usize;
    rt.block_on(object(&r.store, "ds/killed", len, 7));
    let mut env = child_env(&r, dir.path(), "ds/killed");
    env.push(("STRATA_CHILD_LOOP", "1".into()));
    for round in 0..8u64 {
        let mut c = spawn_child("child_reader", &env);
        std::thread::sleep(Duration::from_millis(150 + round * 37));
        c.kill().unwrap(); // SIGKILL
        c.wait().unwrap();
    }
    let leftovers = std::fs::read_dir(dir.path().join("tmp")).unwrap().count();
    let blocks: usize = std::fs::read_dir(dir.path().join("blocks"))
        .unwrap()
        .flatten()
        .map(|d| std::fs::read_dir(d.path()).unwrap().count())
        .sum();
    eprintln!("after 8 kills: {blocks} block files, {leftovers} temp files of killed writers");
    // Every block file present decodes cleanly (whole, checksummed, the right key).
    let cache = BlockCache::open(&cache_config(dir.path(), 0)).unwrap();
    let info = rt.block_on(r.store.head("ds/killed")).unwrap();
    let obj = ObjectVersion::new(
        &r.store.root().to_string(),
        "ds/killed",
        info.e_tag.as_deref().unwrap(),
        info.size,
    );
    let got = rt
        .block_on(cache.read(&r.store, &obj, 0..len as u64))
        .unwrap();
    assert!(got == data::bytes(7, len));
    assert_eq!(
        cache.stats().nvme.unwrap().corrupt,
        0,
        "a torn block file was found"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0,
        "dead writers' temp files are cleaned on open"
    );
}

/// A cache directory on a full file system: reads through the cache go on (pass-through),
/// every byte correct, nothing panics, and the tier counts what it could not store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_on_when_the_cache_disk_is_full() {
    let r = rig(0);
    let Some(fs) = strata_testkit::SmallFs::mount("2m") else {
        return;
    };
    let mnt = fs.path();
    let len = (10 * MIB) as usize;
    let obj = object(&r.store, "ds/full", len, 8).await;
    let cache = BlockCache::open(&cache_config(&mnt.join("cache"), 0)).unwrap();
    for _ in 0..2 {
        let got = cache.read(&r.store, &obj, 0..len as u64).await.unwrap();
        assert!(
            got == data::bytes(8, len),
            "wrong bytes with a full cache disk"
        );
        cache.flush().await;
    }
    let nvme = cache.stats().nvme.unwrap();
    assert!(nvme.pass_through >= 8, "{nvme:?}");
    assert!(nvme.bytes_written <= 2 * MIB, "{nvme:?}");
    assert_eq!(
        std::fs::read_dir(mnt.join("cache/tmp")).unwrap().count(),
        0,
        "partial files left"
    );
}
