//! Settings of the checkpoint engine. Every field states its unit and default.

use std::path::PathBuf;
use std::time::Duration;

use strata_store::config::CkptLayer;
use strata_store::duration::parse_duration;
use strata_store::{Location, StoreConfig, StoreUrl, TransferConfig};

use crate::admission::{AdmissionConfig, AdmissionKind};
use crate::retention::Retention;

/// When `save` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SaveMode {
    /// Once the local tier holds an fsynced copy (needs a local directory). The default.
    DurableLocal,
    /// Once the bytes are copied into staging memory; written to the local tier and
    /// drained in the background.
    Snapshot,
}

/// What `load` does when a checkpoint's bytes do not match its manifest on every tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCorrupt {
    /// Warn and take the previous complete checkpoint. The default.
    Fallback,
    /// Fail.
    Fail,
}

/// The background drain to the object store.
#[derive(Debug, Clone)]
pub struct DrainConfig {
    /// This node's upload bandwidth cap in bytes/s (a token bucket). Default: none.
    pub bytes_per_sec: Option<u64>,
    /// Requests in flight at once for this node's drain. Default: none beyond the transfer
    /// settings (parts in flight × files in flight).
    pub max_requests: Option<usize>,
    /// Part size and parts in flight per file. Default: the store's transfer settings.
    pub transfer: Option<TransferConfig>,
    /// Files uploaded at once. Default: 4.
    pub files_in_flight: usize,
    /// The drain starts after a uniform random delay in `[0, jitter]`. Default: 2 s.
    pub jitter: Duration,
    /// Fleet-wide admission. Default: [`AdmissionConfig::default`].
    pub admission: AdmissionConfig,
}

impl Default for DrainConfig {
    fn default() -> Self {
        Self {
            bytes_per_sec: None,
            max_requests: None,
            transfer: None,
            files_in_flight: 4,
            jitter: Duration::from_secs(2),
            admission: AdmissionConfig::default(),
        }
    }
}

/// Settings of a [`crate::Checkpointer`].
#[derive(Clone)]
pub struct CkptConfig {
    /// The durable root in an object store. Default: none (local only; needs world size 1).
    pub remote: Option<Location>,
    /// The local tier directory (NVMe). Default: none (snapshot mode straight to the store).
    pub local: Option<PathBuf>,
    /// This process's rank. Default: 0.
    pub rank: u32,
    /// Ranks saving each checkpoint. Default: 1.
    pub world_size: u32,
    /// Default: [`SaveMode::DurableLocal`].
    pub mode: SaveMode,
    /// Staging memory for snapshot saves, in bytes; a save waits for room. Default: 4 GiB.
    pub staging_bytes: u64,
    /// Checksum chunk size in bytes. Default: 8 MiB.
    pub chunk_size: u64,
    /// Default: [`DrainConfig::default`].
    pub drain: DrainConfig,
    /// How long a commit waits for every rank's marker (and other ranks for the commit).
    /// Default: 10 minutes.
    pub commit_timeout: Duration,
    /// Default: keep everything, and the last 2 on the local tier.
    pub retention: Retention,
    /// Default: [`OnCorrupt::Fallback`].
    pub on_corrupt: OnCorrupt,
}

impl Default for CkptConfig {
    fn default() -> Self {
        Self {
            remote: None,
            local: None,
            rank: 0,
            world_size: 1,
            mode: SaveMode::DurableLocal,
            staging_bytes: 4 << 30,
            chunk_size: crate::manifest::DEFAULT_CHUNK_SIZE,
            drain: DrainConfig::default(),
            commit_timeout: Duration::from_secs(600),
            retention: Retention::default(),
            on_corrupt: OnCorrupt::Fallback,
        }
    }
}

