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
    let guard = TempGuard::new(&tmp);
    let result = (|| {
        let bytes = std::fs::copy(src, &tmp).map_err(|e| StoreError::io("copy", src, e))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| StoreError::io("fsync", &tmp, e))?;
        std::fs::rename(&tmp, dst).map_err(|e| StoreError::io("rename", dst, e))?;
        sync_parent(dst);
        Ok(bytes)
    })();
    let bytes = result?;
    guard.keep();
    Ok(TransferReport {
        bytes,
        parts: 1,
        elapsed_secs: start.elapsed().as_secs_f64(),
        ..Default::default()
    })
}

/// A unique temporary name beside `dest`, hidden, so that listings and globbing skip it:
/// `.NAME.strata-PID-NONCE.tmp`, with NAME cut (at a character boundary) so that the whole
/// name fits in [`NAME_MAX`] bytes whatever the length of `dest`'s name.
pub fn temp_path(dest: &Path) -> std::path::PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nonce: u64 = rand::random();
    let tail = format!(".strata-{}-{nonce:016x}.tmp", std::process::id());
    let room = NAME_MAX - 1 - tail.len();
    let mut cut = name.len().min(room);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    dest.with_file_name(format!(".{}{tail}", &name[..cut]))
}

/// Removes a temporary file when dropped, unless [`TempGuard::keep`] was called: a copy
/// that fails, or whose task is dropped (a `cp -r` stopping at another file's error), leaves
/// no temporary file behind.
pub struct TempGuard {
    path: std::path::PathBuf,
    armed: bool,
}

impl TempGuard {
    /// Guards `path`.
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            armed: true,
        }
    }

    /// The file was renamed into place: nothing to remove.
    pub fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The longest file name (bytes) Linux file systems take.
pub const NAME_MAX: usize = 255;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_fit_whatever_the_name() {
        for name in ["a", &"x".repeat(230), &"y".repeat(255), &"é".repeat(127)] {
            let t = temp_path(&Path::new("/d").join(name));
            let n = t.file_name().unwrap().to_str().unwrap();
            assert!(n.len() <= NAME_MAX, "{} bytes", n.len());
            assert!(n.starts_with('.') && n.ends_with(".tmp") && n.contains(".strata-"));
        }
        // Two temporaries of one long name differ.
        let long = Path::new("/d").join("z".repeat(255));
        assert_ne!(temp_path(&long), temp_path(&long));
    }
}
