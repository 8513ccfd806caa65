//! `[cache]`: where the node's block cache lives and how large its tiers are.
//!
//! ```toml
//! [cache]
//! dir = "/mnt/nvme/strata"  # also $STRATA_CACHE_DIR or --cache
//! nvme_size = "500GiB"
//! dram_size = "4GiB"
//! block_size = "8MiB"
//! min_free_fraction = 0.05  # also $STRATA_CACHE_MIN_FREE_FRACTION
//! policy = "auto"           # auto, s3fifo or lru
//! ```

use std::path::PathBuf;

use serde::Deserialize;
use strata_config::{ConfigError, Env, Section, SizeValue, choice, overlay_fields};

use crate::cache::CacheConfig;
use crate::nvme::NvmeConfig;
use crate::policy::PolicyKind;

/// `[cache]` as a source gives it. Environment: `STRATA_CACHE_DIR`,
/// `STRATA_CACHE_MIN_FREE_FRACTION`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheLayer {
    /// See [`CacheSettings::dir`].
    pub dir: Option<String>,
    /// See [`CacheSettings::nvme_size`].
    pub nvme_size: Option<SizeValue>,
    /// See [`CacheSettings::dram_size`].
    pub dram_size: Option<SizeValue>,
    /// See [`CacheSettings::block_size`].
    pub block_size: Option<SizeValue>,
    /// See [`CacheSettings::min_free_fraction`].
    pub min_free_fraction: Option<f64>,
    /// See [`CacheSettings::policy`].
    pub policy: Option<String>,
}

overlay_fields!(CacheLayer {
    dir,
    nvme_size,
    dram_size,
    block_size,
    min_free_fraction,
    policy
});

/// The validated `[cache]` section.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// NVMe tier directory. Default: `$XDG_CACHE_HOME/strata`, else `~/.cache/strata`, else
    /// `./.strata-cache`.
    pub dir: PathBuf,
    /// NVMe tier capacity in bytes. Default: 64 GiB.
    pub nvme_size: u64,
    /// DRAM tier capacity in bytes. Default: 1 GiB.
    pub dram_size: u64,
    /// Block size in bytes, 64 KiB to 1 GiB. Default: 8 MiB.
    pub block_size: u64,
    /// Stop filling the NVMe tier below this free fraction of its file system, in [0, 1).
    /// Default: 0.05.
    pub min_free_fraction: f64,
    /// NVMe eviction policy. Default: [`PolicyKind::Auto`] (S3-FIFO, and next-use while a
    /// dataset reader supplies its plan); also `s3fifo` or `lru`.
    pub policy: PolicyKind,
}

impl Section for CacheSettings {
    const NAME: &'static str = "cache";
    type Layer = CacheLayer;

    fn from_env(env: &Env) -> Result<CacheLayer, ConfigError> {
        Ok(CacheLayer {
            dir: env.get("STRATA_CACHE_DIR"),
            min_free_fraction: env.parse("STRATA_CACHE_MIN_FREE_FRACTION", "a number")?,
            ..Default::default()
        })
    }

    fn resolve(l: &CacheLayer) -> Result<Self, ConfigError> {
        let block_size = SizeValue::or(&l.block_size, "cache.block_size", 8 << 20)?;
        if !(64 << 10..=1 << 30).contains(&block_size) {
            return Err(ConfigError::invalid(
                "cache.block_size",
                format!("{block_size} must be between 64 KiB and 1 GiB"),
            ));
        }
        let min_free_fraction = l.min_free_fraction.unwrap_or(0.05);
        if !(0.0..1.0).contains(&min_free_fraction) {
            return Err(ConfigError::invalid(
                "cache.min_free_fraction",
                format!("{min_free_fraction} must be in [0, 1)"),
            ));
        }
        let policy = choice(
            l.policy.as_deref().unwrap_or("auto"),
            "cache.policy",
            &[
                ("auto", PolicyKind::Auto),
                ("s3fifo", PolicyKind::S3Fifo),
                ("lru", PolicyKind::Lru),
            ],
        )?;
        Ok(CacheSettings {
            dir: l
                .dir
                .as_ref()
                .map(PathBuf::from)
                .unwrap_or_else(default_cache_dir),
            nvme_size: SizeValue::or(&l.nvme_size, "cache.nvme_size", 64 << 30)?,
            dram_size: SizeValue::or(&l.dram_size, "cache.dram_size", 1 << 30)?,
            block_size,
            min_free_fraction,
            policy,
        })
    }
}

impl CacheSettings {
    /// The cache these settings describe: an NVMe tier in [`Self::dir`] (unless `nvme` is
    /// false) and a DRAM tier of [`Self::dram_size`] bytes.
    pub fn cache_config(&self, nvme: bool) -> CacheConfig {
        CacheConfig {
            block_size: self.block_size,
            dram_bytes: self.dram_size,
            nvme: nvme.then(|| NvmeConfig {
                dir: self.dir.clone(),
                capacity: self.nvme_size,
                min_free_fraction: self.min_free_fraction,
                policy: self.policy,
            }),
            ..CacheConfig::default()
        }
    }
}

/// `$XDG_CACHE_HOME/strata`, else `~/.cache/strata`, else `./.strata-cache`.
fn default_cache_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|s| !s.is_empty()) {
        return PathBuf::from(x).join("strata");
    }
    std::env::var_os("HOME").map_or_else(
        || PathBuf::from(".strata-cache"),
        |h| PathBuf::from(h).join(".cache/strata"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_config::Sources;

    #[test]
    fn file_env_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[cache]\nnvme_size = '2GiB'\npolicy = 'lru'\n").unwrap();
        let env = Env::from_pairs(&[("STRATA_CACHE_DIR", "/nvme/c")]);
        let s: CacheSettings = Sources::load(Some(&f), env).unwrap().get().unwrap();
        assert_eq!(s.dir, PathBuf::from("/nvme/c"));
        assert_eq!(s.nvme_size, 2 << 30);
        assert_eq!(s.policy, PolicyKind::Lru);
        assert_eq!(s.block_size, 8 << 20);
        let c = s.cache_config(true);
        assert_eq!(c.nvme.unwrap().capacity, 2 << 30);
        assert!(s.cache_config(false).nvme.is_none());

        for (toml, want) in [
            ("[cache]\nblock_size = '4KiB'", "cache.block_size"),
            ("[cache]\npolicy = 'mru'", "cache.policy"),
            (
                "[cache]\nmin_free_fraction = 1.5",
                "cache.min_free_fraction",
            ),
            ("[cache]\nnvme_sise = 1", "nvme_sise"),
        ] {
            std::fs::write(&f, toml).unwrap();
            let e = Sources::load(Some(&f), Env::from_pairs(&[]))
                .unwrap()
                .get::<CacheSettings>()
                .unwrap_err();
            assert!(e.to_string().contains(want), "{toml}: {e}");
        }
    }
}
