//! The block file format is a promise: a persistent cache written by one version of Strata is
//! read by the next, or its blocks are refused (dropped and fetched again) with a message that
//! names the version, never misread. `tests/golden/block-v1.bin` was written by version 1;
//! `STRATA_BLESS=1 cargo test -p strata-cache --test formats` rewrites it after a deliberate
//! format change (with a new version in the magic).

use std::path::PathBuf;

use strata_cache::block_file::{self, BlockError, VERSION};
use strata_cache::key::ObjectVersion;

fn golden(name: &str) -> PathBuf {
    strata_testkit::golden::path(env!("CARGO_MANIFEST_DIR"), name)
}

fn key() -> String {
    ObjectVersion::new(
        "s3://bucket",
        "train/shard-000000.tar",
        "\"etag-1\"",
        3 << 20,
    )
    .key_text(2)
}

fn payload() -> Vec<u8> {
    (0..4096u32).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn version_1_block_files_still_read() {
    let path = golden("block-v1.bin");
    if std::env::var_os("STRATA_BLESS").is_some() {
        let tmp = tempfile::tempdir().unwrap();
        block_file::write(&tmp.path().join("t"), &path, &key(), 2 << 20, &payload()).unwrap();
    }
    let b = block_file::read(&path, &key()).expect("a version 1 block reads");
    assert_eq!(b.offset, 2 << 20);
    assert_eq!(&b.data[..], &payload()[..]);
    // What this build writes is byte for byte what version 1 wrote.
    let mut now = block_file::header(&key(), 2 << 20, &payload());
    now.extend_from_slice(&payload());
    assert_eq!(
        now,
        std::fs::read(&path).unwrap(),
        "the block format changed"
    );
    assert_eq!(VERSION, 1);
}

#[test]
fn another_version_is_refused_by_name_not_misread() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(golden("block-v1.bin")).unwrap();
    bytes[6..8].copy_from_slice(b"02");
    let p = tmp.path().join("block-v2.bin");
    std::fs::write(&p, &bytes).unwrap();
    match block_file::read(&p, &key()) {
        Err(BlockError::Corrupt(why)) => assert!(why.contains("version \"02\""), "{why}"),
        other => panic!("a version 2 block must be refused: {other:?}"),
    }
    // Another key's block (the same bytes named for another object) is refused too.
    let other = ObjectVersion::new(
        "s3://bucket",
        "train/shard-000001.tar",
        "\"etag-1\"",
        3 << 20,
    );
    assert!(block_file::read(&golden("block-v1.bin"), &other.key_text(2)).is_err());
}
