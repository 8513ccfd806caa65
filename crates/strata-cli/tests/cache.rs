//! `strata warm`, `strata cache …`, and `cp`/`cat --cache` as a user runs them, against the
//! in-process S3 server behind the link emulator (which counts the bytes that cross it).

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

use bytes::Bytes;
use strata_store::Store;
use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, S3Server, data};

fn run(server: &S3Server, emu: &LinkEmulator, args: &[&str]) -> Output {
    run_env(server, emu, args, &[])
}

fn run_env(server: &S3Server, emu: &LinkEmulator, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .env("AWS_ENDPOINT_URL", emu.endpoint())
        .env("AWS_ACCESS_KEY_ID", server.access_key())
        .env("AWS_SECRET_ACCESS_KEY", server.secret_key())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("STRATA_CONFIG")
        // The host disk may be nearly full; these tests are not about the floor.
        .env("STRATA_CACHE_MIN_FREE_FRACTION", "0")
        .env_remove("STRATA_CACHE_DIR")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).unwrap()
}

#[test]
fn warm_then_read_locally_then_invalidate_and_clear() {
    let server = S3Server::start();
    let emu = LinkEmulator::start(server.addr(), LinkProfile::local());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = Store::open(&server.url(""), &server.store_config()).unwrap();
    let sizes = [(9 << 20) + 3, 1000, 0, 3 << 20];
    rt.block_on(async {
        for (i, n) in sizes.iter().enumerate() {
            store
                .put(&format!("ds/f{i}"), Bytes::from(data::bytes(i as u64, *n)))
                .await
                .unwrap();
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let c = cache.to_str().unwrap();

    let w = json(run(
        &server,
        &emu,
        &["warm", "s3://strata-test/ds/", "--cache", c, "--json"],
    ));
    let total: u64 = sizes.iter().sum::<usize>() as u64;
    assert_eq!(w["objects"], 4);
    assert_eq!(w["bytes"], total);
    assert_eq!(w["fetched_bytes"], total);
    assert_eq!(
        std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
        0o700
    );

    // Warm again: nothing fetched.
    let w = json(run(
        &server,
        &emu,
        &["warm", "s3://strata-test/ds/", "--cache", c, "--json"],
    ));
    assert_eq!(w["fetched_bytes"], 0);

    // Reads through the cache move no object bytes across the link.
    let down = emu.stats().bytes_down;
    let out = run(
        &server,
        &emu,
        &["cat", "--cache", c, "s3://strata-test/ds/f0"],
    );
    assert!(out.status.success());
    assert!(
        out.stdout == data::bytes(0, sizes[0]),
        "cat through the cache"
    );
    let dst = tmp.path().join("copy");
    ok(run(
        &server,
        &emu,
        &[
            "cp",
            "-r",
            "--cache",
            c,
            "s3://strata-test/ds/",
            dst.to_str().unwrap(),
        ],
    ));
    for (i, n) in sizes.iter().enumerate() {
        assert_eq!(
            std::fs::read(dst.join(format!("f{i}"))).unwrap(),
            data::bytes(i as u64, *n),
            "f{i}"
        );
    }
    let crossed = emu.stats().bytes_down - down;
    assert!(
        crossed < 64 * 1024,
        "{crossed} bytes crossed the link for cached reads (listings only expected)"
    );

    // Remote to remote through the cache.
    ok(run(
        &server,
        &emu,
        &[
            "cp",
            "--cache",
            c,
            "s3://strata-test/ds/f0",
            "s3://strata-test/other/f0",
        ],
    ));
    let got = rt.block_on(store.get("other/f0")).unwrap();
    assert!(got[..] == data::bytes(0, sizes[0])[..]);

    let st = json(run(
        &server,
        &emu,
        &["cache", "stats", "--cache", c, "--json"],
    ));
    let blocks = st["blocks"].as_u64().unwrap();
    assert_eq!(
        blocks,
        2 + 1 + 1,
        "9 MiB → 2 blocks of 8 MiB, 1000 B → 1, 3 MiB → 1 (the empty object has none)"
    );

    let inv = json(run(
        &server,
        &emu,
        &[
            "cache",
            "invalidate",
            "s3://strata-test/ds/f0",
            "--cache",
            c,
            "--json",
        ],
    ));
    assert_eq!(inv["deleted_blocks"], 2);
    let st = json(run(
        &server,
        &emu,
        &["cache", "stats", "--cache", c, "--json"],
    ));
    assert_eq!(st["blocks"].as_u64().unwrap(), blocks - 2);

    // Clear asks first; without a terminal and without --yes it refuses.
    let out = run(&server, &emu, &["cache", "clear", "--cache", c]);
    assert!(!out.status.success());
    let cleared = json(run(
        &server,
        &emu,
        &["cache", "clear", "--yes", "--cache", c, "--json"],
    ));
    assert_eq!(cleared["deleted_blocks"], blocks - 2);
    assert_eq!(
        json(run(
            &server,
            &emu,
            &["cache", "stats", "--cache", c, "--json"]
        ))["blocks"],
        0
    );
}

/// A warm-up that cannot store its blocks (here: the file system is below the cache's
/// free-space floor) fails and says why, instead of reporting success with nothing cached.
#[test]
fn warm_fails_clearly_when_the_cache_cannot_store() {
    let server = S3Server::start();
    let emu = LinkEmulator::start(server.addr(), LinkProfile::local());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = Store::open(&server.url(""), &server.store_config()).unwrap();
    rt.block_on(async {
        store
            .put("ds/a", Bytes::from(data::bytes(1, 3 << 20)))
            .await
            .unwrap();
    });
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path().join("cache");
    let out = run_env(
        &server,
        &emu,
        &[
            "warm",
            "s3://strata-test/ds/",
            "--cache",
            c.to_str().unwrap(),
        ],
        &[("STRATA_CACHE_MIN_FREE_FRACTION", "0.9999999")],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "warm reported success: {err}");
    assert!(err.contains("not stored"), "{err}");
    assert!(err.contains("below the floor"), "{err}");
    assert!(err.contains("cache.min_free_fraction"), "{err}");

    // The same warm-up with the floor at 0 stores every block.
    let w = json(run(
        &server,
        &emu,
        &[
            "warm",
            "s3://strata-test/ds/",
            "--cache",
            c.to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(w["not_cached_blocks"], 0);
}

/// Empties the page cache of `files`: `drop_caches` as root, else `POSIX_FADV_DONTNEED`
/// (which may leave some pages). Returns whether the files are now mostly out of memory.
fn evict(files: &[std::path::PathBuf]) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    if std::fs::write("/proc/sys/vm/drop_caches", "1").is_err() {
        for f in files {
            let h = std::fs::File::open(f).unwrap();
            // SAFETY: a valid fd; the advice has no memory-safety effect.
            unsafe { libc::posix_fadvise(h.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        }
    }
    resident(files) < total(files) / 2
}

fn block_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for fan in std::fs::read_dir(dir.join("blocks")).unwrap() {
        for f in std::fs::read_dir(fan.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "blk") {
                out.push(p);
            }
        }
    }
    out
}

fn resident(files: &[std::path::PathBuf]) -> u64 {
    files
        .iter()
        .map(|f| strata_cache::page_cache::resident_bytes(f).unwrap())
        .sum()
}

fn total(files: &[std::path::PathBuf]) -> u64 {
    files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum()
}

/// `warm --tier dram` leaves the data in the node's memory after the CLI exits: the block
/// files, evicted from the page cache after a plain warm, are resident again, nothing is
/// fetched twice, and the report's resident figure is what `mincore` sees.
#[test]
fn warm_into_dram_leaves_the_blocks_in_the_page_cache() {
    let server = S3Server::start();
    let emu = LinkEmulator::start(server.addr(), LinkProfile::local());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = Store::open(&server.url(""), &server.store_config()).unwrap();
    rt.block_on(async {
        for i in 0..3u64 {
            store
                .put(&format!("ds/f{i}"), Bytes::from(data::bytes(i, 6 << 20)))
                .await
                .unwrap();
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let c = cache.to_str().unwrap();
    let url = "s3://strata-test/ds/";
    let w = json(run(&server, &emu, &["warm", url, "--cache", c, "--json"]));
    assert_eq!(w["fetched_bytes"], 18 << 20);
    assert!(w.get("page_cache").is_none(), "{w}");
    let files = block_files(&cache);
    assert_eq!(files.len(), 3, "{files:?}");
    if !evict(&files) {
        assert!(
            std::env::var("STRATA_REQUIRE_MOUNT").as_deref() != Ok("1"),
            "could not empty the page cache as root"
        );
        eprintln!("SKIPPED: cannot empty the page cache here (not root)");
        return;
    }
    let before = resident(&files);

    let w = json(run(
        &server,
        &emu,
        &["warm", url, "--cache", c, "--tier", "dram", "--json"],
    ));
    assert_eq!(w["fetched_bytes"], 0, "{w}");
    let pc = &w["page_cache"];
    let bytes = total(&files);
    assert_eq!(pc["loaded_bytes"], bytes, "{w}");
    assert_eq!(pc["missing_blocks"], 0, "{w}");
    let now = resident(&files);
    assert!(
        now > bytes / 10 * 9 && now > before,
        "resident {now} of {bytes} (before {before})"
    );
    assert!(
        pc["resident_bytes"].as_u64().unwrap() > bytes / 10 * 9,
        "{w}"
    );

    let out = run(&server, &emu, &["warm", url, "--cache", c, "--tier", "l3"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("use nvme or dram"));
}
