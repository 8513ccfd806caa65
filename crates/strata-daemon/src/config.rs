//! The daemon's settings: the `[daemon]` section of the config file, then the environment,
//! then the flags, merged and validated once in [`DaemonConfig::resolve`].
//!
//! ```toml
//! [daemon]
//! listen = "127.0.0.1:7420"        # $STRATA_LISTEN, --listen
//! socket = "/run/strata/strata.sock" # $STRATA_SOCKET, --socket (a Unix socket, beside TCP)
//! token_file = "/etc/strata/token"   # $STRATA_TOKEN_FILE; or $STRATA_TOKEN
//! metadata_ttl = "1s"                # how long a HEAD answer is trusted
//! response_memory = "512MiB"         # bytes held by responses being sent, over all clients
//!
//! local_roots = ["/data"]           # --local-root: local files clients may read (default none)
//!
//! [daemon.buckets]                   # the S3-compatible endpoint's buckets (--bucket NAME=URL)
//! train = "s3://my-real-bucket/datasets/imagenet"
//! ```
//!
//! The cache itself (`[cache]`: directory, NVMe and DRAM sizes, block size) and the upstream
//! store's endpoint and credentials are the ordinary settings every command reads.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use strata_store::StoreUrl;
use strata_store::config::{Secret, StoreConfig};

/// Why the settings are not usable. Each message names the setting.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct ConfigError {
    pub setting: String,
    pub reason: String,
}

fn bad(setting: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.to_string(),
        reason: reason.into(),
    }
}

/// `[daemon]` as written in the config file; every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonLayer {
    pub listen: Option<String>,
    pub socket: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<String>,
    pub metadata_ttl: Option<String>,
    pub response_memory: Option<String>,
    pub local_roots: Vec<String>,
    pub buckets: BTreeMap<String, String>,
}

/// The flags of `strata serve` (each overrides the file and the environment).
#[derive(Debug, Clone, Default)]
pub struct DaemonFlags {
    pub listen: Option<String>,
    pub socket: Option<PathBuf>,
    /// `NAME=URL`, repeatable.
    pub buckets: Vec<String>,
    /// `--local-root DIR`, repeatable (added to the file's).
    pub local_roots: Vec<PathBuf>,
}

/// The port `strata serve` listens on by default.
pub const DEFAULT_PORT: u16 = 7420;

/// The validated settings of a daemon.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// TCP address. Default: 127.0.0.1:7420. An address that is not loopback requires a
    /// token.
    pub listen: SocketAddr,
    /// A Unix socket to serve too (mode 0660), for pods that share it. Default: none.
    pub socket: Option<PathBuf>,
    /// The bearer token every request must carry; required off loopback. Default: none.
    pub token: Option<Secret>,
    /// How long a HEAD answer (size and ETag) is trusted before the object is asked again.
    /// Data is always read pinned to the ETag, so a change is never mixed into old bytes.
    /// Default: 1 s.
    pub metadata_ttl: Duration,
    /// Bytes held by response bodies being sent, over all clients. Default: 512 MiB.
    pub response_memory: u64,
    /// Buckets of the S3-compatible endpoint: name → upstream URL (a bucket or a prefix).
    pub buckets: BTreeMap<String, StoreUrl>,
    /// Directories (resolved, symlinks followed) under which local clients may read local
    /// files (`file://` URLs and paths) through `/v1`. Default: none, so the daemon reads
    /// only object stores for its clients and never hands a client a file that the daemon's
    /// user may read and the client may not. The S3 endpoint's buckets are set by whoever
    /// runs the daemon and are served wherever they point.
    pub local_roots: Vec<PathBuf>,
    /// The store and cache settings (upstream endpoint, credentials, cache directory).
    pub store: StoreConfig,
}

