//! Shared by the checkpoint tests: settings and deterministic items.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use strata_ckpt::{AdmissionKind, CkptConfig, Item, SaveMode};
use strata_store::{Location, StoreConfig};
use strata_testkit::{LinkEmulator, S3Endpoint, data};

/// A checkpointer's settings for tests: no jitter, no admission, short commit timeout.
pub fn cfg(remote: Option<Location>, local: Option<&Path>) -> CkptConfig {
    let mut c = CkptConfig {
        remote,
        local: local.map(Path::to_path_buf),
        mode: if local.is_some() {
            SaveMode::DurableLocal
        } else {
            SaveMode::Snapshot
        },
        commit_timeout: Duration::from_secs(20),
        ..Default::default()
    };
    c.drain.jitter = Duration::ZERO;
    c.drain.admission.kind = AdmissionKind::Off;
    c.chunk_size = 64 << 10;
    c
}

/// The checkpoint root `prefix` on `server`, through `emu` when given.
pub fn remote(server: &dyn S3Endpoint, emu: Option<&LinkEmulator>, prefix: &str) -> Location {
    let layer = match emu {
        Some(e) => server.config_layer_through(e),
        None => server.config_layer(),
    };
    let mut sc = StoreConfig::from_layer(&layer).unwrap();
    sc.transfer.upload_part_size = 5 << 20;
    sc.transfer.single_put_threshold = 5 << 20;
    sc.transfer.part_size = 1 << 20;
    Location {
        store: strata_store::Store::open(&server.url(""), &sc).unwrap(),
        prefix: prefix.into(),
    }
}

/// The items of `step` for `rank`: a multipart-sized tensor file, a small one, a nested
/// name and an empty one. Deterministic, so restores can be compared.
pub fn items(step: u64, rank: u32) -> Vec<(String, Vec<u8>)> {
    let seed = step * 1000 + rank as u64;
    vec![
        (
            "model.safetensors".into(),
            data::bytes(seed, (6 << 20) + 12_345),
        ),
        ("optim/shard-0.bin".into(), data::bytes(seed + 1, 70_001)),
        (
            "state.json".into(),
            format!("{{\"step\":{step},\"rank\":{rank}}}").into_bytes(),
        ),
        ("empty".into(), Vec::new()),
    ]
}

pub fn as_items(v: &[(String, Vec<u8>)]) -> Vec<Item> {
    v.iter()
        .map(|(n, b)| Item::bytes(n.clone(), Bytes::from(b.clone())))
        .collect()
}

/// Asserts that `restored` holds exactly `want`.
pub fn assert_items(restored: &strata_ckpt::Restored, want: &[(String, Vec<u8>)]) {
    assert_eq!(restored.items.len(), want.len(), "item count");
    for (n, b) in want {
        let got = restored
            .get(n)
            .unwrap_or_else(|| panic!("step {}: {n} missing", restored.step));
        assert!(got[..] == b[..], "step {}: {n} differs", restored.step);
    }
}
