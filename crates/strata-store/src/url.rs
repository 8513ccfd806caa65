//! Storage URLs: `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`,
//! `file:///abs/path` or a plain path, and `memory://name/prefix`.
//!
//! A URL splits into a *location* (scheme and bucket: what one backend client serves) and a
//! *key* inside it. Local paths are made absolute and normalised lexically, so `./a/../b`
//! names `$PWD/b`; the key of a local path is the absolute path without its leading `/`.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::error::{Result, StoreError};

/// The kind of backend a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Amazon S3 and S3-compatible stores (`s3://`).
    S3,
    /// Google Cloud Storage (`gs://`, `gcs://`).
    Gcs,
    /// Azure Blob Storage (`az://`, `azure://`, `abfs://`).
    Azure,
    /// The local file system (`file://` or a plain path).
    File,
    /// A process-local in-memory store (`memory://name`), for tests and demos.
    Memory,
}

impl Scheme {
    /// The canonical URL prefix, such as `s3://`.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::S3 => "s3://",
            Self::Gcs => "gs://",
            Self::Azure => "az://",
            Self::File => "file://",
            Self::Memory => "memory://",
        }
    }

    /// True for backends reached over the network.
    pub fn is_remote(self) -> bool {
        matches!(self, Self::S3 | Self::Gcs | Self::Azure)
    }
}

/// A parsed storage URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoreUrl {
    scheme: Scheme,
    /// The bucket or container; empty for `file://`; the store name for `memory://`.
    bucket: String,
    /// The key inside the bucket, without leading or trailing `/`; may be empty.
    key: String,
    /// Whether the URL ended with `/`, which marks a prefix ("directory").
    trailing_slash: bool,
}

/// Schemes Strata reads (and `http`, which a mistyped endpoint carries).
const KNOWN_SCHEMES: &[&str] = &[
    "s3", "s3a", "gs", "gcs", "az", "azure", "abfs", "abfss", "memory", "mem", "file", "http",
    "https",
];

