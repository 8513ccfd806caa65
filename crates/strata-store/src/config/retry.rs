//! `[retry]`: jittered exponential backoff within a total time bound.

use std::time::Duration;

use serde::Deserialize;
use strata_config::{ConfigError, Env, Section, overlay_fields};

/// `[retry]` as a source gives it. Environment: `STRATA_MAX_ATTEMPTS`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryLayer {
    /// See [`RetryPolicy::max_attempts`].
    pub max_attempts: Option<u32>,
    /// See [`RetryPolicy::initial_backoff`], in milliseconds.
    pub initial_backoff_ms: Option<u64>,
    /// See [`RetryPolicy::max_backoff`], in milliseconds.
    pub max_backoff_ms: Option<u64>,
    /// See [`RetryPolicy::total_timeout`], in seconds.
    pub total_timeout_secs: Option<f64>,
    /// See [`RetryPolicy::request_timeout`], in seconds.
    pub request_timeout_secs: Option<f64>,
    /// See [`RetryPolicy::connect_timeout`], in seconds.
    pub connect_timeout_secs: Option<f64>,
}

overlay_fields!(RetryLayer {
    max_attempts,
    initial_backoff_ms,
    max_backoff_ms,
    total_timeout_secs,
    request_timeout_secs,
    connect_timeout_secs,
});

/// Retry policy: jittered exponential backoff within a total time bound.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first included; at least 1. Default: 10.
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

/// A positive number of seconds below 10⁷, else an error naming `setting`.
fn secs(v: Option<f64>, setting: &str, default: Duration) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) if s.is_finite() && s > 0.0 && s < 1e7 => Ok(Duration::from_secs_f64(s)),
        Some(s) => Err(ConfigError::invalid(
            setting,
            format!("{s} must be a positive number of seconds"),
        )),
    }
}

impl Section for RetryPolicy {
    const NAME: &'static str = "retry";
    type Layer = RetryLayer;

    fn from_env(env: &Env) -> Result<RetryLayer, ConfigError> {
        Ok(RetryLayer {
            max_attempts: env.parse("STRATA_MAX_ATTEMPTS", "a whole number")?,
            ..Default::default()
        })
    }

    fn resolve(l: &RetryLayer) -> Result<Self, ConfigError> {
        let d = RetryPolicy::default();
        Ok(RetryPolicy {
            max_attempts: match l.max_attempts.unwrap_or(d.max_attempts) {
                0 => {
                    return Err(ConfigError::invalid(
                        "retry.max_attempts",
                        "must be at least 1",
                    ));
                }
                n => n,
            },
            initial_backoff: l
                .initial_backoff_ms
                .map_or(d.initial_backoff, Duration::from_millis),
            max_backoff: l
                .max_backoff_ms
                .map_or(d.max_backoff, Duration::from_millis),
            total_timeout: secs(
                l.total_timeout_secs,
                "retry.total_timeout_secs",
                d.total_timeout,
            )?,
            request_timeout: secs(
                l.request_timeout_secs,
                "retry.request_timeout_secs",
                d.request_timeout,
            )?,
            connect_timeout: secs(
                l.connect_timeout_secs,
                "retry.connect_timeout_secs",
                d.connect_timeout,
            )?,
        })
    }
}
