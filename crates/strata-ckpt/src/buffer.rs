//! Restored bytes, handed over without a copy: a verified local file mapped copy-on-write, or
//! the one allocation the store's ranged reads landed in.
//!
//! Both are writable by their holder (an optimizer's state is updated in place after a
//! restore): a write to a mapped file makes a private copy of the page and never reaches the
//! file on disk.

use std::fs::File;
use std::ops::{Deref, DerefMut};
use std::path::Path;

/// The bytes of one restored file.
pub struct Buffer {
    inner: Inner,
}

enum Inner {
    Mapped(memmap2::MmapMut),
    Owned(Vec<u8>),
}

impl Buffer {
    /// Bytes in memory.
    pub fn owned(v: Vec<u8>) -> Self {
        Self {
            inner: Inner::Owned(v),
        }
    }

    /// Maps the file at `path` privately (copy-on-write). An empty file is an empty buffer
    /// (nothing to map). The caller verifies the bytes after mapping them.
    pub fn map(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(Self::owned(Vec::new()));
        }
        // SAFETY: a private mapping; another process changing the file underneath could
        // change pages not yet copied. The local tier's files are written once, renamed into
        // place and never modified (a new save of the same step is refused), and every
        // chunk is verified after the mapping is made.
        let map = unsafe { memmap2::MmapOptions::new().map_copy(&file)? };
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(Self {
            inner: Inner::Mapped(map),
        })
    }

    /// Whether the bytes are a mapped file (false: an allocation).
    pub fn is_mapped(&self) -> bool {
        matches!(self.inner, Inner::Mapped(_))
    }
}

impl Deref for Buffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.inner {
            Inner::Mapped(m) => m,
            Inner::Owned(v) => v,
        }
    }
}

impl DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        match &mut self.inner {
            Inner::Mapped(m) => m,
            Inner::Owned(v) => v,
        }
    }
}

impl AsRef<[u8]> for Buffer {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer")
            .field("len", &self.len())
            .field("mapped", &self.is_mapped())
            .finish()
    }
}

/// `len` zero bytes, not yet touched (a large allocation is a fresh anonymous map, zero
/// until written), advised to use transparent huge pages: the first write maps 2 MiB per
/// fault instead of 4 KiB (filling 3.2 GB of new memory took 7.1 s in 4 KiB pages and 2.5 s in
/// huge pages on a developer machine).
pub(crate) fn zeroed(len: usize) -> Vec<u8> {
    let v = vec![0u8; len];
    #[cfg(target_os = "linux")]
    if len >= 4 << 20 {
        // The advice covers the whole pages inside the allocation.
        let page = 4096usize;
        let start = (v.as_ptr() as usize).div_ceil(page) * page;
        let end = (v.as_ptr() as usize + len) / page * page;
        if end > start {
            // SAFETY: the range lies inside the allocation; MADV_HUGEPAGE changes no content.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    v
}

/// Checks `data` against `entry` on up to `threads` threads (chunk-aligned pieces).
pub(crate) fn verify_parallel(
    entry: &crate::manifest::FileEntry,
    data: &[u8],
    chunk: u64,
    threads: usize,
) -> Result<(), crate::manifest::ManifestError> {
    use crate::manifest::{ManifestError, check_shape, verify_piece};
    check_shape(entry, data.len(), chunk)?;
    let chunk = chunk.max(1);
    let n_chunks = entry.chunks.len();
    let per = n_chunks.div_ceil(threads.max(1)).max(1);
    let piece = per as u64 * chunk;
    if data.is_empty() {
        return Ok(());
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = data
            .chunks(piece as usize)
            .enumerate()
            .map(|(k, bytes)| s.spawn(move || verify_piece(entry, k * per, bytes, chunk)))
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join().unwrap_or_else(|_| {
                Err(ManifestError::Invalid("a verifier thread panicked".into()))
            })
        })
    })
}
