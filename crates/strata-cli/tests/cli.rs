//! The `strata` binary as a user runs it, against the in-process S3 server: transfers both
//! ways, listings, JSON output, and one clear line plus a documented exit code on bad input.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use strata_testkit::{S3Endpoint, S3Server, data};

fn strata(server: Option<&S3Server>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.args(args)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("STRATA_CONFIG")
        // The host disk may be nearly full; these tests are not about the floor.
        .env("STRATA_CACHE_MIN_FREE_FRACTION", "0")
        .stdin(Stdio::null());
    if let Some(s) = server {
        cmd.env("AWS_ENDPOINT_URL", s.endpoint())
            .env("AWS_ACCESS_KEY_ID", s.access_key())
            .env("AWS_SECRET_ACCESS_KEY", s.secret_key())
            .env("AWS_REGION", "us-east-1");
    }
    cmd.output().expect("run strata")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(out: &Output, code: i32) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    err
}

fn write_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
    data::write_file(&dir.join("big.bin"), 1, (20 << 20) + 5).unwrap();
    std::fs::write(dir.join("a.txt"), b"hello").unwrap();
    std::fs::write(dir.join("sub/b.txt"), b"world").unwrap();
    std::fs::write(dir.join("sub/deeper/c.bin"), data::bytes(3, 70_000)).unwrap();
}

#[test]
fn round_trip_through_s3_with_listing_and_json() {
    let server = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_tree(&src);
    let s = Some(&server);
    let out = ok(&strata(
        s,
        &[
            "cp",
            "-r",
            src.to_str().unwrap(),
            "s3://strata-test/tree/",
            "--json",
            "--part-size",
            "1MiB",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["files"], 4);
    assert_eq!(v["bytes"], (20 << 20) + 5 + 5 + 5 + 70_000);

    let ls = ok(&strata(s, &["ls", "s3://strata-test/tree/"]));
    assert!(ls.contains("PRE") && ls.contains("tree/sub/"), "{ls}");
    assert!(
        ls.contains("tree/a.txt") && ls.contains("tree/big.bin"),
        "{ls}"
    );
    let lsr = ok(&strata(s, &["ls", "-r", "-H", "s3://strata-test/tree"]));
    assert!(
        lsr.contains("tree/sub/deeper/c.bin") && lsr.contains("20.0 MiB"),
        "{lsr}"
    );
    let du: serde_json::Value =
        serde_json::from_str(&ok(&strata(s, &["du", "--json", "s3://strata-test/tree/"]))).unwrap();
    assert_eq!(du["objects"], 4);
    let stat: serde_json::Value = serde_json::from_str(&ok(&strata(
        s,
        &["stat", "--json", "s3://strata-test/tree/a.txt"],
    )))
    .unwrap();
    assert_eq!(stat["size"], 5);
    assert_eq!(
        ok(&strata(s, &["cat", "s3://strata-test/tree/sub/b.txt"])),
        "world"
    );

    // Remote to remote, then back down, and compare every file.
    ok(&strata(
        s,
        &[
            "cp",
            "-r",
            "s3://strata-test/tree/",
            "s3://strata-test/copy/",
        ],
    ));
    let back = tmp.path().join("back");
    ok(&strata(
        s,
        &["cp", "-r", "s3://strata-test/copy/", back.to_str().unwrap()],
    ));
    for f in ["big.bin", "a.txt", "sub/b.txt", "sub/deeper/c.bin"] {
        assert_eq!(
            std::fs::read(src.join(f)).unwrap(),
            std::fs::read(back.join(f)).unwrap(),
            "{f}"
        );
    }
    // A single object into a directory keeps its name.
    ok(&strata(
        s,
        &[
            "cp",
            "s3://strata-test/tree/a.txt",
            tmp.path().to_str().unwrap(),
        ],
    ));
    assert_eq!(std::fs::read(tmp.path().join("a.txt")).unwrap(), b"hello");

    // rm -r without a terminal and without --yes refuses and deletes nothing.
    let err = fails(&strata(s, &["rm", "-r", "s3://strata-test/copy/"]), 1);
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&ok(&strata(
            s,
            &["du", "--json", "s3://strata-test/copy/"]
        )))
        .unwrap()["objects"],
        4
    );
    ok(&strata(s, &["rm", "-r", "--yes", "s3://strata-test/copy/"]));
    fails(&strata(s, &["ls", "s3://strata-test/copy/x"]), 3);
}

