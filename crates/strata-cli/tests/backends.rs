//! Every backend proven end to end (issue #21): on Azure Blob Storage (the Azurite
//! emulator), as a user runs it, a shuffled epoch of a packed dataset, a checkpoint saved,
//! drained and restored bit-exact, and a model pulled and verified. (GCS: the emulator on
//! PyPI, fake-gcs-server, lacks the XML API that object_store's GCS client uses; see
//! docs/testing.md.)

mod common;

use std::process::{Command, Output, Stdio};

use common::ok;
use strata_testkit::azurite::{self, Azurite};
use strata_testkit::data;

/// `strata ARGS` pointed at Azurite (and at no S3 endpoint or config file).
fn strata(az: &Azurite, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .envs(az.env())
        .env_remove("STRATA_CONFIG")
        .env("STRATA_CACHE_MIN_FREE_FRACTION", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn an_epoch_a_checkpoint_and_a_model_on_azure() {
    let Some(az) = azurite::start_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let base = format!("az://{}/e2e", azurite::CONTAINER);

    // A shuffled epoch through a node cache: every sample once, each CRC-checked.
    let samples = tmp.path().join("samples");
    std::fs::create_dir_all(&samples).unwrap();
    let n = 500u64;
    for i in 0..n {
        std::fs::write(
            samples.join(format!("s{i:04}.bin")),
            data::bytes(i, 10_000 + i as usize),
        )
        .unwrap();
    }
    let ds = format!("{base}/ds/");
    ok(&strata(
        &az,
        &[
            "-q",
            "pack",
            &format!("{}/", samples.display()),
            &ds,
            "--shard-size",
            "1MiB",
        ],
    ));
    let cache = tmp.path().join("cache").display().to_string();
    let out = strata(
        &az,
        &[
            "--cache",
            &cache,
            "dataset",
            "read",
            &ds,
            "--shuffle",
            "global",
            "--drop-last",
        ],
    );
    let text = ok(&out);
    let mut keys: Vec<&str> = text.lines().filter_map(|l| l.split('\t').nth(1)).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), n as usize, "every sample once");

    // A checkpoint: durable-local save, drain, restore from the store alone.
    let state = tmp.path().join("state.bin");
    let bytes = data::bytes(42, (12 << 20) + 7);
    std::fs::write(&state, &bytes).unwrap();
    let root = format!("{base}/ckpt");
    let local = tmp.path().join("nvme").display().to_string();
    let item = format!("state.bin={}", state.display());
    ok(&strata(
        &az,
        &[
            "-q", "ckpt", "save", &root, "--local", &local, "--step", "7", &item,
        ],
    ));
    let listed = ok(&strata(&az, &["ckpt", "ls", &root]));
    assert!(
        listed.contains("complete") && listed.contains("remote"),
        "{listed}"
    );
    let out_dir = tmp.path().join("restored");
    ok(&strata(
        &az,
        &[
            "ckpt",
            "restore",
            &root,
            "latest",
            &out_dir.display().to_string(),
        ],
    ));
    assert!(
        std::fs::read(out_dir.join("rank-00000/state.bin")).unwrap() == bytes,
        "restored bit-exact"
    );

    // A model: pulled into the node cache, verified.
    let shard = strata_models::synth::shard(5, 0, 8 << 20);
    let f = tmp.path().join("model.safetensors");
    std::fs::write(&f, &shard).unwrap();
    let model = format!("{base}/models/m/");
    ok(&strata(
        &az,
        &["-q", "cp", &f.display().to_string(), &model],
    ));
    ok(&strata(&az, &["--cache", &cache, "models", "pull", &model]));
    let verified = ok(&strata(
        &az,
        &["--cache", &cache, "models", "verify", &model],
    ));
    assert!(!verified.contains("CRC32C"), "{verified}");
}
