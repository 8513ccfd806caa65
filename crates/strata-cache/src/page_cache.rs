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
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    let pages = len.div_ceil(page) as usize;
    let mut vec = vec![0u8; pages];
    // SAFETY: a private read-only mapping of an open file of `len` bytes; it is only passed
    // to mincore (never dereferenced) and unmapped before returning.
    unsafe {
        let addr = libc::mmap(
            std::ptr::null_mut(),
            len as usize,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        if addr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let rc = libc::mincore(addr, len as usize, vec.as_mut_ptr());
        let err = std::io::Error::last_os_error();
        libc::munmap(addr, len as usize);
        if rc != 0 {
            return Err(err);
        }
    }
    let resident = vec.iter().filter(|&&b| b & 1 == 1).count() as u64;
    Ok((resident * page).min(len))
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
