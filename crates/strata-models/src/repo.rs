//! Where pulled models live on the node: `CACHE_DIR/models/`.
//!
//! ```text
//! models/NAME-ID/VERSION/...files...   a published model (complete, with .strata-model.json)
//! models/.partial/NAME-ID@VERSION/      a pull in progress or interrupted (resumable)
//! models/.locks/NAME-ID@VERSION.lock    held (flock) by the process pulling that version
//! ```
//!
//! `ID` hashes the source URL, `VERSION` the files' names, sizes and ETags (and the tensor
//! selection), so a model changed on the store gets a new directory and is never mixed with
//! the old one. A published directory appears by one rename of a complete directory.

use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

use crate::error::{ModelError, Result};
use crate::manifest::ModelManifest;

/// The models directory of a node cache.
#[derive(Debug, Clone)]
pub struct ModelRepo {
    dir: PathBuf,
}

/// A published model found in the repository.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CachedModel {
    /// The model directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: ModelManifest,
}

fn private_dir(p: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .map_err(|e| ModelError::io(p, e))
}

impl ModelRepo {
    /// Opens (creating, private to its owner) `cache_dir/models`.
    pub fn open(cache_dir: &Path) -> Result<Self> {
        let dir = cache_dir.join("models");
        private_dir(&dir)?;
        private_dir(&dir.join(".partial"))?;
        private_dir(&dir.join(".locks"))?;
        Ok(Self { dir })
    }

    /// The models directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `NAME-ID` for a source URL: its last path segment (made safe) and a hash of the URL.
    pub fn model_key(source: &str) -> String {
        let trimmed = source.trim_end_matches('/');
        let last = trimmed.rsplit('/').next().unwrap_or("model");
        let mut name: String = last
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .take(48)
            .collect();
        if name.is_empty() || name.starts_with('.') {
            name.insert(0, 'm');
        }
        format!("{name}-{:016x}", xxh3_64(trimmed.as_bytes()))
    }

    /// A version id from the files' (name, size, ETag) and the selectors.
    pub fn version_of(files: &[(String, u64, Option<String>)], selectors: &[String]) -> String {
        let mut text = String::new();
        let mut sorted: Vec<_> = files.iter().collect();
        sorted.sort();
        for (n, s, e) in sorted {
            text.push_str(&format!(
                "{}:{n}{s}:{}\n",
                n.len(),
                e.as_deref().unwrap_or("")
            ));
        }
        for s in selectors {
            text.push_str(&format!("sel:{}:{s}\n", s.len()));
        }
        format!("{:016x}", xxh3_64(text.as_bytes()))
    }

    /// Where version `version` of `key` is published.
    pub fn published(&self, key: &str, version: &str) -> PathBuf {
        self.dir.join(key).join(version)
    }

    /// Where a pull of it collects files until it is complete.
    pub fn partial(&self, key: &str, version: &str) -> PathBuf {
        self.dir.join(".partial").join(format!("{key}@{version}"))
    }

    /// The lock file of a pull of it.
    pub fn lock_path(&self, key: &str, version: &str) -> PathBuf {
        self.dir
            .join(".locks")
            .join(format!("{key}@{version}.lock"))
    }

    /// Every published model, sorted by source then pull time.
    pub fn list(&self) -> Vec<CachedModel> {
        let mut out = Vec::new();
        for model in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if model.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            for v in std::fs::read_dir(model.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if let Ok(manifest) = ModelManifest::read(&v.path()) {
                    out.push(CachedModel {
                        dir: v.path(),
                        manifest,
                    });
                }
            }
        }
        out.sort_by(|a, b| {
            (&a.manifest.source, a.manifest.pulled_unix_ms)
                .cmp(&(&b.manifest.source, b.manifest.pulled_unix_ms))
        });
        out
    }

    /// Published models matching `what`: a directory, or a source URL (every version, or
    /// only the newest with `newest_only`).
    pub fn find(&self, what: &str, newest_only: bool) -> Vec<CachedModel> {
        let all = self.list();
        let p = Path::new(what);
        let by_dir: Vec<_> = all
            .iter()
            .filter(|m| p.is_dir() && m.dir.canonicalize().ok() == p.canonicalize().ok())
            .cloned()
            .collect();
        if !by_dir.is_empty() {
            return by_dir;
        }
        let want = what.trim_end_matches('/');
        let mut found: Vec<_> = all
            .into_iter()
            .filter(|m| m.manifest.source.trim_end_matches('/') == want)
            .collect();
        if newest_only && found.len() > 1 {
            found = found.split_off(found.len() - 1);
        }
        found
    }

    /// Removes a published model directory (renamed aside first, so it disappears at once),
    /// and the model's directory when no version is left.
    pub fn remove(&self, m: &CachedModel) -> Result<()> {
        let aside = self.dir.join(".partial").join(format!(
            ".rm-{}-{}",
            std::process::id(),
            m.manifest.version
        ));
        std::fs::rename(&m.dir, &aside).map_err(|e| ModelError::io(&m.dir, e))?;
        std::fs::remove_dir_all(&aside).map_err(|e| ModelError::io(&aside, e))?;
        if let Some(parent) = m.dir.parent() {
            let _ = std::fs::remove_dir(parent); // only if empty
        }
        Ok(())
    }
}
