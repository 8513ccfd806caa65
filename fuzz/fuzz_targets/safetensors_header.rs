//! safetensors headers from an untrusted store: parsing never panics, and an accepted header
//! keeps every tensor inside the file, sized by its shape and dtype, without overlaps; a
//! subset header built from it parses back to the same tensors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_models::safetensors::{Header, build_header, header_len};

fuzz_target!(|data: &[u8]| {
    // As a whole file: length field, JSON, data.
    let size = data.len() as u64;
    if let Ok(n) = header_len(data, size) {
        let json = &data[8..8 + n as usize];
        if let Ok(h) = Header::parse(json, size) {
            let mut prev = h.data_start;
            for t in &h.tensors {
                assert!(t.start >= prev && t.end <= size && t.start <= t.end);
                let bits = t.shape.iter().product::<u64>() * t.dtype.bits();
                assert_eq!(bits / 8, t.end - t.start);
                prev = t.end;
            }
            let sel: Vec<_> = h.tensors.iter().collect();
            let (head, at) = build_header(&sel, &h.metadata);
            let data_len: u64 = sel.iter().map(|t| t.len()).sum();
            let total = head.len() as u64 + data_len;
            let n2 = header_len(&head, total).expect("built header length");
            let h2 = Header::parse(&head[8..8 + n2 as usize], total).expect("built header parses");
            assert_eq!(h2.tensors.len(), h.tensors.len());
            for (t2, a) in h2.tensors.iter().zip(&at) {
                assert_eq!(t2.start, *a);
            }
        }
    }
    // As a bare JSON header of a file with some data after it.
    let _ = Header::parse(data, data.len() as u64 + 8 + 4096);
});
