//! A real multi-node object store losing a node (issue #21): a three-node Garage cluster
//! (replication factor 3) with one node killed with SIGKILL and restarted while `strata`
//! reads a shuffled epoch through its cache, drains a checkpoint, and pulls a model. Reads
//! and saves go on through the surviving nodes, or fail with a clear error and succeed on
//! retry; no wrong byte is delivered (every sample, chunk and file is checked against its
//! CRC32C); no committed checkpoint is lost; the restarted node serves everything.

mod common;

use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::{command, ok};
use strata_testkit::garage_cluster::{self, GarageCluster};
use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, data};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `strata ARGS` against the cluster at `endpoint`, started in the background.
fn spawn(c: &GarageCluster, endpoint: &str, args: &[&str]) -> Child {
    command(c, endpoint, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Kills node `node` after `after`, while `child` runs, and starts it again once `child`
/// has run `down` more (or has ended); returns the child's output.
fn kill_during(
    c: &mut GarageCluster,
    node: usize,
    child: Child,
    after: Duration,
    down: Duration,
) -> Output {
    std::thread::sleep(after);
    let mut child = child;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the command ended before node {node} was killed: the kill must land mid-way"
    );
    c.kill(node);
    eprintln!("node {node} killed");
    let t = Instant::now();
    while t.elapsed() < down {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    c.restart(node).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `args` until it succeeds, at most three times (a failure must be a clear error,
/// not a panic or a silent wrong result); returns the last output.
fn until_ok(c: &GarageCluster, endpoint: &str, args: &[&str], first: Output) -> Output {
    let mut out = first;
    for _ in 0..3 {
        if out.status.success() {
            return out;
        }
        eprintln!("failed once, as it may: {}", stderr(&out).trim_end());
        let err = stderr(&out);
        assert!(
            !err.contains("panicked") && err.contains("strata: error:"),
            "a failure is one clear error: {err}"
        );
        out = command(c, endpoint, args).output().unwrap();
    }
    out
}

#[test]
fn a_node_lost_and_restarted_loses_nothing() {
    let Some(mut c) = garage_cluster::start_or_skip() else {
        return;
    };
    // The link emulator in front of node 0 stretches each operation over seconds, so the
    // kill lands in the middle of it.
    let emu = LinkEmulator::start(c.addr(), LinkProfile::s3());
    let ep = emu.endpoint();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let cache_s = cache.display().to_string();

    // (b) A checkpoint drain loses node 2 (not the one the client talks to): the save goes
    // on with two of three replicas.
    let model = tmp.path().join("model.bin");
    std::fs::write(&model, data::bytes(7, 96 << 20)).unwrap();
    let item = format!("model.bin={}", model.display());
    let root = "s3://strata-test/cluster/ckpt";
    let save = ["-q", "ckpt", "save", root, "--step", "1", item.as_str()];
    let child = spawn(&c, &ep, &save);
    let out = kill_during(
        &mut c,
        2,
        child,
        Duration::from_millis(300),
        Duration::from_secs(2),
    );
    ok(&until_ok(&c, &ep, &save, out));
    // Node 0, the client's own, lost mid-drain: a clear error, then a retry succeeds.
    let save2 = ["-q", "ckpt", "save", root, "--step", "2", item.as_str()];
    let child = spawn(&c, &ep, &save2);
    let out = kill_during(
        &mut c,
        0,
        child,
        Duration::from_millis(300),
        Duration::from_secs(3),
    );
    ok(&until_ok(&c, &ep, &save2, out));
    let listed = ok(&command(&c, &ep, &["ckpt", "ls", root]).output().unwrap());
    assert!(listed.contains("complete"), "{listed}");
    for step in ["1", "2"] {
        let dir = tmp.path().join(format!("restore-{step}"));
        ok(&command(
            &c,
            &c.endpoint_of(2),
            &["ckpt", "restore", root, step, &dir.display().to_string()],
        )
        .output()
        .unwrap());
        assert!(
            std::fs::read(dir.join("rank-00000/model.bin")).unwrap() == data::bytes(7, 96 << 20),
            "step {step} restored bit-exact through the restarted node"
        );
    }

    // (a) A shuffled epoch through the cache loses node 1.
    let samples = tmp.path().join("samples");
    std::fs::create_dir_all(&samples).unwrap();
    let n = 3000;
    for i in 0..n {
        std::fs::write(
            samples.join(format!("s{i:05}.bin")),
            data::bytes(i, 20_000 + i as usize),
        )
        .unwrap();
    }
    ok(&command(
        &c,
        &ep,
        &[
            "-q",
            "pack",
            &format!("{}/", samples.display()),
            "s3://strata-test/cluster/ds/",
            "--shard-size",
            "4MiB",
        ],
    )
    .output()
    .unwrap());
    let read = [
        "--cache",
        cache_s.as_str(),
        "dataset",
        "read",
        "s3://strata-test/cluster/ds/",
        "--shuffle",
        "global",
        "--drop-last",
    ];
    let child = spawn(&c, &ep, &read);
    let out = kill_during(
        &mut c,
        1,
        child,
        Duration::from_millis(200),
        Duration::from_secs(2),
    );
    let out = until_ok(&c, &ep, &read, out);
    let text = ok(&out);
    let mut keys: Vec<&str> = text.lines().filter_map(|l| l.split('\t').nth(1)).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), n as usize, "every sample once");
    assert!(
        stderr(&out).contains("0 skipped as corrupt"),
        "{}",
        stderr(&out)
    );

    // (c) A model pull loses node 2.
    let shard = strata_models::synth::shard(3, 0, 48 << 20);
    let f = tmp.path().join("model.safetensors");
    std::fs::write(&f, &shard).unwrap();
    ok(&command(
        &c,
        &ep,
        &[
            "-q",
            "cp",
            &f.display().to_string(),
            "s3://strata-test/cluster/models/m/",
        ],
    )
    .output()
    .unwrap());
    let pull = [
        "--cache",
        cache_s.as_str(),
        "models",
        "pull",
        "s3://strata-test/cluster/models/m/",
    ];
    let child = spawn(&c, &ep, &pull);
    let out = kill_during(
        &mut c,
        2,
        child,
        Duration::from_millis(200),
        Duration::from_secs(2),
    );
    ok(&until_ok(&c, &ep, &pull, out));
    let verified = ok(&command(
        &c,
        &ep,
        &[
            "--cache",
            cache_s.as_str(),
            "models",
            "verify",
            "s3://strata-test/cluster/models/m/",
        ],
    )
    .output()
    .unwrap());
    assert!(!verified.contains("CRC32C"), "{verified}");

    // Every node serves everything written while one of them was down.
    for i in 0..garage_cluster::NODES {
        assert!(c.is_up(i), "node {i} runs");
        let out = ok(&command(
            &c,
            &c.endpoint_of(i),
            &["ls", "-r", "s3://strata-test/cluster/"],
        )
        .output()
        .unwrap());
        assert!(
            out.contains("model.safetensors") && out.contains("MANIFEST.json"),
            "node {i}: {out}"
        );
    }
}
