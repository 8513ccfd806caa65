//! The NVMe tier on real files: verification, eviction, restart, crash leftovers, a full disk.

use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use strata_cache::key::ObjectVersion;
use strata_cache::nvme::{NotStored, NvmeConfig, NvmeTier};
use strata_cache::policy::PolicyKind;

fn cfg(dir: &std::path::Path, capacity: u64) -> NvmeConfig {
    NvmeConfig {
        dir: dir.to_path_buf(),
        capacity,
        min_free_fraction: 0.0,
        policy: PolicyKind::S3Fifo,
    }
}

fn obj(path: &str) -> ObjectVersion {
    ObjectVersion::new("s3://bucket", path, "\"etag-1\"", 1 << 30)
}

#[test]
fn round_trip_private_dir_and_hostile_keys() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let t = NvmeTier::open(&cfg(&root, 1 << 30)).unwrap();
    assert_eq!(
        std::fs::metadata(&root).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let hostile = obj("../../../../etc/passwd");
    t.put(&hostile, 0, 0, b"not a password file").unwrap();
    assert_eq!(&t.get(&hostile, 0).unwrap()[..], b"not a password file");
    let path = t.path_of(hostile.block(0));
    assert!(path.starts_with(&root), "{}", path.display());
    assert!(!path.to_string_lossy().contains("passwd"));
    // Another version of the same object is a miss, never the old bytes.
    let v2 = ObjectVersion::new(
        "s3://bucket",
        "../../../../etc/passwd",
        "\"etag-2\"",
        1 << 30,
    );
    assert!(t.get(&v2, 0).is_none());
}

#[test]
fn damaged_files_are_dropped_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let t = NvmeTier::open(&cfg(dir.path(), 1 << 30)).unwrap();
    let o = obj("data/shard-0");
    let data = vec![7u8; 100_000];
    for (i, damage) in ["flip", "truncate", "empty", "foreign"]
        .into_iter()
        .enumerate()
    {
        let i = i as u64;
        t.put(&o, i, i * 100_000, &data).unwrap();
        let path = t.path_of(o.block(i));
        let mut bytes = std::fs::read(&path).unwrap();
        match damage {
            "flip" => {
                let mid = bytes.len() / 2;
                bytes[mid] ^= 1
            }
            "truncate" => bytes.truncate(bytes.len() - 10),
            "empty" => bytes.clear(),
            _ => {
                // A whole, valid file of another block under this block's name.
                t.put(&o, 99, 0, b"other").unwrap();
                bytes = std::fs::read(t.path_of(o.block(99))).unwrap();
            }
        }
        std::fs::write(&path, &bytes).unwrap();
        assert!(t.get(&o, i).is_none(), "{damage} was served");
        assert!(!path.exists(), "{damage}: damaged file kept");
    }
    assert_eq!(t.stats().corrupt, 4);
}

#[test]
fn capacity_is_respected_by_eviction() {
    let dir = tempfile::tempdir().unwrap();
    let block = 10_000usize;
    let t = NvmeTier::open(&cfg(dir.path(), 3 * (block as u64 + 200))).unwrap();
    let o = obj("x");
    for i in 0..10 {
        t.put(&o, i, 0, &vec![i as u8; block]).unwrap();
        assert!(t.usage().0 <= t.capacity());
    }
    assert_eq!(t.usage().1, 3);
    assert_eq!(t.stats().evictions, 7);
    let files = walk(dir.path().join("blocks"));
    assert_eq!(files, 3, "evicted files are deleted");
    // A block larger than the whole tier is not stored.
    assert_eq!(t.put(&o, 50, 0, &vec![0; 100_000]), Err(NotStored::Full));
}

fn walk(p: std::path::PathBuf) -> usize {
    std::fs::read_dir(p)
        .unwrap()
        .flatten()
        .map(|d| std::fs::read_dir(d.path()).unwrap().count())
        .sum()
}

/// Reopening a directory of 100,000 blocks takes under a second, and finds them all.
#[test]
fn reopening_100k_blocks_is_fast() {
    let dir = tempfile::tempdir().unwrap();
    let t = NvmeTier::open(&cfg(dir.path(), 1 << 40)).unwrap();
    // Write the files directly (no fsync each), in the tier's own layout and format.
    let o = obj("many");
    let start = Instant::now();
    for i in 0..100_000u64 {
        let id = o.block(i);
        let path = t.path_of(id);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let data = i.to_le_bytes();
        let mut f = strata_cache::block_file::header(&o.key_text(i), i * 8, &data);
        f.extend_from_slice(&data);
        std::fs::write(&path, f).unwrap();
    }
    eprintln!(
        "wrote 100,000 block files in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    drop(t);
    let start = Instant::now();
    let t = NvmeTier::open(&cfg(dir.path(), 1 << 40)).unwrap();
    let took = start.elapsed();
    eprintln!("reopened in {took:?}");
    assert_eq!(t.usage().1, 100_000);
    assert!(took.as_secs_f64() < 1.0, "reopen took {took:?}");
    assert_eq!(&t.get(&o, 77_777).unwrap()[..], &77_777u64.to_le_bytes());
}

#[test]
fn leftovers_of_dead_writers_are_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    drop(NvmeTier::open(&cfg(dir.path(), 1 << 30)).unwrap());
    let tmp = dir.path().join("tmp");
    // pid 2^22+1 is above the kernel's pid_max on this platform: no such process.
    let dead = tmp.join(format!("{}-0000000000000001.tmp", (1 << 22) + 1));
    let ours = tmp.join(format!("{}-0000000000000002.tmp", std::process::id()));
    std::fs::write(&dead, b"half a block").unwrap();
    std::fs::write(&ours, b"being written").unwrap();
    drop(NvmeTier::open(&cfg(dir.path(), 1 << 30)).unwrap());
    assert!(!dead.exists(), "a dead writer's temp file was kept");
    assert!(ours.exists(), "a live writer's temp file was deleted");
}

