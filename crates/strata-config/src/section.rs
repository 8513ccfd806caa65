//! A section of the settings, owned by the crate it configures.

use serde::de::DeserializeOwned;

use crate::env::Env;
use crate::error::ConfigError;
use crate::overlay::Overlay;

/// The tables a config file may hold, and the crate that owns each: `s3`, `transfer`,
/// `retry` and `limits` (strata-store), `cache` (strata-cache), `ckpt` (strata-ckpt),
/// `daemon` (strata-daemon). A file with any other table is refused, whichever program reads
/// it, so a typo in a section's name is never silently ignored.
pub const SECTIONS: &[&str] = &[
    "s3", "transfer", "retry", "limits", "cache", "ckpt", "daemon",
];

/// One table of settings: what it may hold, where the environment sets it, and how it is
/// validated. Implemented by the crate the section configures, next to its code.
pub trait Section: Sized {
    /// The table's name in the config file; one of [`SECTIONS`].
    const NAME: &'static str;

    /// The section as a source gives it: every field optional, and
    /// `#[serde(deny_unknown_fields)]` so that a misspelt key is an error.
    type Layer: DeserializeOwned + Default + Clone + Overlay + Send + Sync + 'static;

    /// The layer the environment sets. Default: nothing.
    fn from_env(env: &Env) -> Result<Self::Layer, ConfigError> {
        let _ = env;
        Ok(Self::Layer::default())
    }

    /// Validates a merged layer, filling the defaults. Errors name the setting
    /// (`NAME.field`).
    fn resolve(layer: &Self::Layer) -> Result<Self, ConfigError>;
}
