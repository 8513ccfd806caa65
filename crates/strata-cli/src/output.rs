//! Output helpers: JSON for scripts, aligned text for people, progress bars on stderr.

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use strata_store::ProgressFn;
use strata_units::format_size;

/// Prints a value as one line of JSON on standard output.
pub fn json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("strata: cannot encode output: {e}"),
    }
}

/// A size as bytes, or human-readable when asked.
pub fn size(bytes: u64, human: bool) -> String {
    if human {
        format_size(bytes)
    } else {
        bytes.to_string()
    }
}

/// A progress bar over `total` bytes (hidden when `show` is false), and the callback that
/// advances it.
pub fn bytes_bar(total: u64, show: bool, what: &str) -> (ProgressBar, ProgressFn) {
    let bar = if show {
        ProgressBar::new(total)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    let b = bar.clone();
    (bar, Arc::new(move |n| b.inc(n)))
}

/// Some entries were left out, each already named on standard error; the rest was done.
/// Exit code 8.
#[derive(Debug)]
pub struct PartlySkipped(pub usize);

impl std::fmt::Display for PartlySkipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} entr{} skipped (named above); the rest was done",
            self.0,
            if self.0 == 1 { "y" } else { "ies" }
        )
    }
}

impl std::error::Error for PartlySkipped {}

/// Names each skipped entry on standard error (escaped); returns how many.
pub fn report_skipped(skipped: &[strata_store::Skipped]) -> usize {
    for s in skipped {
        eprintln!("strata: warning: skipped {s}");
    }
    skipped.len()
}
