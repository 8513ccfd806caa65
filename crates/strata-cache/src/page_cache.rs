//! The kernel's page cache over the NVMe tier's block files: DRAM that every process on the
//! node shares and that outlives the process that filled it.
//!
//! Strata's own DRAM tier lives inside one process. A CLI warm-up that ends cannot leave
//! anything in it, so `strata warm --tier dram` loads the block files into the page cache
//! instead (the way `vmtouch -t` does), and [`resident_bytes`] measures what is there.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;

use bytes::Bytes;

/// Reads `path` through the page cache so its pages are resident afterwards, with
/// `POSIX_FADV_WILLNEED` first so the kernel reads ahead the whole file. Returns the bytes
/// read. `buf` is scratch space (any size; 1 MiB or more reads fastest).
pub fn load(path: &Path, buf: &mut [u8]) -> std::io::Result<u64> {
    let mut f = File::open(path)?;
    // SAFETY: fd is a valid open file for the duration of the call; the advice has no
    // memory-safety effect.
    unsafe {
        libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_WILLNEED);
    }
    let mut n = 0u64;
    loop {
        match f.read(buf) {
            Ok(0) => return Ok(n),
            Ok(k) => n += k as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Bytes of `path` resident in the page cache now (`mincore` over a read-only mapping),
/// rounded to whole pages and capped at the file size. An empty file has none.
pub fn resident_bytes(path: &Path) -> std::io::Result<u64> {
    let f = File::open(path)?;
    let len = f.metadata()?.len() as usize;
    if len == 0 {
        return Ok(0);
    }
    // SAFETY: a read-only mapping only passed to mincore, never dereferenced.
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(&f) }?;
    let pages = residency(&map)?;
    let resident = pages.iter().filter(|&&b| b & 1 == 1).count();
    Ok((resident * page_size()).min(len) as u64)
}

/// The file `f` of `len` bytes mapped read-only, if every page of it is in the page cache.
///
/// Why: a block that every DataLoader worker of a node reads (their samples interleave) would
/// otherwise be copied into each worker's own fresh memory (zeroed pages, then the copy); a
/// mapping shares the page cache's one copy, and each reader still checks its CRC. A file not
/// wholly resident is better read with one large `pread`, which reads the device faster than
/// faulting the pages in. The caller must only map files that never change in place: block
/// files are renamed into place and unlinked on eviction (the mapping keeps the unlinked
/// file), so the bytes stay valid while the `Bytes` live. `None` where mapping fails too (an
/// empty file, an exhausted address space).
pub fn map_resident(f: &File, len: usize) -> Option<Bytes> {
    if len == 0 {
        return None;
    }
    // SAFETY: read-only mapping of a file the caller never changes in place (see above).
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(f) }.ok()?;
    if residency(&map).ok()?.iter().any(|b| b & 1 == 0) {
        return None;
    }
    // Map the pages now, in one call, rather than with a fault every few pages. An old
    // kernel without MADV_POPULATE_READ faults them in as they are read.
    // SAFETY: advice on the live mapping `map`.
    unsafe { libc::madvise(map.as_ptr() as *mut _, len, libc::MADV_POPULATE_READ) };
    Some(Bytes::from_owner(map))
}

/// One byte per page of `map`, bit 0 set where the page is resident (`mincore`).
fn residency(map: &memmap2::Mmap) -> std::io::Result<Vec<u8>> {
    let mut vec = vec![0u8; map.len().div_ceil(page_size())];
    // SAFETY: `map` is a live mapping of `map.len()` bytes starting at a page boundary, and
    // `vec` has one byte per page of it.
    let rc = unsafe { libc::mincore(map.as_ptr() as *mut _, map.len(), vec.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(vec)
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_just_read_is_resident_and_an_empty_one_has_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, vec![7u8; 3 << 20]).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        assert_eq!(load(&p, &mut buf).unwrap(), 3 << 20);
        assert_eq!(resident_bytes(&p).unwrap(), 3 << 20);
        let e = d.path().join("empty");
        std::fs::write(&e, b"").unwrap();
        assert_eq!(resident_bytes(&e).unwrap(), 0);
        assert!(resident_bytes(&d.path().join("missing")).is_err());
    }
}
