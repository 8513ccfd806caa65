//! The NVMe tier: a directory of block files on local storage.
//!
//! Layout: `DIR/blocks/XX/OOOOOOOOOOOOOOOO-VVVVVVVV-INDEX.blk` (see [`crate::key::BlockId`]),
//! `DIR/tmp/` for files being written, `DIR/fetch.lock` for cross-process single flight.
//! The directory is created private to its owner (0700).
//!
//! Opening scans the block directories (names and sizes only, no file is read), so a
//! directory of 100,000 blocks opens in well under a second, and deletes temporary files
//! left by processes that are gone. Every read is verified ([`crate::block_file`]); a damaged
//! file is deleted and reported as a miss. Writes stop (and reads go on, uncached) when the
//! tier is at its byte capacity and nothing can be evicted, or when the file system's free
//! space falls below `min_free_fraction`.
//!
//! Several processes may share one directory. Each keeps its own index of the files it has
//! seen (for its eviction policy), learns of others' files when it finds them on a lookup or
//! by rescanning the directory when it has nothing of its own left to evict, and treats a file
//! another process evicted as a miss. The byte count is shared ([`crate::ledger`]): a process
//! reserves room in it before writing a block and evicts until the directory, not its own
//! share, fits the capacity.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::block_file::{self, BlockError};
use crate::bufpool::BufPool;
use crate::key::{BlockId, ObjectVersion};
use crate::ledger::UsageLedger;
use crate::policy::{EvictionPolicy, PolicyKind};
use crate::stats::TierStats;

/// Settings of the NVMe tier.
#[derive(Debug, Clone)]
pub struct NvmeConfig {
    /// The cache directory.
    pub dir: PathBuf,
    /// Bytes of block files (headers included) the tier may hold.
    pub capacity: u64,
    /// Stop writing when the file system has less than this fraction free. Default: 0.05.
    pub min_free_fraction: f64,
    /// Eviction policy. Default for users: [`PolicyKind::Auto`].
    pub policy: PolicyKind,
}

/// Why a block was not written.
#[derive(Debug, PartialEq, Eq)]
pub enum NotStored {
    /// The file system is (nearly) full, or the block is larger than the tier.
    Full,
    /// Writing failed; the reason was logged.
    Failed,
    /// The tier was full and the policy chose not to make room for this block.
    Declined,
}

struct State {
    /// The block files this process knows of, with their sizes in bytes.
    index: HashMap<BlockId, u64>,
    policy: Box<dyn EvictionPolicy>,
}

/// The NVMe tier. Its methods block: call them from `spawn_blocking` in async code.
pub struct NvmeTier {
    dir: PathBuf,
    capacity: u64,
    min_free: f64,
    state: Mutex<State>,
    ledger: UsageLedger,
    /// A tier in front (DRAM) holds blocks for their current use, so the policy may decline
    /// to store a block when the tier is full ([`EvictionPolicy::admit`]).
    bypass: AtomicBool,
    full_warned: AtomicBool,
    /// Why the last block was not stored, for callers that must report it (`strata warm`).
    last_refusal: Mutex<Option<String>>,
    nonce: AtomicU64,
    /// Read buffers, recycled (see [`crate::bufpool`]).
    buffers: Arc<BufPool>,
    pub(crate) stats: TierStats,
}

