//! The dataset's on-disk formats are promises: `manifest.json` and `SHARD.idx` written by
//! version 1 are read by every later build, or refused with a message that names the version
//! (never misread). `tests/golden/` holds version 1's files;
//! `STRATA_BLESS=1 cargo test -p strata-dataset --test formats` rewrites them after a
//! deliberate format change (with a new version number).

use strata_dataset::error::FormatError;
use strata_dataset::index::{INDEX_VERSION, ShardFormat, ShardIndex};
use strata_dataset::manifest::{MANIFEST_VERSION, Manifest};
use strata_dataset::tar::TarWriter;
use strata_testkit::golden;

fn read_golden(name: &str, fresh: impl FnOnce() -> Vec<u8>) -> Vec<u8> {
    golden::read(env!("CARGO_MANIFEST_DIR"), name, fresh)
}

/// A version-1 file with its version number replaced by `to`.
fn with_version(bytes: &[u8], to: u64) -> Vec<u8> {
    golden::with_number(bytes, "version", to)
}

#[test]
fn a_version_1_manifest_still_reads_and_writes_the_same_bytes() {
    let bytes = read_golden("manifest-v1.json", || {
        Manifest::synthetic(&[3, 0, 5], 1000).to_json()
    });
    let m = Manifest::from_json(&bytes).expect("a version 1 manifest reads");
    assert_eq!(
        (m.version, m.samples, m.bytes, m.shards.len()),
        (1, 8, 8000, 3)
    );
    assert_eq!(m.shards[2].path, "shard-000002.tar");
    assert_eq!(m.to_json(), bytes, "the manifest format changed");
    assert_eq!(MANIFEST_VERSION, 1);
    match Manifest::from_json(&with_version(&bytes, 2)) {
        Err(FormatError::Version {
            found: 2, reads: 1, ..
        }) => {}
        other => panic!("a version 2 manifest must be refused by its version: {other:?}"),
    }
    let e = Manifest::from_json(&with_version(&bytes, 2)).unwrap_err();
    assert_eq!(e.to_string(), "manifest version 2 (this build reads 1)");
}

#[test]
fn a_version_1_index_still_reads_and_writes_the_same_bytes() {
    let bytes = read_golden("index-v1.json", || {
        let mut w = TarWriter::new(Vec::new());
        for (name, data) in [
            ("a.jpg", &b"jpeg bytes"[..]),
            ("a.cls", b"7"),
            ("b.jpg", b"more jpeg bytes"),
            ("b.cls", b"3"),
        ] {
            w.append(name, data).unwrap();
        }
        let tar = w.finish().unwrap();
        ShardIndex::build(ShardFormat::Tar, &tar).unwrap().to_json()
    });
    let idx = ShardIndex::from_json(&bytes).expect("a version 1 index reads");
    assert_eq!(idx.version, 1);
    let keys: Vec<&str> = idx.samples.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(idx.samples[1].members.len(), 2);
    assert_eq!(idx.to_json(), bytes, "the index format changed");
    assert_eq!(INDEX_VERSION, 1);
    let e = ShardIndex::from_json(&with_version(&bytes, 2)).unwrap_err();
    assert_eq!(e.to_string(), "index version 2 (this build reads 1)");
}
