//! The checkpoint's commit records are promises: a `MANIFEST.json` and a rank marker written
//! by format 1 are read by every later build (a checkpoint saved before an upgrade restores
//! after it), or refused with a message that names the format (never misread).
//! Format 2 (files stored in pieces in the store) is written only when a file has pieces, so
//! a checkpoint without them is still format 1, byte for byte. `tests/golden/` holds format
//! 1's files and a format 2 manifest;
//! `STRATA_BLESS=1 cargo test -p strata-ckpt --test formats` rewrites them after a deliberate
//! format change (with a new format number).

use strata_ckpt::manifest::{
    FORMAT_V1, FORMAT_VERSION, FileEntry, Manifest, ManifestError, RankPart, Tier, checksums,
};
use strata_testkit::golden;

fn read_golden(name: &str, fresh: impl FnOnce() -> Vec<u8>) -> Vec<u8> {
    golden::read(env!("CARGO_MANIFEST_DIR"), name, fresh)
}

/// Rank 0's part of step 42: two files, 1 MiB chunks, a fixed time.
fn part() -> RankPart {
    let file = |name: &str, len: usize| {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let (crc32c, chunks) = checksums(&data, 1 << 20);
        FileEntry {
            name: name.into(),
            size: len as u64,
            crc32c,
            chunks,
            piece_size: None,
        }
    };
    RankPart {
        format: FORMAT_V1,
        step: 42,
        rank: 0,
        world_size: 1,
        chunk_size: 1 << 20,
        files: vec![file("tensors.safetensors", 3 << 19), file("state.json", 17)],
        saved_unix_ms: 1_764_000_000_000,
    }
}

/// The same JSON with `format` set to `to`.
fn with_format(bytes: &[u8], to: u64) -> Vec<u8> {
    golden::with_number(bytes, "format", to)
}

#[test]
fn a_format_1_manifest_still_reads_and_writes_the_same_bytes() {
    let bytes = read_golden("MANIFEST-v1.json", || {
        let mut m = Manifest::from_parts(42, 1, vec![part()], vec![Tier::Remote]).unwrap();
        m.committed_unix_ms = 1_764_000_000_500;
        m.to_json()
    });
    let m = Manifest::from_json(&bytes).expect("a format 1 manifest reads");
    assert_eq!((m.format, m.step, m.world_size), (1, 42, 1));
    assert_eq!(m.parts[0], part());
    assert_eq!(m.to_json(), bytes, "the manifest format changed");
    assert_eq!(FORMAT_VERSION, 2);
    match Manifest::from_json(&with_format(&bytes, 3)) {
        Err(e @ ManifestError::Format { found: 3, reads: 2 }) => {
            assert_eq!(e.to_string(), "format 3 (this Strata reads formats 1 to 2)")
        }
        other => panic!("a format 3 manifest must be refused by its format: {other:?}"),
    }
}

#[test]
fn a_format_2_manifest_with_pieces_reads_and_writes_the_same_bytes() {
    let mut p = part();
    p.files[0].piece_size = Some(1 << 20);
    p.format = FORMAT_VERSION;
    let bytes = read_golden("MANIFEST-v2.json", || {
        let mut m = Manifest::from_parts(42, 1, vec![p.clone()], vec![Tier::Remote]).unwrap();
        m.committed_unix_ms = 1_764_000_000_500;
        m.to_json()
    });
    let m = Manifest::from_json(&bytes).expect("a format 2 manifest reads");
    assert_eq!(m.format, 2);
    assert_eq!(m.parts[0], p);
    assert_eq!(m.to_json(), bytes, "the manifest format changed");
    assert_eq!(
        m.parts[0].files[0].pieces(),
        vec![0..1 << 20, 1 << 20..3 << 19]
    );
    // Pieces in a manifest that says format 1 are refused: an older reader would miss them.
    assert!(Manifest::from_json(&with_format(&bytes, 1)).is_err());
}

#[test]
fn a_format_1_rank_marker_still_reads_and_writes_the_same_bytes() {
    let bytes = read_golden("rank-v1.json", || part().to_json());
    let p = RankPart::from_json(&bytes).expect("a format 1 marker reads");
    assert_eq!(p, part());
    assert_eq!(p.to_json(), bytes, "the marker format changed");
    assert!(RankPart::from_json(&with_format(&bytes, 3)).is_err());
}