impl StoreUrl {
    /// Parses a URL or a local path.
    ///
    /// Errors name the URL and what is wrong with it: an unknown scheme, a missing bucket, a
    /// key segment that is `.` or `..`, or a control character.
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason: &str| StoreError::InvalidUrl {
            url: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(bad("empty URL"));
        }
        if input.chars().any(|c| c.is_control()) {
            return Err(bad("contains a control character"));
        }
        let Some((scheme_str, rest)) = input.split_once("://") else {
            // `s3:/x` or `gs:bucket` is a mistyped URL, not a local file named so.
            if let Some((scheme, _)) = input.split_once(':')
                && KNOWN_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str())
            {
                return Err(bad(&format!(
                    "{scheme}: without //; a URL is {scheme}://bucket/key (for a local file whose name starts so, write ./{input})"
                )));
            }
            return Self::from_local_path(Path::new(input), input.ends_with('/'));
        };
        let scheme = match scheme_str.to_ascii_lowercase().as_str() {
            "s3" | "s3a" => Scheme::S3,
            "gs" | "gcs" => Scheme::Gcs,
            "az" | "azure" | "abfs" | "abfss" => Scheme::Azure,
            "memory" | "mem" => Scheme::Memory,
            "file" => {
                if !rest.starts_with('/') {
                    return Err(bad("file URLs need an absolute path: file:///abs/path"));
                }
                return Self::from_local_path(Path::new(rest), rest.ends_with('/'));
            }
            other => {
                return Err(bad(&format!(
                    "unsupported scheme {other:?}; use s3://, gs://, az://, file:// or memory://"
                )));
            }
        };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("missing bucket name"));
        }
        if scheme != Scheme::Memory && !valid_bucket(bucket) {
            return Err(bad(&format!(
                "{bucket:?} is not a valid bucket name (letters, digits, '-', '.', '_')"
            )));
        }
        let trailing_slash = key.ends_with('/');
        let key = normalise_key(key)
            .map_err(|seg| bad(&format!("key segment {seg:?} is not allowed")))?;
        Ok(Self {
            scheme,
            bucket: bucket.to_string(),
            key,
            trailing_slash,
        })
    }

    /// Builds a `file://` URL from a local path, made absolute against the current directory.
    pub fn from_local_path(path: &Path, trailing_slash: bool) -> Result<Self> {
        let abs = absolute_lexical(path).map_err(|e| StoreError::InvalidUrl {
            url: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let text = abs.to_str().ok_or_else(|| StoreError::InvalidUrl {
            url: path.display().to_string(),
            reason: "path is not valid UTF-8".into(),
        })?;
        Ok(Self {
            scheme: Scheme::File,
            bucket: String::new(),
            key: text.trim_start_matches('/').to_string(),
            trailing_slash,
        })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The bucket, container or memory store name; empty for local files.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key inside the bucket (no leading or trailing `/`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// True when the URL ended in `/` or names the bucket root.
    pub fn is_prefix_syntax(&self) -> bool {
        self.trailing_slash || self.key.is_empty()
    }

    /// The local file system path, for `file://` URLs.
    pub fn local_path(&self) -> Option<PathBuf> {
        (self.scheme == Scheme::File).then(|| PathBuf::from(format!("/{}", self.key)))
    }

    /// A URL in the same bucket with another key.
    pub fn with_key(&self, key: &str) -> Self {
        Self {
            scheme: self.scheme,
            bucket: self.bucket.clone(),
            key: key.trim_matches('/').to_string(),
            trailing_slash: false,
        }
    }

    /// A URL for `rel` under this URL's key, treating the key as a directory.
    pub fn join(&self, rel: &str) -> Result<Self> {
        let rel = safe_relative_key(rel)?;
        let key = if self.key.is_empty() {
            rel
        } else {
            format!("{}/{}", self.key, rel)
        };
        Ok(self.with_key(&key))
    }

    /// The last segment of the key, if any.
    pub fn file_name(&self) -> Option<&str> {
        self.key.rsplit('/').next().filter(|s| !s.is_empty())
    }

    /// A string that identifies the backend client this URL needs (scheme and bucket).
    pub fn location_id(&self) -> String {
        format!("{}{}", self.scheme.prefix(), self.bucket)
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scheme {
            Scheme::File => write!(f, "file:///{}", self.key)?,
            _ => {
                write!(f, "{}{}", self.scheme.prefix(), self.bucket)?;
                if !self.key.is_empty() {
                    write!(f, "/{}", self.key)?;
                }
            }
        }
        if self.trailing_slash && !self.key.is_empty() {
            f.write_str("/")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for StoreUrl {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

fn valid_bucket(b: &str) -> bool {
    b.len() <= 255
        && b.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// Collapses repeated slashes in a remote key; `Err` holds a `.` or `..` segment, which no
/// key may have.
fn normalise_key(key: &str) -> std::result::Result<String, &str> {
    let mut out = Vec::new();
    for seg in key.split('/') {
        match seg {
            "" => continue,
            "." | ".." => return Err(seg),
            s => out.push(s),
        }
    }
    Ok(out.join("/"))
}

/// Checks a key that will be placed under a directory or prefix (for example one returned by
/// a listing, written into a local directory by `cp -r`). Hostile keys such as `../../x`,
/// absolute paths, and keys with control characters (NUL, newline) are refused.
pub fn safe_relative_key(rel: &str) -> Result<String> {
    let bad = |reason: &str| StoreError::InvalidKey {
        key: rel.to_string(),
        reason: reason.to_string(),
    };
    if rel.is_empty() {
        return Err(bad("empty key"));
    }
    if rel.starts_with('/') {
        return Err(bad("absolute key"));
    }
    // A backslash is an ordinary character in Linux file names (this reads no Windows
    // paths); control characters are refused.
    if rel.chars().any(|c| c.is_control()) {
        return Err(bad("contains a control character"));
    }
    let mut out = Vec::new();
    for seg in rel.split('/') {
        match seg {
            "" => continue,
            "." | ".." => {
                return Err(bad(
                    "contains a '.' or '..' segment, which could escape the destination",
                ));
            }
            s => out.push(s),
        }
    }
    if out.is_empty() {
        return Err(bad("empty key"));
    }
    Ok(out.join("/"))
}

/// Makes a path absolute against the current directory and resolves `.` and `..` lexically,
/// without touching the file system (the path may not exist yet).
fn absolute_lexical(path: &Path) -> std::io::Result<PathBuf> {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(s) => out.push(s),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_remote_urls() {
        let u = StoreUrl::parse("s3://bucket/a/b/c.bin").unwrap();
        assert_eq!(u.scheme(), Scheme::S3);
        assert_eq!(u.bucket(), "bucket");
        assert_eq!(u.key(), "a/b/c.bin");
        assert!(!u.is_prefix_syntax());
        assert_eq!(u.to_string(), "s3://bucket/a/b/c.bin");
        let u = StoreUrl::parse("gs://b/p/").unwrap();
        assert!(u.is_prefix_syntax());
        assert_eq!(u.to_string(), "gs://b/p/");
        assert_eq!(StoreUrl::parse("az://c").unwrap().key(), "");
        assert_eq!(
            StoreUrl::parse("memory://t/x").unwrap().scheme(),
            Scheme::Memory
        );
    }

    #[test]
    fn parses_local_paths() {
        let u = StoreUrl::parse("file:///tmp/x/../y").unwrap();
        assert_eq!(u.local_path().unwrap(), PathBuf::from("/tmp/y"));
        let u = StoreUrl::parse("/var/data/").unwrap();
        assert_eq!(u.scheme(), Scheme::File);
        assert_eq!(u.key(), "var/data");
        assert!(u.is_prefix_syntax());
        let rel = StoreUrl::parse("some/file").unwrap();
        assert!(rel.local_path().unwrap().is_absolute());
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "",
            "ftp://x/y",
            "s3://",
            "s3:///key",
            "s3://b/../x",
            "s3://b/./x",
            "s3://bad bucket/x",
            "file://relative",
            "s3://b/\u{0}",
        ] {
            let err = StoreUrl::parse(bad).unwrap_err();
            assert!(matches!(err, StoreError::InvalidUrl { .. }), "{bad}: {err}");
            assert!(err.to_string().contains("invalid URL"), "{err}");
        }
    }

    #[test]
    fn a_scheme_without_slashes_is_a_mistyped_url() {
        for bad in ["s3:/x", "S3:bucket/k", "gs:/b", "file:/etc", "https:host"] {
            let err = StoreUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains("without //"), "{bad}: {err}");
        }
        // Not a scheme Strata knows: a local name with a colon.
        assert_eq!(StoreUrl::parse("c:/x").unwrap().scheme(), Scheme::File);
        assert_eq!(StoreUrl::parse("./s3:/x").unwrap().scheme(), Scheme::File);
    }

    #[test]
    fn hostile_relative_keys_are_refused() {
        for k in [
            "../../x",
            "a/../../b",
            "/etc/passwd",
            "",
            "./",
            "a/\u{1}",
            "new\nline",
        ] {
            assert!(safe_relative_key(k).is_err(), "{k:?} accepted");
        }
        // On Linux a backslash is part of a name, not a separator: `a\..\b` is one file.
        assert_eq!(safe_relative_key("a\\..\\b").unwrap(), "a\\..\\b");
        assert_eq!(safe_relative_key("a//b/c").unwrap(), "a/b/c");
        let base = StoreUrl::parse("s3://b/p/").unwrap();
        assert_eq!(base.join("x/y").unwrap().to_string(), "s3://b/p/x/y");
        assert!(base.join("../z").is_err());
    }
}
