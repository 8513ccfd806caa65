//! The on-disk format of one cached block, version 1. Little-endian:
//!
//! | field | bytes |
//! |---|---|
//! | magic `STRBLK01` | 8 |
//! | header length (from the magic to the end of the header CRC) | 4 |
//! | object offset of the block | 8 |
//! | payload length | 8 |
//! | payload CRC32C | 4 |
//! | key text length, key text (see [`crate::key::ObjectVersion::key_text`]) | 4 + n |
//! | header CRC32C (of everything before it) | 4 |
//! | payload | length |
//!
//! A file is written to a temporary name in the cache's `tmp/` directory, fsynced, and
//! renamed into place, so a crash leaves either no file or a whole one. Every read checks the
//! magic, both CRCs, the file length and the key text; any mismatch is [`BlockError::Corrupt`]
//! and the caller drops the file and fetches the block again.

use std::io::Write;
use std::path::Path;

use bytes::Bytes;

/// The format's version, the last two characters of the magic.
pub const VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"STRBLK01";
/// The magic without its version.
const MAGIC_STEM: &[u8; 6] = b"STRBLK";
/// Fixed part of the header: magic, header length, offset, length, CRC, key length.
const FIXED: usize = 8 + 4 + 8 + 8 + 4 + 4;
/// Longest key text accepted (S3 keys are at most 1 KiB; stores and ETags are short).
const MAX_KEY: usize = 64 * 1024;

/// Why a block file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// No such file.
    #[error("missing")]
    Missing,
    /// The file is damaged or belongs to another key; it must be dropped.
    #[error("corrupt block file: {0}")]
    Corrupt(String),
    /// Reading failed for another reason.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A decoded block.
#[derive(Debug, Clone)]
pub struct Block {
    /// Where the block starts in its object.
    pub offset: u64,
    /// The payload.
    pub data: Bytes,
}

/// The header length for a key text.
pub fn header_len(key_text: &str) -> usize {
    FIXED + key_text.len() + 4
}

/// Encodes the header for `data`.
pub fn header(key_text: &str, offset: u64, data: &[u8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(FIXED + key_text.len() + 4);
    h.extend_from_slice(MAGIC);
    let hdr_len = (FIXED + key_text.len() + 4) as u32;
    h.extend_from_slice(&hdr_len.to_le_bytes());
    h.extend_from_slice(&offset.to_le_bytes());
    h.extend_from_slice(&(data.len() as u64).to_le_bytes());
    h.extend_from_slice(&crc32c::crc32c(data).to_le_bytes());
    h.extend_from_slice(&(key_text.len() as u32).to_le_bytes());
    h.extend_from_slice(key_text.as_bytes());
    let crc = crc32c::crc32c(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

/// Writes a block file: `tmp` (a unique name on the same file system), fsync, rename to
/// `dest` unless `dest` exists. Returns whether this call placed the file: `false` means
/// another writer placed the same block first (its file is kept, ours removed). On error the
/// temporary file is removed.
pub fn write(
    tmp: &Path,
    dest: &Path,
    key_text: &str,
    offset: u64,
    data: &[u8],
) -> std::io::Result<bool> {
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp)?;
        let h = header(key_text, offset, data);
        f.write_all(&h)?;
        f.write_all(data)?;
        f.sync_all()?;
        rename_noreplace(tmp, dest)
    })();
    if !matches!(result, Ok(true)) {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

/// `rename(from, to)` that fails if `to` exists (`renameat2(RENAME_NOREPLACE)`), falling
/// back to a plain rename on file systems without it. Returns whether `from` was moved.
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<bool> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (f, t) = (c(from)?, c(to)?);
    // SAFETY: two valid NUL-terminated paths, relative to the working directory.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EEXIST) => Ok(false),
        Some(libc::EINVAL) | Some(libc::ENOSYS) => std::fs::rename(from, to).map(|_| true),
        _ => Err(e),
    }
}

/// Reads and verifies the block file at `path` for `key_text`.
pub fn read(path: &Path, key_text: &str) -> Result<Block, BlockError> {
    read_with(path, key_text, Vec::new, Bytes::from)
}

