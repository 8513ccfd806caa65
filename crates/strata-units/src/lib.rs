//! # strata-units
//!
//! Quantities as people write them in flags, config files and scenarios, and as people read
//! them in reports: sizes (`8MiB`, `350 GB`), rates (`25 Gbps`, `500 MiB/s`) and durations
//! (`500ms`, `10m`, `5 y`). One place for the rules, so that a size means the same in
//! `--part-size`, in `[cache] nvme_size` and in a planner scenario.
//!
//! Binary units (`KiB`, `MiB`, `GiB`, `TiB` and the short forms `K`, `M`, `G`, `T`) are powers
//! of 1024; decimal units (`KB`, `MB`, `GB`, `TB`) are powers of 1000; rates in bits (`Gbps`,
//! `Gbit/s`) are decimal. Every parser returns a [`UnitError`] that quotes the text and says
//! what was expected.
//!
//! ```
//! use strata_units::{parse_duration, parse_rate, parse_size};
//! assert_eq!(parse_size("8MiB").unwrap(), 8 << 20);
//! assert_eq!(parse_rate("8 Gbps").unwrap(), 1e9);
//! assert_eq!(parse_duration("1.5h").unwrap().as_secs(), 5400);
//! ```

pub mod duration;
pub mod error;
pub mod format;
pub mod quantity;
pub mod rate;
pub mod size;

pub use duration::{parse_duration, parse_secs};
pub use error::UnitError;
pub use format::format_size;
pub use quantity::Quantity;
pub use rate::parse_rate;
pub use size::{parse_size, parse_size_f64};
