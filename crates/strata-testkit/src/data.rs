//! Deterministic test data: the same seed gives the same bytes on every machine, fast enough
//! to generate gigabytes (xorshift64*, eight bytes per step).

use std::io::Write;
use std::path::Path;

/// Fills `buf` with the pattern of `seed`, starting at the pattern's beginning.
pub fn fill(seed: u64, buf: &mut [u8]) {
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    if x == 0 {
        x = 1;
    }
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        c.copy_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    let rest = chunks.into_remainder();
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    let last = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
    let n = rest.len();
    rest.copy_from_slice(&last[..n]);
}

/// `len` pseudo-random bytes from `seed`.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    fill(seed, &mut v);
    v
}

/// Writes a file of `len` pseudo-random bytes, 8 MiB at a time (each chunk seeded from
/// `seed` and its index), and fsyncs it. Returns the CRC32C of the content.
pub fn write_file(path: &Path, seed: u64, len: u64) -> std::io::Result<u32> {
    const CHUNK: u64 = 8 << 20;
    let mut f = std::fs::File::create(path)?;
    let mut buf = vec![0u8; CHUNK as usize];
    let mut crc = 0u32;
    let mut written = 0u64;
    let mut i = 0u64;
    while written < len {
        let n = CHUNK.min(len - written) as usize;
        fill(
            seed.wrapping_add(i.wrapping_mul(0x1000_0001)),
            &mut buf[..n],
        );
        f.write_all(&buf[..n])?;
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        written += n as u64;
        i += 1;
    }
    f.sync_all()?;
    Ok(crc)
}

#[cfg(test)]
mod tests {
    #[test]
    fn deterministic_and_distinct() {
        assert_eq!(super::bytes(1, 1000), super::bytes(1, 1000));
        assert_ne!(super::bytes(1, 1000), super::bytes(2, 1000));
        assert_eq!(super::bytes(3, 13).len(), 13);
    }
}
