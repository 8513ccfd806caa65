//! The sources of settings and their order: defaults < file < environment < flags.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::env::Env;
use crate::error::ConfigError;
use crate::overlay::Overlay;
use crate::section::{SECTIONS, Section};

/// Everything settings are made from: the config file's text, the environment and the flags
/// of each section. Reading a section ([`Sources::get`]) merges its layers in order and
/// validates the result. Cheap to clone.
#[derive(Clone)]
pub struct Sources {
    file: Option<(PathBuf, Arc<str>)>,
    env: Env,
    flags: HashMap<&'static str, Arc<dyn Any + Send + Sync>>,
}

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sources")
            .field("file", &self.file.as_ref().map(|(p, _)| p))
            .field("flags", &self.flags.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Sources {
    /// Only the built-in defaults: no file, no environment, no flags.
    pub fn defaults() -> Self {
        Self {
            file: None,
            env: Env::from_pairs(&[]),
            flags: HashMap::new(),
        }
    }

    /// The file `file` names, else `$STRATA_CONFIG`, else the default path when it exists (see
    /// the crate documentation), and the environment `env`. The file is parsed here, and a
    /// table that is not one of [`SECTIONS`] is refused.
    pub fn load(file: Option<&Path>, env: Env) -> Result<Self, ConfigError> {
        let named = file
            .map(Path::to_path_buf)
            .or_else(|| env.get("STRATA_CONFIG").map(PathBuf::from));
        let path = match named {
            Some(p) => Some(p),
            None => default_path(&env).filter(|p| p.is_file()),
        };
        let file = match path {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                check_sections(&path, &text)?;
                Some((path, Arc::from(text)))
            }
        };
        Ok(Self {
            file,
            env,
            flags: HashMap::new(),
        })
    }

    /// The config file read, if any.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|(p, _)| p.as_path())
    }

    /// The environment.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// Sets the flags of section `S`, over any set before: the highest layer.
    pub fn set_flags<S: Section>(&mut self, flags: S::Layer) -> &mut Self {
        let mut merged = self.flags_of::<S>();
        merged.overlay(&flags);
        self.flags.insert(S::NAME, Arc::new(merged));
        self
    }

    /// The flags of section `S` set so far.
    pub fn flags_of<S: Section>(&self) -> S::Layer {
        self.flags
            .get(S::NAME)
            .and_then(|a| a.downcast_ref::<S::Layer>())
            .cloned()
            .unwrap_or_default()
    }

    /// Section `S` as the file gives it (all unset without a file or a table).
    pub fn file_layer<S: Section>(&self) -> Result<S::Layer, ConfigError> {
        let Some((path, text)) = &self.file else {
            return Ok(S::Layer::default());
        };
        let parse = |e: toml::de::Error| parse_error(path, text, &e);
        let de = toml::Deserializer::parse(text).map_err(parse)?;
        let layer = SectionSeed::<S::Layer>(S::NAME, PhantomData)
            .deserialize(de)
            .map_err(parse)?;
        Ok(layer.unwrap_or_default())
    }

    /// Section `S` merged: the file, then the environment, then the flags.
    pub fn layer<S: Section>(&self) -> Result<S::Layer, ConfigError> {
        debug_assert!(
            SECTIONS.contains(&S::NAME),
            "{} is not in SECTIONS",
            S::NAME
        );
        let mut layer = self.file_layer::<S>()?;
        layer.overlay(&S::from_env(&self.env)?);
        layer.overlay(&self.flags_of::<S>());
        Ok(layer)
    }

    /// Section `S`, merged and validated.
    pub fn get<S: Section>(&self) -> Result<S, ConfigError> {
        S::resolve(&self.layer::<S>()?)
    }
}

/// `$XDG_CONFIG_HOME/strata/config.toml`, else `~/.config/strata/config.toml`.
fn default_path(env: &Env) -> Option<PathBuf> {
    if let Some(x) = env.get("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(x).join("strata/config.toml"));
    }
    env.get("HOME")
        .map(|h| PathBuf::from(h).join(".config/strata/config.toml"))
}

/// Parses the whole file (so a syntax error is reported at load, with its line) and refuses
/// tables no crate reads.
fn check_sections(path: &Path, text: &str) -> Result<(), ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| parse_error(path, text, &e))?;
    match table.keys().find(|k| !SECTIONS.contains(&k.as_str())) {
        Some(name) => Err(ConfigError::UnknownSection {
            path: path.to_path_buf(),
            name: name.clone(),
        }),
        None => Ok(()),
    }
}

/// A parse error that names the line and column but never quotes the file: the line may hold
/// a secret (`secret_access_key = "…` unterminated, a token of the wrong type), and the
/// parser's own message would print it. Values in serde's "invalid type" and "invalid
/// value" messages are cut to their kind for the same reason.
fn parse_error(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let at = match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: ")
        }
        None => String::new(),
    };
    ConfigError::Parse {
        path: path.to_path_buf(),
        message: format!("{at}{}", scrub(e.message().trim())),
    }
}

/// `invalid type: string "hunter2", expected a boolean` → `invalid type: string, expected a
/// boolean`: the kind of the value stays, the value goes.
fn scrub(message: &str) -> String {
    for lead in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(lead) {
            let kind = rest.split([' ', ',']).next().unwrap_or("");
            let expected = rest.find(", expected").map_or("", |i| &rest[i..]);
            return format!("{lead}{kind}{expected}");
        }
    }
    message.to_string()
}

