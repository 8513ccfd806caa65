//! A pulled model's `.strata-model.json` is a promise: models pulled before an upgrade are
//! read after it, or refused with a message that names the format (never misread).
//! `tests/golden/model-v1.json` is a manifest as the first format wrote it (no `format`
//! field); `STRATA_BLESS=1 cargo test -p strata-models --test formats` rewrites
//! `model-v1-current.json`, this build's bytes, after a deliberate format change.

use std::path::{Path, PathBuf};

use strata_models::ModelError;
use strata_models::manifest::{FORMAT_VERSION, MANIFEST, ModelManifest};

fn golden(name: &str) -> PathBuf {
    strata_testkit::golden::path(env!("CARGO_MANIFEST_DIR"), name)
}

/// `text` as a model directory's manifest.
fn model_dir(text: &[u8]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join(MANIFEST), text).unwrap();
    d
}

fn read(dir: &Path) -> Result<ModelManifest, ModelError> {
    ModelManifest::read(dir)
}

#[test]
fn a_manifest_of_the_first_format_still_reads() {
    let first = std::fs::read(golden("model-v1.json")).unwrap();
    let d = model_dir(&first);
    let m = read(d.path()).expect("a first-format manifest reads");
    assert_eq!(m.format, 1);
    assert_eq!(m.files.len(), 2);
    assert_eq!(m.bytes(), 1_048_576 + 1_234);
    // This build writes the same manifest with its format named.
    let now = serde_json::to_vec_pretty(&m).unwrap();
    let path = golden("model-v1-current.json");
    if std::env::var_os("STRATA_BLESS").is_some() {
        std::fs::write(&path, &now).unwrap();
    }
    assert_eq!(
        now,
        std::fs::read(&path).unwrap(),
        "the manifest format changed"
    );
    assert_eq!(FORMAT_VERSION, 1);
}

#[test]
fn another_format_is_refused_by_name() {
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(golden("model-v1.json")).unwrap()).unwrap();
    v["format"] = 2.into();
    let d = model_dir(&serde_json::to_vec(&v).unwrap());
    let e = read(d.path()).unwrap_err().to_string();
    assert!(
        e.contains("manifest format 2 (this build reads format 1)"),
        "{e}"
    );
    assert!(e.contains(MANIFEST), "{e}");
}
