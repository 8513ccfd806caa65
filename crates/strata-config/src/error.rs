//! Why settings could not be loaded.

use std::path::PathBuf;

/// Settings that could not be loaded or are not valid. Every message names the file or the
/// setting (`transfer.part_size`, `$STRATA_CONCURRENCY`, `--bucket`) and the cause; none
/// carries a secret's value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML, or a section holds a key or value it does not take.
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the line and the key.
        message: String,
    },
    /// The config file has a table no crate reads.
    #[error("{}: unknown section [{name}] (the sections are {})", path.display(), crate::SECTIONS.join(", "))]
    UnknownSection {
        /// The file.
        path: PathBuf,
        /// The table's name.
        name: String,
    },
    /// An environment variable holds a value of the wrong kind.
    #[error("${var}={value:?} is not {expected}")]
    Env {
        /// The variable.
        var: String,
        /// Its value (never a secret's: those are taken as they are).
        value: String,
        /// What it should be, e.g. `a whole number`.
        expected: &'static str,
    },
    /// A setting's value is not valid.
    #[error("{setting}: {reason}")]
    Invalid {
        /// The setting, e.g. `transfer.part_size` or `--bucket`.
        setting: String,
        /// Why, and what would be valid.
        reason: String,
    },
}

impl ConfigError {
    /// A setting's value is not valid.
    pub fn invalid(setting: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            setting: setting.into(),
            reason: reason.into(),
        }
    }
}