/// Parses a duration such as `500ms`, `1s`, `2m`.
fn duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len()));
    let v: f64 = num.trim().parse().ok()?;
    let secs = match unit.trim() {
        "ms" => v / 1000.0,
        "" | "s" => v,
        "m" => v * 60.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

impl DaemonConfig {
    /// Merges `store.daemon` (the file's `[daemon]`), the environment (`get`) and `flags`,
    /// and validates the result.
    pub fn resolve(
        store: StoreConfig,
        get: &dyn Fn(&str) -> Option<String>,
        flags: &DaemonFlags,
    ) -> Result<Self, ConfigError> {
        let file: DaemonLayer = toml::Value::Table(store.daemon.clone())
            .try_into()
            .map_err(|e: toml::de::Error| bad("daemon", e.to_string().trim().to_string()))?;
        let env = |k: &str| get(k).filter(|v| !v.is_empty());
        let listen_text = flags
            .listen
            .clone()
            .or_else(|| env("STRATA_LISTEN"))
            .or(file.listen.clone())
            .unwrap_or_else(|| format!("127.0.0.1:{DEFAULT_PORT}"));
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            bad(
                "daemon.listen",
                format!("{listen_text:?} is not an address such as 127.0.0.1:{DEFAULT_PORT}"),
            )
        })?;
        let socket = flags
            .socket
            .clone()
            .or_else(|| env("STRATA_SOCKET").map(PathBuf::from))
            .or(file.socket.as_ref().map(PathBuf::from));
        let token_file = env("STRATA_TOKEN_FILE").or(file.token_file.clone());
        let token = match (env("STRATA_TOKEN"), token_file, file.token.clone()) {
            (Some(t), _, _) => Some(t),
            (None, Some(path), _) => Some(
                std::fs::read_to_string(&path)
                    .map_err(|e| bad("daemon.token_file", format!("cannot read {path}: {e}")))?
                    .trim()
                    .to_string(),
            ),
            (None, None, t) => t,
        };
        if let Some(t) = &token
            && t.len() < 16
        {
            return Err(bad(
                "daemon.token",
                "must be at least 16 characters (for example: openssl rand -hex 16)",
            ));
        }
        if !listen.ip().is_loopback() && token.is_none() {
            return Err(bad(
                "daemon.listen",
                format!(
                    "{listen} is not a loopback address, so every request must carry a token: \
                     set $STRATA_TOKEN or daemon.token_file"
                ),
            ));
        }
        let metadata_ttl = match file.metadata_ttl.as_deref() {
            None => Duration::from_secs(1),
            Some(t) => duration(t).ok_or_else(|| {
                bad(
                    "daemon.metadata_ttl",
                    format!("{t:?} is not a duration such as 1s"),
                )
            })?,
        };
        let response_memory = match file.response_memory.as_deref() {
            None => 512 << 20,
            Some(t) => strata_store::size::parse_size(t)
                .map_err(|e| bad("daemon.response_memory", e.to_string()))?,
        };
        if response_memory < store.cache.block_size {
            return Err(bad(
                "daemon.response_memory",
                format!(
                    "must hold at least one block ({} bytes)",
                    store.cache.block_size
                ),
            ));
        }
        let mut buckets = BTreeMap::new();
        let pairs = file
            .buckets
            .iter()
            .map(|(k, v)| (k.clone(), v.clone(), "daemon.buckets"));
        let flagged = flags.buckets.iter().map(|b| match b.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string(), "--bucket")),
            None => Err(bad("--bucket", format!("{b:?} is not NAME=URL"))),
        });
        for item in pairs.map(Ok).chain(flagged) {
            let (name, url, setting) = item?;
            if !valid_bucket_name(&name) {
                return Err(bad(
                    setting,
                    format!("{name:?} is not a bucket name (3–63 of a-z, 0-9, '-', '.')"),
                ));
            }
            if crate::s3::RESERVED.contains(&name.as_str()) {
                return Err(bad(
                    setting,
                    format!("{name:?} is one of the daemon's own paths; choose another name"),
                ));
            }
            let u = StoreUrl::parse(&url).map_err(|e| bad(setting, format!("{name}: {e}")))?;
            buckets.insert(name, u);
        }
        let roots = file
            .local_roots
            .iter()
            .map(|r| (PathBuf::from(r), "daemon.local_roots"))
            .chain(
                flags
                    .local_roots
                    .iter()
                    .map(|r| (r.clone(), "--local-root")),
            );
        let mut local_roots = Vec::new();
        for (root, setting) in roots {
            let dir = std::fs::canonicalize(&root)
                .map_err(|e| bad(setting, format!("{}: {e}", root.display())))?;
            if !dir.is_dir() {
                return Err(bad(
                    setting,
                    format!("{} is not a directory", root.display()),
                ));
            }
            local_roots.push(dir);
        }
        Ok(Self {
            listen,
            socket,
            token: token.map(Secret::new),
            metadata_ttl,
            response_memory,
            buckets,
            local_roots,
            store,
        })
    }

    /// Whether a local client may read `url` through `/v1`: any object store; a local file
    /// only under one of [`DaemonConfig::local_roots`], judged after following symlinks (of
    /// the deepest part of the path that exists), so a link cannot lead out of a root.
    pub fn admits(&self, url: &StoreUrl) -> bool {
        let Some(path) = url.local_path() else {
            return true;
        };
        // The URL is normalised lexically (no `..`); resolve what exists of it on disk.
        let mut existing = path.as_path();
        let mut rest = Vec::new();
        let real = loop {
            match std::fs::canonicalize(existing) {
                Ok(p) => break p,
                Err(_) => match (existing.parent(), existing.file_name()) {
                    (Some(parent), Some(name)) => {
                        rest.push(name.to_os_string());
                        existing = parent;
                    }
                    _ => return false,
                },
            }
        };
        let full = rest.iter().rev().fold(real, |p, n| p.join(n));
        self.local_roots.iter().any(|r| full.starts_with(r))
    }

    /// Bytes the daemon may hold at once by construction: the DRAM tier, the fetches in
    /// flight and the writes behind them, and the responses being sent.
    pub fn memory_budget(&self) -> u64 {
        let block = self.store.cache.block_size;
        let fetch_blocks = strata_cache::cache::FETCH_SLOTS_PER_READ
            * crate::node::FETCH_CONCURRENCY
            + strata_cache::cache::write_slots(crate::node::FETCH_CONCURRENCY, block);
        self.store.cache.dram_size + fetch_blocks as u64 * block + self.response_memory
    }

    /// The effective settings as TOML, for `strata serve --print-config`. The token and the
    /// store's credentials are never printed: only whether they are set.
    pub fn to_toml(&self) -> String {
        use strata_store::size::format_size;
        let c = &self.store.cache;
        let mut out = String::new();
        out.push_str("[daemon]\n");
        out.push_str(&format!("listen = \"{}\"\n", self.listen));
        if let Some(s) = &self.socket {
            out.push_str(&format!("socket = {:?}\n", s.display().to_string()));
        }
        out.push_str(&format!(
            "token = \"{}\"\n",
            if self.token.is_some() {
                "(set)"
            } else {
                "(none: loopback only)"
            }
        ));
        out.push_str(&format!(
            "metadata_ttl = \"{}ms\"\n",
            self.metadata_ttl.as_millis()
        ));
        out.push_str(&format!(
            "response_memory = \"{}\"\n",
            format_size(self.response_memory)
        ));
        out.push_str(&format!(
            "# memory budget: {} (DRAM tier + fetches in flight + responses)\n",
            format_size(self.memory_budget())
        ));
        out.push_str(&format!(
            "local_roots = [{}]\n",
            self.local_roots
                .iter()
                .map(|r| format!("{:?}", r.display().to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        out.push_str("\n[daemon.buckets]\n");
        for (k, v) in &self.buckets {
            out.push_str(&format!("{k} = \"{v}\"\n"));
        }
        out.push_str("\n[cache]\n");
        out.push_str(&format!("dir = {:?}\n", c.dir.display().to_string()));
        out.push_str(&format!("nvme_size = \"{}\"\n", format_size(c.nvme_size)));
        out.push_str(&format!("dram_size = \"{}\"\n", format_size(c.dram_size)));
        out.push_str(&format!("block_size = \"{}\"\n", format_size(c.block_size)));
        out.push_str(&format!("min_free_fraction = {}\n", c.min_free_fraction));
        out.push_str(&format!("policy = \"{}\"\n", c.policy));
        let s3 = &self.store.s3;
        out.push_str("\n[s3]\n");
        if let Some(e) = &s3.endpoint {
            out.push_str(&format!("endpoint = \"{e}\"\n"));
        }
        out.push_str(&format!(
            "credentials = \"{}\"\n",
            if s3.access_key_id.is_some() {
                "(set)"
            } else {
                "(from the environment chain)"
            }
        ));
        out
    }
}

/// S3's rules for bucket names, which the endpoint's path-style URLs rely on.
pub fn valid_bucket_name(n: &str) -> bool {
    (3..=63).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !n.starts_with(['-', '.'])
        && !n.ends_with(['-', '.'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> StoreConfig {
        StoreConfig::from_layer(&Default::default()).expect("defaults")
    }

    fn resolve(env: &[(&str, &str)], flags: DaemonFlags) -> Result<DaemonConfig, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        DaemonConfig::resolve(
            store(),
            &|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            &flags,
        )
    }

    #[test]
    fn defaults_are_loopback_without_a_token() {
        let c = resolve(&[], DaemonFlags::default()).expect("valid");
        assert!(c.listen.ip().is_loopback());
        assert_eq!(c.listen.port(), DEFAULT_PORT);
        assert!(c.token.is_none());
    }

    #[test]
    fn off_loopback_requires_a_token() {
        let flags = DaemonFlags {
            listen: Some("0.0.0.0:7420".into()),
            ..Default::default()
        };
        let e = resolve(&[], flags.clone()).expect_err("no token");
        assert_eq!(e.setting, "daemon.listen");
        assert!(e.reason.contains("token"), "{e}");
        let c = resolve(&[("STRATA_TOKEN", "0123456789abcdef0123")], flags).expect("token");
        assert!(c.token.is_some());
    }

    #[test]
    fn short_tokens_and_bad_buckets_are_refused() {
        let e = resolve(&[("STRATA_TOKEN", "short")], DaemonFlags::default()).expect_err("short");
        assert_eq!(e.setting, "daemon.token");
        for b in ["UPPER=s3://x/y", "../x=s3://x/y", "nourl"] {
            let flags = DaemonFlags {
                buckets: vec![b.into()],
                ..Default::default()
            };
            let e = resolve(&[], flags).expect_err(b);
            assert_eq!(e.setting, "--bucket", "{b}: {e}");
        }
    }

    #[test]
    fn print_config_never_shows_the_token() {
        let secret = "s3cr3t-t0ken-value-123456";
        let c = resolve(&[("STRATA_TOKEN", secret)], DaemonFlags::default()).expect("valid");
        let text = c.to_toml();
        assert!(!text.contains(secret), "{text}");
        assert!(!format!("{c:?}").contains(secret));
        assert!(text.contains("token = \"(set)\""));
    }

    #[test]
    fn local_files_only_under_local_roots() {
        let data = tempfile::tempdir().expect("tmp");
        let outside = tempfile::tempdir().expect("tmp");
        std::fs::write(data.path().join("a.bin"), b"a").expect("write");
        std::fs::write(outside.path().join("secret"), b"s").expect("write");
        std::os::unix::fs::symlink(outside.path(), data.path().join("link")).expect("symlink");
        let url = |p: &std::path::Path| StoreUrl::from_local_path(p, false).expect("url");
        let none = resolve(&[], DaemonFlags::default()).expect("valid");
        assert!(!none.admits(&url(&data.path().join("a.bin"))));
        assert!(none.admits(&StoreUrl::parse("s3://b/k").expect("url")));
        let flags = DaemonFlags {
            local_roots: vec![data.path().to_path_buf()],
            ..Default::default()
        };
        let c = resolve(&[], flags).expect("valid");
        assert!(c.admits(&url(&data.path().join("a.bin"))));
        assert!(c.admits(&url(&data.path().join("not/yet/there"))));
        assert!(!c.admits(&url(&outside.path().join("secret"))));
        assert!(
            !c.admits(&url(&data.path().join("link/secret"))),
            "a symlink out"
        );
        assert!(!c.admits(&url(std::path::Path::new("/etc/passwd"))));
        let e = resolve(
            &[],
            DaemonFlags {
                local_roots: vec![data.path().join("missing")],
                ..Default::default()
            },
        )
        .expect_err("missing root");
        assert_eq!(e.setting, "--local-root");
    }

    #[test]
    fn durations() {
        assert_eq!(duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(duration("x"), None);
        assert_eq!(duration("-1s"), None);
    }
}
