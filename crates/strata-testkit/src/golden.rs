//! Golden files: bytes a format promised, kept under a crate's `tests/golden/`.
//!
//! A test reads a golden file and checks that this build still reads it and writes the same
//! bytes. After a deliberate format change (with a new version number), running the test
//! with `STRATA_BLESS=1` writes this build's bytes there first.

use std::path::{Path, PathBuf};

/// `CRATE_DIR/tests/golden/NAME` (pass `env!("CARGO_MANIFEST_DIR")`).
pub fn path(crate_dir: &str, name: &str) -> PathBuf {
    Path::new(crate_dir).join("tests/golden").join(name)
}

/// The golden file `name` of the crate at `crate_dir`; with `STRATA_BLESS` set, `fresh()` is
/// written there first.
pub fn read(crate_dir: &str, name: &str, fresh: impl FnOnce() -> Vec<u8>) -> Vec<u8> {
    let p = path(crate_dir, name);
    if std::env::var_os("STRATA_BLESS").is_some() {
        std::fs::write(&p, fresh()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// JSON `bytes` with the number at `field` replaced by `to` (a file of another version).
pub fn with_number(bytes: &[u8], field: &str, to: u64) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).expect("a JSON golden file");
    v[field] = to.into();
    serde_json::to_vec(&v).expect("serializes")
}
