//! Faults a hostile user found (issue #21), each as the user ran into it, through the
//! `strata` binary: every test here failed before its fix.

mod common;

use std::path::Path;
use std::process::Output;

use common::{ok, run};

use strata_testkit::{S3Endpoint, S3Server, data};

/// Standard error as text.
fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The steps `ckpt ls` prints (the first column of its rows).
fn listed_steps(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Saves steps 28, 29 and 30 of one small file under `root`.
fn three_steps(server: &S3Server, root: &str, dir: &Path) {
    for step in [28u64, 29, 30] {
        let f = dir.join(format!("a.{step}"));
        std::fs::write(&f, data::bytes(step, 100_001)).unwrap();
        ok(&run(
            server,
            &[
                "-q",
                "ckpt",
                "save",
                root,
                "--step",
                &step.to_string(),
                &format!("a.bin={}", f.display()),
            ],
        ));
    }
}

/// Fault 1: a truncated manifest of step 30 hid steps 28 and 29 too (`restore`, `ls` and
/// `gc` all failed with `bad manifest`). A checkpoint without a valid manifest does not
/// exist: it is skipped with a warning naming it, on the file store and on S3 alike.
#[test]
fn a_damaged_manifest_hides_only_its_own_step() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file_root = format!("file://{}/store/job", dir.path().display());
    for (root, damage) in [
        (file_root.clone(), None),
        (
            "s3://strata-test/hostile/job".to_string(),
            Some("hostile/job/step-000000000030/MANIFEST.json"),
        ),
    ] {
        three_steps(&server, &root, dir.path());
        match damage {
            None => {
                let m = dir.path().join("store/job/step-000000000030/MANIFEST.json");
                let f = std::fs::OpenOptions::new().write(true).open(&m).unwrap();
                f.set_len(100).unwrap();
            }
            Some(key) => {
                // A 100-byte object where the manifest was.
                let bad = dir.path().join("bad.json");
                std::fs::write(&bad, &b"{\"format\": 1, \"step\": 30, \"world_size\": 1, \"parts\": [{\"rank\": 0, \"files\": [{\"name\": \"a.bin\", \"si"[..]).unwrap();
                ok(&run(
                    &server,
                    &[
                        "-q",
                        "cp",
                        &bad.display().to_string(),
                        &format!("s3://strata-test/{key}"),
                    ],
                ));
            }
        }
        let out_dir = dir.path().join("out29");
        let out = run(
            &server,
            &[
                "ckpt",
                "restore",
                &root,
                "29",
                &out_dir.display().to_string(),
            ],
        );
        ok(&out);
        assert_eq!(
            std::fs::read(out_dir.join("rank-00000/a.bin")).unwrap(),
            data::bytes(29, 100_001),
            "{root}"
        );
        // `latest` is the newest valid one.
        let out_dir = dir.path().join("outl");
        let out = run(
            &server,
            &[
                "ckpt",
                "restore",
                &root,
                "latest",
                &out_dir.display().to_string(),
            ],
        );
        ok(&out);
        assert!(
            stderr(&out).contains("step-000000000030/MANIFEST.json"),
            "the warning names it: {}",
            stderr(&out)
        );
        assert_eq!(
            std::fs::read(out_dir.join("rank-00000/a.bin")).unwrap(),
            data::bytes(29, 100_001),
            "{root}"
        );
        let out = run(&server, &["ckpt", "ls", &root]);
        let listed = ok(&out);
        assert_eq!(listed_steps(&listed), [28, 29, 30], "{listed}");
        assert!(listed.contains("30  incomplete"), "{listed}");
        assert_eq!(
            stderr(&out).matches("bad manifest").count(),
            1,
            "one warning: {}",
            stderr(&out)
        );
        // Named, it fails with the cause.
        let out = run(
            &server,
            &[
                "ckpt",
                "restore",
                &root,
                "30",
                &dir.path().join("o30").display().to_string(),
            ],
        );
        assert!(
            !out.status.success()
                && stderr(&out).contains("step-000000000030/MANIFEST.json: bad manifest"),
            "{}",
            stderr(&out)
        );
        // gc collects it like any incomplete step (abandoned at once here).
        let out = run(&server, &["ckpt", "gc", &root, "--older-than", "0s"]);
        let text = ok(&out);
        assert!(text.contains("store [30]"), "{text}");
        let listed = ok(&run(&server, &["ckpt", "ls", &root]));
        assert_eq!(
            listed_steps(&listed),
            [28, 29],
            "collected, no phantom: {listed}"
        );
        // A second gc finds nothing more to collect.
        let text = ok(&run(&server, &["ckpt", "gc", &root, "--older-than", "0s"]));
        assert!(text.contains("store []"), "{text}");
        // Then it is gone.
        let out = run(
            &server,
            &[
                "ckpt",
                "restore",
                &root,
                "30",
                &dir.path().join("o30").display().to_string(),
            ],
        );
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        std::fs::remove_dir_all(dir.path().join("out29")).unwrap();
        std::fs::remove_dir_all(dir.path().join("outl")).unwrap();
    }
}