impl NvmeTier {
    /// Opens (creating if needed) the tier in `cfg.dir`.
    pub fn open(cfg: &NvmeConfig) -> std::io::Result<Self> {
        create_private_dir(&cfg.dir)?;
        let blocks = cfg.dir.join("blocks");
        let tmp = cfg.dir.join("tmp");
        create_private_dir(&blocks)?;
        create_private_dir(&tmp)?;
        clean_tmp(&tmp);
        let mut state = State {
            index: HashMap::new(),
            policy: cfg.policy.build(),
        };
        // The first user of the directory recounts it; later ones trust the shared count
        // (see `crate::ledger`). Either way this process learns the files there.
        let ledger = UsageLedger::open(&cfg.dir)?;
        let mut scanned = false;
        ledger.join(|count| {
            let total = scan_into(&blocks, &mut state)?;
            scanned = true;
            count.set(total)
        })?;
        if !scanned {
            scan_into(&blocks, &mut state)?;
        }
        Ok(Self {
            dir: cfg.dir.clone(),
            capacity: cfg.capacity,
            min_free: cfg.min_free_fraction,
            state: Mutex::new(state),
            ledger,
            bypass: AtomicBool::new(false),
            full_warned: AtomicBool::new(false),
            last_refusal: Mutex::new(None),
            nonce: AtomicU64::new(rand::random()),
            buffers: BufPool::global().clone(),
            stats: TierStats::new("nvme"),
        })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where block `id` lives.
    pub fn path_of(&self, id: BlockId) -> PathBuf {
        self.dir
            .join("blocks")
            .join(id.fanout())
            .join(id.file_name())
    }

    /// The file size of block `id` if known (for sizing its read buffer), else 8 MiB.
    fn block_hint(&self, id: BlockId) -> usize {
        self.state().index.get(&id).map_or(8 << 20, |&s| s as usize)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes held in the directory (by every process sharing it) and the number of blocks
    /// this process knows of (all of them, just after opening).
    pub fn usage(&self) -> (u64, usize) {
        let n = self.state().index.len();
        (self.ledger.get().unwrap_or(0), n)
    }

    /// The tier's counters.
    pub fn stats(&self) -> crate::stats::TierSnapshot {
        self.stats.snapshot()
    }

    /// The byte capacity.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Reads block `index` of `v`, verified. A damaged file is deleted and counted, and the
    /// result is a miss. Records the access with the eviction policy.
    pub fn get(&self, v: &ObjectVersion, index: u64) -> Option<Bytes> {
        self.lookup(v, index, true)
    }

    /// Like [`NvmeTier::get`], but not counted as an access (for a second look after
    /// waiting on another process).
    pub fn peek(&self, v: &ObjectVersion, index: u64) -> Option<Bytes> {
        self.lookup(v, index, false)
    }

    fn lookup(&self, v: &ObjectVersion, index: u64, record: bool) -> Option<Bytes> {
        let id = v.block(index);
        let path = self.path_of(id);
        let key = v.key_text(index);
        let pool = &self.buffers;
        match block_file::read_with(
            &path,
            &key,
            || pool.take(self.block_hint(id)),
            |b| pool.freeze(b),
        ) {
            Ok(block) => {
                let mut s = self.state();
                if let std::collections::hash_map::Entry::Vacant(e) = s.index.entry(id) {
                    // Written by another process sharing the directory.
                    let size = (block_file::header_len(&key) + block.data.len()) as u64;
                    e.insert(size);
                    s.policy.on_insert(id, size);
                }
                if record {
                    s.policy.on_access(id, true);
                }
                drop(s);
                if record {
                    self.stats.hit(block.data.len() as u64);
                }
                return Some(block.data);
            }
            Err(BlockError::Missing) => {}
            Err(BlockError::Corrupt(why)) => {
                tracing::warn!(
                    "cache: dropping damaged block file {}: {why}",
                    path.display()
                );
                self.unlink(&path, None);
                self.stats.corrupted();
            }
            Err(BlockError::Io(e)) => tracing::warn!("cache: cannot read {}: {e}", path.display()),
        }
        let mut s = self.state();
        if s.index.remove(&id).is_some() {
            // Evicted by another process, or damaged.
            s.policy.on_remove(id);
        }
        if record {
            s.policy.on_access(id, false);
        }
        drop(s);
        if record {
            self.stats.miss();
        }
        None
    }

    /// Stores block `index` of `v` (which starts at `offset` in the object), evicting as
    /// needed. Errors are logged once and mean "not cached"; the caller goes on.
    pub fn put(
        &self,
        v: &ObjectVersion,
        index: u64,
        offset: u64,
        data: &[u8],
    ) -> Result<(), NotStored> {
        let id = v.block(index);
        let key = v.key_text(index);
        let size = (block_file::header_len(&key) + data.len()) as u64;
        if size > self.capacity {
            self.warn_full(&format!(
                "a block of {size} bytes is larger than the capacity of {} bytes",
                self.capacity
            ));
            return Err(NotStored::Full);
        }
        if let Some(free) = self.low_on_space() {
            self.warn_full(&format!(
                "the file system has {:.1}% free, below the floor of {:.1}% \
                 (cache.min_free_fraction)",
                free * 100.0,
                self.min_free * 100.0
            ));
            return Err(NotStored::Full);
        }
        if let Err(e) = self.reserve(id, size) {
            return Err(match e {
                NotStored::Full => {
                    self.warn_full("the tier is full and nothing can be evicted");
                    NotStored::Full
                }
                other => other,
            });
        }
        let dest = self.path_of(id);
        let n = self.nonce.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join("tmp")
            .join(format!("{}-{n:016x}.tmp", std::process::id()));
        let written = std::fs::create_dir_all(dest.parent().expect("has a parent"))
            .and_then(|_| block_file::write(&tmp, &dest, &key, offset, data));
        match written {
            Ok(placed) => {
                let mut size = size;
                if !placed {
                    // Another process wrote the block first: its file is counted already.
                    self.release(size);
                    size = std::fs::metadata(&dest).map_or(size, |m| m.len());
                }
                let mut s = self.state();
                if s.index.insert(id, size).is_some() {
                    s.policy.on_remove(id);
                }
                s.policy.on_insert(id, size);
                drop(s);
                if placed {
                    self.stats.written(data.len() as u64);
                }
                Ok(())
            }
            Err(e) => {
                self.release(size);
                if e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT)
                {
                    self.warn_full("the file system is full");
                    Err(NotStored::Full)
                } else {
                    tracing::warn!("cache: cannot write {}: {e}", dest.display());
                    Err(NotStored::Failed)
                }
            }
        }
    }

    /// Reserves `size` bytes in the shared count, evicting until the directory fits the
    /// capacity: first blocks this process knows of, then, after a rescan, blocks other
    /// processes wrote.
    fn reserve(&self, id: BlockId, size: u64) -> Result<(), NotStored> {
        let failed = |e: std::io::Error| {
            tracing::warn!("cache {}: usage count: {e}", self.dir.display());
            NotStored::Failed
        };
        let mut count = self.ledger.lock().map_err(failed)?;
        let mut rescanned = false;
        loop {
            let need = (count.get() + size).saturating_sub(self.capacity);
            if need == 0 {
                break;
            }
            if self.bypass.load(Ordering::Relaxed) && !self.state().policy.admit(id) {
                self.stats.declined();
                return Err(NotStored::Declined);
            }
            let freed = self.evict(need);
            count
                .set(count.get().saturating_sub(freed))
                .map_err(failed)?;
            if freed >= need {
                continue;
            }
            if rescanned {
                return Err(NotStored::Full);
            }
            // Nothing of ours left to evict: learn what the other processes wrote.
            rescanned = true;
            let mut s = self.state();
            let _ = scan_into(&self.dir.join("blocks"), &mut s);
        }
        let total = count.get() + size;
        count.set(total).map_err(failed)
    }

    /// Gives back `size` reserved bytes.
    fn release(&self, size: u64) {
        if let Err(e) = self.ledger.add(-(size as i64)) {
            tracing::warn!("cache {}: usage count: {e}", self.dir.display());
        }
    }

    /// Deletes victims chosen by the policy until `need` bytes are freed or none is left.
    /// Returns the bytes this process's deletions freed (a file another process deleted
    /// first is theirs to subtract). Call with the shared count locked.
    fn evict(&self, need: u64) -> u64 {
        let mut freed = 0;
        let mut evicted = 0;
        while freed < need {
            let victim = {
                let mut s = self.state();
                loop {
                    let Some(v) = s.policy.victim() else {
                        break None;
                    };
                    if let Some(size) = s.index.remove(&v) {
                        break Some((v, size));
                    }
                }
            };
            let Some((v, size)) = victim else { break };
            match std::fs::remove_file(self.path_of(v)) {
                Ok(()) => {
                    freed += size;
                    evicted += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("cache: cannot evict {}: {e}", self.path_of(v).display()),
            }
        }
        if evicted > 0 {
            self.stats.evicted(evicted);
        }
        freed
    }

    /// Deletes a block file and subtracts its size (`size`, else its length on disk) from
    /// the shared count, if this process's `unlink` is the one that removed it.
    fn unlink(&self, path: &Path, size: Option<u64>) -> bool {
        let size = size.or_else(|| std::fs::metadata(path).ok().map(|m| m.len()));
        if std::fs::remove_file(path).is_err() {
            return false;
        }
        if let Some(size) = size {
            self.release(size);
        }
        true
    }

    /// Tells the eviction policy the planned order of future accesses (used by the next-use
    /// policy; others ignore it).
    /// With [`PolicyKind::Auto`], the first plan switches the policy to next-use.
    pub fn plan(&self, future: &[BlockId]) -> u64 {
        self.state().policy.plan(future)
    }

    /// Says whether a tier in front holds blocks for their current use (see
    /// [`EvictionPolicy::admit`]). Default: no.
    pub fn set_bypass(&self, on: bool) {
        self.bypass.store(on, Ordering::Relaxed);
    }

    /// Tells the eviction policy the consumer reached plan position `position`.
    pub fn progress(&self, position: u64) {
        self.state().policy.progress(position);
    }

    /// Deletes every block of the object (all versions). Returns how many were deleted.
    pub fn remove_object(&self, object_hash: u64) -> usize {
        let fan = self
            .dir
            .join("blocks")
            .join(format!("{:02x}", object_hash >> 56));
        let prefix = format!("{object_hash:016x}-");
        let mut n = 0;
        if let Ok(rd) = std::fs::read_dir(&fan) {
            for entry in rd.flatten() {
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if name.starts_with(&prefix) {
                    if self.unlink(&entry.path(), None) {
                        n += 1;
                    }
                    if let Some(id) = BlockId::parse_file_name(name) {
                        let mut s = self.state();
                        if s.index.remove(&id).is_some() {
                            s.policy.on_remove(id);
                        }
                    }
                }
            }
        }
        n
    }

    /// Deletes every block.
    pub fn clear(&self) -> std::io::Result<usize> {
        let mut n = 0;
        for fan in std::fs::read_dir(self.dir.join("blocks"))?.flatten() {
            for entry in std::fs::read_dir(fan.path())?.flatten() {
                if self.unlink(&entry.path(), None) {
                    n += 1;
                }
            }
        }
        let mut s = self.state();
        let ids: Vec<BlockId> = s.index.keys().copied().collect();
        for id in ids {
            s.policy.on_remove(id);
        }
        s.index.clear();
        Ok(n)
    }

    /// The free fraction of the file system when it is below the floor.
    fn low_on_space(&self) -> Option<f64> {
        free_fraction(&self.dir).filter(|f| *f < self.min_free)
    }

    /// Why the last block offered to [`Self::put`] was not stored (full, below the
    /// free-space floor, file system full), if one was refused.
    pub fn last_refusal(&self) -> Option<String> {
        self.last_refusal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A fetched block was not stored: the writes behind the reads fell behind the fetches.
    pub(crate) fn fell_behind(&self) {
        self.warn_full(
            "writes fall behind the fetches (the disk writes slower than the source delivers)",
        );
    }

    fn warn_full(&self, why: &str) {
        self.stats.passed_through();
        *self.last_refusal.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.to_string());
        if !self.full_warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "cache {}: {why}; reading through without caching",
                self.dir.display()
            );
        }
    }
}

