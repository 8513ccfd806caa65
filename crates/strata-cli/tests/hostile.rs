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
