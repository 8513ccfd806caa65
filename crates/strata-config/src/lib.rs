//! # strata-config
//!
//! Where Strata's settings come from, and in which order: built-in defaults, a TOML file, the
//! environment, and command-line flags (or a Python call's arguments), each overriding the one
//! before. This crate owns that order and the file; it knows no crate's settings. Each crate
//! owns its sections (`[s3]`, `[transfer]`, `[retry]`, `[limits]` in `strata-store`, `[cache]`
//! in `strata-cache`, `[ckpt]` in `strata-ckpt`, `[daemon]` in `strata-daemon`): a
//! [`Section`] says what its table may hold (a *layer*, every field optional), which
//! environment variables set it, and how a merged layer is validated into typed settings with
//! their defaults. So a new setting touches its own crate and nothing else.
//!
//! The CLI, the daemon and the Python package all build settings the same way:
//!
//! ```
//! use serde::Deserialize;
//! use strata_config::{ConfigError, Env, Overlay, Section, Sources, overlay_fields};
//!
//! /// `[cache]` as written: every field optional, unknown keys refused.
//! #[derive(Debug, Clone, Default, Deserialize)]
//! #[serde(default, deny_unknown_fields)]
//! struct CacheLayer {
//!     dir: Option<String>,
//! }
//! overlay_fields!(CacheLayer { dir });
//!
//! /// The validated section.
//! struct Cache {
//!     dir: String,
//! }
//!
//! impl Section for Cache {
//!     const NAME: &'static str = "cache";
//!     type Layer = CacheLayer;
//!     fn from_env(env: &Env) -> Result<CacheLayer, ConfigError> {
//!         Ok(CacheLayer { dir: env.get("STRATA_CACHE_DIR") })
//!     }
//!     fn resolve(l: &CacheLayer) -> Result<Self, ConfigError> {
//!         Ok(Cache { dir: l.dir.clone().unwrap_or_else(|| "/var/cache/strata".into()) })
//!     }
//! }
//!
//! # fn main() -> Result<(), ConfigError> {
//! let env = Env::from_pairs(&[("STRATA_CACHE_DIR", "/nvme/strata")]);
//! let mut sources = Sources::load(None, env)?;
//! assert_eq!(sources.get::<Cache>()?.dir, "/nvme/strata");
//! // A flag wins over the environment.
//! sources.set_flags::<Cache>(CacheLayer { dir: Some("/tmp/c".into()) });
//! assert_eq!(sources.get::<Cache>()?.dir, "/tmp/c");
//! # Ok(()) }
//! ```
//!
//! ## The file
//!
//! The one named by `--config` (or the Python call), else `$STRATA_CONFIG`, else
//! `$XDG_CONFIG_HOME/strata/config.toml` (or `~/.config/strata/config.toml`) when it exists.
//! A named file that is missing is an error; the default one may be absent. A table that is
//! not one of [`SECTIONS`] is refused when the file loads, and a key a section does not know
//! is refused when that section is read; both errors name the file, the key and its line.

pub mod env;
pub mod error;
pub mod overlay;
pub mod secret;
pub mod section;
pub mod sources;
pub mod value;

pub use env::Env;
pub use error::ConfigError;
pub use overlay::Overlay;
pub use secret::Secret;
pub use section::{SECTIONS, Section};
pub use sources::Sources;
pub use value::{DurationValue, SizeValue, choice};
