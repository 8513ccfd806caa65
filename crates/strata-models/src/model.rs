//! A pulled model, opened: zero-copy tensor views into memory maps of the cached files, and
//! verification of the files against the manifest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{ModelError, Result};
use crate::manifest::ModelManifest;
use crate::safetensors::{self, Dtype, Header};

/// An opened model. The maps stay valid while it lives; cached files are never modified in
/// place (a new version goes to a new directory), so the views never change under a reader.
pub struct Model {
    dir: PathBuf,
    manifest: ModelManifest,
    /// Safetensors files: name → (map, header).
    files: BTreeMap<String, (Mmap, Header)>,
}

/// One tensor: its dtype, shape and bytes, borrowed from the model's memory map.
#[derive(Debug, Clone, Copy)]
pub struct TensorView<'a> {
    /// The tensor's name.
    pub name: &'a str,
    /// The file holding it.
    pub file: &'a str,
    /// Its element type.
    pub dtype: Dtype,
    /// Its shape.
    pub shape: &'a [u64],
    /// Its bytes, mapped from the file (little-endian, row-major).
    pub data: &'a [u8],
}

fn map(path: &Path) -> Result<Mmap> {
    let f = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    // SAFETY: published model files are never written again (a new version is a new
    // directory, removal renames the directory away before deleting), so the mapping does
    // not change under the borrow.
    unsafe { Mmap::map(&f) }.map_err(|e| ModelError::io(path, e))
}

fn parse_mapped(path: &Path, m: &[u8]) -> Result<Header> {
    let bad = |cause: String| ModelError::Header {
        file: path.display().to_string(),
        cause,
    };
    let n = safetensors::header_len(m, m.len() as u64).map_err(|e| bad(e.0))?;
    Header::parse(&m[8..8 + n as usize], m.len() as u64).map_err(|e| bad(e.0))
}

impl Model {
    /// Opens the model in `dir` (a published model directory): maps every safetensors file
    /// and validates its header.
    pub fn open(dir: &Path) -> Result<Self> {
        let manifest = ModelManifest::read(dir)?;
        let mut files = BTreeMap::new();
        for f in &manifest.files {
            if f.tensors == 0 && !f.name.ends_with(".safetensors") {
                continue;
            }
            let p = dir.join(&f.name);
            let m = map(&p)?;
            if m.len() as u64 != f.size {
                return Err(ModelError::Corrupt {
                    file: p.display().to_string(),
                    cause: format!("{} bytes, the manifest says {}", m.len(), f.size),
                });
            }
            let h = parse_mapped(&p, &m)?;
            files.insert(f.name.clone(), (m, h));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
            files,
        })
    }

    /// The model directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What was pulled.
    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    /// Every tensor, file by file in file order.
    pub fn tensors(&self) -> Vec<TensorView<'_>> {
        self.files
            .iter()
            .flat_map(|(file, (m, h))| {
                h.tensors.iter().map(move |t| TensorView {
                    name: &t.name,
                    file,
                    dtype: t.dtype,
                    shape: &t.shape,
                    data: &m[t.start as usize..t.end as usize],
                })
            })
            .collect()
    }

    /// Every tensor's description with its byte range in its file (absolute offsets), file by
    /// file in file order: for callers that map the files themselves (the Python package).
    pub fn tensor_infos(&self) -> Vec<(&str, &crate::safetensors::TensorInfo)> {
        self.files
            .iter()
            .flat_map(|(file, (_, h))| h.tensors.iter().map(move |t| (file.as_str(), t)))
            .collect()
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<TensorView<'_>> {
        self.tensors().into_iter().find(|t| t.name == name)
    }

    /// Checks every file's size against the manifest, without reading the files (what a
    /// pull checks before it serves a cached model). Returns the problems found (empty:
    /// intact as far as sizes tell).
    pub fn check_sizes(dir: &Path) -> Result<Vec<String>> {
        let manifest = ModelManifest::read(dir)?;
        let mut problems = Vec::new();
        for f in &manifest.files {
            let p = dir.join(&f.name);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_file() && m.len() == f.size => {}
                Ok(m) if m.is_file() => problems.push(format!(
                    "{}: {} bytes, the manifest says {}",
                    p.display(),
                    m.len(),
                    f.size
                )),
                Ok(_) => problems.push(format!("{}: not a regular file", p.display())),
                Err(e) => problems.push(format!("{}: {e}", p.display())),
            }
        }
        Ok(problems)
    }

    /// Reads every file and checks its size and CRC32C against the manifest (and every
    /// safetensors header). Returns the problems found (empty: intact).
    pub fn verify(dir: &Path) -> Result<Vec<String>> {
        let manifest = ModelManifest::read(dir)?;
        let mut problems = Vec::new();
        for f in &manifest.files {
            let p = dir.join(&f.name);
            let m = match map(&p) {
                Ok(m) => m,
                Err(e) => {
                    problems.push(e.to_string());
                    continue;
                }
            };
            if m.len() as u64 != f.size {
                problems.push(format!(
                    "{}: {} bytes, the manifest says {}",
                    p.display(),
                    m.len(),
                    f.size
                ));
                continue;
            }
            let crc = crc32c::crc32c(&m);
            if crc != f.crc32c {
                problems.push(format!(
                    "{}: CRC32C {crc:08x}, the manifest says {:08x}",
                    p.display(),
                    f.crc32c
                ));
            }
            if f.name.ends_with(".safetensors")
                && let Err(e) = parse_mapped(&p, &m)
            {
                problems.push(e.to_string());
            }
        }
        Ok(problems)
    }
}
