//! The one place where flags, the config file and the environment become settings.

use anyhow::{Context, Result};
use strata_cache::{CacheLayer, CacheSettings};
use strata_ckpt::CkptSettings;
use strata_config::{Env, SizeValue, Sources};
use strata_store::{StoreConfig, StoreLayer};

use crate::args::GlobalArgs;

/// Validated settings for a command.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The file, the environment and the global flags, for the sections a command reads
    /// with flags of its own (`[ckpt]`, `[daemon]`).
    pub sources: Sources,
    /// `[s3]`, `[transfer]`, `[retry]`, `[limits]`.
    pub store: StoreConfig,
    /// `[cache]`.
    pub cache: CacheSettings,
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
        let mut cfg = self.cache.cache_config(true);
        if !dram {
            cfg.dram_bytes = 0;
        }
        strata_cache::BlockCache::open(&cfg)
            .with_context(|| format!("cache {}", self.cache.dir.display()))
    }

    /// The client of the daemon `--daemon` names, if any.
    pub fn daemon_client(&self) -> Result<Option<strata_daemon_client::DaemonClient>> {
        self.daemon
            .as_deref()
            .map(|a| {
                strata_daemon_client::DaemonClient::with_env_token(a).map_err(anyhow::Error::new)
            })
            .transpose()
    }

    /// Merges defaults < config file < environment < flags, and validates once. Every
    /// section the CLI reads is checked here, so a bad `[ckpt]` key fails `strata cp` too,
    /// as the file is one document; `[daemon]` is checked by `strata serve`, which also
    /// reads token files and local roots.
    pub fn from_args(g: &GlobalArgs) -> Result<Self> {
        let mut sources = Sources::load(g.config.as_deref(), Env::process()).context("settings")?;
        let mut flags = StoreLayer::default();
        flags.s3.endpoint = g.endpoint.clone();
        flags.s3.region = g.region.clone();
        flags.transfer.part_size = g.part_size.clone().map(SizeValue::Text);
        flags.transfer.concurrency = g.concurrency;
        flags.limits.bytes_per_sec = g.bytes_per_sec.clone().map(SizeValue::Text);
        flags.apply(&mut sources);
        sources.set_flags::<CacheSettings>(CacheLayer {
            dir: g.cache.as_ref().map(|p| p.display().to_string()),
            ..Default::default()
        });
        let store = StoreConfig::from_sources(&sources).context("settings")?;
        let cache = sources.get::<CacheSettings>().context("settings")?;
        sources.get::<CkptSettings>().context("settings")?;
        use std::io::IsTerminal;
        Ok(Self {
            sources,
            store,
            cache,
            json: g.json,
            progress: !g.json && !g.quiet && std::io::stderr().is_terminal(),
            read_through: g.cache.is_some(),
            daemon: g.daemon.clone().filter(|d| !d.is_empty()),
        })
    }
}
