//! Settings of the store layer, merged in one place.
//!
//! Four sources, each overriding the one before: built-in defaults, a TOML file, environment
//! variables, and command-line flags. Each source is read into a [`ConfigLayer`] (every field
//! optional), and [`StoreConfig::resolve`] merges the layers and validates the result once.
//!
//! The file is the one named by `--config`, else `$STRATA_CONFIG`, else
//! `$XDG_CONFIG_HOME/strata/config.toml` (or `~/.config/strata/config.toml`) when it exists.
//!
//! ```toml
//! [s3]
//! endpoint = "http://127.0.0.1:9000"   # plain http is allowed when the endpoint says so
//! region = "us-east-1"
//!
//! [transfer]
//! part_size = "8MiB"        # ranged-download part size
//! concurrency = 16          # parts in flight per object
//!
//! [retry]
//! max_attempts = 10
//! total_timeout_secs = 60
//!
//! [limits]
//! bytes_per_sec = "200MiB"
//!
//! [cache]
//! dir = "/mnt/nvme/strata"  # also $STRATA_CACHE_DIR or --cache
//! nvme_size = "500GiB"
//!
//! [ckpt]                    # the checkpoint engine; flags of `strata ckpt` override
//! local = "/mnt/nvme/ckpt"  # the local tier (also $STRATA_CKPT_LOCAL)
//! max_writers = 64          # drains uploading at once across the fleet
//! keep_last = 5
//! ```
//!
//! Environment: `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, `AWS_REGION` /
//! `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_ALLOW_HTTP`, and `STRATA_PART_SIZE`, `STRATA_CONCURRENCY`, `STRATA_MAX_ATTEMPTS`,
//! `STRATA_BYTES_PER_SEC`, `STRATA_REQUESTS_PER_SEC`, `STRATA_MAX_REQUESTS`.
//! Credentials for `gs://` and `az://` come from the variables their SDKs read
//! (`GOOGLE_APPLICATION_CREDENTIALS`, `AZURE_STORAGE_ACCOUNT_NAME`, ...).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Result, StoreError};
use crate::size::parse_size;

/// A secret (a key or token). Its `Debug` and `Display` print `***`, so it cannot leak into
/// logs, errors or `--json` output by accident.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret value, for handing to a client library.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A size in a config file: a number of bytes or a string such as `"8MiB"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SizeValue {
    Bytes(u64),
    Text(String),
}

impl SizeValue {
    /// The size in bytes; errors name `field`.
    pub fn bytes(&self, field: &str) -> Result<u64> {
        match self {
            Self::Bytes(b) => Ok(*b),
            Self::Text(t) => parse_size(t).map_err(|e| StoreError::Config {
                reason: format!("{field}: {e}"),
            }),
        }
    }
}

/// One source of settings; every field is optional. See the module documentation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigLayer {
    pub s3: S3Layer,
    pub transfer: TransferLayer,
    pub retry: RetryLayer,
    pub limits: LimitsLayer,
    pub cache: CacheLayer,
    pub ckpt: CkptLayer,
    /// The node daemon (`strata serve`), kept as given: `strata-daemon` validates it.
    pub daemon: Option<toml::Table>,
}

/// The checkpoint engine (`strata-ckpt`), which validates these and documents each default
/// (`CkptConfig`); kept as given here so the file, the environment and the flags merge in one
/// place. Sizes are bytes or strings such as `"4GiB"`; durations strings such as `"10m"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CkptLayer {
    /// The local tier directory (NVMe). `$STRATA_CKPT_LOCAL`.
    pub local: Option<String>,
    /// `durable-local` or `snapshot`.
    pub mode: Option<String>,
    /// Staging memory for snapshot saves.
    pub staging_size: Option<SizeValue>,
    /// Checksum chunk size.
    pub chunk_size: Option<SizeValue>,
    /// This node's drain bandwidth cap, bytes/s.
    pub bytes_per_sec: Option<SizeValue>,
    /// This node's drain requests in flight.
    pub max_requests: Option<usize>,
    /// Files a drain uploads at once.
    pub files_in_flight: Option<usize>,
    /// Upper bound of the random delay before a drain starts.
    pub jitter: Option<String>,
    /// Fleet admission: `auto`, `leases`, `slots` or `off`.
    pub admission: Option<String>,
    /// Drains uploading at once across the fleet.
    pub max_writers: Option<u32>,
    /// Where the fleet's upload leases live (a URL).
    pub lease_root: Option<String>,
    /// How long a commit waits for every rank.
    pub commit_timeout: Option<String>,
    /// Keep the newest N complete checkpoints in the store.
    pub keep_last: Option<usize>,
    /// Also keep every step that is a multiple of K.
    pub keep_every: Option<u64>,
    /// Remove complete checkpoints older than this (never the newest).
    pub max_age: Option<String>,
    /// Keep the newest M drained checkpoints on the local tier.
    pub local_keep_last: Option<usize>,
    /// `fallback` (warn, take the previous complete checkpoint) or `fail`.
    pub on_corrupt: Option<String>,
}

