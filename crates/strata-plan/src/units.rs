//! Quantities as people write them in a scenario: sizes (`350 GB`, `64 KiB`), rates
//! (`25 Gbps`, `2 GB/s`, `500 MiB/s`) and durations (`30 s`, `4 h`, `5 y`), or bare numbers in
//! the base unit (bytes, bytes per second, seconds).
//!
//! Sizes use [`strata_store::size::parse_size`]: `KB`, `MB`, `GB`, `TB` are powers of 1000,
//! `KiB`, `MiB`, `GiB`, `TiB` powers of 1024. Rates in bits (`bps`, `Kbps`, `Mbps`, `Gbps`,
//! `Tbps`, or `bit/s` forms) are decimal.

use serde::{Deserialize, Serialize};

/// A quantity in a scenario file: a number in the base unit, or text with a unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Quantity {
    Number(f64),
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

fn number(n: f64, what: &str) -> Result<f64, String> {
    if !n.is_finite() || n < 0.0 {
        return Err(format!(
            "{n} is not a {what} (it must be a finite number ≥ 0)"
        ));
    }
    Ok(n)
}

impl Quantity {
    /// Bytes.
    pub fn bytes(&self) -> Result<f64, String> {
        match self {
            Quantity::Number(n) => number(*n, "size"),
            Quantity::Text(t) => parse_size_f64(t),
        }
    }

    /// Bytes per second.
    pub fn rate(&self) -> Result<f64, String> {
        match self {
            Quantity::Number(n) => number(*n, "rate"),
            Quantity::Text(t) => parse_rate(t),
        }
    }

    /// Seconds.
    pub fn secs(&self) -> Result<f64, String> {
        match self {
            Quantity::Number(n) => number(*n, "duration"),
            Quantity::Text(t) => parse_secs(t),
        }
    }
}

/// A size in bytes as a float (so `0.5 KB` and `1e3` work); see the module docs.
pub fn parse_size_f64(text: &str) -> Result<f64, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!("{text:?} is negative; a size must be ≥ 0"));
    }
    if let Ok(n) = t.parse::<f64>() {
        return number(n, "size");
    }
    strata_store::size::parse_size(&t.replace(' ', "")).map(|b| b as f64)
}

/// A rate in bytes per second; see the module docs.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!("{text:?} is negative; a rate must be ≥ 0"));
    }
    if let Ok(n) = t.parse::<f64>() {
        return number(n, "rate");
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
            let n: f64 = num
                .parse()
                .map_err(|_| format!("{text:?} is not a rate (examples: 25 Gbps, 2 GB/s)"))?;
            return number(n * mult / 8.0, "rate");
        }
    }
    if let Some(size) = compact.strip_suffix("/s") {
        return parse_size_f64(size)
            .map_err(|_| format!("{text:?} is not a rate (examples: 25 Gbps, 2 GB/s, 500 MiB/s)"));
    }
    Err(format!(
        "{text:?} is not a rate (examples: 25 Gbps, 2 GB/s, 500 MiB/s)"
    ))
}

/// A duration in seconds; `w` (weeks) and `y` (365-day years) beside `ms`, `s`, `m`, `h`, `d`.
pub fn parse_secs(text: &str) -> Result<f64, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!("{text:?} is negative; a duration must be ≥ 0"));
    }
    let compact = t.replace(' ', "").to_ascii_lowercase();
    for (suffix, mult) in [
        ("years", 31_536_000.0),
        ("year", 31_536_000.0),
        ("y", 31_536_000.0),
        ("weeks", 604_800.0),
        ("week", 604_800.0),
        ("w", 604_800.0),
        ("us", 1e-6),
        ("µs", 1e-6),
    ] {
        if let Some(num) = compact.strip_suffix(suffix)
            && let Ok(n) = num.parse::<f64>()
        {
            return number(n * mult, "duration");
        }
    }
    strata_store::duration::parse_duration(&compact).map(|d| d.as_secs_f64())
}

/// Bytes as people read them, decimal (`350 GB`), as the planner's prices are per GB.
pub fn bytes(b: f64) -> String {
    let units = [
        (1e15, "PB"),
        (1e12, "TB"),
        (1e9, "GB"),
        (1e6, "MB"),
        (1e3, "KB"),
    ];
    for (m, u) in units {
        if b >= m {
            return format!("{} {u}", sig(b / m));
        }
    }
    format!("{} B", sig(b))
}

/// A rate as people read it (`1.2 GB/s`).
pub fn rate(bps: f64) -> String {
    if !bps.is_finite() {
        return "unlimited".into();
    }
    format!("{}/s", bytes(bps))
}

/// Seconds as people read them.
pub fn secs(s: f64) -> String {
    if !s.is_finite() {
        return "never".into();
    }
    if s >= 86_400.0 * 2.0 {
        format!("{} d", sig(s / 86_400.0))
    } else if s >= 3600.0 {
        format!("{} h", sig(s / 3600.0))
    } else if s >= 60.0 {
        format!("{} min", sig(s / 60.0))
    } else if s >= 1.0 {
        format!("{} s", sig(s))
    } else if s >= 1e-3 {
        format!("{} ms", sig(s * 1e3))
    } else {
        format!("{} µs", sig(s * 1e6))
    }
}

/// Three significant digits, no exponent.
pub fn sig(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_rates_and_durations() {
        assert_eq!(parse_size_f64("350 GB").unwrap(), 350e9);
        assert_eq!(parse_size_f64("64 KiB").unwrap(), 65_536.0);
        assert_eq!(parse_size_f64("1e3").unwrap(), 1000.0);
        assert_eq!(parse_rate("8 Gbps").unwrap(), 1e9);
        assert_eq!(parse_rate("2 GB/s").unwrap(), 2e9);
        assert_eq!(parse_rate("1 MiB/s").unwrap(), 1_048_576.0);
        assert_eq!(parse_secs("5 y").unwrap(), 5.0 * 31_536_000.0);
        assert_eq!(parse_secs("30 s").unwrap(), 30.0);
        assert_eq!(parse_secs("1.5 h").unwrap(), 5400.0);
        assert_eq!(parse_secs("250 us").unwrap(), 250e-6);
        for bad in ["-5 GB", "five", "1 parsec"] {
            assert!(parse_size_f64(bad).is_err(), "{bad}");
        }
        for bad in ["-1 Gbps", "fast", "10 GB"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
        assert!(Quantity::Number(-1.0).bytes().is_err());
        assert!(Quantity::Number(f64::NAN).secs().is_err());
    }

    #[test]
    fn formatting() {
        assert_eq!(bytes(350e9), "350 GB");
        assert_eq!(rate(1.25e9), "1.25 GB/s");
        assert_eq!(secs(5400.0), "1.50 h");
        assert_eq!(secs(0.0167), "16.7 ms");
    }
}
