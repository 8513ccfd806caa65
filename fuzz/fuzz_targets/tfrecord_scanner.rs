//! The TFRecord scanner on arbitrary bytes, fed in pieces: no panic, records consistent.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use strata_dataset::tfrecord::TfRecordScanner;

fuzz_target!(|input: &[u8]| {
    let Some((&piece, data)) = input.split_first() else {
        return;
    };
    let piece = (piece as usize % 64) * 13 + 1;
    let mut s = TfRecordScanner::new(true);
    let mut buf = BytesMut::new();
    for chunk in data.chunks(piece) {
        buf.extend_from_slice(chunk);
        loop {
            match s.push(&mut buf) {
                Ok(Some(r)) => {
                    assert_eq!(r.data.len() as u64, r.len);
                    assert_eq!(r.crc32c, crc32c::crc32c(&r.data));
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = s.finish(&buf);
});
