//! Probing a file system path: a test file, then timed points of (read or write, sequential
//! or random, block size, queue depth). A queue depth of d is d threads, each with one
//! request in flight (`pread`/`pwrite`), as fio's `psync` engine with `numjobs = d` does.
//! Sequential points interleave the threads' blocks, so together they read one stream.
//!
//! The test file is removed when the probe ends, also on error.

use crate::error::PlanError;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use super::{ProbeKind, ProbeReport, percentiles};
use crate::tier::CurvePoint;

/// Settings of a device probe.
#[derive(Debug, Clone)]
pub struct DeviceProbe {
    /// A directory on the file system to measure.
    pub dir: PathBuf,
    /// Test file size. Default: 1 GiB (256 MiB with `quick`).
    pub file_size: u64,
    /// Seconds per point. Default: 0.5 (0.3 with `quick`).
    pub point_secs: f64,
    /// Block sizes of reads, bytes. Default: 4 KiB … 16 MiB (×4 steps); quick: 4 KiB, 64 KiB,
    /// 1 MiB, 16 MiB.
    pub blocks: Vec<u64>,
    /// Queue depths. Default: 1, 2, 4, … 64; quick: 1, 32.
    pub depths: Vec<u32>,
    /// Skip the write points (the file is still written once).
    pub no_writes: bool,
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

impl DeviceProbe {
    /// The full grid (about a minute) or the quick one (under 20 seconds).
    pub fn new(dir: impl Into<PathBuf>, quick: bool) -> Self {
        if quick {
            Self {
                dir: dir.into(),
                file_size: 256 * MIB,
                point_secs: 0.3,
                blocks: vec![4 * KIB, 64 * KIB, MIB, 16 * MIB],
                depths: vec![1, 32],
                no_writes: false,
            }
        } else {
            Self {
                dir: dir.into(),
                file_size: 1024 * MIB,
                point_secs: 0.5,
                blocks: vec![
                    4 * KIB,
                    16 * KIB,
                    64 * KIB,
                    256 * KIB,
                    MIB,
                    4 * MIB,
                    16 * MIB,
                ],
                depths: vec![1, 2, 4, 8, 16, 32, 64],
                no_writes: false,
            }
        }
    }

    /// Runs the probe.
    pub fn run(&self) -> Result<ProbeReport, PlanError> {
        let start = Instant::now();
        if !self.dir.is_dir() {
            return Err(PlanError::Invalid(format!(
                "{}: not a directory",
                self.dir.display()
            )));
        }
        let path = self
            .dir
            .join(format!(".strata-probe-{}.dat", std::process::id()));
        let _guard = Remove(path.clone());
        fill(&path, self.file_size)?;
        let (file, direct) = open(&path)?;
        let file = Arc::new(file);
        let mut notes = Vec::new();
        if !direct {
            notes.push(format!(
                "{}: the file system refused O_DIRECT; reads are buffered, with the file's pages dropped before each point (figures may include cache hits)",
                self.dir.display()
            ));
        }
        let mut points = Vec::new();
        let budget = 256 * MIB;
        // One timed point, unless its buffers exceed the budget or its block the file.
        let mut measure =
            |op: &str, random: bool, block: u64, depth: u32| -> Result<(), PlanError> {
                if block * depth as u64 > budget || block > self.file_size {
                    return Ok(());
                }
                if op == "read" && !direct {
                    drop_cache(&file);
                }
                points.push(point(
                    &file,
                    op,
                    random,
                    block,
                    depth,
                    self.file_size,
                    self.point_secs,
                )?);
                Ok(())
            };
        for random in [false, true] {
            for &block in &self.blocks {
                for &depth in &self.depths {
                    measure("read", random, block, depth)?;
                }
            }
        }
        if !self.no_writes {
            let wblocks: Vec<u64> = if self.blocks.len() > 4 {
                vec![4 * KIB, 64 * KIB, MIB, 16 * MIB]
            } else {
                self.blocks.clone()
            };
            let wdepths: Vec<u32> = if self.depths.len() > 3 {
                vec![1, 8, 32]
            } else {
                self.depths.clone()
            };
            for (random, blocks) in [(false, vec![MIB, 16 * MIB]), (true, wblocks)] {
                for &block in &blocks {
                    for &depth in &wdepths {
                        measure("write", random, block, depth)?;
                    }
                }
            }
        }
        Ok(ProbeReport::new(
            self.dir.display().to_string(),
            ProbeKind::Device,
            direct,
            self.file_size,
            start.elapsed().as_secs_f64(),
            points,
            notes,
        ))
    }
}

struct Remove(PathBuf);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Writes the test file with incompressible bytes, then fsyncs it.
fn fill(path: &Path, size: u64) -> Result<(), PlanError> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| PlanError::io("create the test file", path, e))?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut chunk = vec![0u8; MIB as usize];
    rng.fill(&mut chunk[..]);
    let mut off = 0;
    while off < size {
        let n = (size - off).min(MIB);
        // Vary the chunk so no block repeats (a deduplicating store would cheat).
        chunk[..8].copy_from_slice(&off.to_le_bytes());
        f.write_all_at(&chunk[..n as usize], off)
            .map_err(|e| PlanError::io("write the test file", path, e))?;
        off += n;
    }
    f.sync_all()
        .map_err(|e| PlanError::io("fsync the test file", path, e))?;
    Ok(())
}

