//! `strata models` as users run it: four processes pulling one model at once download it
//! once; a pull killed with SIGKILL resumes; inspect, ls, verify and rm; hostile headers.

mod common;

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use common::{command, ok};
use strata_store::Store;
use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, S3Server};

fn upload(server: &dyn S3Endpoint, prefix: &str, shard_bytes: u64) -> Vec<(String, Vec<u8>)> {
    let files = vec![
        ("config.json".to_string(), br#"{"layers": 8}"#.to_vec()),
        (
            "model-00001-of-00002.safetensors".to_string(),
            strata_models::synth::shard(1, 0, shard_bytes),
        ),
        (
            "model-00002-of-00002.safetensors".to_string(),
            strata_models::synth::shard(2, 4, shard_bytes),
        ),
    ];
    let store = Store::open(&server.url(""), &server.store_config()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for (n, b) in &files {
            store
                .put(&format!("{prefix}/{n}"), Bytes::from(b.clone()))
                .await
                .unwrap();
        }
    });
    files
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).unwrap()
}

#[test]
fn four_processes_pull_once_and_every_command_works() {
    let server = S3Server::start();
    four_processes(&server);
}

#[test]
fn four_processes_pull_once_on_garage() {
    if let Some(server) = strata_testkit::garage::start_or_skip() {
        four_processes(&server);
    }
}

fn four_processes(server: &dyn S3Endpoint) {
    let emu = LinkEmulator::start(server.addr(), LinkProfile::local());
    let files = upload(server, "models/tiny", 8 << 20);
    let total: u64 = files.iter().map(|f| f.1.len() as u64).sum();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let c = cache.to_str().unwrap();
    let url = "s3://strata-test/models/tiny/";

    // inspect reads only the headers.
    let before = emu.stats().bytes_down;
    let out = ok(
        &command(server, &emu.endpoint(), &["models", "inspect", url])
            .output()
            .unwrap(),
    );
    assert!(
        out.contains("layers.0.attn.weight") && out.contains("BF16"),
        "{out}"
    );
    assert!(emu.stats().bytes_down - before < 64 << 10);

    let before = emu.stats().bytes_down;
    let children: Vec<_> = (0..4)
        .map(|_| {
            command(
                server,
                &emu.endpoint(),
                &["--cache", c, "models", "pull", url, "--json"],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let reports: Vec<serde_json::Value> = children
        .into_iter()
        .map(|ch| json(&ch.wait_with_output().unwrap()))
        .collect();
    let down = emu.stats().bytes_down - before;
    assert!(
        down < total + total / 20,
        "four pulls moved {down} bytes for a {total}-byte model"
    );
    assert_eq!(
        reports
            .iter()
            .filter(|r| r["fetched_bytes"].as_u64() > Some(0))
            .count(),
        1,
        "{reports:?}"
    );
    let dir = reports[0]["dir"].as_str().unwrap().to_string();
    assert!(reports.iter().all(|r| r["dir"] == dir.as_str()));
    for (n, b) in &files {
        assert!(std::fs::read(std::path::Path::new(&dir).join(n)).unwrap() == *b);
    }

    let ls = json(
        &command(
            server,
            &emu.endpoint(),
            &["--cache", c, "models", "ls", "--json"],
        )
        .output()
        .unwrap(),
    );
    assert_eq!(ls.as_array().unwrap().len(), 1, "{ls}");
    let v = ok(&command(
        server,
        &emu.endpoint(),
        &["--cache", c, "models", "verify", url],
    )
    .output()
    .unwrap());
    assert!(v.contains("intact"), "{v}");
    // Damage a file: verify fails and says which.
    let shard = std::path::Path::new(&dir).join("model-00002-of-00002.safetensors");
    let mut b = std::fs::read(&shard).unwrap();
    let at = b.len() - 10;
    b[at] ^= 0x40;
    std::fs::write(&shard, b).unwrap();
    let out = command(
        server,
        &emu.endpoint(),
        &["--cache", c, "models", "verify", &dir],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("model-00002-of-00002"));
    ok(&command(
        server,
        &emu.endpoint(),
        &["--cache", c, "models", "rm", url],
    )
    .output()
    .unwrap());
    assert!(!std::path::Path::new(&dir).exists());
    let out = command(
        server,
        &emu.endpoint(),
        &["--cache", c, "models", "verify", url],
    )
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// SIGKILL in the middle of a pull, then pull again: the second pull keeps what the first
/// wrote, the model is bit-exact, and no partial model was ever listed.
#[test]
fn a_killed_pull_resumes() {
    let server = S3Server::start();
    let mut p = LinkProfile::local();
    p.total_bytes_per_sec = Some(40 << 20);
    let emu = LinkEmulator::start(server.addr(), p);
    let files = upload(&server, "m", 24 << 20);
    let total: u64 = files.iter().map(|f| f.1.len() as u64).sum();
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path().join("cache");
    let c = c.to_str().unwrap();
    let url = "s3://strata-test/m/";
    // 4 reads of 1 MiB in flight: parts complete steadily before the kill.
    let mut child = command(
        &server,
        &emu.endpoint(),
        &[
            "--cache",
            c,
            "--part-size",
            "1MiB",
            "models",
            "pull",
            url,
            "--parts-in-flight",
            "4",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    // Kill once the pull has journaled a few segments (however slow the machine is).
    let journaled = || -> usize {
        let partial = std::path::Path::new(c).join("models/.partial");
        std::fs::read_dir(&partial)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|d| std::fs::read_to_string(d.path().join(".strata-journal")).ok())
            .map(|j| j.lines().count())
            .sum()
    };
    let t = std::time::Instant::now();
    while journaled() < 6 && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the pull ended before the kill"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let ls = json(
        &command(
            &server,
            &emu.endpoint(),
            &["--cache", c, "models", "ls", "--json"],
        )
        .output()
        .unwrap(),
    );
    assert!(
        ls.as_array().unwrap().is_empty(),
        "a partial model is listed: {ls}"
    );
    let r = json(
        &command(
            &server,
            &emu.endpoint(),
            &["--cache", c, "models", "pull", url, "--json"],
        )
        .output()
        .unwrap(),
    );
    let resumed = r["resumed_bytes"].as_u64().unwrap();
    assert!(resumed > 4 << 20, "{r}");
    assert!(
        r["fetched_bytes"].as_u64().unwrap() < total - resumed / 2,
        "{r}"
    );
    let dir = std::path::Path::new(r["dir"].as_str().unwrap());
    for (n, b) in &files {
        assert!(
            std::fs::read(dir.join(n)).unwrap() == *b,
            "{n} differs after resume"
        );
    }
}

#[test]
fn hostile_headers_fail_with_the_file_and_the_cause() {
    let server = S3Server::start();
    let store = Store::open(&server.url(""), &server.store_config()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let j = br#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#;
        let mut f = (j.len() as u64).to_le_bytes().to_vec();
        f.extend_from_slice(j);
        f.extend_from_slice(&[0; 12]);
        store.put("evil/model.safetensors", Bytes::from(f)).await.unwrap();
    });
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path().to_str().unwrap();
    for args in [
        vec!["--cache", c, "models", "pull", "s3://strata-test/evil/"],
        vec!["models", "inspect", "s3://strata-test/evil/"],
    ] {
        let out = command(&server, &server.endpoint(), &args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(6), "{err}");
        assert!(
            err.contains("evil/model.safetensors") && err.contains("overlap"),
            "{err}"
        );
    }
    let out = command(
        &server,
        &server.endpoint(),
        &["--cache", c, "models", "pull", "s3://strata-test/nothing/"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(3));
}
