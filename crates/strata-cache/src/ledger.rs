//! The byte count of a cache directory, shared by every process that uses it, so the NVMe
//! tier's capacity bounds the directory and not each process's share of it.
//!
//! `DIR/usage` holds one little-endian `u64`: the bytes of block files (headers included).
//! It is read and changed only under an open-file-description write lock on the file
//! (`F_OFD_SETLKW`), which the kernel drops when a process dies, so a killed process never
//! wedges the others. Every process adds what it reserves before writing a block and subtracts
//! what its own `unlink` calls removed (an `unlink` succeeds in exactly one process, so a file
//! is subtracted once). Every process holding the directory open also holds a shared lock on
//! byte 8 of the file; a process that opens the directory while no other has it (its exclusive
//! lock on that byte succeeds) recounts from a scan, which repairs what a crash between a
//! reservation and its rename left behind. A process that opens it while others are at work
//! trusts the count, since their reservations for blocks still being written are in it and not
//! on disk yet. The file is not fsynced: after a power loss the next open recounts.

use std::os::unix::fs::FileExt;
use std::path::Path;

/// The shared byte count of one cache directory.
pub struct UsageLedger {
    file: std::fs::File,
    /// OFD locks exclude other open files, not threads sharing this one: this excludes those.
    threads: std::sync::Mutex<()>,
}

/// The count, locked: read it with [`Locked::get`], change it with [`Locked::set`]; the lock
/// is released on drop.
pub struct Locked<'a> {
    ledger: &'a UsageLedger,
    value: u64,
    _thread: std::sync::MutexGuard<'a, ()>,
}

impl UsageLedger {
    /// Opens (creating, private to its owner) `dir/usage`.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(dir.join("usage"))?;
        Ok(Self {
            file,
            threads: std::sync::Mutex::new(()),
        })
    }

    fn fcntl(&self, kind: libc::c_int) -> std::io::Result<()> {
        self.range_lock(kind, 0, 8, true).map(|_| ())
    }

    /// Locks `len` bytes at `start`; without `wait`, returns false if another holds them.
    fn range_lock(
        &self,
        kind: libc::c_int,
        start: i64,
        len: i64,
        wait: bool,
    ) -> std::io::Result<bool> {
        crate::lock::ofd_lock(&self.file, kind, start, len, wait)
    }

    /// Registers this handle as a user of the directory (until it is dropped) and calls
    /// `recount` with the count locked if no other handle is registered: the caller then sets
    /// the count from a scan.
    pub fn join(
        &self,
        recount: impl FnOnce(&mut Locked<'_>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut count = self.lock()?;
        if self.range_lock(libc::F_WRLCK, 8, 1, false)? {
            let r = recount(&mut count);
            // Converting to a shared lock never waits: nobody else holds the byte.
            self.range_lock(libc::F_RDLCK, 8, 1, true)?;
            return r;
        }
        drop(count);
        // Another user holds it; a shared lock may wait for one that is recounting.
        self.range_lock(libc::F_RDLCK, 8, 1, true).map(|_| ())
    }

    /// Waits for the lock and reads the count (0 for a new or short file).
    pub fn lock(&self) -> std::io::Result<Locked<'_>> {
        let thread = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        self.fcntl(libc::F_WRLCK)?;
        let mut b = [0u8; 8];
        let value = match self.file.read_exact_at(&mut b, 0) {
            Ok(()) => u64::from_le_bytes(b),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => {
                let _ = self.fcntl(libc::F_UNLCK);
                return Err(e);
            }
        };
        Ok(Locked {
            ledger: self,
            value,
            _thread: thread,
        })
    }

    /// The count now.
    pub fn get(&self) -> std::io::Result<u64> {
        Ok(self.lock()?.get())
    }

    /// Adds `delta` (which may be negative) to the count, never going below zero.
    pub fn add(&self, delta: i64) -> std::io::Result<u64> {
        let mut l = self.lock()?;
        let v = l.get().saturating_add_signed(delta);
        l.set(v)?;
        Ok(v)
    }
}

impl Locked<'_> {
    /// The count.
    pub fn get(&self) -> u64 {
        self.value
    }

    /// Replaces the count.
    pub fn set(&mut self, value: u64) -> std::io::Result<()> {
        self.ledger.file.write_all_at(&value.to_le_bytes(), 0)?;
        self.value = value;
        Ok(())
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let _ = self.ledger.fcntl(libc::F_UNLCK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_zero_and_never_goes_negative() {
        let d = tempfile::tempdir().unwrap();
        let l = UsageLedger::open(d.path()).unwrap();
        assert_eq!(l.get().unwrap(), 0);
        assert_eq!(l.add(100).unwrap(), 100);
        assert_eq!(l.add(-30).unwrap(), 70);
        assert_eq!(l.add(-500).unwrap(), 0);
        // A second handle (as another process would have) sees the same count.
        l.add(42).unwrap();
        let other = UsageLedger::open(d.path()).unwrap();
        assert_eq!(other.get().unwrap(), 42);
    }
}
