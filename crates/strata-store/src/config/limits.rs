//! `[limits]`: request and byte rates and requests in flight, for the whole process.

use serde::Deserialize;
use strata_config::{ConfigError, Env, Section, SizeValue, overlay_fields};

use super::transfer::count;

/// `[limits]` as a source gives it. Environment: `STRATA_BYTES_PER_SEC`,
/// `STRATA_REQUESTS_PER_SEC`, `STRATA_MAX_REQUESTS`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsLayer {
    /// See [`Limits::requests_per_sec`].
    pub requests_per_sec: Option<f64>,
    /// See [`Limits::bytes_per_sec`].
    pub bytes_per_sec: Option<SizeValue>,
    /// See [`Limits::max_requests`].
    pub max_requests: Option<usize>,
}

overlay_fields!(LimitsLayer {
    requests_per_sec,
    bytes_per_sec,
    max_requests
});

/// Limits applied by [`crate::limit::LimitedStore`]. Default: none.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Requests started per second (> 0).
    pub requests_per_sec: Option<f64>,
    /// Bytes moved per second, both directions together (> 0).
    pub bytes_per_sec: Option<u64>,
    /// Requests in flight at once, 1 to 1024.
    pub max_requests: Option<usize>,
}

impl Section for Limits {
    const NAME: &'static str = "limits";
    type Layer = LimitsLayer;

    fn from_env(env: &Env) -> Result<LimitsLayer, ConfigError> {
        Ok(LimitsLayer {
            requests_per_sec: env.parse("STRATA_REQUESTS_PER_SEC", "a number")?,
            bytes_per_sec: env.get("STRATA_BYTES_PER_SEC").map(SizeValue::Text),
            max_requests: env.parse("STRATA_MAX_REQUESTS", "a whole number")?,
        })
    }

    fn resolve(l: &LimitsLayer) -> Result<Self, ConfigError> {
        Ok(Limits {
            requests_per_sec: match l.requests_per_sec {
                Some(r) if !(r.is_finite() && r > 0.0) => {
                    return Err(ConfigError::invalid(
                        "limits.requests_per_sec",
                        format!("{r} must be positive"),
                    ));
                }
                r => r,
            },
            bytes_per_sec: match &l.bytes_per_sec {
                Some(v) => match v.bytes("limits.bytes_per_sec")? {
                    0 => {
                        return Err(ConfigError::invalid(
                            "limits.bytes_per_sec",
                            "must be positive",
                        ));
                    }
                    b => Some(b),
                },
                None => None,
            },
            max_requests: l
                .max_requests
                .map(|v| count(Some(v), "limits.max_requests", 1))
                .transpose()?,
        })
    }
}
