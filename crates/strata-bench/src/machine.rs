//! The machine's own limits, measured in the same run as a benchmark.

use crate::error::BenchError;
use std::path::Path;

/// Limits of this machine.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MachineLimits {
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// Single-thread memory copy bandwidth, GiB/s (256 MiB buffers, best of 3).
    pub memcpy_gib_per_sec: f64,
}

impl MachineLimits {
    /// Measures the limits (about half a second).
    pub fn measure() -> Self {
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memcpy_gib_per_sec: strata_plan::machine::memcpy_bandwidth() / (1u64 << 30) as f64,
        }
    }
}

/// MiB/s.
pub fn mib(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / (1 << 20) as f64 / secs.max(1e-9)
}

/// How the page cache was dropped before a measured read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheDrop {
    /// `sync` then `/proc/sys/vm/drop_caches` (needs root): the page cache is really empty.
    DropCaches,
    /// `posix_fadvise(DONTNEED)` per file: best effort; the kernel may keep some pages, which
    /// inflates both the device figure and the warm reads.
    Fadvise,
}

/// Empties the page cache of every file under `dir` (all of it, when root), so the next
/// reads come from the device.
pub fn drop_page_cache(dir: &Path) -> CacheDrop {
    // SAFETY: sync has no arguments and no failure mode.
    unsafe { libc::sync() };
    if std::fs::write("/proc/sys/vm/drop_caches", b"3\n").is_ok() {
        return CacheDrop::DropCaches;
    }
    fn walk(d: &Path) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p);
            } else if let Ok(f) = std::fs::File::open(&p) {
                use std::os::fd::AsRawFd;
                // SAFETY: a valid descriptor; the call only advises the kernel.
                unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            }
        }
    }
    walk(dir);
    CacheDrop::Fadvise
}

/// The runtime a benchmark drives its client with: two workers, the machine's cores (the
/// servers and the link emulator run on runtimes of their own).
pub fn runtime() -> Result<tokio::runtime::Runtime, BenchError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(BenchError::Io)
}