/// The block cache (`strata-cache`). Plain settings here, so that the file, the environment
/// and the flags of every layer are merged in one place.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheLayer {
    /// NVMe tier directory. Default: `$XDG_CACHE_HOME/strata` or `~/.cache/strata`.
    pub dir: Option<String>,
    /// NVMe tier capacity. Default: 64 GiB.
    pub nvme_size: Option<SizeValue>,
    /// DRAM tier capacity. Default: 1 GiB.
    pub dram_size: Option<SizeValue>,
    /// Block size. Default: 8 MiB.
    pub block_size: Option<SizeValue>,
    /// Stop filling the NVMe tier below this free fraction of its file system (0 to 1;
    /// `$STRATA_CACHE_MIN_FREE_FRACTION`). Default: 0.05.
    pub min_free_fraction: Option<f64>,
    /// NVMe eviction policy: `auto` (default: S3-FIFO, and next-use while a dataset reader
    /// supplies its plan), `s3fifo` or `lru`.
    pub policy: Option<String>,
}

/// S3 endpoint and credentials.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Layer {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    pub allow_http: Option<bool>,
    pub virtual_hosted: Option<bool>,
    /// S3 additional checksum sent with every PUT and part: `sha256`, `crc64nvme` or `none`.
    pub checksum: Option<String>,
    /// Sign requests with `UNSIGNED-PAYLOAD` instead of hashing every body with SHA-256.
    pub unsigned_payload: Option<bool>,
    /// Never ask the EC2 instance metadata service for credentials.
    pub metadata_disabled: Option<bool>,
    /// Set from the environment when web identity or container credentials are configured.
    #[serde(skip)]
    pub external_credentials: Option<bool>,
}

/// Transfer engine settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransferLayer {
    pub part_size: Option<SizeValue>,
    pub concurrency: Option<usize>,
    pub upload_part_size: Option<SizeValue>,
    pub upload_concurrency: Option<usize>,
    pub single_put_threshold: Option<SizeValue>,
    /// Files transferred at once by `cp -r`.
    pub files_in_flight: Option<usize>,
}

/// Retry settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryLayer {
    pub max_attempts: Option<u32>,
    pub initial_backoff_ms: Option<u64>,
    pub max_backoff_ms: Option<u64>,
    pub total_timeout_secs: Option<f64>,
    pub request_timeout_secs: Option<f64>,
    pub connect_timeout_secs: Option<f64>,
}

/// Rate and concurrency limits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsLayer {
    pub requests_per_sec: Option<f64>,
    pub bytes_per_sec: Option<SizeValue>,
    pub max_requests: Option<usize>,
}

/// Copies every field set in `$high` over `$low`. The pattern is exhaustive (no `..`), so a
/// field added to a layer but not listed here is a compile error, not a silently ignored
/// setting.
macro_rules! overlay {
    ($low:expr, $high:expr, $ty:ident { $($f:ident),* $(,)? }) => {{
        let $ty { $($f),* } = &$high;
        $( if $f.is_some() { $low.$f = $f.clone(); } )*
    }};
}

impl CkptLayer {
    /// Applies `high` over `self`: every field set in `high` wins.
    pub fn overlay(mut self, high: &CkptLayer) -> Self {
        overlay!(
            self,
            *high,
            CkptLayer {
                local,
                mode,
                staging_size,
                chunk_size,
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
            }
        );
        self
    }
}

