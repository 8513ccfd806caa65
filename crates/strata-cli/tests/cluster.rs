//! A real multi-node object store losing a node (issue #21): a three-node Garage cluster
//! (replication factor 3) with one node killed with SIGKILL and restarted while `strata`
//! reads a shuffled epoch through its cache, drains a checkpoint, and pulls a model. Reads
//! and saves go on through the surviving nodes, or fail with a clear error and succeed on
//! retry; no wrong byte is delivered (every sample, chunk and file is checked against its
//! CRC32C); no committed checkpoint is lost; the restarted node serves everything.

mod common;

use std::path::Path;
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

    checkpoints(&mut c, &ep, tmp.path());
    epoch(&mut c, &ep, tmp.path(), &cache_s);
    models(&mut c, &ep, tmp.path(), &cache_s);
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

/// (b) A checkpoint drain loses node 2 (not the one the client talks to): the save goes on
/// with two of three replicas. Then node 0, the client's own: a clear error or a retry
/// that covers the restart. Both restore bit-exact through the restarted node 2.
fn checkpoints(c: &mut GarageCluster, ep: &str, tmp: &Path) {
    let model = tmp.join("model.bin");
    std::fs::write(&model, data::bytes(7, 96 << 20)).unwrap();
    let item = format!("model.bin={}", model.display());
    let root = "s3://strata-test/cluster/ckpt";
    for (step, node) in [("1", 2), ("2", 0)] {
        let save = ["-q", "ckpt", "save", root, "--step", step, item.as_str()];
        let child = spawn(c, ep, &save);
        let out = kill_during(
            c,
            node,
            child,
            Duration::from_millis(300),
            Duration::from_secs(3),
        );
        ok(&until_ok(c, ep, &save, out));
    }
    let listed = ok(&command(c, ep, &["ckpt", "ls", root]).output().unwrap());
    assert_eq!(listed.matches("complete").count(), 2, "{listed}");
    for step in ["1", "2"] {
        let dir = tmp.join(format!("restore-{step}"));
        let args = ["ckpt", "restore", root, step, &dir.display().to_string()];
        ok(&command(c, &c.endpoint_of(2), &args).output().unwrap());
        assert!(
            std::fs::read(dir.join("rank-00000/model.bin")).unwrap() == data::bytes(7, 96 << 20),
            "step {step} restored bit-exact through the restarted node"
        );
    }
}

/// (a) A shuffled epoch through the cache loses node 1: every sample once, each checked
/// against its CRC32C by the reader.
fn epoch(c: &mut GarageCluster, ep: &str, tmp: &Path, cache: &str) {
    let samples = tmp.join("samples");
    std::fs::create_dir_all(&samples).unwrap();
    let n = 3000u64;
    for i in 0..n {
        let bytes = data::bytes(i, 20_000 + i as usize);
        std::fs::write(samples.join(format!("s{i:05}.bin")), bytes).unwrap();
    }
    let src = format!("{}/", samples.display());
    let args = [
        "-q",
        "pack",
        &src,
        "s3://strata-test/cluster/ds/",
        "--shard-size",
        "4MiB",
    ];
    ok(&command(c, ep, &args).output().unwrap());
    let read = [
        "--cache",
        cache,
        "dataset",
        "read",
        "s3://strata-test/cluster/ds/",
        "--shuffle",
        "global",
        "--drop-last",
    ];
    let child = spawn(c, ep, &read);
    let out = kill_during(
        c,
        1,
        child,
        Duration::from_millis(100),
        Duration::from_secs(2),
    );
    let out = until_ok(c, ep, &read, out);
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
}

/// (c) A model pull loses node 2; the pulled model verifies.
fn models(c: &mut GarageCluster, ep: &str, tmp: &Path, cache: &str) {
    let shard = strata_models::synth::shard(3, 0, 48 << 20);
    let f = tmp.join("model.safetensors");
    std::fs::write(&f, &shard).unwrap();
    let dst = "s3://strata-test/cluster/models/m/";
    ok(
        &command(c, ep, &["-q", "cp", &f.display().to_string(), dst])
            .output()
            .unwrap(),
    );
    let pull = ["--cache", cache, "models", "pull", dst];
    let child = spawn(c, ep, &pull);
    let out = kill_during(
        c,
        2,
        child,
        Duration::from_millis(100),
        Duration::from_secs(2),
    );
    ok(&until_ok(c, ep, &pull, out));
    let verified = ok(
        &command(c, ep, &["--cache", cache, "models", "verify", dst])
            .output()
            .unwrap(),
    );
    assert!(!verified.contains("CRC32C"), "{verified}");
}
