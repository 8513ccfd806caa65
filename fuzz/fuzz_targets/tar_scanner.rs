//! The tar scanner on arbitrary bytes, fed in pieces whose size the first byte picks: it must
//! never panic, and what it returns must be consistent (data as long as the size, offsets
//! increasing, CRCs matching the data), and the index builder must agree with it.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use strata_dataset::index::{IndexBuilder, ShardFormat};
use strata_dataset::tar::TarScanner;

fuzz_target!(|input: &[u8]| {
    let Some((&piece, data)) = input.split_first() else {
        return;
    };
    let piece = (piece as usize % 64) * 37 + 1;
    let mut s = TarScanner::new(true);
    let mut buf = BytesMut::new();
    let mut last_end = 0u64;
    let mut ok = true;
    'feed: for chunk in data.chunks(piece) {
        buf.extend_from_slice(chunk);
        loop {
            match s.push(&mut buf) {
                Ok(Some(m)) => {
                    assert_eq!(m.data.len() as u64, m.size);
                    assert!(m.header_offset >= last_end);
                    assert!(m.data_offset > m.header_offset);
                    assert_eq!(m.crc32c, crc32c::crc32c(&m.data));
                    assert_eq!(&data[m.data_offset as usize..][..m.size as usize], &m.data[..]);
                    last_end = m.end();
                }
                Ok(None) => break,
                Err(_) => {
                    ok = false;
                    break 'feed;
                }
            }
        }
    }
    if ok {
        let _ = s.finish(&buf);
    }
    let mut b = IndexBuilder::new(ShardFormat::Tar);
    let mut all = BytesMut::from(data);
    if b.push(&mut all).is_ok() {
        if let Ok(idx) = b.finish(&all) {
            for e in &idx.samples {
                assert!(e.offset + e.size <= data.len() as u64);
                for m in &e.members {
                    assert!(m.offset + m.size <= e.size);
                }
            }
        }
    }
});