impl ConfigLayer {
    /// Applies `high` over `self`: every field set in `high` wins.
    pub fn overlay(mut self, high: &ConfigLayer) -> Self {
        overlay!(
            self.s3,
            high.s3,
            S3Layer {
                endpoint,
                region,
                access_key_id,
                secret_access_key,
                session_token,
                allow_http,
                virtual_hosted,
                checksum,
                unsigned_payload,
                metadata_disabled,
                external_credentials,
            }
        );
        overlay!(
            self.transfer,
            high.transfer,
            TransferLayer {
                part_size,
                concurrency,
                upload_part_size,
                upload_concurrency,
                single_put_threshold,
                files_in_flight,
            }
        );
        overlay!(
            self.retry,
            high.retry,
            RetryLayer {
                max_attempts,
                initial_backoff_ms,
                max_backoff_ms,
                total_timeout_secs,
                request_timeout_secs,
                connect_timeout_secs,
            }
        );
        overlay!(
            self.cache,
            high.cache,
            CacheLayer {
                dir,
                nvme_size,
                dram_size,
                block_size,
                min_free_fraction,
                policy
            }
        );
        overlay!(
            self.limits,
            high.limits,
            LimitsLayer {
                requests_per_sec,
                bytes_per_sec,
                max_requests
            }
        );
        self.ckpt = self.ckpt.overlay(&high.ckpt);
        if let Some(d) = &high.daemon {
            let mut merged = self.daemon.take().unwrap_or_default();
            merged.extend(d.clone());
            self.daemon = Some(merged);
        }
        self
    }

    /// Parses a TOML document; errors name the file and the problem.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        toml::from_str(text).map_err(|e| StoreError::Config {
            reason: format!("{}: {}", origin.display(), e.to_string().trim()),
        })
    }

    /// Reads the variables named in the module documentation through `get`.
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let num = |k: &str| -> Result<Option<usize>> {
            get(k)
                .map(|v| {
                    v.parse().map_err(|_| StoreError::Config {
                        reason: format!("${k}={v:?} is not a whole number"),
                    })
                })
                .transpose()
        };
        let mut l = ConfigLayer::default();
        l.s3.endpoint = get("AWS_ENDPOINT_URL_S3").or_else(|| get("AWS_ENDPOINT_URL"));
        l.s3.region = get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION"));
        l.s3.access_key_id = get("AWS_ACCESS_KEY_ID");
        l.s3.secret_access_key = get("AWS_SECRET_ACCESS_KEY").map(Secret);
        l.s3.session_token = get("AWS_SESSION_TOKEN").map(Secret);
        l.s3.allow_http = get("AWS_ALLOW_HTTP").map(|v| v == "true" || v == "1");
        l.s3.metadata_disabled =
            get("AWS_EC2_METADATA_DISABLED").map(|v| v.eq_ignore_ascii_case("true"));
        l.s3.external_credentials = Some(
            [
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            ]
            .iter()
            .any(|k| get(k).is_some()),
        )
        .filter(|&b| b);
        l.transfer.part_size = get("STRATA_PART_SIZE").map(SizeValue::Text);
        l.transfer.concurrency = num("STRATA_CONCURRENCY")?;
        l.retry.max_attempts = num("STRATA_MAX_ATTEMPTS")?.map(|v| v as u32);
        l.limits.bytes_per_sec = get("STRATA_BYTES_PER_SEC").map(SizeValue::Text);
        l.limits.requests_per_sec = get("STRATA_REQUESTS_PER_SEC")
            .map(|v| {
                v.parse().map_err(|_| StoreError::Config {
                    reason: format!("$STRATA_REQUESTS_PER_SEC={v:?} is not a number"),
                })
            })
            .transpose()?;
        l.limits.max_requests = num("STRATA_MAX_REQUESTS")?;
        l.cache.dir = get("STRATA_CACHE_DIR");
        l.ckpt.local = get("STRATA_CKPT_LOCAL");
        l.cache.min_free_fraction = get("STRATA_CACHE_MIN_FREE_FRACTION")
            .map(|v| {
                v.parse().map_err(|_| StoreError::Config {
                    reason: format!("$STRATA_CACHE_MIN_FREE_FRACTION={v:?} is not a number"),
                })
            })
            .transpose()?;
        Ok(l)
    }
}

