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

/// The value that `text` names among `options` (name, value); an error names the setting and
/// lists the names, e.g. `ckpt.mode: "fast": use durable-local or snapshot`.
pub fn choice<T: Copy>(text: &str, setting: &str, options: &[(&str, T)]) -> Result<T, ConfigError> {
    if let Some((_, v)) = options.iter().find(|(name, _)| *name == text) {
        return Ok(*v);
    }
    let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
    let list = match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    Err(ConfigError::invalid(
        setting,
        format!("{text:?}: use {list}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_choice_lists_the_names() {
        let opts = [("auto", 0), ("leases", 1), ("off", 2)];
        assert_eq!(choice("leases", "x", &opts).unwrap(), 1);
        let e = choice("polite", "ckpt.admission", &opts).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ckpt.admission: \"polite\": use auto, leases or off"
        );
    }

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
