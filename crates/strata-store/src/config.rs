//! Settings of the store layer: four sections of the config file, each in its own file.
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
//! ```
//!
//! Loading and precedence (defaults < file < environment < flags) belong to `strata-config`;
//! each section here says what it holds, which variables set it, and its defaults. Credentials
//! for `gs://` and `az://` come from the variables their SDKs read
//! (`GOOGLE_APPLICATION_CREDENTIALS`, `AZURE_STORAGE_ACCOUNT_NAME`, ...).

pub mod limits;
pub mod retry;
pub mod s3;
pub mod transfer;

pub use limits::{Limits, LimitsLayer};
pub use retry::{RetryLayer, RetryPolicy};
pub use s3::{S3Config, S3Layer};
pub use strata_config::{ConfigError, Secret, SizeValue, Sources};
pub use transfer::{MIN_ADAPTIVE_PART, TransferConfig, TransferLayer};

/// The validated settings of the store layer.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `[s3]`.
    pub s3: S3Config,
    /// `[transfer]`.
    pub transfer: TransferConfig,
    /// `[retry]`.
    pub retry: RetryPolicy,
    /// `[limits]`.
    pub limits: Limits,
}

/// The store's four sections as one layer: what tests, the test kit and benchmarks set to
/// point a store at a server ([`StoreConfig::from_layer`]), or flags to apply over the other
/// sources ([`StoreLayer::apply`]).
#[derive(Debug, Clone, Default)]
pub struct StoreLayer {
    /// `[s3]`.
    pub s3: S3Layer,
    /// `[transfer]`.
    pub transfer: TransferLayer,
    /// `[retry]`.
    pub retry: RetryLayer,
    /// `[limits]`.
    pub limits: LimitsLayer,
}

impl StoreLayer {
    /// Sets every section's flags in `sources` to this layer's (over any set before).
    pub fn apply(&self, sources: &mut Sources) {
        sources
            .set_flags::<S3Config>(self.s3.clone())
            .set_flags::<TransferConfig>(self.transfer.clone())
            .set_flags::<RetryPolicy>(self.retry.clone())
            .set_flags::<Limits>(self.limits.clone());
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self::from_layer(&StoreLayer::default()).expect("the defaults are valid")
    }
}

impl StoreConfig {
    /// The store's sections from `sources`, merged and validated.
    pub fn from_sources(sources: &Sources) -> Result<Self, ConfigError> {
        Ok(Self {
            s3: sources.get()?,
            transfer: sources.get()?,
            retry: sources.get()?,
            limits: sources.get()?,
        })
    }

    /// Only `layer` over the defaults: no file, no environment.
    pub fn from_layer(layer: &StoreLayer) -> Result<Self, ConfigError> {
        let mut sources = Sources::defaults();
        layer.apply(&mut sources);
        Self::from_sources(&sources)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_config::Env;

    fn load(file: Option<&std::path::Path>, pairs: &[(&str, &str)]) -> Sources {
        Sources::load(file, Env::from_pairs(pairs)).unwrap()
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
        let mut s = load(
            Some(&f),
            &[
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
                ("STRATA_CONCURRENCY", "8"),
            ],
        );
        let mut flags = StoreLayer::default();
        flags.transfer.concurrency = Some(32);
        flags.apply(&mut s);
        let c = StoreConfig::from_sources(&s).unwrap();
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
        let err = StoreConfig::from_sources(&load(Some(&f), &[])).unwrap_err();
        assert!(err.to_string().contains("part_sise"), "{err}");
        assert!(err.to_string().contains("c.toml"), "{err}");

        let mut flags = StoreLayer::default();
        flags.transfer.upload_part_size = Some(SizeValue::Text("1MiB".into()));
        let err = StoreConfig::from_layer(&flags).unwrap_err();
        assert!(err.to_string().contains("upload_part_size"), "{err}");

        let err =
            StoreConfig::from_sources(&load(None, &[("AWS_ENDPOINT_URL", "ftp://x")])).unwrap_err();
        assert!(err.to_string().contains("endpoint"), "{err}");

        let err = StoreConfig::from_sources(&load(None, &[("STRATA_REQUESTS_PER_SEC", "lots")]))
            .unwrap_err();
        assert!(
            err.to_string().contains("$STRATA_REQUESTS_PER_SEC"),
            "{err}"
        );
    }

    #[test]
    fn credential_source_is_decided_from_merged_settings() {
        let anonymous = |pairs: &[(&str, &str)]| {
            StoreConfig::from_sources(&load(None, pairs))
                .unwrap()
                .s3
                .anonymous()
        };
        assert!(
            !anonymous(&[]),
            "AWS without credentials uses the SDK chain"
        );
        assert!(
            anonymous(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:9")]),
            "a custom endpoint without credentials goes unsigned"
        );
        assert!(anonymous(&[("AWS_EC2_METADATA_DISABLED", "true")]));
        assert!(
            !anonymous(&[
                ("AWS_ENDPOINT_URL", "http://x:9"),
                ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
            ]),
            "web identity credentials are used"
        );
        assert!(!anonymous(&[
            ("AWS_ENDPOINT_URL", "http://x:9"),
            ("AWS_ACCESS_KEY_ID", "a"),
        ]));
    }

    #[test]
    fn secrets_do_not_print() {
        let s = load(
            None,
            &[
                ("AWS_SECRET_ACCESS_KEY", "hunter2-very-secret"),
                ("AWS_SESSION_TOKEN", "tok-123456"),
            ],
        );
        let c = StoreConfig::from_sources(&s).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(!dbg.contains("tok-123456"), "{dbg}");
        assert_eq!(
            c.s3.secret_access_key.unwrap().expose(),
            "hunter2-very-secret"
        );
    }
}
