//! Index and manifest JSON from an untrusted store: parsing never panics, and an accepted
//! index keeps every sample and member inside its shard.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_dataset::{Manifest, ShardIndex};

fuzz_target!(|data: &[u8]| {
    if let Ok(idx) = ShardIndex::from_json(data) {
        for s in &idx.samples {
            assert!(s.offset + s.size <= idx.shard_size);
            for m in &s.members {
                assert!(m.offset + m.size <= s.size);
            }
        }
    }
    if let Ok(m) = Manifest::from_json(data) {
        assert_eq!(m.samples, m.shards.iter().map(|s| s.samples).sum::<u64>());
    }
});
