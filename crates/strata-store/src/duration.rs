//! Durations as people write them: `500ms`, `30s`, `10m`, `4h`, `7d`, `1.5h`; a bare number
//! is seconds.

use std::time::Duration;

/// Parses a duration (see the module documentation).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (value, unit) = crate::size::number_and_unit(text)
        .ok_or_else(|| format!("{text:?} is not a duration (examples: 500ms, 30s, 10m, 4h, 7d)"))?;
    let secs = match unit.as_str() {
        "ms" => value / 1000.0,
        "" | "s" | "sec" | "secs" => value,
        "m" | "min" | "mins" => value * 60.0,
        "h" | "hr" | "hrs" => value * 3600.0,
        "d" | "day" | "days" => value * 86_400.0,
        other => {
            return Err(format!(
                "{text:?}: unknown duration unit {other:?} (ms, s, m, h, d)"
            ));
        }
    };
    if !secs.is_finite() || !(0.0..=1e12).contains(&secs) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        for bad in ["", "h", "5 parsecs", "-1s", "1e400s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
