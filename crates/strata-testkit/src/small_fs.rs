//! A small file system of fixed size (a tmpfs mounted for the test), for disk-full tests.
//! Mounting needs root. Without it, [`SmallFs::mount`] returns `None` after printing a
//! SKIPPED notice, unless `STRATA_REQUIRE_MOUNT=1` (set by `scripts/test` as root), in which
//! case it panics: CI must not skip these tests silently.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs; unmounted when dropped.
pub struct SmallFs {
    mnt: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallFs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it, e.g. `2m`).
    pub fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mnt = dir.path().join("small");
        std::fs::create_dir(&mnt).expect("mount point");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mnt)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var("STRATA_REQUIRE_MOUNT").as_deref() != Ok("1"),
                "cannot mount a tmpfs (STRATA_REQUIRE_MOUNT=1)"
            );
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(Self { mnt, _dir: dir })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.mnt
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
    }
}
