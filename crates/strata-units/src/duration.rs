//! Durations: `500ms`, `30s`, `10m`, `4h`, `7d`, `1.5h`, and for the planner `2 w`, `5 y`; a
//! bare number is seconds.

use std::time::Duration;

use crate::error::{UnitError, non_negative, refuse_negative};
use crate::size::{number_and_unit, with_text};

/// Parses a duration: `ms`, `s` (or `sec`, `secs`), `m` (`min`, `mins`), `h` (`hr`, `hrs`),
/// `d` (`day`, `days`); a bare number is seconds. At most 10¹² seconds.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let (value, unit) = number_and_unit(text).ok_or_else(|| UnitError::NotA {
        text: text.to_string(),
        what: "duration",
        examples: "500ms, 30s, 10m, 4h, 7d",
    })?;
    let secs = match unit.as_str() {
        "ms" => value / 1000.0,
        "" | "s" | "sec" | "secs" => value,
        "m" | "min" | "mins" => value * 60.0,
        "h" | "hr" | "hrs" => value * 3600.0,
        "d" | "day" | "days" => value * 86_400.0,
        other => {
            return Err(UnitError::UnknownUnit {
                text: text.to_string(),
                what: "duration",
                unit: other.to_string(),
                hint: " (ms, s, m, h, d)",
            });
        }
    };
    if !secs.is_finite() || !(0.0..=1e12).contains(&secs) {
        return Err(UnitError::OutOfRange {
            text: text.to_string(),
        });
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A duration in seconds as a float, for the planner: [`parse_duration`]'s units, spaces
/// ignored, and also `us`/`µs`, `w` (weeks) and `y` (365-day years).
pub fn parse_secs(text: &str) -> Result<f64, UnitError> {
    refuse_negative(text, "duration")?;
    let compact = text.trim().replace(' ', "").to_ascii_lowercase();
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
            return non_negative(n * mult, "duration");
        }
    }
    parse_duration(&compact)
        .map(|d| d.as_secs_f64())
        .map_err(|e| with_text(e, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        for bad in ["", "h", "5 parsecs", "-1s", "1e400s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_duration("soon").unwrap_err().to_string(),
            "\"soon\" is not a duration (examples: 500ms, 30s, 10m, 4h, 7d)"
        );
    }

    #[test]
    fn planner_durations() {
        assert_eq!(parse_secs("5 y").unwrap(), 5.0 * 31_536_000.0);
        assert_eq!(parse_secs("30 s").unwrap(), 30.0);
        assert_eq!(parse_secs("1.5 h").unwrap(), 5400.0);
        assert_eq!(parse_secs("250 us").unwrap(), 250e-6);
        assert!(parse_secs("-3 h").is_err());
    }
}
