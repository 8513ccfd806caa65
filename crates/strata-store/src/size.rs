//! Byte sizes as people write them (`8MiB`, `1.5G`, `4096`) and as people read them.

/// Parses a size: a number with an optional unit. Binary units (`KiB`, `MiB`, `GiB`, `TiB`,
/// and the short forms `K`, `M`, `G`, `T`) are powers of 1024; decimal units (`KB`, `MB`,
/// `GB`, `TB`) are powers of 1000; `B` or no unit means bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (value, unit) = number_and_unit(text)
        .ok_or_else(|| format!("{text:?} is not a size (examples: 4096, 8MiB, 1GiB)"))?;
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
        other => return Err(format!("{text:?}: unknown size unit {other:?}")),
    };
    let bytes = value * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(bytes.round() as u64)
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

/// Formats a byte count with binary units, e.g. `8.0 MiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_trip() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("8MiB").unwrap(), 8 << 20);
        assert_eq!(parse_size("8M").unwrap(), 8 << 20);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("2 KB").unwrap(), 2000);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert_eq!(format_size(1023), "1023 B");
        assert_eq!(format_size(8 << 20), "8.0 MiB");
    }
}
