//! Rates: `25 Gbps`, `2 GB/s`, `500 MiB/s`, or a bare number of bytes per second.

use crate::error::{UnitError, non_negative, refuse_negative};
use crate::size::parse_size_f64;

const RATE_EXAMPLES: &str = "25 Gbps, 2 GB/s, 500 MiB/s";

/// A rate in bytes per second: a bare number (bytes/s), a size per second (`2 GB/s`,
/// `500 MiB/s`), or bits per second in decimal units (`bps`, `Kbps`, `Mbps`, `Gbps`, `Tbps`,
/// or the `bit/s` forms).
pub fn parse_rate(text: &str) -> Result<f64, UnitError> {
    refuse_negative(text, "rate")?;
    let not_a_rate = || UnitError::NotA {
        text: text.to_string(),
        what: "rate",
        examples: RATE_EXAMPLES,
    };
    let t = text.trim();
    if let Ok(n) = t.parse::<f64>() {
        return non_negative(n, "rate");
    }
    let compact = t.replace(' ', "").to_ascii_lowercase();
    let bits = [
        ("tbps", 1e12),
        ("gbps", 1e9),
        ("mbps", 1e6),
        ("kbps", 1e3),
        ("bps", 1.0),
        ("tbit/s", 1e12),
        ("gbit/s", 1e9),
        ("mbit/s", 1e6),
        ("kbit/s", 1e3),
        ("bit/s", 1.0),
    ];
    for (suffix, mult) in bits {
        if let Some(num) = compact.strip_suffix(suffix) {
            let n: f64 = num.parse().map_err(|_| not_a_rate())?;
            return non_negative(n * mult / 8.0, "rate");
        }
    }
    match compact.strip_suffix("/s") {
        Some(size) => parse_size_f64(size).map_err(|_| not_a_rate()),
        None => Err(not_a_rate()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("8 Gbps").unwrap(), 1e9);
        assert_eq!(parse_rate("2 GB/s").unwrap(), 2e9);
        assert_eq!(parse_rate("1 MiB/s").unwrap(), 1_048_576.0);
        assert_eq!(parse_rate("1000").unwrap(), 1000.0);
        for bad in ["-1 Gbps", "fast", "10 GB"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
