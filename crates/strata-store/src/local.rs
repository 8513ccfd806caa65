//! Local file copies with the same guarantees as downloads: the destination appears whole
//! (temporary name, fsync, rename) or not at all.

use std::path::Path;
use std::time::Instant;

use crate::error::{Result, StoreError};
use crate::transfer::TransferReport;

/// Copies the file `src` to `dst`, creating `dst`'s directory. Blocking; call it from
/// `spawn_blocking` in async code.
pub fn copy_file(src: &Path, dst: &Path) -> Result<TransferReport> {
    let start = Instant::now();
    if let Some(dir) = dst.parent() {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io("create directory", dir, e))?;
    }
    if src
        .canonicalize()
        .ok()
        .is_some_and(|s| dst.canonicalize().ok() == Some(s))
    {
        return Err(StoreError::Io {
            op: "copy",
            path: dst.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "source and destination are the same file",
            ),
        });
    }
    let tmp = temp_path(dst);
    let result = (|| {
        let bytes = std::fs::copy(src, &tmp).map_err(|e| StoreError::io("copy", src, e))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| StoreError::io("fsync", &tmp, e))?;
        std::fs::rename(&tmp, dst).map_err(|e| StoreError::io("rename", dst, e))?;
        sync_parent(dst);
        Ok(bytes)
    })();
    match result {
        Ok(bytes) => Ok(TransferReport {
            bytes,
            parts: 1,
            elapsed_secs: start.elapsed().as_secs_f64(),
            ..Default::default()
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// A unique temporary name beside `dest`, hidden, so that listings and globbing skip it.
pub fn temp_path(dest: &Path) -> std::path::PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nonce: u64 = rand::random();
    dest.with_file_name(format!(
        ".{name}.strata-{}-{nonce:016x}.tmp",
        std::process::id()
    ))
}

/// Makes a rename durable by syncing the directory that holds it (best effort).
pub fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// Starts writing a range back to the device now, without waiting for it, so the fsync at the
/// end of a download (or a checkpoint's local write) waits for the last parts only instead of the whole object (Linux holds
/// gigabytes dirty in the page cache otherwise). Best effort; elsewhere a no-op.
pub fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor and a range within the file; the call only
        // schedules I/O and does not touch our memory.
        unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                offset as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}