/// On a full file system, puts fail softly (Full, warned once), reads go on, nothing panics.
#[test]
fn full_disk_degrades_to_pass_through() {
    let Some(fs) = strata_testkit::SmallFs::mount("2m") else {
        return;
    };
    let mnt = fs.path();
    // The tier thinks it has 1 GiB; the file system has 2 MiB.
    let t = NvmeTier::open(&cfg(&mnt.join("cache"), 1 << 30)).unwrap();
    let o = obj("big");
    let mut stored = 0;
    let mut full = 0;
    for i in 0..10 {
        match t.put(&o, i, 0, &vec![1u8; 512 * 1024]) {
            Ok(()) => stored += 1,
            Err(NotStored::Full) => full += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(stored >= 2 && full >= 5, "stored {stored}, full {full}");
    for i in 0..stored {
        assert!(
            t.get(&o, i).is_some(),
            "block {i} stored before the disk filled"
        );
    }
    assert!(t.stats().pass_through >= 5);
    let tmp_left = std::fs::read_dir(mnt.join("cache/tmp")).unwrap().count();
    assert_eq!(tmp_left, 0, "partial files left behind");

    // With min_free_fraction, the tier stops before the disk is full.
    let t = NvmeTier::open(&NvmeConfig {
        min_free_fraction: 0.99,
        ..cfg(&mnt.join("cache2"), 1 << 30)
    })
    .unwrap();
    assert_eq!(t.put(&o, 0, 0, b"x"), Err(NotStored::Full));
}

/// Bytes of the block files under `dir/blocks`.
fn bytes_on_disk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir.join("blocks"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|f| f.metadata().map_or(0, |m| m.len()))
        .sum()
}

const SHARED_BLOCK: usize = 20_000;
const SHARED_WRITES: u64 = 40;

/// The capacity bounds the directory, not each process's share: four processes writing into
/// one directory (each more than the whole capacity) leave it within the capacity, and the
/// shared count agrees with the files.
#[test]
fn capacity_bounds_a_directory_shared_by_processes() {
    let dir = tempfile::tempdir().unwrap();
    let capacity = 12 * (SHARED_BLOCK as u64 + 200);
    // Created first, so the children only reopen it.
    drop(NvmeTier::open(&cfg(dir.path(), capacity)).unwrap());
    let children: Vec<_> = (0..4)
        .map(|i| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "child_writer", "--test-threads", "1"])
                .env("STRATA_CHILD_DIR", dir.path())
                .env("STRATA_CHILD_ID", i.to_string())
                .env("STRATA_CHILD_CAPACITY", capacity.to_string())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a writer failed");
    }
    let on_disk = bytes_on_disk(dir.path());
    assert!(
        on_disk <= capacity,
        "{on_disk} bytes on disk, capacity {capacity}"
    );
    assert!(on_disk > capacity / 2, "eviction went too far: {on_disk}");
    let counted = u64::from_le_bytes(
        std::fs::read(dir.path().join("usage")).unwrap()[..8]
            .try_into()
            .unwrap(),
    );
    assert_eq!(counted, on_disk, "the shared count drifted from the files");
    // Reopening recounts.
    let t = NvmeTier::open(&cfg(dir.path(), capacity)).unwrap();
    assert_eq!(t.usage().0, on_disk);
}

#[test]
fn child_writer() {
    // Only does something when started by the test above.
    let Ok(dir) = std::env::var("STRATA_CHILD_DIR") else {
        return;
    };
    let id: u64 = std::env::var("STRATA_CHILD_ID").unwrap().parse().unwrap();
    let capacity: u64 = std::env::var("STRATA_CHILD_CAPACITY")
        .unwrap()
        .parse()
        .unwrap();
    let t = NvmeTier::open(&cfg(std::path::Path::new(&dir), capacity)).unwrap();
    let o = obj(&format!("writer-{id}"));
    for i in 0..SHARED_WRITES {
        t.put(&o, i, 0, &vec![id as u8; SHARED_BLOCK]).unwrap();
        assert!(t.usage().0 <= capacity);
    }
}