impl CkptConfig {
    /// Checks the combination of settings.
    pub fn validate(&self) -> Result<(), String> {
        if self.world_size == 0 || self.world_size > crate::manifest::MAX_WORLD {
            return Err(format!("world size {} out of range", self.world_size));
        }
        if self.rank >= self.world_size {
            return Err(format!(
                "rank {} in a world of {}",
                self.rank, self.world_size
            ));
        }
        if self.remote.is_none() && self.local.is_none() {
            return Err("a checkpointer needs a local directory, a remote root, or both".into());
        }
        if self.remote.is_none() && self.world_size > 1 {
            return Err("several ranks commit through the object store: give a remote root".into());
        }
        if self.mode == SaveMode::DurableLocal && self.local.is_none() {
            return Err("durable-local mode needs a local directory (or use snapshot mode)".into());
        }
        if self.chunk_size == 0 || self.chunk_size > crate::manifest::MAX_CHUNK_SIZE {
            return Err(format!("chunk size {} out of range", self.chunk_size));
        }
        if self.staging_bytes == 0 {
            return Err("staging_bytes must be > 0".into());
        }
        Ok(())
    }
}

impl CkptConfig {
    /// Applies the `[ckpt]` settings that are set in `l` (the config file, the environment and
    /// command-line flags, merged) over `self`. `store` opens a lease root given as a URL.
    /// Errors name the setting and the value.
    pub fn apply_layer(&mut self, l: &CkptLayer, store: &StoreConfig) -> Result<(), String> {
        let size = |v: &Option<strata_store::config::SizeValue>, field: &str| {
            v.as_ref()
                .map(|v| v.bytes(field).map_err(|e| e.to_string()))
                .transpose()
        };
        let duration = |v: &Option<String>, field: &str| {
            v.as_deref()
                .map(|t| parse_duration(t).map_err(|e| format!("ckpt.{field}: {e}")))
                .transpose()
        };
        if let Some(d) = &l.local {
            self.local = Some(PathBuf::from(d));
        }
        if let Some(m) = &l.mode {
            self.mode = match m.as_str() {
                "durable-local" => SaveMode::DurableLocal,
                "snapshot" => SaveMode::Snapshot,
                m => return Err(format!("ckpt.mode {m:?}: use durable-local or snapshot")),
            };
        }
        if let Some(b) = size(&l.staging_size, "ckpt.staging_size")? {
            self.staging_bytes = b;
        }
        if let Some(b) = size(&l.chunk_size, "ckpt.chunk_size")? {
            self.chunk_size = b;
        }
        if let Some(b) = size(&l.bytes_per_sec, "ckpt.bytes_per_sec")? {
            self.drain.bytes_per_sec = Some(b).filter(|&b| b > 0);
        }
        if let Some(n) = l.max_requests {
            self.drain.max_requests = Some(n).filter(|&n| n > 0);
        }
        if let Some(n) = l.files_in_flight {
            if n == 0 {
                return Err("ckpt.files_in_flight must be > 0".into());
            }
            self.drain.files_in_flight = n;
        }
        if let Some(d) = duration(&l.jitter, "jitter")? {
            self.drain.jitter = d;
        }
        if let Some(k) = &l.admission {
            self.drain.admission.kind = match k.as_str() {
                "auto" => AdmissionKind::Auto,
                "leases" => AdmissionKind::Leases,
                "slots" => AdmissionKind::Slots,
                "off" => AdmissionKind::Off,
                k => {
                    return Err(format!(
                        "ckpt.admission {k:?}: use auto, leases, slots or off"
                    ));
                }
            };
        }
        if let Some(n) = l.max_writers {
            if n == 0 {
                return Err("ckpt.max_writers must be > 0".into());
            }
            self.drain.admission.max_writers = n;
        }
        if let Some(u) = &l.lease_root {
            let url = StoreUrl::parse(u).map_err(|e| format!("ckpt.lease_root: {e}"))?;
            self.drain.admission.lease_root =
                Some(Location::open(&url, store).map_err(|e| format!("ckpt.lease_root: {e}"))?);
        }
        if let Some(d) = duration(&l.commit_timeout, "commit_timeout")? {
            self.commit_timeout = d;
        }
        if l.keep_last.is_some() {
            self.retention.keep_last = l.keep_last;
        }
        if l.keep_every.is_some() {
            self.retention.keep_every = l.keep_every.filter(|&k| k > 0);
        }
        if let Some(d) = duration(&l.max_age, "max_age")? {
            self.retention.max_age = Some(d);
        }
        if let Some(m) = l.local_keep_last {
            self.retention.local_keep_last = m;
        }
        if let Some(o) = &l.on_corrupt {
            self.on_corrupt = match o.as_str() {
                "fallback" => OnCorrupt::Fallback,
                "fail" => OnCorrupt::Fail,
                o => return Err(format!("ckpt.on_corrupt {o:?}: use fallback or fail")),
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(toml: &str) -> CkptLayer {
        strata_store::config::ConfigLayer::from_toml(toml, "t.toml".as_ref())
            .unwrap()
            .ckpt
    }

    #[test]
    fn a_ckpt_section_sets_what_it_names_and_leaves_the_rest() {
        let mut c = CkptConfig::default();
        let l = layer(
            "[ckpt]\nlocal = \"/nvme/ckpt\"\nmode = \"snapshot\"\nstaging_size = \"1GiB\"\n\
             bytes_per_sec = \"200MiB\"\njitter = \"30s\"\nadmission = \"slots\"\n\
             max_writers = 64\ncommit_timeout = \"2m\"\nkeep_last = 5\nkeep_every = 1000\n\
             max_age = \"30d\"\nlocal_keep_last = 1\non_corrupt = \"fail\"\n",
        );
        c.apply_layer(&l, &StoreConfig::default()).unwrap();
        assert_eq!(c.local.as_deref(), Some(std::path::Path::new("/nvme/ckpt")));
        assert_eq!(c.mode, SaveMode::Snapshot);
        assert_eq!(c.staging_bytes, 1 << 30);
        assert_eq!(c.drain.bytes_per_sec, Some(200 << 20));
        assert_eq!(c.drain.jitter, Duration::from_secs(30));
        assert_eq!(c.drain.admission.kind, AdmissionKind::Slots);
        assert_eq!(c.drain.admission.max_writers, 64);
        assert_eq!(c.commit_timeout, Duration::from_secs(120));
        assert_eq!(c.retention.keep_last, Some(5));
        assert_eq!(c.retention.keep_every, Some(1000));
        assert_eq!(c.retention.max_age, Some(Duration::from_secs(30 * 86400)));
        assert_eq!(c.retention.local_keep_last, 1);
        assert_eq!(c.on_corrupt, OnCorrupt::Fail);
        // Unset fields keep their defaults.
        assert_eq!(c.drain.files_in_flight, 4);
        assert_eq!(c.chunk_size, crate::manifest::DEFAULT_CHUNK_SIZE);
    }

    #[test]
    fn bad_values_name_the_setting() {
        for (toml, want) in [
            ("[ckpt]\nmode = \"fast\"", "ckpt.mode \"fast\""),
            ("[ckpt]\nadmission = \"x\"", "ckpt.admission"),
            ("[ckpt]\njitter = \"soon\"", "ckpt.jitter"),
            ("[ckpt]\nstaging_size = \"lots\"", "ckpt.staging_size"),
            ("[ckpt]\nmax_writers = 0", "ckpt.max_writers"),
            ("[ckpt]\non_corrupt = \"ignore\"", "ckpt.on_corrupt"),
        ] {
            let e = CkptConfig::default()
                .apply_layer(&layer(toml), &StoreConfig::default())
                .unwrap_err();
            assert!(e.contains(want), "{toml}: {e}");
        }
        let e = strata_store::config::ConfigLayer::from_toml("[ckpt]\nkeep = 3", "t.toml".as_ref())
            .unwrap_err();
        assert!(e.to_string().contains("keep"), "{e}");
    }
}
