//! Cross-process single flight: processes sharing a cache directory take a lock on a block
//! before fetching it, so a node fetches each block once.
//!
//! One lock file, `DIR/fetch.lock`, and one byte of it per block: an open-file-description
//! byte-range lock (`F_OFD_SETLKW`) at an offset derived from the block id. Nothing is created
//! or deleted per block (so there is no unlink race and no pile of lock files), locks vanish
//! with the process that held them (a killed fetcher never blocks the node), and unrelated
//! blocks do not contend. Two blocks whose offsets coincide (1 in 2^62) only share a lock.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;

use crate::key::BlockId;

/// The lock file of one cache directory, opened once per process.
pub struct FetchLocks {
    file: std::fs::File,
}

impl FetchLocks {
    /// Opens (creating) `dir/fetch.lock`.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(dir.join("fetch.lock"))?;
        Ok(Self { file })
    }

    fn offset(id: BlockId) -> i64 {
        let mut b = [0u8; 20];
        b[..8].copy_from_slice(&id.object.to_le_bytes());
        b[8..12].copy_from_slice(&id.version.to_le_bytes());
        b[12..].copy_from_slice(&id.index.to_le_bytes());
        (xxhash_rust::xxh3::xxh3_64(&b) >> 2) as i64
    }

    fn fcntl(&self, id: BlockId, kind: libc::c_short, wait: bool) -> std::io::Result<bool> {
        ofd_lock(&self.file, kind as libc::c_int, Self::offset(id), 1, wait)
    }

    /// Blocks until this process holds the lock of block `id`; the lock is released when the
    /// guard drops. Taken on a blocking thread, the guard is the thread's result: if whoever
    /// waited for it has gone (a cancelled read), the result is dropped and the lock with it,
    /// instead of staying held until the process exits and blocking every other process.
    pub fn lock(self: &Arc<Self>, id: BlockId) -> std::io::Result<FetchLock> {
        self.fcntl(id, libc::F_WRLCK as libc::c_short, true)?;
        Ok(FetchLock {
            locks: self.clone(),
            id,
        })
    }

    /// Takes the lock of block `id` if no other process holds it (None when one does).
    pub fn try_lock(self: &Arc<Self>, id: BlockId) -> std::io::Result<Option<FetchLock>> {
        Ok(self
            .fcntl(id, libc::F_WRLCK as libc::c_short, false)?
            .then(|| FetchLock {
                locks: self.clone(),
                id,
            }))
    }

    /// Releases the lock of block `id` (a [`FetchLock`] does on drop).
    fn unlock(&self, id: BlockId) {
        let _ = self.fcntl(id, libc::F_UNLCK as libc::c_short, false);
    }
}

/// A held fetch lock of one block, released on drop.
pub struct FetchLock {
    locks: Arc<FetchLocks>,
    id: BlockId,
}

impl Drop for FetchLock {
    fn drop(&mut self) {
        self.locks.unlock(self.id);
    }
}

/// An open-file-description lock (`F_OFD_SETLK[W]`) of `kind` (`F_WRLCK`, `F_RDLCK`,
/// `F_UNLCK`) on `len` bytes at `start` of `file`. Without `wait`, returns false when another
/// open file holds a conflicting lock. Shared by the fetch locks and the usage ledger.
pub(crate) fn ofd_lock(
    file: &std::fs::File,
    kind: libc::c_int,
    start: i64,
    len: i64,
    wait: bool,
) -> std::io::Result<bool> {
    // SAFETY: a zeroed flock is a valid value; the fields set are the ones fcntl reads.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = start;
    fl.l_len = len;
    let cmd = if wait {
        libc::F_OFD_SETLKW
    } else {
        libc::F_OFD_SETLK
    };
    loop {
        // SAFETY: a valid descriptor and a valid flock.
        if unsafe { libc::fcntl(file.as_raw_fd(), cmd, &fl) } == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) | Some(libc::EACCES) if !wait => return Ok(false),
            _ => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_exclude_other_descriptions_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let a = Arc::new(FetchLocks::open(dir.path()).unwrap());
        let b = Arc::new(FetchLocks::open(dir.path()).unwrap());
        let id = BlockId {
            object: 1,
            version: 2,
            index: 3,
        };
        let other = BlockId {
            object: 1,
            version: 2,
            index: 4,
        };
        let held = a.lock(id).unwrap();
        assert!(
            b.try_lock(id).unwrap().is_none(),
            "held by another description"
        );
        assert!(
            b.try_lock(other).unwrap().is_some(),
            "another block is free"
        );
        drop(held);
        assert!(b.try_lock(id).unwrap().is_some(), "released");
    }
}