/// The fraction of the file system holding `dir` that is free for unprivileged users.
pub fn free_fraction(dir: &Path) -> Option<f64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path; `st` is written by the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 || st.f_blocks == 0 {
        return None;
    }
    Some(st.f_bavail as f64 / st.f_blocks as f64)
}

/// Adds the block files under `blocks` that `state` does not know yet (names and sizes only)
/// and returns the bytes of all block files found.
fn scan_into(blocks: &Path, state: &mut State) -> std::io::Result<u64> {
    let mut total = 0;
    for fan in std::fs::read_dir(blocks)? {
        let fan = fan?;
        if !fan.file_type()?.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(fan.path())? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(BlockId::parse_file_name) else {
                continue;
            };
            // A file deleted since the listing is simply skipped.
            let Ok(meta) = entry.metadata() else { continue };
            let size = meta.len();
            total += size;
            if let std::collections::hash_map::Entry::Vacant(e) = state.index.entry(id) {
                e.insert(size);
                state.policy.on_insert(id, size);
            }
        }
    }
    Ok(total)
}

/// Creates `dir` (and parents) and makes it private to its owner.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Deletes temporary files whose writer is gone (its pid is not alive) or that are older than
/// an hour.
fn clean_tmp(tmp: &Path) {
    let Ok(rd) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid: Option<i32> = name.split('-').next().and_then(|p| p.parse().ok());
        let alive = pid.is_some_and(|p| {
            // SAFETY: signal 0 only asks whether the process exists; EPERM means it does.
            p > 0
                && (unsafe { libc::kill(p, 0) } == 0
                    || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
        });
        let old = entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| {
            SystemTime::now().duration_since(t).unwrap_or_default() > Duration::from_secs(3600)
        });
        if !alive || old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