/// The validated settings of the store layer (and, as plain values, of the cache).
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub s3: S3Config,
    pub transfer: TransferConfig,
    pub retry: RetryPolicy,
    pub limits: Limits,
    pub cache: CacheSettings,
    /// The `[ckpt]` section as merged; `strata-ckpt` validates it.
    pub ckpt: CkptLayer,
    /// The `[daemon]` section as given; `strata-daemon` validates it.
    pub daemon: toml::Table,
}

/// Validated cache settings; `strata-cache` builds its configuration from them.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// NVMe tier directory.
    pub dir: PathBuf,
    /// NVMe tier capacity in bytes. Default: 64 GiB.
    pub nvme_size: u64,
    /// DRAM tier capacity in bytes. Default: 1 GiB.
    pub dram_size: u64,
    /// Block size in bytes. Default: 8 MiB.
    pub block_size: u64,
    /// Default: 0.05.
    pub min_free_fraction: f64,
    /// `auto`, `s3fifo` or `lru`. Default: `auto`.
    pub policy: String,
}

/// S3 endpoint and credentials. Unset credentials fall back to the AWS SDK's usual chain
/// (web identity, container and instance metadata) through object_store.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// Endpoint URL, e.g. `http://127.0.0.1:9000`. Default: AWS.
    pub endpoint: Option<String>,
    /// Region. Default: `us-east-1`.
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    /// Allow `http://` endpoints. Default: true exactly when the endpoint starts with `http://`.
    pub allow_http: bool,
    /// Virtual-hosted-style requests (`bucket.host`). Default: false (path style), which
    /// every S3-compatible server accepts.
    pub virtual_hosted: bool,
    /// S3 additional checksum algorithm for uploads. Default: none.
    pub checksum: Option<object_store::aws::Checksum>,
    /// Sign with `UNSIGNED-PAYLOAD`: bodies are not hashed with SHA-256 for the signature.
    /// Default: false. Integrity then rests on TLS and on `checksum`; set both.
    pub unsigned_payload: bool,
    /// Never ask the EC2 instance metadata service (`AWS_EC2_METADATA_DISABLED=true`).
    pub metadata_disabled: bool,
    /// Web identity or container credentials are configured in the environment.
    pub external_credentials: bool,
}

impl S3Config {
    /// True when requests go unsigned: no access key is configured, no other credential
    /// source is set in the environment (web identity, container credentials), and either the
    /// endpoint is not AWS (a custom endpoint has no instance metadata service to ask) or
    /// `AWS_EC2_METADATA_DISABLED=true`. Otherwise object_store's chain applies, ending with
    /// EC2 instance metadata.
    pub fn anonymous(&self) -> bool {
        self.access_key_id.is_none()
            && !self.external_credentials
            && (self.endpoint.is_some() || self.metadata_disabled)
    }
}

/// Transfer engine settings.
#[derive(Debug, Clone)]
pub struct TransferConfig {
    /// Ranged-download part size in bytes. Default: 8 MiB. Objects smaller than
    /// `part_size × concurrency` are cut into `concurrency` smaller parts (at least 1 MiB)
    /// so that every slot works; see [`TransferConfig::download_part_size`].
    pub part_size: u64,
    /// Download parts in flight per object. Default: 16. Memory is bounded by
    /// `part_size × concurrency`.
    pub concurrency: usize,
    /// Multipart upload part size in bytes, at least 5 MiB (the S3 minimum). Default: 8 MiB.
    pub upload_part_size: u64,
    /// Upload parts in flight per object. Default: 16.
    pub upload_concurrency: usize,
    /// Objects up to this size are uploaded with one PUT. Default: 8 MiB.
    pub single_put_threshold: u64,
    /// Files transferred at once by recursive copies. Default: 8.
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

/// Retry policy: jittered exponential backoff within a total time bound.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first included. Default: 10.
    pub max_attempts: u32,
    /// First backoff. Default: 100 ms.
    pub initial_backoff: Duration,
    /// Backoff ceiling. Default: 5 s.
    pub max_backoff: Duration,
    /// No new attempt starts after this much time. Default: 60 s.
    pub total_timeout: Duration,
    /// Timeout of one HTTP request, body included. Default: 60 s.
    pub request_timeout: Duration,
    /// TCP connect timeout. Default: 5 s.
    pub connect_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            total_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Limits applied by [`crate::limit::LimitedStore`]. Default: none.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Requests started per second.
    pub requests_per_sec: Option<f64>,
    /// Bytes moved per second (both directions together).
    pub bytes_per_sec: Option<u64>,
    /// Requests in flight at once.
    pub max_requests: Option<usize>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self::from_layer(&ConfigLayer::default()).expect("defaults are valid")
    }
}

