//! `[ckpt]`: the checkpoint engine's settings in the config file, the environment and flags.
//!
//! ```toml
//! [ckpt]
//! local = "/mnt/nvme/ckpt"  # the local tier (also $STRATA_CKPT_LOCAL)
//! mode = "durable-local"    # or snapshot
//! max_writers = 64          # drains uploading at once across the fleet
//! keep_last = 5
//! ```
//!
//! A [`CkptConfig`] is built from these once ([`CkptConfig::from_settings`]); every field's
//! default is documented there.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use strata_config::{ConfigError, DurationValue, Env, Section, SizeValue, choice, overlay_fields};
use strata_store::{Location, StoreConfig, StoreUrl};

use crate::admission::AdmissionKind;
use crate::config::{CkptConfig, OnCorrupt, SaveMode};
use crate::error::CkptError;

/// `[ckpt]` as a source gives it; every field is documented on the [`CkptConfig`] field it
/// sets. Sizes are bytes or strings such as `"4GiB"`; durations seconds or strings such as
/// `"10m"`. Environment: `STRATA_CKPT_LOCAL`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CkptLayer {
    /// The local tier directory (NVMe).
    pub local: Option<String>,
    /// `durable-local` or `snapshot`.
    pub mode: Option<String>,
    /// Staging memory for snapshot saves.
    pub staging_size: Option<SizeValue>,
    /// Checksum chunk size.
    pub chunk_size: Option<SizeValue>,
    /// Piece size of large files in the store; 0 for one object per file.
    pub piece_size: Option<SizeValue>,
    /// This node's drain bandwidth cap, bytes/s; 0 for none.
    pub bytes_per_sec: Option<SizeValue>,
    /// This node's drain requests in flight; 0 for no cap.
    pub max_requests: Option<usize>,
    /// Files a drain uploads at once.
    pub files_in_flight: Option<usize>,
    /// Upper bound of the random delay before a drain starts.
    pub jitter: Option<DurationValue>,
    /// Fleet admission: `auto`, `leases`, `slots` or `off`.
    pub admission: Option<String>,
    /// Drains uploading at once across the fleet.
    pub max_writers: Option<u32>,
    /// Where the fleet's upload leases live (a URL).
    pub lease_root: Option<String>,
    /// How long a commit waits for every rank.
    pub commit_timeout: Option<DurationValue>,
    /// Keep the newest N complete checkpoints in the store.
    pub keep_last: Option<usize>,
    /// Also keep every step that is a multiple of K; 0 for none.
    pub keep_every: Option<u64>,
    /// Remove complete checkpoints older than this (never the newest).
    pub max_age: Option<DurationValue>,
    /// Keep the newest M drained checkpoints on the local tier.
    pub local_keep_last: Option<usize>,
    /// `fallback` (warn, take the previous complete checkpoint) or `fail`.
    pub on_corrupt: Option<String>,
}

overlay_fields!(CkptLayer {
    local,
    mode,
    staging_size,
    chunk_size,
    piece_size,
    bytes_per_sec,
    max_requests,
    files_in_flight,
    jitter,
    admission,
    max_writers,
    lease_root,
    commit_timeout,
    keep_last,
    keep_every,
    max_age,
    local_keep_last,
    on_corrupt,
});

/// The validated `[ckpt]` section: what was set, checked; `None` where the source left the
/// engine's default.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)] // Each field is the CkptLayer field of the same name, validated.
pub struct CkptSettings {
    pub local: Option<PathBuf>,
    pub mode: Option<SaveMode>,
    pub staging_bytes: Option<u64>,
    pub chunk_size: Option<u64>,
    pub piece_size: Option<u64>,
    pub bytes_per_sec: Option<u64>,
    pub max_requests: Option<usize>,
    pub files_in_flight: Option<usize>,
    pub jitter: Option<Duration>,
    pub admission: Option<AdmissionKind>,
    pub max_writers: Option<u32>,
    pub lease_root: Option<StoreUrl>,
    pub commit_timeout: Option<Duration>,
    pub keep_last: Option<usize>,
    pub keep_every: Option<u64>,
    pub max_age: Option<Duration>,
    pub local_keep_last: Option<usize>,
    pub on_corrupt: Option<OnCorrupt>,
}

/// `Some(v)` of a set value that must be positive, else an error naming the setting.
fn positive<T: PartialOrd + Default + Copy>(
    v: Option<T>,
    setting: &str,
) -> Result<Option<T>, ConfigError> {
    match v {
        Some(n) if n <= T::default() => Err(ConfigError::invalid(setting, "must be > 0")),
        v => Ok(v),
    }
}