/// Opens for direct I/O when the file system allows it.
fn open(path: &Path) -> Result<(File, bool), PlanError> {
    let direct = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path);
    if let Ok(f) = direct {
        // Some file systems accept the flag and fail the first I/O.
        let mut buf = Aligned::new(4096);
        if f.read_at(buf.as_mut(), 0).is_ok() {
            return Ok((f, true));
        }
    }
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| PlanError::io("open", path, e))?;
    Ok((f, false))
}

fn drop_cache(f: &File) {
    // SAFETY: a valid descriptor; the call only advises the kernel.
    unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
}

/// A buffer aligned to 4 KiB, as O_DIRECT requires.
struct Aligned {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the buffer is owned by one thread at a time.
unsafe impl Send for Aligned {}

impl Aligned {
    fn new(len: usize) -> Self {
        let layout =
            std::alloc::Layout::from_size_align(len.max(4096), 4096).expect("valid layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "out of memory allocating {len} bytes");
        Self { ptr, len }
    }

    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: ptr is valid for len bytes and uniquely borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        let layout =
            std::alloc::Layout::from_size_align(self.len.max(4096), 4096).expect("valid layout");
        // SAFETY: allocated in new() with this layout.
        unsafe { std::alloc::dealloc(self.ptr, layout) };
    }
}

/// One timed point.
fn point(
    file: &Arc<File>,
    op: &str,
    random: bool,
    block: u64,
    depth: u32,
    size: u64,
    secs: f64,
) -> Result<CurvePoint, PlanError> {
    let stop = Arc::new(AtomicBool::new(false));
    let blocks = (size / block).max(1);
    let write = op == "write";
    let op_name = op.to_string();
    let t0 = Instant::now();
    let threads: Vec<_> = (0..depth)
        .map(|i| {
            let file = file.clone();
            let stop = stop.clone();
            let op = op_name.clone();
            std::thread::spawn(move || -> Result<(u64, Vec<f64>), PlanError> {
                let mut buf = Aligned::new(block as usize);
                if write {
                    buf.as_mut().fill(0xA5 ^ i as u8);
                }
                let mut rng = rand::rngs::StdRng::seed_from_u64(i as u64 * 7919 + block);
                let mut lat = Vec::new();
                let mut done = 0u64;
                let mut k = i as u64;
                while !stop.load(Ordering::Relaxed) {
                    let idx = if random {
                        rng.random_range(0..blocks)
                    } else {
                        let v = k % blocks;
                        k += depth as u64;
                        v
                    };
                    let t = Instant::now();
                    let r = if write {
                        file.write_all_at(buf.as_mut(), idx * block)
                    } else {
                        file.read_exact_at(buf.as_mut(), idx * block)
                    };
                    r.map_err(|e| {
                        PlanError::Invalid(format!("{op} of {block} bytes at {}: {e}", idx * block))
                    })?;
                    if lat.len() < 100_000 {
                        lat.push(t.elapsed().as_secs_f64());
                    }
                    done += 1;
                }
                Ok((done, lat))
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let mut ops = 0;
    let mut lat = Vec::new();
    for t in threads {
        let (n, l) = t
            .join()
            .map_err(|_| PlanError::Task("a probe thread panicked".into()))??;
        ops += n;
        lat.extend(l);
    }
    if write {
        file.sync_data()
            .map_err(|e| PlanError::Invalid(format!("fsync: {e}")))?;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let (p50, p95, p99) = percentiles(lat);
    Ok(CurvePoint {
        op: op.into(),
        random,
        block,
        depth,
        bytes_per_sec: (ops * block) as f64 / elapsed,
        iops: ops as f64 / elapsed,
        p50,
        p95,
        p99,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_probe_measures_every_point_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let p = DeviceProbe {
            dir: dir.path().to_path_buf(),
            file_size: 8 * MIB,
            point_secs: 0.05,
            blocks: vec![4 * KIB, MIB],
            depths: vec![1, 4],
            no_writes: false,
        };
        let r = p.run().unwrap();
        let reads = r.points.iter().filter(|p| p.op == "read").count();
        assert_eq!(reads, 2 * 2 * 2, "{:#?}", r.points);
        assert!(r.points.iter().any(|p| p.op == "write"));
        assert!(
            r.points
                .iter()
                .all(|p| p.bytes_per_sec > 0.0 && p.p50 > 0.0 && p.p50 <= p.p99)
        );
        assert!(r.sequential_read > 0.0 && r.sequential_over_random > 0.0);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the test file is removed"
        );
        let back = ProbeReport::from_json(&serde_json::to_string(&r).unwrap(), "x").unwrap();
        assert_eq!(back.points.len(), r.points.len());
        assert!(r.to_table().contains("sequential/random"));
    }

    #[test]
    fn a_missing_directory_is_a_clear_error() {
        let e = DeviceProbe::new("/nonexistent/strata", true)
            .run()
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/strata"), "{e}");
    }
}
