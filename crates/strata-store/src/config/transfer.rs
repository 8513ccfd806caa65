//! `[transfer]`: part sizes and parts in flight of the download and upload engines.

use serde::Deserialize;
use strata_config::{ConfigError, Env, Section, SizeValue, overlay_fields};

/// `[transfer]` as a source gives it. Environment: `STRATA_PART_SIZE`, `STRATA_CONCURRENCY`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransferLayer {
    /// See [`TransferConfig::part_size`].
    pub part_size: Option<SizeValue>,
    /// See [`TransferConfig::concurrency`].
    pub concurrency: Option<usize>,
    /// See [`TransferConfig::upload_part_size`].
    pub upload_part_size: Option<SizeValue>,
    /// See [`TransferConfig::upload_concurrency`].
    pub upload_concurrency: Option<usize>,
    /// See [`TransferConfig::single_put_threshold`].
    pub single_put_threshold: Option<SizeValue>,
    /// See [`TransferConfig::files_in_flight`].
    pub files_in_flight: Option<usize>,
}

overlay_fields!(TransferLayer {
    part_size,
    concurrency,
    upload_part_size,
    upload_concurrency,
    single_put_threshold,
    files_in_flight,
});

/// Transfer engine settings.
#[derive(Debug, Clone)]
pub struct TransferConfig {
    /// Ranged-download part size in bytes, 64 KiB to 5 GiB. Default: 8 MiB. Objects smaller
    /// than `part_size × concurrency` are cut into `concurrency` smaller parts (at least 1 MiB)
    /// so that every slot works; see [`TransferConfig::download_part_size`].
    pub part_size: u64,
    /// Download parts in flight per object, 1 to 1024. Default: 16. Memory is bounded by
    /// `part_size × concurrency`.
    pub concurrency: usize,
    /// Multipart upload part size in bytes, 5 MiB (the S3 minimum) to 5 GiB. Default: 8 MiB.
    pub upload_part_size: u64,
    /// Upload parts in flight per object, 1 to 1024. Default: 16.
    pub upload_concurrency: usize,
    /// Objects up to this size (at most 5 GiB) are uploaded with one PUT. Default:
    /// `upload_part_size`.
    pub single_put_threshold: u64,
    /// Files transferred at once by recursive copies, 1 to 1024. Default: 8.
    pub files_in_flight: usize,
}

/// The smallest part the download engine cuts when it shrinks parts for small objects.
pub const MIN_ADAPTIVE_PART: u64 = 1 << 20;

impl TransferConfig {
    /// The download part size for an object of `size` bytes: [`Self::part_size`], or less for
    /// objects too small to fill every slot (never below 1 MiB nor above `part_size`).
    pub fn download_part_size(&self, size: u64) -> u64 {
        let even = size.div_ceil(self.concurrency.max(1) as u64);
        even.clamp(MIN_ADAPTIVE_PART.min(self.part_size), self.part_size)
    }

    /// The upload part size for an object of `size` bytes: like
    /// [`Self::download_part_size`], with the S3 minimum of 5 MiB as the floor.
    pub fn upload_part_size_for(&self, size: u64) -> u64 {
        let even = size.div_ceil(self.upload_concurrency.max(1) as u64);
        even.clamp((5 << 20).min(self.upload_part_size), self.upload_part_size)
    }
}

/// A count of things in flight: 1 to 1024, else an error naming `setting`.
pub(crate) fn count(v: Option<usize>, setting: &str, default: usize) -> Result<usize, ConfigError> {
    let v = v.unwrap_or(default);
    if (1..=1024).contains(&v) {
        Ok(v)
    } else {
        Err(ConfigError::invalid(
            setting,
            format!("{v} must be between 1 and 1024"),
        ))
    }
}

impl Section for TransferConfig {
    const NAME: &'static str = "transfer";
    type Layer = TransferLayer;

    fn from_env(env: &Env) -> Result<TransferLayer, ConfigError> {
        Ok(TransferLayer {
            part_size: env.get("STRATA_PART_SIZE").map(SizeValue::Text),
            concurrency: env.parse("STRATA_CONCURRENCY", "a whole number")?,
            ..Default::default()
        })
    }

    fn resolve(l: &TransferLayer) -> Result<Self, ConfigError> {
        let part_size = SizeValue::or(&l.part_size, "transfer.part_size", 8 << 20)?;
        let upload_part_size =
            SizeValue::or(&l.upload_part_size, "transfer.upload_part_size", 8 << 20)?;
        let single_put_threshold = SizeValue::or(
            &l.single_put_threshold,
            "transfer.single_put_threshold",
            upload_part_size,
        )?;
        if !(64 << 10..=5 << 30).contains(&part_size) {
            return Err(ConfigError::invalid(
                "transfer.part_size",
                format!("{part_size} must be between 64 KiB and 5 GiB"),
            ));
        }
        if !(5 << 20..=5 << 30).contains(&upload_part_size) {
            return Err(ConfigError::invalid(
                "transfer.upload_part_size",
                format!("{upload_part_size} must be between 5 MiB and 5 GiB (the S3 limits)"),
            ));
        }
        if single_put_threshold > 5 << 30 {
            return Err(ConfigError::invalid(
                "transfer.single_put_threshold",
                "must be at most 5 GiB",
            ));
        }
        Ok(TransferConfig {
            part_size,
            concurrency: count(l.concurrency, "transfer.concurrency", 16)?,
            upload_part_size,
            upload_concurrency: count(l.upload_concurrency, "transfer.upload_concurrency", 16)?,
            single_put_threshold,
            files_in_flight: count(l.files_in_flight, "transfer.files_in_flight", 8)?,
        })
    }
}
