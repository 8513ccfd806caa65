//! The daemon's settings: the `[daemon]` section of the config file, then the environment,
//! then the flags, merged by `strata-config` and validated once in [`DaemonConfig::resolve`].
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
use strata_cache::CacheSettings;
use strata_config::{
    ConfigError, DurationValue, Env, Overlay, Secret, Section, SizeValue, Sources,
};
use strata_store::{StoreConfig, StoreUrl};

fn bad(setting: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::invalid(setting, reason)
}

/// `[daemon]` as a source gives it; every field optional. Environment: `STRATA_LISTEN`,
/// `STRATA_SOCKET`, `STRATA_TOKEN` (or `STRATA_TOKEN_FILE`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonLayer {
    /// See [`DaemonConfig::listen`].
    pub listen: Option<String>,
    /// See [`DaemonConfig::socket`].
    pub socket: Option<String>,
    /// See [`DaemonConfig::token`].
    pub token: Option<Secret>,
    /// A file holding the token (trimmed); wins over `token` in the same layer.
    pub token_file: Option<String>,
    /// See [`DaemonConfig::metadata_ttl`].
    pub metadata_ttl: Option<DurationValue>,
    /// See [`DaemonConfig::response_memory`].
    pub response_memory: Option<SizeValue>,
    /// See [`DaemonConfig::local_roots`]; a higher layer's roots are added.
    pub local_roots: Vec<String>,
    /// See [`DaemonConfig::buckets`]; a higher layer's buckets are added (a name given
    /// again takes the higher layer's URL).
    pub buckets: BTreeMap<String, String>,
}

