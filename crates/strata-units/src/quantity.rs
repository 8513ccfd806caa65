//! A quantity in a file: a number in the base unit, or text with a unit.

use serde::{Deserialize, Serialize};

use crate::error::{UnitError, non_negative};

/// A quantity as a TOML or JSON value: a number in the base unit (bytes, bytes per second,
/// seconds) or text with a unit (`"8MiB"`, `"25 Gbps"`, `"4 h"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Quantity {
    /// In the base unit.
    Number(f64),
    /// With a unit.
    Text(String),
}

impl From<f64> for Quantity {
    fn from(v: f64) -> Self {
        Quantity::Number(v)
    }
}

impl From<&str> for Quantity {
    fn from(v: &str) -> Self {
        Quantity::Text(v.to_string())
    }
}

impl Quantity {
    /// Bytes, as a float ([`crate::parse_size_f64`]).
    pub fn bytes(&self) -> Result<f64, UnitError> {
        match self {
            Quantity::Number(n) => non_negative(*n, "size"),
            Quantity::Text(t) => crate::parse_size_f64(t),
        }
    }

    /// Bytes per second ([`crate::parse_rate`]).
    pub fn rate(&self) -> Result<f64, UnitError> {
        match self {
            Quantity::Number(n) => non_negative(*n, "rate"),
            Quantity::Text(t) => crate::parse_rate(t),
        }
    }

    /// Seconds ([`crate::parse_secs`]).
    pub fn secs(&self) -> Result<f64, UnitError> {
        match self {
            Quantity::Number(n) => non_negative(*n, "duration"),
            Quantity::Text(t) => crate::parse_secs(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_checked() {
        assert!(Quantity::Number(-1.0).bytes().is_err());
        assert!(Quantity::Number(f64::NAN).secs().is_err());
        assert_eq!(Quantity::Number(4096.0).bytes().unwrap(), 4096.0);
        assert_eq!(Quantity::from("8MiB").bytes().unwrap(), (8 << 20) as f64);
    }
}
