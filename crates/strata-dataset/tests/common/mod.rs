//! Helpers: raw sample files, locations, readers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use futures::TryStreamExt;
use strata_dataset::{Dataset, Location, Reader, ReaderConfig, Sample};
use strata_store::{StoreConfig, StoreUrl};

/// Writes `n` samples (`NNNNN.bin` of 1–20 KB and `NNNNN.cls`) under `dir/train/`, plus a
/// README without extension, and returns key → (ext → bytes).
pub fn raw_files(dir: &Path, n: u64) -> BTreeMap<String, BTreeMap<String, Vec<u8>>> {
    let mut all = BTreeMap::new();
    std::fs::create_dir_all(dir.join("train")).unwrap();
    std::fs::write(dir.join("README"), b"no extension: skipped").unwrap();
    for i in 0..n {
        let key = format!("train/{i:05}");
        let len = 1000 + (i * 7919 % 19_000) as usize;
        let bin = strata_testkit::data::bytes(i, len);
        let cls = format!("{}", i % 10).into_bytes();
        std::fs::write(dir.join(format!("{key}.bin")), &bin).unwrap();
        std::fs::write(dir.join(format!("{key}.cls")), &cls).unwrap();
        let mut m = BTreeMap::new();
        m.insert("bin".to_string(), bin);
        m.insert("cls".to_string(), cls);
        all.insert(key, m);
    }
    all
}

/// A location on the local file system.
pub fn local(path: &Path) -> Location {
    std::fs::create_dir_all(path).unwrap();
    Location::open(
        &StoreUrl::parse(&path.display().to_string()).unwrap(),
        &StoreConfig::default(),
    )
    .unwrap()
}

/// Reads a whole worker share.
pub async fn read_all(ds: Arc<Dataset>, cfg: ReaderConfig) -> Vec<Sample> {
    let r = Reader::new(ds, None, cfg).await.unwrap();
    r.stream().try_collect().await.unwrap()
}

/// Checks samples against the raw files.
pub fn check(samples: &[Sample], want: &BTreeMap<String, BTreeMap<String, Vec<u8>>>) {
    for s in samples {
        let w = want
            .get(&s.key)
            .unwrap_or_else(|| panic!("unknown key {}", s.key));
        assert_eq!(s.members.len(), w.len(), "{}", s.key);
        for (ext, data) in &s.members {
            assert_eq!(&data[..], &w[ext][..], "{} {ext}", s.key);
        }
    }
}
