//! `[s3]`: the S3 endpoint and credentials.

use serde::Deserialize;
use strata_config::{ConfigError, Env, Secret, Section, overlay_fields};

/// `[s3]` as a source gives it. Environment: `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`,
/// `AWS_REGION` / `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`, `AWS_EC2_METADATA_DISABLED`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Layer {
    /// See [`S3Config::endpoint`].
    pub endpoint: Option<String>,
    /// See [`S3Config::region`].
    pub region: Option<String>,
    /// See [`S3Config::access_key_id`].
    pub access_key_id: Option<String>,
    /// See [`S3Config::secret_access_key`].
    pub secret_access_key: Option<Secret>,
    /// See [`S3Config::session_token`].
    pub session_token: Option<Secret>,
    /// See [`S3Config::allow_http`].
    pub allow_http: Option<bool>,
    /// See [`S3Config::virtual_hosted`].
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

overlay_fields!(S3Layer {
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
});

/// S3 endpoint and credentials. Unset credentials fall back to the AWS SDK's usual chain
/// (web identity, container and instance metadata) through object_store.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// Endpoint URL, e.g. `http://127.0.0.1:9000`. Default: AWS.
    pub endpoint: Option<String>,
    /// Region. Default: `us-east-1`.
    pub region: String,
    /// Access key ID. Default: none (the SDK's chain, or unsigned; see [`Self::anonymous`]).
    pub access_key_id: Option<String>,
    /// Secret access key. Default: none.
    pub secret_access_key: Option<Secret>,
    /// Session token of temporary credentials. Default: none.
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

impl Section for S3Config {
    const NAME: &'static str = "s3";
    type Layer = S3Layer;

    fn from_env(env: &Env) -> Result<S3Layer, ConfigError> {
        Ok(S3Layer {
            endpoint: env.first(&["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]),
            region: env.first(&["AWS_REGION", "AWS_DEFAULT_REGION"]),
            access_key_id: env.get("AWS_ACCESS_KEY_ID"),
            secret_access_key: env.get("AWS_SECRET_ACCESS_KEY").map(Secret::new),
            session_token: env.get("AWS_SESSION_TOKEN").map(Secret::new),
            allow_http: env.flag("AWS_ALLOW_HTTP"),
            metadata_disabled: env
                .get("AWS_EC2_METADATA_DISABLED")
                .map(|v| v.eq_ignore_ascii_case("true")),
            external_credentials: env
                .first(&[
                    "AWS_WEB_IDENTITY_TOKEN_FILE",
                    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                ])
                .map(|_| true),
            ..Default::default()
        })
    }

    fn resolve(l: &S3Layer) -> Result<Self, ConfigError> {
        let endpoint = l.endpoint.clone();
        if let Some(ep) = &endpoint
            && !(ep.starts_with("http://") || ep.starts_with("https://"))
        {
            return Err(ConfigError::invalid(
                "s3.endpoint",
                format!("{ep:?} must start with http:// or https://"),
            ));
        }
        let allow_http = l.allow_http.unwrap_or_else(|| {
            endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("http://"))
        });
        let checksum = match l.checksum.as_deref() {
            None | Some("none") | Some("") => None,
            Some(v) => Some(v.parse::<object_store::aws::Checksum>().map_err(|_| {
                ConfigError::invalid(
                    "s3.checksum",
                    format!("{v:?}: use sha256, crc64nvme or none"),
                )
            })?),
        };
        Ok(S3Config {
            endpoint,
            region: l.region.clone().unwrap_or_else(|| "us-east-1".into()),
            access_key_id: l.access_key_id.clone(),
            secret_access_key: l.secret_access_key.clone(),
            session_token: l.session_token.clone(),
            allow_http,
            virtual_hosted: l.virtual_hosted.unwrap_or(false),
            checksum,
            unsigned_payload: l.unsigned_payload.unwrap_or(false),
            metadata_disabled: l.metadata_disabled.unwrap_or(false),
            external_credentials: l.external_credentials.unwrap_or(false),
        })
    }
}
