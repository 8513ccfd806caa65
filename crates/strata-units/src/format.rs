//! Quantities as people read them: binary sizes for bytes a machine holds (`8.0 MiB`),
//! decimal sizes, rates and durations for the planner's reports (`350 GB`, `1.25 GB/s`,
//! `1.50 h`), three significant digits.

/// A byte count with binary units and one decimal, e.g. `8.0 MiB`; below 1 KiB, `1023 B`.
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

/// Bytes in decimal units (`350 GB`), three significant digits: the planner's prices are per
/// GB.
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

/// Bytes per second in decimal units (`1.25 GB/s`); `unlimited` when infinite.
pub fn rate(bps: f64) -> String {
    if !bps.is_finite() {
        return "unlimited".into();
    }
    format!("{}/s", bytes(bps))
}

/// Seconds in the largest unit that keeps the number ≥ 1 (`µs` to days); `never` when
/// infinite.
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
    fn formatting() {
        assert_eq!(format_size(1023), "1023 B");
        assert_eq!(format_size(8 << 20), "8.0 MiB");
        assert_eq!(bytes(350e9), "350 GB");
        assert_eq!(rate(1.25e9), "1.25 GB/s");
        assert_eq!(secs(5400.0), "1.50 h");
        assert_eq!(secs(0.0167), "16.7 ms");
    }
}
