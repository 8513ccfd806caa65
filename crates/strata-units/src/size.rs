//! Byte sizes: `8MiB`, `1.5G`, `4096`, `350 GB`.

use crate::error::{UnitError, non_negative, refuse_negative};

const SIZE_EXAMPLES: &str = "4096, 8MiB, 1GiB";

/// Parses a size in whole bytes: a number with an optional unit. Binary units (`KiB`, `MiB`,
/// `GiB`, `TiB`, and the short forms `K`, `M`, `G`, `T`) are powers of 1024; decimal units
/// (`KB`, `MB`, `GB`, `TB`) are powers of 1000; `B` or no unit means bytes. Fractions round
/// to the nearest byte.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let (value, unit) = number_and_unit(text).ok_or_else(|| UnitError::NotA {
        text: text.to_string(),
        what: "size",
        examples: SIZE_EXAMPLES,
    })?;
    let mult: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        other => {
            return Err(UnitError::UnknownUnit {
                text: text.to_string(),
                what: "size",
                unit: other.to_string(),
                hint: "",
            });
        }
    };
    let bytes = value * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(UnitError::OutOfRange {
            text: text.to_string(),
        });
    }
    Ok(bytes.round() as u64)
}

/// A size in bytes as a float, for the planner (so `0.5 KB`, `350 GB` and `1e3` work): a bare
/// number (exponents allowed) is bytes; otherwise as [`parse_size`], spaces ignored.
pub fn parse_size_f64(text: &str) -> Result<f64, UnitError> {
    refuse_negative(text, "size")?;
    let t = text.trim();
    if let Ok(n) = t.parse::<f64>() {
        return non_negative(n, "size");
    }
    let compact = t.replace(' ', "");
    parse_size(&compact)
        .map(|b| b as f64)
        .map_err(|e| with_text(e, text))
}

/// The same error, quoting `text` (what the user wrote) instead of a normalised form.
pub(crate) fn with_text(e: UnitError, text: &str) -> UnitError {
    let text = text.to_string();
    match e {
        UnitError::NotA { what, examples, .. } => UnitError::NotA {
            text,
            what,
            examples,
        },
        UnitError::UnknownUnit {
            what, unit, hint, ..
        } => UnitError::UnknownUnit {
            text,
            what,
            unit,
            hint,
        },
        UnitError::Negative { what, .. } => UnitError::Negative { text, what },
        UnitError::OutOfRange { .. } => UnitError::OutOfRange { text },
        e @ UnitError::NotFinite { .. } => e,
    }
}

/// Splits `12.5MiB` into (12.5, "mib"): a non-negative decimal number and the rest, trimmed
/// and lowercased. `None` when there is no number.
pub(crate) fn number_and_unit(text: &str) -> Option<(f64, String)> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    Some((num.parse().ok()?, unit.trim().to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("8MiB").unwrap(), 8 << 20);
        assert_eq!(parse_size("8M").unwrap(), 8 << 20);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("2 KB").unwrap(), 2000);
        assert!(parse_size("lots").is_err());
        assert_eq!(
            parse_size("5 parsecs").unwrap_err().to_string(),
            "\"5 parsecs\": unknown size unit \"parsecs\""
        );
        assert_eq!(
            parse_size("lots").unwrap_err().to_string(),
            "\"lots\" is not a size (examples: 4096, 8MiB, 1GiB)"
        );
    }

    #[test]
    fn planner_sizes() {
        assert_eq!(parse_size_f64("350 GB").unwrap(), 350e9);
        assert_eq!(parse_size_f64("64 KiB").unwrap(), 65_536.0);
        assert_eq!(parse_size_f64("1e3").unwrap(), 1000.0);
        for bad in ["-5 GB", "five", "1 parsec"] {
            assert!(parse_size_f64(bad).is_err(), "{bad}");
        }
        assert!(
            parse_size_f64("1 parsec")
                .unwrap_err()
                .to_string()
                .starts_with("\"1 parsec\"")
        );
    }

    proptest! {
        /// Every byte count written with a binary unit reads back as itself.
        #[test]
        fn whole_units_round_trip(n in 0u64..1_000_000, unit in 0usize..5) {
            let (suffix, mult) = [("", 1u64), ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("B", 1)][unit];
            prop_assert_eq!(parse_size(&format!("{n}{suffix}")).unwrap(), n * mult);
        }

        /// No text makes the parser panic, and what parses is never negative.
        #[test]
        fn any_text_is_an_answer(text in ".{0,24}") {
            let _ = parse_size(&text);
            if let Ok(v) = parse_size_f64(&text) {
                prop_assert!(v >= 0.0 && v.is_finite());
            }
        }
    }
}