/// [`choice`] of a setting that may be unset.
fn optional<T: Copy>(
    v: &Option<String>,
    setting: &str,
    options: &[(&str, T)],
) -> Result<Option<T>, ConfigError> {
    v.as_deref()
        .map(|t| choice(t, setting, options))
        .transpose()
}

impl Section for CkptSettings {
    const NAME: &'static str = "ckpt";
    type Layer = CkptLayer;

    fn from_env(env: &Env) -> Result<CkptLayer, ConfigError> {
        Ok(CkptLayer {
            local: env.get("STRATA_CKPT_LOCAL"),
            ..Default::default()
        })
    }

    fn resolve(l: &CkptLayer) -> Result<Self, ConfigError> {
        let size =
            |v: &Option<SizeValue>, setting: &str| v.as_ref().map(|v| v.bytes(setting)).transpose();
        let duration = |v: &Option<DurationValue>, setting: &str| {
            v.as_ref().map(|v| v.duration(setting)).transpose()
        };
        let mode = optional(
            &l.mode,
            "ckpt.mode",
            &[
                ("durable-local", SaveMode::DurableLocal),
                ("snapshot", SaveMode::Snapshot),
            ],
        )?;
        let admission = optional(
            &l.admission,
            "ckpt.admission",
            &[
                ("auto", AdmissionKind::Auto),
                ("leases", AdmissionKind::Leases),
                ("slots", AdmissionKind::Slots),
                ("off", AdmissionKind::Off),
            ],
        )?;
        let on_corrupt = optional(
            &l.on_corrupt,
            "ckpt.on_corrupt",
            &[("fallback", OnCorrupt::Fallback), ("fail", OnCorrupt::Fail)],
        )?;
        let lease_root = l
            .lease_root
            .as_deref()
            .map(|u| {
                StoreUrl::parse(u)
                    .map_err(|e| ConfigError::invalid("ckpt.lease_root", e.to_string()))
            })
            .transpose()?;
        Ok(CkptSettings {
            local: l.local.as_ref().map(PathBuf::from),
            mode,
            staging_bytes: size(&l.staging_size, "ckpt.staging_size")?,
            chunk_size: size(&l.chunk_size, "ckpt.chunk_size")?,
            piece_size: size(&l.piece_size, "ckpt.piece_size")?,
            bytes_per_sec: size(&l.bytes_per_sec, "ckpt.bytes_per_sec")?,
            max_requests: l.max_requests,
            files_in_flight: positive(l.files_in_flight, "ckpt.files_in_flight")?,
            jitter: duration(&l.jitter, "ckpt.jitter")?,
            admission,
            max_writers: positive(l.max_writers, "ckpt.max_writers")?,
            lease_root,
            commit_timeout: duration(&l.commit_timeout, "ckpt.commit_timeout")?,
            keep_last: l.keep_last,
            keep_every: l.keep_every,
            max_age: duration(&l.max_age, "ckpt.max_age")?,
            local_keep_last: l.local_keep_last,
            on_corrupt,
        })
    }
}

/// What a checkpointer is opened for: the mode matters only to saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Saving: the configured mode applies.
    Save,
    /// Listing, restoring, verifying or collecting: the mode never matters, and a configured
    /// durable-local mode must not demand a local directory.
    Read,
}

impl SaveMode {
    /// The mode when none is set: durable-local with a local directory, else snapshot.
    pub fn default_for(local: Option<&std::path::Path>) -> Self {
        if local.is_some() {
            SaveMode::DurableLocal
        } else {
            SaveMode::Snapshot
        }
    }
}