impl StoreConfig {
    /// Merges defaults, the config file, the environment and the flags, and validates.
    ///
    /// `file` is the `--config` flag; without it `$STRATA_CONFIG` and then the default path
    /// are tried (a missing default file is not an error; a missing named file is).
    pub fn resolve(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: &ConfigLayer,
    ) -> Result<Self> {
        let named = file.map(Path::to_path_buf).or_else(|| {
            env("STRATA_CONFIG")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        });
        let file_layer = match named {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| StoreError::Config {
                    reason: format!("cannot read config file {}: {e}", path.display()),
                })?;
                ConfigLayer::from_toml(&text, &path)?
            }
            None => match default_config_path(env).filter(|p| p.is_file()) {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| StoreError::io("read config", &path, e))?;
                    ConfigLayer::from_toml(&text, &path)?
                }
                None => ConfigLayer::default(),
            },
        };
        let merged = file_layer
            .overlay(&ConfigLayer::from_env(env)?)
            .overlay(flags);
        Self::from_layer(&merged)
    }

    /// Validates a merged layer, filling defaults.
    pub fn from_layer(l: &ConfigLayer) -> Result<Self> {
        let bad = |reason: String| StoreError::Config { reason };
        let endpoint = l.s3.endpoint.clone();
        if let Some(ep) = &endpoint
            && !(ep.starts_with("http://") || ep.starts_with("https://"))
        {
            return Err(bad(format!(
                "s3.endpoint {ep:?} must start with http:// or https://"
            )));
        }
        let allow_http = l.s3.allow_http.unwrap_or_else(|| {
            endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("http://"))
        });
        let checksum =
            match l.s3.checksum.as_deref() {
                None | Some("none") | Some("") => None,
                Some(v) => Some(v.parse::<object_store::aws::Checksum>().map_err(|_| {
                    bad(format!("s3.checksum {v:?}: use sha256, crc64nvme or none"))
                })?),
            };
        let size = |v: &Option<SizeValue>, field: &str, default: u64| -> Result<u64> {
            v.as_ref().map_or(Ok(default), |v| v.bytes(field))
        };
        let part_size = size(&l.transfer.part_size, "transfer.part_size", 8 << 20)?;
        let upload_part_size = size(
            &l.transfer.upload_part_size,
            "transfer.upload_part_size",
            8 << 20,
        )?;
        let single_put_threshold = size(
            &l.transfer.single_put_threshold,
            "transfer.single_put_threshold",
            upload_part_size,
        )?;
        if !(64 << 10..=5 << 30).contains(&part_size) {
            return Err(bad(format!(
                "transfer.part_size {part_size} must be between 64 KiB and 5 GiB"
            )));
        }
        if !(5 << 20..=5 << 30).contains(&upload_part_size) {
            return Err(bad(format!(
                "transfer.upload_part_size {upload_part_size} must be between 5 MiB and 5 GiB (the S3 limits)"
            )));
        }
        if single_put_threshold > 5 << 30 {
            return Err(bad(
                "transfer.single_put_threshold must be at most 5 GiB".into()
            ));
        }
        let count = |v: Option<usize>, field: &str, default: usize| -> Result<usize> {
            let v = v.unwrap_or(default);
            if (1..=1024).contains(&v) {
                Ok(v)
            } else {
                Err(bad(format!("{field} {v} must be between 1 and 1024")))
            }
        };
        let secs = |v: Option<f64>, field: &str, default: Duration| -> Result<Duration> {
            match v {
                None => Ok(default),
                Some(s) if s.is_finite() && s > 0.0 && s < 1e7 => Ok(Duration::from_secs_f64(s)),
                Some(s) => Err(bad(format!(
                    "{field} {s} must be a positive number of seconds"
                ))),
            }
        };
        let d = RetryPolicy::default();
        let retry = RetryPolicy {
            max_attempts: match l.retry.max_attempts.unwrap_or(d.max_attempts) {
                0 => return Err(bad("retry.max_attempts must be at least 1".into())),
                n => n,
            },
            initial_backoff: l
                .retry
                .initial_backoff_ms
                .map_or(d.initial_backoff, Duration::from_millis),
            max_backoff: l
                .retry
                .max_backoff_ms
                .map_or(d.max_backoff, Duration::from_millis),
            total_timeout: secs(
                l.retry.total_timeout_secs,
                "retry.total_timeout_secs",
                d.total_timeout,
            )?,
            request_timeout: secs(
                l.retry.request_timeout_secs,
                "retry.request_timeout_secs",
                d.request_timeout,
            )?,
            connect_timeout: secs(
                l.retry.connect_timeout_secs,
                "retry.connect_timeout_secs",
                d.connect_timeout,
            )?,
        };
        let limits = Limits {
            requests_per_sec: match l.limits.requests_per_sec {
                Some(r) if !(r.is_finite() && r > 0.0) => {
                    return Err(bad(format!("limits.requests_per_sec {r} must be positive")));
                }
                r => r,
            },
            bytes_per_sec: match &l.limits.bytes_per_sec {
                Some(v) => match v.bytes("limits.bytes_per_sec")? {
                    0 => return Err(bad("limits.bytes_per_sec must be positive".into())),
                    b => Some(b),
                },
                None => None,
            },
            max_requests: l
                .limits
                .max_requests
                .map(|v| count(Some(v), "limits.max_requests", 1))
                .transpose()?,
        };
        let cache = CacheSettings {
            dir: l
                .cache
                .dir
                .as_ref()
                .map(PathBuf::from)
                .unwrap_or_else(default_cache_dir),
            nvme_size: size(&l.cache.nvme_size, "cache.nvme_size", 64 << 30)?,
            dram_size: size(&l.cache.dram_size, "cache.dram_size", 1 << 30)?,
            block_size: match size(&l.cache.block_size, "cache.block_size", 8 << 20)? {
                b if (64 << 10..=1 << 30).contains(&b) => b,
                b => {
                    return Err(bad(format!(
                        "cache.block_size {b} must be between 64 KiB and 1 GiB"
                    )));
                }
            },
            min_free_fraction: match l.cache.min_free_fraction.unwrap_or(0.05) {
                f if (0.0..1.0).contains(&f) => f,
                f => {
                    return Err(bad(format!(
                        "cache.min_free_fraction {f} must be in [0, 1)"
                    )));
                }
            },
            policy: match l.cache.policy.as_deref().unwrap_or("auto") {
                p @ ("auto" | "s3fifo" | "lru") => p.to_string(),
                p => return Err(bad(format!("cache.policy {p:?}: use auto, s3fifo or lru"))),
            },
        };
        Ok(Self {
            cache,
            s3: S3Config {
                endpoint,
                region: l.s3.region.clone().unwrap_or_else(|| "us-east-1".into()),
                access_key_id: l.s3.access_key_id.clone(),
                secret_access_key: l.s3.secret_access_key.clone(),
                session_token: l.s3.session_token.clone(),
                allow_http,
                virtual_hosted: l.s3.virtual_hosted.unwrap_or(false),
                checksum,
                unsigned_payload: l.s3.unsigned_payload.unwrap_or(false),
                metadata_disabled: l.s3.metadata_disabled.unwrap_or(false),
                external_credentials: l.s3.external_credentials.unwrap_or(false),
            },
            transfer: TransferConfig {
                part_size,
                concurrency: count(l.transfer.concurrency, "transfer.concurrency", 16)?,
                upload_part_size,
                upload_concurrency: count(
                    l.transfer.upload_concurrency,
                    "transfer.upload_concurrency",
                    16,
                )?,
                single_put_threshold,
                files_in_flight: count(l.transfer.files_in_flight, "transfer.files_in_flight", 8)?,
            },
            retry,
            limits,
            ckpt: l.ckpt.clone(),
            daemon: l.daemon.clone().unwrap_or_default(),
        })
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