impl Overlay for DaemonLayer {
    fn overlay(&mut self, high: &Self) {
        let DaemonLayer {
            listen,
            socket,
            token,
            token_file,
            metadata_ttl,
            response_memory,
            local_roots,
            buckets,
        } = high;
        for (low, high) in [(&mut self.listen, listen), (&mut self.socket, socket)] {
            if high.is_some() {
                low.clone_from(high);
            }
        }
        // The token is one setting given two ways: a layer that gives either replaces both.
        if token.is_some() || token_file.is_some() {
            self.token.clone_from(token);
            self.token_file.clone_from(token_file);
        }
        if metadata_ttl.is_some() {
            self.metadata_ttl.clone_from(metadata_ttl);
        }
        if response_memory.is_some() {
            self.response_memory.clone_from(response_memory);
        }
        self.local_roots.extend(local_roots.iter().cloned());
        self.buckets
            .extend(buckets.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// The `[daemon]` section, each field validated on its own; [`DaemonConfig::resolve`] adds
/// the flags and checks the fields against each other and the cache.
#[derive(Debug, Clone)]
pub struct DaemonSection {
    listen: SocketAddr,
    socket: Option<PathBuf>,
    token: Option<Secret>,
    metadata_ttl: Duration,
    response_memory: u64,
    buckets: BTreeMap<String, StoreUrl>,
    local_roots: Vec<PathBuf>,
}

impl Section for DaemonSection {
    const NAME: &'static str = "daemon";
    type Layer = DaemonLayer;

    fn from_env(env: &Env) -> Result<DaemonLayer, ConfigError> {
        let token = env.get("STRATA_TOKEN").map(Secret::new);
        Ok(DaemonLayer {
            listen: env.get("STRATA_LISTEN"),
            socket: env.get("STRATA_SOCKET"),
            token_file: token
                .is_none()
                .then(|| env.get("STRATA_TOKEN_FILE"))
                .flatten(),
            token,
            ..Default::default()
        })
    }

    fn resolve(l: &DaemonLayer) -> Result<Self, ConfigError> {
        let listen_text = l
            .listen
            .clone()
            .unwrap_or_else(|| format!("127.0.0.1:{DEFAULT_PORT}"));
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            bad(
                "daemon.listen",
                format!("{listen_text:?} is not an address such as 127.0.0.1:{DEFAULT_PORT}"),
            )
        })?;
        let token = match (&l.token_file, &l.token) {
            (Some(path), _) => Some(Secret::new(
                std::fs::read_to_string(path)
                    .map_err(|e| bad("daemon.token_file", format!("cannot read {path}: {e}")))?
                    .trim(),
            )),
            (None, t) => t.clone(),
        };
        if let Some(t) = &token
            && t.expose().len() < 16
        {
            return Err(bad(
                "daemon.token",
                "must be at least 16 characters (for example: openssl rand -hex 16)",
            ));
        }
        let metadata_ttl = match &l.metadata_ttl {
            None => Duration::from_secs(1),
            Some(t) => t.duration("daemon.metadata_ttl")?,
        };
        let response_memory =
            SizeValue::or(&l.response_memory, "daemon.response_memory", 512 << 20)?;
        let mut buckets = BTreeMap::new();
        for (name, url) in &l.buckets {
            let (name, url) = bucket(name, url, "daemon.buckets")?;
            buckets.insert(name, url);
        }
        let local_roots = l
            .local_roots
            .iter()
            .map(|r| local_root(&PathBuf::from(r), "daemon.local_roots"))
            .collect::<Result<_, _>>()?;
        Ok(DaemonSection {
            listen,
            socket: l.socket.as_ref().map(PathBuf::from),
            token,
            metadata_ttl,
            response_memory,
            buckets,
            local_roots,
        })
    }
}

/// A bucket of the S3 endpoint, checked; errors name `setting`.
fn bucket(name: &str, url: &str, setting: &str) -> Result<(String, StoreUrl), ConfigError> {
    if !valid_bucket_name(name) {
        return Err(bad(
            setting,
            format!("{name:?} is not a bucket name (3–63 of a-z, 0-9, '-', '.')"),
        ));
    }
    if crate::s3::RESERVED.contains(&name) {
        return Err(bad(
            setting,
            format!("{name:?} is one of the daemon's own paths; choose another name"),
        ));
    }
    let u = StoreUrl::parse(url).map_err(|e| bad(setting, format!("{name}: {e}")))?;
    Ok((name.to_string(), u))
}

/// A local root, resolved (symlinks followed); errors name `setting`.
fn local_root(root: &std::path::Path, setting: &str) -> Result<PathBuf, ConfigError> {
    let dir = std::fs::canonicalize(root)
        .map_err(|e| bad(setting, format!("{}: {e}", root.display())))?;
    if !dir.is_dir() {
        return Err(bad(
            setting,
            format!("{} is not a directory", root.display()),
        ));
    }
    Ok(dir)
}

/// The flags of `strata serve` (each overrides the file and the environment).
#[derive(Debug, Clone, Default)]
pub struct DaemonFlags {
    /// `--listen ADDR`.
    pub listen: Option<String>,
    /// `--socket PATH`.
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
    /// The bearer token every request must carry, at least 16 characters; required off
    /// loopback. Default: none.
    pub token: Option<Secret>,
    /// How long a HEAD answer (size and ETag) is trusted before the object is asked again.
    /// Data is always read pinned to the ETag, so a change is never mixed into old bytes.
    /// Default: 1 s.
    pub metadata_ttl: Duration,
    /// Bytes held by response bodies being sent, over all clients; at least one block.
    /// Default: 512 MiB.
    pub response_memory: u64,
    /// Buckets of the S3-compatible endpoint: name → upstream URL (a bucket or a prefix).
    pub buckets: BTreeMap<String, StoreUrl>,
    /// Directories (resolved, symlinks followed) under which local clients may read local
    /// files (`file://` URLs and paths) through `/v1`. Default: none, so the daemon reads
    /// only object stores for its clients and never hands a client a file that the daemon's
    /// user may read and the client may not. The S3 endpoint's buckets are set by whoever
    /// runs the daemon and are served wherever they point.
    pub local_roots: Vec<PathBuf>,
    /// The upstream store's settings (endpoint, credentials, transfers).
    pub store: StoreConfig,
    /// The node's block cache (directory, tiers, block size).
    pub cache: CacheSettings,
}

impl DaemonConfig {
    /// The daemon's settings from `sources` (the `[daemon]`, `[cache]` and store sections of
    /// the file and the environment) and `flags`, validated.
    pub fn resolve(sources: &Sources, flags: &DaemonFlags) -> Result<Self, ConfigError> {
        let mut sources = sources.clone();
        sources.set_flags::<DaemonSection>(DaemonLayer {
            listen: flags.listen.clone(),
            socket: flags.socket.as_ref().map(|p| p.display().to_string()),
            ..Default::default()
        });
        let d: DaemonSection = sources.get()?;
        let store = StoreConfig::from_sources(&sources)?;
        let cache: CacheSettings = sources.get()?;
        let mut buckets = d.buckets;
        for b in &flags.buckets {
            let (name, url) = b
                .split_once('=')
                .ok_or_else(|| bad("--bucket", format!("{b:?} is not NAME=URL")))?;
            let (name, url) = bucket(name, url, "--bucket")?;
            buckets.insert(name, url);
        }
        let mut local_roots = d.local_roots;
        for r in &flags.local_roots {
            local_roots.push(local_root(r, "--local-root")?);
        }
        if !d.listen.ip().is_loopback() && d.token.is_none() {
            return Err(bad(
                "daemon.listen",
                format!(
                    "{} is not a loopback address, so every request must carry a token: \
                     set $STRATA_TOKEN or daemon.token_file",
                    d.listen
                ),
            ));
        }
        if d.response_memory < cache.block_size {
            return Err(bad(
                "daemon.response_memory",
                format!("must hold at least one block ({} bytes)", cache.block_size),
            ));
        }
        Ok(Self {
            listen: d.listen,
            socket: d.socket,
            token: d.token,
            metadata_ttl: d.metadata_ttl,
            response_memory: d.response_memory,
            buckets,
            local_roots,
            store,
            cache,
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
        let block = self.cache.block_size;
        let fetch_blocks = strata_cache::cache::FETCH_SLOTS_PER_READ
            * crate::node::FETCH_CONCURRENCY
            + strata_cache::cache::write_slots(crate::node::FETCH_CONCURRENCY, block);
        self.cache.dram_size + fetch_blocks as u64 * block + self.response_memory
    }

    /// The effective settings as TOML, for `strata serve --print-config`. The token and the
    /// store's credentials are never printed: only whether they are set.
    pub fn to_toml(&self) -> String {
        use strata_units::format_size;
        let c = &self.cache;
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
        out.push_str(&format!("policy = \"{}\"\n", c.policy.name()));
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

    fn resolve(env: &[(&str, &str)], flags: DaemonFlags) -> Result<DaemonConfig, ConfigError> {
        DaemonConfig::resolve(&Sources::load(None, Env::from_pairs(env))?, &flags)
    }

    /// The setting an error names.
    fn setting(e: &ConfigError) -> &str {
        match e {
            ConfigError::Invalid { setting, .. } => setting,
            other => panic!("not a setting's error: {other}"),
        }
    }

    #[test]
    fn defaults_are_loopback_without_a_token() {
        let c = resolve(&[], DaemonFlags::default()).expect("valid");
        assert!(c.listen.ip().is_loopback());
        assert_eq!(c.listen.port(), DEFAULT_PORT);
        assert!(c.token.is_none());
        assert_eq!(c.metadata_ttl, Duration::from_secs(1));
    }

    #[test]
    fn off_loopback_requires_a_token() {
        let flags = DaemonFlags {
            listen: Some("0.0.0.0:7420".into()),
            ..Default::default()
        };
        let e = resolve(&[], flags.clone()).expect_err("no token");
        assert_eq!(setting(&e), "daemon.listen");
        assert!(e.to_string().contains("token"), "{e}");
        let c = resolve(&[("STRATA_TOKEN", "0123456789abcdef0123")], flags).expect("token");
        assert!(c.token.is_some());
    }

    #[test]
    fn the_file_env_and_flags_merge_in_order() {
        let dir = tempfile::tempdir().expect("tmp");
        let token = dir.path().join("token");
        std::fs::write(&token, "from-the-token-file-0123\n").expect("write");
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            format!(
                "[daemon]\nlisten = '127.0.0.1:9'\ntoken_file = {:?}\nmetadata_ttl = '250ms'\n\
                 response_memory = '64MiB'\n[daemon.buckets]\ntrain = 's3://b/t'\n",
                token.display().to_string()
            ),
        )
        .expect("write");
        let load = |env: &[(&str, &str)], flags: DaemonFlags| {
            DaemonConfig::resolve(
                &Sources::load(Some(&f), Env::from_pairs(env)).expect("file"),
                &flags,
            )
        };
        let c = load(&[], DaemonFlags::default()).expect("valid");
        assert_eq!(c.listen.port(), 9);
        assert_eq!(
            c.token.as_ref().map(Secret::expose),
            Some("from-the-token-file-0123")
        );
        assert_eq!(c.metadata_ttl, Duration::from_millis(250));
        assert_eq!(c.response_memory, 64 << 20);
        let flags = DaemonFlags {
            listen: Some("127.0.0.1:11".into()),
            buckets: vec!["more=s3://b/m".into()],
            ..Default::default()
        };
        let c = load(
            &[
                ("STRATA_LISTEN", "127.0.0.1:10"),
                ("STRATA_TOKEN", "from-the-environment-0"),
            ],
            flags,
        )
        .expect("valid");
        assert_eq!(c.listen.port(), 11, "a flag beats the environment");
        assert_eq!(
            c.token.as_ref().map(Secret::expose),
            Some("from-the-environment-0")
        );
        assert_eq!(c.buckets.keys().collect::<Vec<_>>(), ["more", "train"]);
        let c = load(&[("STRATA_LISTEN", "127.0.0.1:10")], DaemonFlags::default()).expect("valid");
        assert_eq!(c.listen.port(), 10, "the environment beats the file");
    }

    #[test]
    fn short_tokens_and_bad_buckets_are_refused() {
        let e = resolve(&[("STRATA_TOKEN", "short")], DaemonFlags::default()).expect_err("short");
        assert_eq!(setting(&e), "daemon.token");
        for b in ["UPPER=s3://x/y", "../x=s3://x/y", "nourl"] {
            let flags = DaemonFlags {
                buckets: vec![b.into()],
                ..Default::default()
            };
            let e = resolve(&[], flags).expect_err(b);
            assert_eq!(setting(&e), "--bucket", "{b}: {e}");
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
        assert_eq!(setting(&e), "--local-root");
    }
}