#[test]
fn local_to_local_copy_is_atomic_and_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_tree(&src);
    let dst = tmp.path().join("dst");
    ok(&strata(
        None,
        &[
            "cp",
            "-r",
            src.to_str().unwrap(),
            &format!("file://{}/", dst.display()),
        ],
    ));
    assert_eq!(
        std::fs::read(src.join("big.bin")).unwrap(),
        std::fs::read(dst.join("big.bin")).unwrap()
    );
    let du = ok(&strata(None, &["du", dst.to_str().unwrap()]));
    assert!(
        du.starts_with(&format!("{}\t4 objects", (20 << 20) + 5 + 5 + 5 + 70_000)),
        "{du}"
    );
}

#[test]
fn bad_input_gets_one_clear_line_and_an_exit_code() {
    let server = S3Server::start();
    let s = Some(&server);
    let e = fails(&strata(s, &["stat", "s3://strata-test/missing"]), 3);
    assert!(
        e.contains("s3://strata-test/missing") && e.contains("no such object"),
        "{e}"
    );
    let e = fails(&strata(s, &["ls", "s3://no-such-bucket/"]), 3);
    assert!(e.contains("no such bucket"), "{e}");
    let e = fails(&strata(s, &["cp", "ftp://x/y", "/tmp/z"]), 6);
    assert!(e.contains("unsupported scheme"), "{e}");
    let e = fails(&strata(s, &["cp", "s3://strata-test/../etc", "/tmp/z"]), 6);
    assert!(e.contains("'..'") || e.contains("\"..\""), "{e}");
    let e = fails(&strata(s, &["cp", "s3://strata-test/", "/tmp/z"]), 1);
    assert!(e.contains("use -r"), "{e}");
    let e = fails(
        &strata(s, &["ls", "s3://strata-test/", "--part-size", "lots"]),
        6,
    );
    assert!(e.contains("part_size"), "{e}");

    // Bad credentials: exit 4, and neither secret appears anywhere.
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["ls", "s3://strata-test/"])
        .env("AWS_ENDPOINT_URL", server.endpoint())
        .env("AWS_ACCESS_KEY_ID", server.access_key())
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret-0123456789abcdef")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let e = fails(&out, 4);
    assert!(e.contains("credentials"), "{e}");
    assert!(
        !e.contains("not-the-secret") && !e.contains(server.secret_key()),
        "{e}"
    );

    // Unreachable endpoint: exit 5, fast.
    let t = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["ls", "s3://b/"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let e = fails(&out, 5);
    assert!(e.contains("cannot connect"), "{e}");
    assert!(t.elapsed().as_secs() < 10);

    // A local file that does not exist.
    let e = fails(
        &strata(None, &["cp", "/nonexistent/strata/file", "/tmp/x"]),
        3,
    );
    assert!(e.contains("/nonexistent/strata/file"), "{e}");
}

#[test]
fn json_errors_are_machine_readable() {
    let out = strata(None, &["stat", "/nonexistent/strata/file", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["exit_code"], 3);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/strata/file")
    );
}

/// A reader that stops early (`strata … | head -1`) ends the command quietly, and a closed
/// socket elsewhere does not kill it: SIGPIPE stays ignored.
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    use std::io::Read;
    let tmp = tempfile::tempdir().unwrap();
    for i in 0..2000 {
        std::fs::write(tmp.path().join(format!("f{i:05}.txt")), b"x").unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["ls", "-r", tmp.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    out.read_exact(&mut first).unwrap();
    drop(out);
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        status.code() == Some(141) || status.success(),
        "{status:?}: {err}"
    );
}

#[test]
fn a_config_file_that_does_not_parse_never_prints_its_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, text) in [
        (
            "unterminated",
            "[s3]\nsecret_access_key = \"hunter2-very-secret\n",
        ),
        ("wrong-type", "[s3]\nsecret_access_key = 4242424242\n"),
        (
            "misspelt",
            "[s3]\nsecret_acces_key = \"hunter2-very-secret\"\n",
        ),
        ("token", "[daemon]\ntoken = 12345678901234567890123\n"),
    ] {
        let f = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&f, text).unwrap();
        let out = strata(None, &["--config", f.to_str().unwrap(), "ls", "/tmp"]);
        let err = fails(&out, 6);
        assert!(
            err.contains(&format!("{name}.toml")) && err.contains("line 2"),
            "{err}"
        );
        for secret in ["hunter2", "4242424242", "12345678901234567890123"] {
            assert!(!err.contains(secret), "{name}: {err}");
        }
    }
}