fn default_config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(x) = env("XDG_CONFIG_HOME").filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(x).join("strata/config.toml"));
    }
    env("HOME").map(|h| PathBuf::from(h).join(".config/strata/config.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults() {
        let c = StoreConfig::default();
        assert_eq!(c.transfer.part_size, 8 << 20);
        assert_eq!(c.transfer.concurrency, 16);
        assert_eq!(c.s3.region, "us-east-1");
        assert!(!c.s3.allow_http);
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "[s3]\nendpoint='https://file.example'\nregion='eu-1'\n[transfer]\npart_size='16MiB'\nconcurrency=4\n",
        )
        .unwrap();
        let e = env(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("STRATA_CONCURRENCY", "8"),
        ]);
        let mut flags = ConfigLayer::default();
        flags.transfer.concurrency = Some(32);
        let c = StoreConfig::resolve(Some(&f), &e, &flags).unwrap();
        assert_eq!(c.s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(c.s3.allow_http, "http endpoint allows http");
        assert_eq!(c.s3.region, "eu-1");
        assert_eq!(c.transfer.part_size, 16 << 20);
        assert_eq!(c.transfer.concurrency, 32);
    }

    #[test]
    fn bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[transfer]\npart_sise = 3\n").unwrap();
        let err = StoreConfig::resolve(Some(&f), &env(&[]), &ConfigLayer::default()).unwrap_err();
        assert!(err.to_string().contains("part_sise"), "{err}");
        assert!(err.to_string().contains("c.toml"), "{err}");

        let mut flags = ConfigLayer::default();
        flags.transfer.upload_part_size = Some(SizeValue::Text("1MiB".into()));
        let err = StoreConfig::from_layer(&flags).unwrap_err();
        assert!(err.to_string().contains("upload_part_size"), "{err}");

        let err = StoreConfig::resolve(
            None,
            &env(&[("AWS_ENDPOINT_URL", "ftp://x")]),
            &ConfigLayer::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("endpoint"), "{err}");

        let missing = dir.path().join("nope.toml");
        let err =
            StoreConfig::resolve(Some(&missing), &env(&[]), &ConfigLayer::default()).unwrap_err();
        assert!(err.to_string().contains("nope.toml"), "{err}");
    }

    #[test]
    fn credential_source_is_decided_from_merged_settings() {
        let none = StoreConfig::resolve(None, &env(&[]), &ConfigLayer::default()).unwrap();
        assert!(
            !none.s3.anonymous(),
            "AWS without credentials uses the SDK chain"
        );
        let custom = StoreConfig::resolve(
            None,
            &env(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:9")]),
            &ConfigLayer::default(),
        )
        .unwrap();
        assert!(
            custom.s3.anonymous(),
            "a custom endpoint without credentials goes unsigned"
        );
        let off = StoreConfig::resolve(
            None,
            &env(&[("AWS_EC2_METADATA_DISABLED", "true")]),
            &ConfigLayer::default(),
        )
        .unwrap();
        assert!(off.s3.anonymous());
        let web = StoreConfig::resolve(
            None,
            &env(&[
                ("AWS_ENDPOINT_URL", "http://x:9"),
                ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
            ]),
            &ConfigLayer::default(),
        )
        .unwrap();
        assert!(!web.s3.anonymous(), "web identity credentials are used");
        let keyed = StoreConfig::resolve(
            None,
            &env(&[
                ("AWS_ENDPOINT_URL", "http://x:9"),
                ("AWS_ACCESS_KEY_ID", "a"),
            ]),
            &ConfigLayer::default(),
        )
        .unwrap();
        assert!(!keyed.s3.anonymous());
    }

    #[test]
    fn secrets_do_not_print() {
        let e = env(&[
            ("AWS_SECRET_ACCESS_KEY", "hunter2-very-secret"),
            ("AWS_SESSION_TOKEN", "tok-123456"),
        ]);
        let c = StoreConfig::resolve(None, &e, &ConfigLayer::default()).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(!dbg.contains("tok-123456"), "{dbg}");
        assert_eq!(
            c.s3.secret_access_key.unwrap().expose(),
            "hunter2-very-secret"
        );
    }
}