impl CkptConfig {
    /// The settings of a checkpointer of `remote` (none: local only), from the `[ckpt]`
    /// section (file, environment and flags merged) over the library defaults, with two
    /// defaults of their own for a process that saves alone: no jitter (set `ckpt.jitter`
    /// for fleets), and the mode of [`SaveMode::default_for`] the local directory when none
    /// is set (always, for [`Purpose::Read`]). The rank and world size stay 0 of 1.
    pub fn from_settings(
        s: &CkptSettings,
        store: &StoreConfig,
        remote: Option<Location>,
        purpose: Purpose,
    ) -> Result<Self, CkptError> {
        let mut c = CkptConfig {
            remote,
            local: s.local.clone(),
            ..Default::default()
        };
        c.mode = match (purpose, s.mode) {
            (Purpose::Save, Some(m)) => m,
            _ => SaveMode::default_for(c.local.as_deref()),
        };
        c.staging_bytes = s.staging_bytes.unwrap_or(c.staging_bytes);
        c.chunk_size = s.chunk_size.unwrap_or(c.chunk_size);
        c.piece_size = s.piece_size.unwrap_or(c.piece_size);
        let d = &mut c.drain;
        if let Some(b) = s.bytes_per_sec {
            d.bytes_per_sec = Some(b).filter(|&b| b > 0);
        }
        if let Some(n) = s.max_requests {
            d.max_requests = Some(n).filter(|&n| n > 0);
        }
        d.files_in_flight = s.files_in_flight.unwrap_or(d.files_in_flight);
        d.jitter = s.jitter.unwrap_or(Duration::ZERO);
        d.admission.kind = s.admission.unwrap_or(d.admission.kind);
        d.admission.max_writers = s.max_writers.unwrap_or(d.admission.max_writers);
        if let Some(u) = &s.lease_root {
            d.admission.lease_root = Some(
                Location::open(u, store)
                    .map_err(|e| CkptError::Invalid(format!("ckpt.lease_root: {e}")))?,
            );
        }
        c.commit_timeout = s.commit_timeout.unwrap_or(c.commit_timeout);
        let r = &mut c.retention;
        if s.keep_last.is_some() {
            r.keep_last = s.keep_last;
        }
        if s.keep_every.is_some() {
            r.keep_every = s.keep_every.filter(|&k| k > 0);
        }
        if s.max_age.is_some() {
            r.max_age = s.max_age;
        }
        r.local_keep_last = s.local_keep_last.unwrap_or(r.local_keep_last);
        c.on_corrupt = s.on_corrupt.unwrap_or(c.on_corrupt);
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_config::Sources;

    fn settings(toml: &str) -> Result<CkptSettings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.toml");
        std::fs::write(&f, toml).unwrap();
        Sources::load(Some(&f), Env::from_pairs(&[]))?.get()
    }

    fn config(toml: &str, purpose: Purpose) -> CkptConfig {
        CkptConfig::from_settings(
            &settings(toml).unwrap(),
            &StoreConfig::default(),
            None,
            purpose,
        )
        .unwrap()
    }

    #[test]
    fn a_ckpt_section_sets_what_it_names_and_leaves_the_rest() {
        let c = config(
            "[ckpt]\nlocal = \"/nvme/ckpt\"\nmode = \"snapshot\"\nstaging_size = \"1GiB\"\n\
             bytes_per_sec = \"200MiB\"\njitter = \"30s\"\nadmission = \"slots\"\n\
             max_writers = 64\ncommit_timeout = \"2m\"\nkeep_last = 5\nkeep_every = 1000\n\
             max_age = \"30d\"\nlocal_keep_last = 1\non_corrupt = \"fail\"\n",
            Purpose::Save,
        );
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
    fn the_mode_follows_the_local_tier_unless_a_save_sets_it() {
        let local = "[ckpt]\nlocal = \"/nvme/ckpt\"\n";
        assert_eq!(config(local, Purpose::Save).mode, SaveMode::DurableLocal);
        assert_eq!(config("", Purpose::Save).mode, SaveMode::Snapshot);
        let durable = "[ckpt]\nmode = \"durable-local\"\n";
        assert_eq!(config(durable, Purpose::Save).mode, SaveMode::DurableLocal);
        // A reader without a local directory is not held to a configured durable mode.
        assert_eq!(config(durable, Purpose::Read).mode, SaveMode::Snapshot);
        assert_eq!(config("", Purpose::Read).drain.jitter, Duration::ZERO);
    }

    #[test]
    fn bad_values_name_the_setting() {
        for (toml, want) in [
            ("[ckpt]\nmode = \"fast\"", "ckpt.mode: \"fast\""),
            ("[ckpt]\nadmission = \"x\"", "ckpt.admission"),
            ("[ckpt]\njitter = \"soon\"", "ckpt.jitter"),
            ("[ckpt]\nstaging_size = \"lots\"", "ckpt.staging_size"),
            ("[ckpt]\nmax_writers = 0", "ckpt.max_writers"),
            ("[ckpt]\non_corrupt = \"ignore\"", "ckpt.on_corrupt"),
            ("[ckpt]\nlease_root = \"ftp://x\"", "ckpt.lease_root"),
            ("[ckpt]\nkeep = 3", "keep"),
        ] {
            let e = settings(toml).unwrap_err().to_string();
            assert!(e.contains(want), "{toml}: {e}");
        }
    }
}