/// Like [`read`], into a buffer from `take` (given the file length) that `freeze` turns into
/// `Bytes` (see [`crate::bufpool`]) — unless the whole file is in the page cache: then it is
/// mapped ([`crate::page_cache::map_resident`]) and `take` is not called.
pub fn read_with(
    path: &Path,
    key_text: &str,
    take: impl FnOnce() -> Vec<u8>,
    freeze: impl FnOnce(Vec<u8>) -> Bytes,
) -> Result<Block, BlockError> {
    use std::os::fd::AsRawFd;
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BlockError::Missing),
        Err(e) => return Err(e.into()),
    };
    let len = f.metadata()?.len() as usize;
    if let Some(mapped) = crate::page_cache::map_resident(&f, len) {
        return decode(mapped, key_text);
    }
    let mut bytes = take();
    bytes.clear();
    bytes.reserve(len);
    // Block files never change after their rename, so the length is known: read exactly it
    // with `pread` into the spare capacity, without `read_to_end`'s extra stat and EOF probe.
    let spare = bytes.spare_capacity_mut();
    let mut got = 0usize;
    while got < len {
        // SAFETY: the destination is `len - got` bytes of spare capacity of `bytes`.
        let r = unsafe {
            libc::pread(
                f.as_raw_fd(),
                spare[got..].as_mut_ptr().cast(),
                len - got,
                got as libc::off_t,
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        if r == 0 {
            break; // shorter than its length said: `decode` reports it truncated
        }
        got += r as usize;
    }
    // SAFETY: the first `got` bytes were written by pread.
    unsafe { bytes.set_len(got) };
    decode(freeze(bytes), key_text)
}

/// Verifies a whole block file held in memory.
pub fn decode(file: Bytes, key_text: &str) -> Result<Block, BlockError> {
    let bad = |why: &str| Err(BlockError::Corrupt(why.to_string()));
    if file.len() < FIXED + 4 || &file[..6] != MAGIC_STEM {
        return bad("bad magic or too short");
    }
    if &file[..8] != MAGIC {
        // Another version of the format: a cache directory shared with another build of
        // Strata. The block is dropped and fetched again, never misread.
        let v = String::from_utf8_lossy(&file[6..8]).into_owned();
        return Err(BlockError::Corrupt(format!(
            "block file version {v:?} (this build reads {VERSION:02})"
        )));
    }
    let u32_at = |i: usize| u32::from_le_bytes(file[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(file[i..i + 8].try_into().expect("8 bytes"));
    let hdr_len = u32_at(8) as usize;
    let key_len = u32_at(32) as usize;
    if key_len > MAX_KEY || hdr_len != FIXED + key_len + 4 || hdr_len > file.len() {
        return bad("bad header length");
    }
    if crc32c::crc32c(&file[..hdr_len - 4]) != u32_at(hdr_len - 4) {
        return bad("header checksum mismatch");
    }
    if &file[FIXED..FIXED + key_len] != key_text.as_bytes() {
        return bad("the file belongs to another key");
    }
    let offset = u64_at(12);
    let len = u64_at(20) as usize;
    if file.len() - hdr_len != len {
        return bad("truncated or extended payload");
    }
    let data = file.slice(hdr_len..);
    if crc32c::crc32c(&data) != u32_at(28) {
        return bad("payload checksum mismatch");
    }
    Ok(Block { offset, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_corruption_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, dest) = (dir.path().join("t"), dir.path().join("b.blk"));
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        write(&tmp, &dest, "key-1", 4096, &data).unwrap();
        assert!(!tmp.exists());
        let b = read(&dest, "key-1").unwrap();
        assert_eq!(b.offset, 4096);
        assert_eq!(&b.data[..], &data[..]);
        assert!(matches!(read(&dest, "key-2"), Err(BlockError::Corrupt(_))));
        assert!(matches!(
            read(&dir.path().join("none"), "k"),
            Err(BlockError::Missing)
        ));

        let good = std::fs::read(&dest).unwrap();
        // Flip each byte in turn (a sample of positions across header and payload).
        for pos in (0..good.len())
            .step_by(97)
            .chain([0, 8, 20, 40, good.len() - 1])
        {
            let mut bad = good.clone();
            bad[pos] ^= 0x40;
            assert!(
                matches!(
                    decode(Bytes::from(bad), "key-1"),
                    Err(BlockError::Corrupt(_))
                ),
                "flip at {pos}"
            );
        }
        for cut in [0, 5, 40, good.len() - 1] {
            assert!(
                matches!(
                    decode(Bytes::from(good[..cut].to_vec()), "key-1"),
                    Err(BlockError::Corrupt(_))
                ),
                "cut at {cut}"
            );
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(decode(Bytes::from(longer), "key-1").is_err());
    }

    /// A block file in the page cache is mapped, not copied, and a mapped file is checked
    /// like a copied one: damage made through the page cache (the file's bytes changed in
    /// place, or cut short) is caught; a file not in the page cache is read into a buffer.
    #[test]
    fn a_resident_file_is_mapped_and_still_checked() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let (tmp, dest) = (dir.path().join("t"), dir.path().join("b.blk"));
        let data: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 253) as u8).collect();
        write(&tmp, &dest, "key-1", 0, &data).unwrap();
        let _ = std::fs::read(&dest).unwrap(); // resident, whatever the write left
        let took = std::cell::Cell::new(false);
        let take = || {
            took.set(true);
            Vec::new()
        };
        let b = read_with(&dest, "key-1", take, Bytes::from).unwrap();
        assert!(!took.get(), "a resident block file is mapped");
        assert_eq!(&b.data[..], &data[..]);
        drop(b);

        // Out of the page cache (clean pages dropped on request): read into a buffer.
        let f = std::fs::File::open(&dest).unwrap();
        // SAFETY: advice on an open file.
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        if crate::page_cache::resident_bytes(&dest).unwrap()
            < std::fs::metadata(&dest).unwrap().len()
        {
            let b = read_with(&dest, "key-1", take, Bytes::from).unwrap();
            assert!(
                took.get(),
                "a block file not in the page cache is read into a buffer"
            );
            assert_eq!(&b.data[..], &data[..]);
        }

        // Damage in place (not how Strata writes: a hostile or broken writer).
        let mut bytes = std::fs::read(&dest).unwrap();
        let at = bytes.len() - 1000;
        bytes[at] ^= 1;
        std::fs::write(&dest, &bytes).unwrap();
        let _ = std::fs::read(&dest).unwrap();
        assert!(matches!(
            read_with(&dest, "key-1", Vec::new, Bytes::from),
            Err(BlockError::Corrupt(_))
        ));
        std::fs::write(&dest, &bytes[..bytes.len() / 2]).unwrap();
        assert!(matches!(
            read_with(&dest, "key-1", Vec::new, Bytes::from),
            Err(BlockError::Corrupt(_))
        ));
    }
}
