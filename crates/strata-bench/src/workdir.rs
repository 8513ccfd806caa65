//! Where a benchmark keeps its files: a directory the user named (kept), or a temporary one
//! (removed when the benchmark ends).

use std::path::{Path, PathBuf};

use crate::error::BenchError;

/// A benchmark's directory; a temporary one lives as long as this value.
pub struct WorkDir {
    path: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl WorkDir {
    /// `given` (created if missing), else a new temporary directory named `prefix…`.
    pub fn new(given: Option<&Path>, prefix: &str) -> Result<Self, BenchError> {
        match given {
            Some(d) => {
                std::fs::create_dir_all(d)
                    .map_err(|e| BenchError::Failed(format!("{}: {e}", d.display())))?;
                Ok(Self {
                    path: d.to_path_buf(),
                    _tmp: None,
                })
            }
            None => {
                let t = tempfile::Builder::new().prefix(prefix).tempdir()?;
                Ok(Self {
                    path: t.path().to_path_buf(),
                    _tmp: Some(t),
                })
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
