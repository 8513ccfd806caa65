//! Properties of the tar scanner and the partitioning, over generated inputs.
//!
//! - The scanner reads back exactly what the writer wrote, however the stream is cut into
//!   pieces, and any byte flipped in a valid archive gives an error or members, never a
//!   panic.
//! - The partitioning gives every rank the same count; with padding the ranks together read
//!   every position of the run at least once and fewer than `ranks` twice; with drop-last
//!   none twice and fewer than `ranks` left out; a worker's positions are its rank's, every
//!   `workers`-th; and every position is inside the plan.

use std::collections::HashMap;

use bytes::BytesMut;
use proptest::prelude::*;
use strata_dataset::tar::{Member, TarScanner, TarWriter};
use strata_dataset::{Partition, Remainder, World};

/// Scans `archive` fed in pieces of the given sizes (cycled).
fn scan_in_pieces(archive: &[u8], pieces: &[usize]) -> Result<Vec<Member>, String> {
    let mut s = TarScanner::new(true);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let (mut at, mut k) = (0, 0);
    while at < archive.len() {
        let n = pieces[k % pieces.len()].max(1).min(archive.len() - at);
        buf.extend_from_slice(&archive[at..at + n]);
        at += n;
        k += 1;
        while let Some(m) = s.push(&mut buf).map_err(|e| e.to_string())? {
            out.push(m);
        }
    }
    s.finish(&buf).map_err(|e| e.to_string())?;
    Ok(out)
}

fn members() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    // Names long enough to need a long-name header sometimes (ustar's field holds 100 bytes).
    prop::collection::vec(
        (
            "[a-z0-9_]{1,8}(/[a-z0-9_]{1,40}){0,3}\\.(jpg|cls|json|bin)",
            prop::collection::vec(any::<u8>(), 0..3000),
        ),
        0..12,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_scanner_reads_back_what_the_writer_wrote(
        files in members(),
        pieces in prop::collection::vec(1usize..2000, 1..6),
    ) {
        let mut w = TarWriter::new(Vec::new());
        for (name, data) in &files {
            w.append(name, data).unwrap();
        }
        let archive = w.finish().unwrap();
        let got = scan_in_pieces(&archive, &pieces).unwrap();
        prop_assert_eq!(got.len(), files.len());
        for (m, (name, data)) in got.iter().zip(&files) {
            prop_assert_eq!(&m.name, name);
            prop_assert_eq!(&m.data[..], &data[..]);
            prop_assert_eq!(m.crc32c, crc32c::crc32c(data));
        }
    }

    #[test]
    fn a_damaged_archive_is_an_error_or_members_never_a_panic(
        files in members(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut w = TarWriter::new(Vec::new());
        for (name, data) in &files {
            w.append(name, data).unwrap();
        }
        let mut archive = w.finish().unwrap();
        for (at, b) in flips {
            let i = at.index(archive.len());
            archive[i] ^= b | 1;
        }
        let end = cut.index(archive.len() + 1);
        let _ = scan_in_pieces(&archive[..end], &[512, 77]);
    }

    #[test]
    fn every_rank_gets_the_same_count_and_the_run_is_covered(
        n in 0u64..500,
        consumed_frac in 0.0f64..1.0,
        ranks in 1u32..9,
        workers in 1u32..5,
        pad in any::<bool>(),
    ) {
        let consumed = (n as f64 * consumed_frac) as u64;
        let remainder = if pad { Remainder::Pad } else { Remainder::DropLast };
        let left = n - consumed;
        let mut seen: HashMap<u64, u32> = HashMap::new();
        let mut per_rank = Vec::new();
        for rank in 0..ranks {
            let mut count = 0;
            for worker in 0..workers {
                let world = World { ranks, rank, workers, worker };
                let p = Partition::new(n, consumed, world, remainder);
                let positions: Vec<u64> = p.positions().collect();
                prop_assert_eq!(positions.len() as u64, p.len());
                for (i, &pos) in positions.iter().enumerate() {
                    prop_assert!(n == 0 || pos < n, "position {} outside a plan of {}", pos, n);
                    // A worker takes every `workers`-th of its rank's samples.
                    let j = i as u64 * workers as u64 + worker as u64;
                    prop_assert_eq!(pos, p.rank_position(rank, j));
                    *seen.entry(pos).or_default() += 1;
                }
                count += positions.len() as u64;
            }
            per_rank.push(count);
        }
        prop_assert!(per_rank.iter().all(|&c| c == per_rank[0]), "unequal ranks: {:?}", per_rank);
        if n == 0 {
            return Ok(());
        }
        let run: Vec<u64> = (consumed..n).collect();
        let covered = run.iter().filter(|p| seen.contains_key(p)).count() as u64;
        let twice: u32 = seen.values().map(|&c| c - 1).sum();
        match remainder {
            Remainder::Pad => {
                prop_assert_eq!(covered, left, "a position of the run was lost");
                prop_assert!(
                    (seen.len() as u64 + twice as u64) - left < ranks as u64,
                    "more padding than ranks"
                );
            }
            Remainder::DropLast => {
                prop_assert_eq!(twice, 0);
                prop_assert!(left - covered < ranks as u64, "too many left out");
                prop_assert!(seen.keys().all(|p| *p >= consumed), "a consumed position read again");
            }
        }
    }
}
