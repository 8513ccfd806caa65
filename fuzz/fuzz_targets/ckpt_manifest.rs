//! Checkpoint manifests and rank markers from an untrusted store: parsing never panics, and
//! an accepted manifest describes files a restore can read without overflow or a panic:
//! every file's objects tile it exactly, and every chunk range has a CRC.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_ckpt::{Manifest, RankPart};

fn check(p: &RankPart) {
    for f in &p.files {
        let mut at = 0u64;
        for (_, r) in f.objects(p.step, p.rank) {
            assert_eq!(r.start, at, "objects tile the file");
            assert!(r.end >= r.start && r.end <= f.size);
            let _ = f.crc_of(r.clone(), p.chunk_size);
            at = r.end;
        }
        assert_eq!(at, f.size, "objects cover the file");
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::from_json(data) {
        assert_eq!(m.parts.len(), m.world_size as usize);
        let _ = m.bytes();
        for p in &m.parts {
            check(p);
        }
        // What is accepted writes back to what reads the same.
        assert_eq!(Manifest::from_json(&m.to_json()).unwrap(), m);
    }
    if let Ok(p) = RankPart::from_json(data) {
        check(&p);
    }
});