/// Puts `files` under `prefix` on `server`.
fn put_all(server: &S3Server, prefix: &str, files: &[(String, Vec<u8>)]) {
    let store = strata_store::Store::open(&server.url(""), &server.store_config()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for (n, b) in files {
            store
                .put(&format!("{prefix}/{n}"), bytes::Bytes::from(b.clone()))
                .await
                .unwrap();
        }
    });
}

/// The one file called `name` under `dir` (recursively).
fn find(dir: &Path, name: &str) -> std::path::PathBuf {
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_name() == name && p.is_file() && !p.to_string_lossy().contains(".partial") {
                return p;
            }
            if p.is_dir() {
                todo.push(p);
            }
        }
    }
    panic!("no {name} under {}", dir.display());
}

/// Fault 2: a cached model with a truncated file was served (`… is cached`, exit 0). The
/// hit path compares every size with the manifest; `--verify` checks CRC32C too; a damaged
/// copy is pulled again, never served.
#[test]
fn a_damaged_cached_model_is_pulled_again() {
    let server = S3Server::start();
    let shard = strata_models::synth::shard(5, 0, 3 << 20);
    put_all(
        &server,
        "hostile/model",
        &[("model.safetensors".into(), shard.clone())],
    );
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let c = cache.to_str().unwrap();
    let url = "s3://strata-test/hostile/model/";
    let pull = |extra: &[&str]| {
        let mut args = vec!["--cache", c, "models", "pull", url, "--json"];
        args.extend_from_slice(extra);
        let out = run(&server, &args);
        let v: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
        (v, stderr(&out))
    };
    let (first, _) = pull(&[]);
    assert_eq!(first["already_cached"], false);
    let (again, _) = pull(&[]);
    assert_eq!(again["already_cached"], true);
    let file = find(&cache, "model.safetensors");

    // Truncated: the sizes catch it.
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(shard.len() as u64 - 1000).unwrap();
    drop(f);
    let (v, err) = pull(&[]);
    assert_eq!(v["already_cached"], false, "a truncated copy was served");
    assert!(
        err.contains("model.safetensors") && err.contains("bytes"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(find(&cache, "model.safetensors")).unwrap(),
        shard
    );

    // Same size, one byte flipped: only --verify reads it.
    let file = find(&cache, "model.safetensors");
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    let (v, _) = pull(&[]);
    assert_eq!(
        v["already_cached"], true,
        "sizes alone do not read the files"
    );
    let (v, err) = pull(&["--verify"]);
    assert_eq!(
        v["already_cached"], false,
        "a corrupt copy was served with --verify"
    );
    assert!(err.contains("CRC32C"), "{err}");
    assert_eq!(
        std::fs::read(find(&cache, "model.safetensors")).unwrap(),
        shard
    );
    let out = ok(&run(&server, &["--cache", c, "models", "verify", url]));
    assert!(!out.contains("CRC32C"), "{out}");
}

/// Every file under `dir`, as paths relative to it (sorted).
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// `strata -q cp -r SRC DST` against `server`.
fn cp_r(server: &S3Server, src: &str, dst: &str) -> Output {
    run(server, &["-q", "cp", "-r", src, dst])
}

/// Asserts no temporary file of a copy is left under `dir`.
fn no_temporaries(dir: &Path) {
    let left: Vec<String> = tree(dir)
        .into_iter()
        .filter(|n| n.contains(".strata-"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

/// Names users have: non-ASCII, reserved characters of URLs, spaces, a backslash.
fn odd_names() -> Vec<String> {
    vec![
        "uni-é中".into(),
        "100% [draft] #1 ~v2 {x}.txt".into(),
        "back\\slash and spaces".into(),
        "sub/uni-é中".into(),
    ]
}

/// Names of 230 to 255 bytes (the in-process server cannot store keys that long: its
/// metadata file names outgrow the file system's limit; Garage and file:// stores can).
fn long_names() -> Vec<String> {
    vec![
        "a".repeat(230),
        format!("{}.bin", "b".repeat(251)),
        format!("{}é", "c".repeat(253)),
    ]
}

/// Copies `names` (files of deterministic bytes) from a local directory to `dst`, checks
/// the keys when `keys` can list the store, and copies them back into a new local
/// directory, byte-exact and named the same.
fn round_trip(
    server: &dyn S3Endpoint,
    names: &[String],
    dst: &str,
    keys: Option<(&strata_store::Store, &str)>,
) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for (i, n) in names.iter().enumerate() {
        let p = src.join(n);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data::bytes(i as u64, 1000 + i)).unwrap();
    }
    let want = tree(&src);
    ok(&common::run(
        server,
        &["-q", "cp", "-r", &format!("{}/", src.display()), dst],
    ));
    if let Some((store, prefix)) = keys {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let got: Vec<String> = rt
            .block_on(store.list(prefix))
            .unwrap()
            .into_iter()
            .map(|o| {
                o.key
                    .strip_prefix(&format!("{prefix}/"))
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(got, want, "the keys are the names");
    }
    let listed = ok(&common::run(server, &["ls", "-r", dst]));
    for n in names {
        assert!(listed.contains(n.as_str()), "{n:?} not in {listed}");
    }
    let back = tmp.path().join("back");
    ok(&common::run(
        server,
        &["-q", "cp", "-r", dst, &format!("{}/", back.display())],
    ));
    assert_eq!(tree(&back), want, "{dst}");
    for (i, n) in names.iter().enumerate() {
        assert_eq!(
            std::fs::read(back.join(n)).unwrap(),
            data::bytes(i as u64, 1000 + i),
            "{n}"
        );
    }
    no_temporaries(&back);
}

/// Faults 3 and 4: `uni-é中` was stored as the key `uni-%C3%A9%E4%B8%AD` and copying it back
/// failed with a 404, leaving temporary files; 230-255 byte names failed to copy into a
/// local directory (the temporary name was longer than 255 bytes). Keys are the user's
/// bytes, listed and copied back unchanged, on S3 and file:// alike.
#[test]
fn odd_names_survive_a_round_trip_unchanged() {
    let server = S3Server::start();
    let store = strata_store::Store::open(&server.url(""), &server.store_config()).unwrap();
    round_trip(
        &server,
        &odd_names(),
        "s3://strata-test/odd/up/",
        Some((&store, "odd/up")),
    );
    let tmp = tempfile::tempdir().unwrap();
    let all: Vec<String> = odd_names().into_iter().chain(long_names()).collect();
    round_trip(
        &server,
        &all,
        &format!("{}/local/", tmp.path().display()),
        None,
    );
    round_trip(
        &server,
        &all,
        &format!("file://{}/filestore/", tmp.path().display()),
        None,
    );
    if let Some(garage) = strata_testkit::garage::start_or_skip() {
        let store = strata_store::Store::open(&garage.url(""), &garage.store_config()).unwrap();
        let bucket = garage.url("").bucket().to_string();
        round_trip(
            &garage,
            &all,
            &format!("s3://{bucket}/odd/up/"),
            Some((&store, "odd/up")),
        );
    }
}

/// A copy that fails part way (here: a directory stands where one file must go) removes its
/// temporary files, including those of the files it was copying alongside.
#[test]
fn a_failed_copy_leaves_no_temporary_files() {
    let server = S3Server::start();
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| (format!("f{i}"), data::bytes(i, 3 << 20)))
        .collect();
    put_all(&server, "fail/src", &files);
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("dst");
    std::fs::create_dir_all(dst.join("f3").join("occupied")).unwrap();
    let out = cp_r(
        &server,
        "s3://strata-test/fail/src/",
        &format!("{}/", dst.display()),
    );
    assert!(!out.status.success(), "f3 cannot be written");
    assert!(stderr(&out).contains("f3"), "{}", stderr(&out));
    no_temporaries(&dst);
}

/// Fault 5: one key with a newline failed a whole `ls` (`Encountered illegal character
/// sequence`), the same for a local file name; a bad entry is now named (escaped) and
/// skipped, the rest proceeds, and the exit code (8) says some were skipped.
#[test]
fn one_bad_name_is_skipped_and_named_and_the_rest_proceeds() {
    let server = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("good-1"), b"one").unwrap();
    std::fs::write(src.join("new\nline"), b"bad").unwrap();
    std::fs::write(src.join("good-2"), b"two").unwrap();
    // Local: ls and cp -r.
    let out = run(&server, &["ls", &format!("{}/", src.display())]);
    assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("good-1") && text.contains("good-2"), "{text}");
    assert!(
        stderr(&out).contains(r#"new\nline"#),
        "named, escaped: {}",
        stderr(&out)
    );
    let out = cp_r(
        &server,
        &format!("{}/", src.display()),
        "s3://strata-test/bad/up/",
    );
    assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    assert!(stderr(&out).contains(r#"new\nline"#), "{}", stderr(&out));
    // S3: a key with a newline (placed in the server's own directory, as another client
    // would have written it), beside the two good ones.
    let bucket_dir = server.root_dir().join("strata-test").join("bad").join("up");
    std::fs::write(bucket_dir.join("also\nbad"), b"bad").unwrap();
    for args in [
        vec!["ls", "s3://strata-test/bad/up/"],
        vec!["ls", "-r", "s3://strata-test/bad/"],
    ] {
        let out = run(&server, &args);
        assert_eq!(out.status.code(), Some(8), "{args:?}: {}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("good-1") && text.contains("good-2"),
            "{args:?}: {text}"
        );
        assert!(
            stderr(&out).contains(r#"also\nbad"#),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let back = tmp.path().join("back");
    let out = cp_r(
        &server,
        "s3://strata-test/bad/up/",
        &format!("{}/", back.display()),
    );
    assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    assert_eq!(tree(&back), ["good-1", "good-2"]);
    assert_eq!(std::fs::read(back.join("good-2")).unwrap(), b"two");
}

/// Fault 8: `cp -r` followed symbolic links (a link to /etc/passwd was uploaded; a link to /
/// walked /proc). Links are skipped with a warning by default; `--follow-symlinks` follows
/// them and reports a loop instead of walking it.
#[test]
fn symlinks_are_skipped_unless_followed_and_loops_are_not_walked() {
    let server = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d").join("real"), b"real").unwrap();
    let secret = tmp.path().join("outside-secret");
    std::fs::write(&secret, b"not yours").unwrap();
    std::os::unix::fs::symlink(&secret, src.join("to-secret")).unwrap();
    std::os::unix::fs::symlink("/", src.join("to-root")).unwrap();
    std::os::unix::fs::symlink(&src, src.join("d").join("loop")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("nowhere"), src.join("dangling")).unwrap();
    let out = cp_r(
        &server,
        &format!("{}/", src.display()),
        "s3://strata-test/links/a/",
    );
    assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    for name in ["to-secret", "to-root", "loop", "dangling"] {
        assert!(
            stderr(&out).contains(name) && stderr(&out).contains("symbolic link"),
            "{name}: {}",
            stderr(&out)
        );
    }
    let listed = ok(&run(&server, &["ls", "-r", "s3://strata-test/links/a/"]));
    assert!(
        listed.contains("d/real") && !listed.contains("secret") && !listed.contains("etc"),
        "{listed}"
    );

    // Followed: the file link's bytes are copied; the loop is named, not walked; / is
    // left out of this test (it would be walked, as asked).
    std::fs::remove_file(src.join("to-root")).unwrap();
    let out = run(
        &server,
        &[
            "-q",
            "cp",
            "-r",
            "--follow-symlinks",
            &format!("{}/", src.display()),
            "s3://strata-test/links/b/",
        ],
    );
    assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    assert!(stderr(&out).contains("loop"), "{}", stderr(&out));
    assert!(stderr(&out).contains("dangling"), "{}", stderr(&out));
    let back = tmp.path().join("back");
    let out = cp_r(
        &server,
        "s3://strata-test/links/b/",
        &format!("{}/", back.display()),
    );
    ok(&out);
    assert_eq!(tree(&back), ["d/real", "to-secret"]);
    assert_eq!(std::fs::read(back.join("to-secret")).unwrap(), b"not yours");
}

/// Fault 6: a save killed after its local copy left the step `complete local` for good.
/// The next save drains such steps first, in order, and so does `ckpt sync`; steps older
/// than the store's newest are left alone.
#[test]
fn checkpoints_that_never_drained_are_drained_by_the_next_checkpointer() {
    let server = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("nvme");
    let l = local.display().to_string();
    let root = "s3://strata-test/undrained/job";
    let args_for = |step: u64| -> Vec<String> {
        let f = tmp.path().join(format!("m.{step}"));
        std::fs::write(&f, data::bytes(step, 200_003)).unwrap();
        [
            "-q",
            "ckpt",
            "save",
            root,
            "--local",
            &l,
            "--local-keep-last",
            "10",
            "--step",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([step.to_string(), format!("model.bin={}", f.display())])
        .collect()
    };
    let save = |step: u64| {
        let args = args_for(step);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(&run(&server, &args));
    };
    // Killed (SIGKILL) once its local copy is durable: the drain waits out a long jitter.
    let killed = |step: u64| {
        let mut args = args_for(step);
        args.insert(3, "--jitter".into());
        args.insert(4, "1h".into());
        let mut child = common::command(
            &server,
            &server.endpoint(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .spawn()
        .unwrap();
        let manifest = local.join(format!("step-{step:012}")).join("MANIFEST.json");
        let t = std::time::Instant::now();
        while !manifest.exists() {
            assert!(t.elapsed().as_secs() < 60, "no local copy of step {step}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
    };
    let states = || -> Vec<(u64, String)> {
        ok(&run(&server, &["ckpt", "ls", root, "--local", &l]))
            .lines()
            .filter_map(|line| {
                let mut w = line.split_whitespace();
                let step = w.next()?.parse().ok()?;
                let _state = w.next()?;
                Some((step, w.next()?.to_string()))
            })
            .collect()
    };
    save(1);
    killed(2);
    killed(3);
    assert_eq!(
        states(),
        [
            (1, "local+remote".into()),
            (2, "local".into()),
            (3, "local".into())
        ]
    );
    let out = ok(&run(&server, &["ckpt", "sync", root, "--local", &l]));
    assert!(
        out.find("step 2").unwrap() < out.find("step 3").unwrap(),
        "in order: {out}"
    );
    // (Local retention keeps the newest two drained ones there.)
    assert_eq!(
        states(),
        [
            (1, "remote".into()),
            (2, "local+remote".into()),
            (3, "local+remote".into())
        ]
    );
    // From the store alone, bit-exact.
    let out_dir = tmp.path().join("r3");
    ok(&run(
        &server,
        &["ckpt", "restore", root, "3", &out_dir.display().to_string()],
    ));
    assert_eq!(
        std::fs::read(out_dir.join("rank-00000/model.bin")).unwrap(),
        data::bytes(3, 200_003)
    );
    let out = ok(&run(&server, &["ckpt", "sync", root, "--local", &l]));
    assert!(out.contains("nothing to drain"), "{out}");

    // The next save drains an undrained step before its own.
    killed(4);
    save(5);
    assert!(
        states().iter().all(|s| s.1.contains("remote")),
        "{:?}",
        states()
    );
    // A step older than the store's newest is superseded: left alone.
    save(7);
    killed(6);
    let out = ok(&run(&server, &["ckpt", "sync", root, "--local", &l]));
    assert!(out.contains("nothing to drain"), "{out}");
}

/// Fault 9, odd values and debris: capability probes under the checkpoint root (collected
/// by gc, never at the bucket's root); a step too large to be one; `s3:/x` is a mistyped
/// URL, not a local file; zero counts; one message per drain failure; why files and tar
/// members are left out of a dataset.
#[test]
fn odd_values_are_refused_and_debris_is_collected() {
    let server = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("a.bin");
    std::fs::write(&f, data::bytes(1, 10_000)).unwrap();
    let file = format!("a.bin={}", f.display());
    let root = "s3://strata-test/debris/job";
    let store = strata_store::Store::open(&server.url(""), &server.store_config()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The admission probe (auto) leaves nothing at the bucket's root; a killed probe's
    // object under the root is collected by gc.
    ok(&run(
        &server,
        &[
            "-q",
            "ckpt",
            "save",
            root,
            "--step",
            "1",
            "--admission",
            "auto",
            &file,
        ],
    ));
    assert!(rt.block_on(store.list(".strata-probe")).unwrap().is_empty());
    rt.block_on(store.put(
        "debris/job/.strata-probe/conditional-1-00",
        bytes::Bytes::from_static(b"x"),
    ))
    .unwrap();
    ok(&run(&server, &["ckpt", "gc", root, "--older-than", "0s"]));
    assert!(
        rt.block_on(store.list("debris/job/.strata-probe"))
            .unwrap()
            .is_empty()
    );
    // A step no training reaches (u64::MAX) is refused before anything is written.
    let out = run(
        &server,
        &[
            "ckpt",
            "save",
            root,
            "--step",
            "18446744073709551615",
            &file,
        ],
    );
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("largest step"), "{}", stderr(&out));
    // `s3:/x` is not the local file ./s3:/x.
    let out = run(
        &server,
        &["cp", "s3:/x", &tmp.path().join("y").display().to_string()],
    );
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("s3://"), "{}", stderr(&out));
    // Zero counts.
    for args in [
        vec![
            "ckpt",
            "save",
            root,
            "--step",
            "2",
            "--world",
            "0",
            file.as_str(),
        ],
        vec![
            "pack",
            "/nonexistent",
            "s3://strata-test/p/",
            "--parallel",
            "0",
        ],
        vec!["--concurrency", "0", "ls", "s3://strata-test/"],
    ] {
        let out = run(&server, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("at least 1"), "{}", stderr(&out));
    }
    // A failed drain is said once.
    let out = common::command(
        &server,
        "http://127.0.0.1:1",
        &["ckpt", "save", root, "--step", "3", &file],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).matches("drain failed").count(),
        1,
        "{}",
        stderr(&out)
    );
    // pack: a hidden file is called hidden, not "without an extension".
    let src = tmp.path().join("samples");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("s1.txt"), b"one").unwrap();
    std::fs::write(src.join(".hidden.txt"), b"h").unwrap();
    std::fs::write(src.join("noext"), b"n").unwrap();
    let out = run(
        &server,
        &[
            "pack",
            &format!("{}/", src.display()),
            "s3://strata-test/packed/",
        ],
    );
    ok(&out);
    assert!(
        stderr(&out).contains(r#"".hidden.txt" (hidden"#),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(r#""noext" (no extension)"#),
        "{}",
        stderr(&out)
    );
    // index: members without a sample key and links are counted and named.
    std::os::unix::fs::symlink("s1.txt", src.join("link.txt")).unwrap();
    let tar = tmp.path().join("shard-000000.tar");
    let st = std::process::Command::new("tar")
        .args([
            "cf",
            &tar.display().to_string(),
            "-C",
            &src.display().to_string(),
            "s1.txt",
            "noext",
            "link.txt",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    ok(&run(
        &server,
        &[
            "-q",
            "cp",
            &tar.display().to_string(),
            "s3://strata-test/tars/",
        ],
    ));
    let out = run(&server, &["index", "s3://strata-test/tars/"]);
    ok(&out);
    let err = stderr(&out);
    assert!(err.contains("2 tar member(s) left out"), "{err}");
    assert!(
        err.contains(r#""noext" (no extension)"#) && err.contains(r#""link.txt" (a symbolic link"#),
        "{err}"
    );
}
