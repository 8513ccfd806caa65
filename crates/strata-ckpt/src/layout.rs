//! Names, the same on both tiers (a local directory mirrors the remote prefix):
//!
//! ```text
//! ROOT/step-000000000042/rank-00000/<item name>     the files of rank 0
//! ROOT/step-000000000042/ranks/rank-00000.json      rank 0's marker (local: its part)
//! ROOT/step-000000000042/MANIFEST.json              the commit, written last
//! ```
//!
//! Steps are zero-padded to 12 digits so that listings sort in step order; longer steps
//! still parse.

/// The commit record's file name inside a step directory.
pub const MANIFEST: &str = "MANIFEST.json";
/// The directory of rank markers inside a step directory.
pub const RANKS: &str = "ranks";
/// Where fleet-wide upload leases live under a checkpoint root (see `admission`).
pub const LEASES: &str = ".strata-leases";

/// The largest step a save takes: twelve digits, so that listings sort in step order and
/// every step is exact in JSON (the workbench, Python). Larger numbers are not steps (a
/// `u64::MAX` passed as "latest" by mistake would outrank every real step and make the
/// retention rules retire them).
pub const MAX_STEP: u64 = 999_999_999_999;

/// `step-000000000042`.
pub fn step_dir(step: u64) -> String {
    format!("step-{step:012}")
}

/// The step of a step directory name.
pub fn parse_step_dir(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("step-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `rank-00003`.
pub fn rank_dir(rank: u32) -> String {
    format!("rank-{rank:05}")
}

/// `step-…/rank-…/name`, relative to the root.
pub fn file_rel(step: u64, rank: u32, name: &str) -> String {
    format!("{}/{}/{name}", step_dir(step), rank_dir(rank))
}

/// `step-…/rank-…/.pieces/name/00003`: piece 3 of a file stored in pieces (see
/// `FileEntry::piece_size`), relative to the root. Item names never start with a dot, so
/// this never collides with one.
pub fn piece_rel(step: u64, rank: u32, name: &str, piece: usize) -> String {
    format!(
        "{}/{}/.pieces/{name}/{piece:05}",
        step_dir(step),
        rank_dir(rank)
    )
}

/// The objects a file is stored as in the store, with the byte range of the file each holds:
/// the file itself, or its pieces (`piece_ranges`: see `FileEntry::pieces`).
pub fn objects(
    step: u64,
    rank: u32,
    name: &str,
    piece_ranges: Option<Vec<std::ops::Range<u64>>>,
    size: u64,
) -> Vec<(String, std::ops::Range<u64>)> {
    match piece_ranges {
        Some(ranges) => ranges
            .into_iter()
            .enumerate()
            .map(|(i, r)| (piece_rel(step, rank, name, i), r))
            .collect(),
        None => vec![(file_rel(step, rank, name), 0..size)],
    }
}

/// The object of bytes `at..` of a file (`piece_size`: see `FileEntry::piece_size`): its
/// name relative to the root, and where `at` falls in it.
pub fn object_at(
    step: u64,
    rank: u32,
    name: &str,
    piece_size: Option<u64>,
    at: u64,
) -> (String, u64) {
    match piece_size {
        Some(p) if p > 0 => (piece_rel(step, rank, name, (at / p) as usize), at % p),
        _ => (file_rel(step, rank, name), at),
    }
}

/// `step-…/ranks/rank-….json`, relative to the root.
pub fn marker_rel(step: u64, rank: u32) -> String {
    format!("{}/{RANKS}/{}.json", step_dir(step), rank_dir(rank))
}

/// `step-…/MANIFEST.json`, relative to the root.
pub fn manifest_rel(step: u64) -> String {
    format!("{}/{MANIFEST}", step_dir(step))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_sort_and_parse() {
        assert_eq!(step_dir(42), "step-000000000042");
        assert!(step_dir(9) < step_dir(10));
        assert_eq!(parse_step_dir(&step_dir(u64::MAX)), Some(u64::MAX));
        for bad in ["step-", "step-1a", "steps-1", "step--1", "x"] {
            assert_eq!(parse_step_dir(bad), None, "{bad}");
        }
    }
}
