//! Faults a hostile user found (issue #21), each as the user ran into it, through the
//! `strata` binary: every test here failed before its fix.

mod common;

use std::path::Path;
use std::process::Output;

use common::{ok, run};

use strata_testkit::{S3Server, data};

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
