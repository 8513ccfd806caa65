//! The record of a pulled model, `.strata-model.json` inside its directory: where it came
//! from, which version, and each file's size, ETag and CRC32C.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// The manifest's file name inside a model directory.
pub const MANIFEST: &str = ".strata-model.json";

/// The manifest's format. Manifests written before the field existed are format 1.
pub const FORMAT_VERSION: u32 = 1;

fn format_1() -> u32 {
    1
}

/// One file of a pulled model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFile {
    /// Path inside the model directory (as under the source prefix).
    pub name: String,
    /// Bytes on disk.
    pub size: u64,
    /// The source object's size and ETag.
    pub source_size: u64,
    /// The source object's ETag when it was pulled.
    pub e_tag: Option<String>,
    /// CRC32C of the file on disk.
    pub crc32c: u32,
    /// Tensors in it (safetensors files), else 0.
    pub tensors: usize,
    /// True when the file holds a selection of the source file's tensors (with its own
    /// header).
    pub subset: bool,
}

/// A pulled model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelManifest {
    /// [`FORMAT_VERSION`] of the writer (1 when absent: the first format had no field).
    #[serde(default = "format_1")]
    pub format: u32,
    /// The URL it was pulled from.
    pub source: String,
    /// Hash of the files' names, sizes and ETags and of the selection.
    pub version: String,
    /// Tensor selectors (names or prefixes); empty for the whole model.
    pub selectors: Vec<String>,
    /// The files, in the source's order.
    pub files: Vec<ModelFile>,
    /// When the pull finished (Unix ms).
    pub pulled_unix_ms: i64,
}

impl ModelManifest {
    /// Bytes of all files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Reads `dir`'s manifest.
    pub fn read(dir: &std::path::Path) -> Result<Self> {
        let p = dir.join(MANIFEST);
        let text = std::fs::read(&p).map_err(|e| ModelError::io(&p, e))?;
        let m: Self = serde_json::from_slice(&text).map_err(|e| ModelError::Corrupt {
            file: p.display().to_string(),
            cause: format!("unreadable manifest: {e}"),
        })?;
        if m.format != FORMAT_VERSION {
            return Err(ModelError::Corrupt {
                file: p.display().to_string(),
                cause: format!(
                    "manifest format {} (this build reads format {FORMAT_VERSION}); pull the model again",
                    m.format
                ),
            });
        }
        Ok(m)
    }
}
