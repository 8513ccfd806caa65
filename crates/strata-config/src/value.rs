//! Values that a file may write as a number or as text with a unit.

use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;

/// A size in a config file: a number of bytes or a string such as `"8MiB"`
/// ([`strata_units::parse_size`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum SizeValue {
    /// Bytes.
    Bytes(u64),
    /// With a unit.
    Text(String),
}

impl SizeValue {
    /// The size in bytes; an error names `setting`.
    pub fn bytes(&self, setting: &str) -> Result<u64, ConfigError> {
        match self {
            Self::Bytes(b) => Ok(*b),
            Self::Text(t) => strata_units::parse_size(t)
                .map_err(|e| ConfigError::invalid(setting, e.to_string())),
        }
    }

    /// [`Self::bytes`] of an optional value, else `default`.
    pub fn or(v: &Option<Self>, setting: &str, default: u64) -> Result<u64, ConfigError> {
        v.as_ref().map_or(Ok(default), |v| v.bytes(setting))
    }
}

impl From<&str> for SizeValue {
    fn from(t: &str) -> Self {
        Self::Text(t.to_string())
    }
}

/// A duration in a config file: a number of seconds or a string such as `"10m"`
/// ([`strata_units::parse_duration`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum DurationValue {
    /// Seconds.
    Secs(f64),
    /// With a unit.
    Text(String),
}

impl DurationValue {
    /// The duration; an error names `setting`.
    pub fn duration(&self, setting: &str) -> Result<Duration, ConfigError> {
        match self {
            Self::Secs(s) if s.is_finite() && (0.0..=1e12).contains(s) => {
                Ok(Duration::from_secs_f64(*s))
            }
            Self::Secs(s) => Err(ConfigError::invalid(
                setting,
                format!("{s} is not a number of seconds ≥ 0"),
            )),
            Self::Text(t) => strata_units::parse_duration(t)
                .map_err(|e| ConfigError::invalid(setting, e.to_string())),
        }
    }
}

impl From<&str> for DurationValue {
    fn from(t: &str) -> Self {
        Self::Text(t.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_name_the_setting() {
        assert_eq!(SizeValue::from("8MiB").bytes("x").unwrap(), 8 << 20);
        let e = SizeValue::from("lots")
            .bytes("cache.nvme_size")
            .unwrap_err();
        assert!(
            e.to_string().starts_with("cache.nvme_size: \"lots\""),
            "{e}"
        );
        assert_eq!(
            DurationValue::from("2m").duration("x").unwrap(),
            Duration::from_secs(120)
        );
        assert!(DurationValue::Secs(-1.0).duration("ckpt.jitter").is_err());
    }
}