/// Deserializes one table of the document, skipping the others; errors keep the line of the
/// offending key.
struct SectionSeed<L>(&'static str, PhantomData<L>);

impl<'de, L: DeserializeOwned> DeserializeSeed<'de> for SectionSeed<L> {
    type Value = Option<L>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<L>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, L: DeserializeOwned> Visitor<'de> for SectionSeed<L> {
    type Value = Option<L>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML document of tables")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<L>, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == self.0 {
                found = Some(map.next_value::<L>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct TLayer {
        part_size: Option<crate::SizeValue>,
        concurrency: Option<usize>,
    }
    crate::overlay_fields!(TLayer {
        part_size,
        concurrency
    });

    #[derive(Debug)]
    struct Transfer {
        part_size: u64,
        concurrency: usize,
    }

    impl Section for Transfer {
        const NAME: &'static str = "transfer";
        type Layer = TLayer;
        fn from_env(env: &Env) -> Result<TLayer, ConfigError> {
            Ok(TLayer {
                part_size: env.get("T_PART").map(crate::SizeValue::Text),
                concurrency: env.parse("T_CONC", "a whole number")?,
            })
        }
        fn resolve(l: &TLayer) -> Result<Self, ConfigError> {
            Ok(Transfer {
                part_size: crate::SizeValue::or(&l.part_size, "transfer.part_size", 8 << 20)?,
                concurrency: l.concurrency.unwrap_or(16),
            })
        }
    }

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, text).unwrap();
        (dir, f)
    }

    #[test]
    fn defaults_file_env_flags_in_order() {
        let (_d, f) = file("[transfer]\npart_size = '16MiB'\nconcurrency = 4\n[daemon]\nx = 1\n");
        let env = Env::from_pairs(&[("T_CONC", "8")]);
        let mut s = Sources::load(Some(&f), env).unwrap();
        let t = s.get::<Transfer>().unwrap();
        assert_eq!((t.part_size, t.concurrency), (16 << 20, 8));
        s.set_flags::<Transfer>(TLayer {
            concurrency: Some(32),
            ..Default::default()
        });
        let t = s.get::<Transfer>().unwrap();
        assert_eq!((t.part_size, t.concurrency), (16 << 20, 32));
        let d = Sources::defaults().get::<Transfer>().unwrap();
        assert_eq!((d.part_size, d.concurrency), (8 << 20, 16));
    }

    #[test]
    fn unknown_keys_and_sections_are_named_with_the_file() {
        let (_d, f) = file("[transfer]\npart_sise = 3\n");
        let s = Sources::load(Some(&f), Env::from_pairs(&[])).unwrap();
        let e = s.get::<Transfer>().unwrap_err().to_string();
        assert!(
            e.contains("part_sise") && e.contains("c.toml") && e.contains("line 2"),
            "{e}"
        );

        let (_d, f) = file("[transfre]\npart_size = 3\n");
        let e = Sources::load(Some(&f), Env::from_pairs(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[transfre]") && e.contains("c.toml"), "{e}");

        let (_d, f) = file("[transfer\n");
        let e = Sources::load(Some(&f), Env::from_pairs(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("c.toml") && e.contains("line 1"), "{e}");

        let e = Sources::load(
            Some(Path::new("/nonexistent/nope.toml")),
            Env::from_pairs(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("nope.toml"), "{e}");

        let e = Sources::load(None, Env::from_pairs(&[("T_CONC", "many")]))
            .unwrap()
            .get::<Transfer>()
            .unwrap_err()
            .to_string();
        assert_eq!(e, "$T_CONC=\"many\" is not a whole number");
    }

    #[test]
    fn a_parse_error_names_the_line_but_never_prints_a_value() {
        for (text, line) in [
            ("[transfer]\nconcurrency = \"hunter2-secret\n", 2),
            ("[transfer]\n\nconcurrency = 7hunter2secret\n", 3),
            ("[transfer]\nconcurrency = \"hunter2-secret\"\n", 2),
            ("[transfer]\npart_size = true\nconcurrency = -1\n", 3),
        ] {
            let (_d, f) = file(text);
            let e = match Sources::load(Some(&f), Env::from_pairs(&[])) {
                Err(e) => e,
                Ok(s) => s.get::<Transfer>().unwrap_err(),
            }
            .to_string();
            assert!(!e.contains("hunter2"), "{text:?}: {e}");
            assert!(
                e.contains(&format!("line {line}")) && e.contains("c.toml"),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn the_file_comes_from_strata_config_or_the_default_path() {
        let (d, f) = file("[transfer]\nconcurrency = 3\n");
        let env = Env::from_pairs(&[("STRATA_CONFIG", f.to_str().unwrap())]);
        let s = Sources::load(None, env).unwrap();
        assert_eq!(s.path(), Some(f.as_path()));
        assert_eq!(s.get::<Transfer>().unwrap().concurrency, 3);

        std::fs::create_dir_all(d.path().join("strata")).unwrap();
        std::fs::rename(&f, d.path().join("strata/config.toml")).unwrap();
        let env = Env::from_pairs(&[("XDG_CONFIG_HOME", d.path().to_str().unwrap())]);
        assert_eq!(
            Sources::load(None, env)
                .unwrap()
                .get::<Transfer>()
                .unwrap()
                .concurrency,
            3
        );

        // A missing default file is no error.
        let env = Env::from_pairs(&[("HOME", "/nonexistent")]);
        assert!(Sources::load(None, env).unwrap().path().is_none());
    }
}
