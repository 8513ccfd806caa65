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
