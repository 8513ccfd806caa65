//! `strata pack`, `strata index` and `strata dataset` as a user runs them: a local directory
//! packed into the S3 server, read back shuffled and resumed on another world size, and bad
//! input answered with one line and exit code 6.

mod common;

use std::collections::BTreeSet;
use std::process::Output;

use common::{ok, run};
use strata_testkit::{S3Endpoint, S3Server, data};

fn strata(server: &S3Server, args: &[&str]) -> Output {
    run(server, args)
}

fn keys(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| l.split('\t').nth(1).unwrap().to_string())
        .collect()
}

#[test]
fn pack_read_shuffled_and_resume_on_another_world_size() {
    let server = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    std::fs::create_dir_all(raw.join("img")).unwrap();
    for i in 0..40 {
        std::fs::write(
            raw.join(format!("img/{i:03}.jpg")),
            data::bytes(i, 2000 + i as usize * 37),
        )
        .unwrap();
        std::fs::write(raw.join(format!("img/{i:03}.cls")), format!("{}", i % 3)).unwrap();
    }
    let url = server.url("ds/train/").to_string();
    let out = ok(&strata(
        &server,
        &[
            "pack",
            raw.to_str().unwrap(),
            &url,
            "--shard-size",
            "16KiB",
            "-q",
        ],
    ));
    assert!(out.contains("packed 40 samples"), "{out}");
    let info = ok(&strata(&server, &["dataset", "info", &url]));
    assert!(info.contains("40 samples"), "{info}");
    // Rank 0 and 1 of 2, after 10 positions were consumed by a run of 5 ranks … read the rest.
    let full = keys(&ok(&strata(
        &server,
        &["dataset", "read", &url, "--seed", "7", "--window", "8"],
    )));
    assert_eq!(full.len(), 40);
    assert_eq!(full.iter().collect::<BTreeSet<_>>().len(), 40);
    let mut rest = Vec::new();
    for rank in ["0", "1"] {
        rest.extend(keys(&ok(&strata(
            &server,
            &[
                "dataset",
                "read",
                &url,
                "--seed",
                "7",
                "--window",
                "8",
                "--ranks",
                "2",
                "--rank",
                rank,
                "--consumed",
                "10",
            ],
        ))));
    }
    assert_eq!(rest.len(), 30);
    let rest: BTreeSet<_> = rest.into_iter().collect();
    let want: BTreeSet<_> = full[10..].iter().cloned().collect();
    assert_eq!(
        rest, want,
        "the resumed run reads exactly the rest of the epoch"
    );
    // Plain streaming without an index reads every sample in archive order.
    let streamed = ok(&strata(&server, &["dataset", "read", &url, "--stream"]));
    assert_eq!(streamed.lines().count(), 40);
    assert!(
        streamed.lines().next().unwrap().contains("img/000"),
        "{streamed}"
    );
    // Re-indexing the shards gives the same dataset.
    ok(&strata(&server, &["index", &url, "-q"]));
    let again = keys(&ok(&strata(
        &server,
        &["dataset", "read", &url, "--seed", "7", "--window", "8"],
    )));
    assert_eq!(again, full);
}

#[test]
fn bad_dataset_input_is_one_line_and_exit_code_6() {
    let server = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let url = server.url("nothing/").to_string();
    for args in [
        vec!["dataset", "read", url.as_str()],
        vec!["pack", tmp.path().to_str().unwrap(), url.as_str()],
        vec!["dataset", "read", url.as_str(), "--shuffle", "sideways"],
    ] {
        let out = strata(&server, &args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            matches!(out.status.code(), Some(6) | Some(1)),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}
