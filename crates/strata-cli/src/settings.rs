//! The one place where flags, the config file and the environment become settings.

use anyhow::{Context, Result};
use strata_store::config::SizeValue;
use strata_store::{ConfigLayer, StoreConfig};

use crate::args::GlobalArgs;

/// Validated settings for a command.
#[derive(Debug, Clone)]
pub struct Settings {
    pub store: StoreConfig,
    pub json: bool,
    /// Show progress bars: not with --json or --quiet, and only on a terminal.
    pub progress: bool,
    /// `--cache` was given: cp and cat read through the cache.
    pub read_through: bool,
    /// `--daemon` (or $STRATA_DAEMON): cat and stat read through the node's daemon, and warm
    /// fills its cache.
    pub daemon: Option<String>,
}

impl Settings {
    /// Opens the block cache the settings describe (NVMe tier; DRAM too when `dram`).
    pub fn open_cache(&self, dram: bool) -> Result<strata_cache::BlockCache> {
        let mut cfg = strata_cache::CacheConfig::from_settings(&self.store.cache, true);
        if !dram {
            cfg.dram_bytes = 0;
        }
        strata_cache::BlockCache::open(&cfg)
            .with_context(|| format!("cache {}", self.store.cache.dir.display()))
    }

    /// The client of the daemon `--daemon` names, if any.
    pub fn daemon_client(&self) -> Result<Option<strata_daemon::DaemonClient>> {
        self.daemon
            .as_deref()
            .map(|a| strata_daemon::DaemonClient::with_env_token(a).map_err(anyhow::Error::new))
            .transpose()
    }

    /// Merges defaults < config file < environment < flags, and validates once.
    pub fn from_args(g: &GlobalArgs) -> Result<Self> {
        let mut flags = ConfigLayer::default();
        flags.s3.endpoint = g.endpoint.clone();
        flags.s3.region = g.region.clone();
        flags.transfer.part_size = g.part_size.clone().map(SizeValue::Text);
        flags.transfer.concurrency = g.concurrency;
        flags.limits.bytes_per_sec = g.bytes_per_sec.clone().map(SizeValue::Text);
        flags.cache.dir = g.cache.as_ref().map(|p| p.display().to_string());
        let store = StoreConfig::resolve(g.config.as_deref(), &|k| std::env::var(k).ok(), &flags)
            .context("settings")?;
        use std::io::IsTerminal;
        Ok(Self {
            store,
            json: g.json,
            progress: !g.json && !g.quiet && std::io::stderr().is_terminal(),
            read_through: g.cache.is_some(),
            daemon: g.daemon.clone().filter(|d| !d.is_empty()),
        })
    }
}
