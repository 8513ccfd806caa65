//! Garage, a production S3-compatible object store, as a test fixture: one node on loopback
//! with SQLite metadata and replication factor 1, a layout assigned and applied, a key
//! imported and a bucket created. Stopped by its process id when dropped.
//!
//! The `garage` binary is found through `$STRATA_GARAGE_BIN`, then `PATH`, then
//! `~/.cargo/bin`. `scripts/test` installs it (`cargo install --locked garage`) when missing.
//! Garage does not set TCP_NODELAY, so small requests are slow through it (about 40 ms):
//! use it to prove compatibility, not to measure small-request speed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::fixture::{free_port, installed_or_required};
use crate::s3_server::S3Endpoint;

/// The bucket the fixture creates.
pub const BUCKET: &str = "strata-test";
/// Garage's region name.
pub const REGION: &str = "garage";

/// A running Garage node.
pub struct GarageServer {
    child: Child,
    s3_addr: SocketAddr,
    access_key: String,
    secret_key: String,
    config_path: PathBuf,
    bin: PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts Garage for a test, or returns `None` (after printing `SKIPPED`) when the binary is
/// missing, unless `STRATA_REQUIRE_GARAGE=1` (which `scripts/test` sets): then a missing
/// binary, like a failed start, panics with the reason. Blocking; from async tests call it
/// through `spawn_blocking`.
pub fn start_or_skip() -> Option<GarageServer> {
    if !installed_or_required(
        garage_binary().is_some(),
        "STRATA_REQUIRE_GARAGE",
        "garage binary",
    ) {
        return None;
    }
    // A node that fails to come up on a loaded machine gets one more try (a fresh node).
    let server = GarageServer::start().or_else(|e| {
        eprintln!("garage did not start, trying a fresh node once: {e}");
        GarageServer::start()
    });
    Some(server.unwrap_or_else(|e| panic!("{e}")))
}

/// Where the `garage` binary is, if anywhere.
pub fn garage_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("STRATA_GARAGE_BIN") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("garage"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let p = PathBuf::from(std::env::var_os("HOME")?).join(".cargo/bin/garage");
        p.is_file().then_some(p)
    })
}

/// Why a Garage node could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GarageError {
    /// No `garage` binary.
    #[error(
        "the garage binary was not found (set STRATA_GARAGE_BIN or run scripts/test, which installs it)"
    )]
    NotInstalled,
    /// A file or process of the node.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A step of the start failed; the message says which and shows Garage's log.
    #[error("{0}")]
    Failed(String),
}

impl GarageServer {
    /// Starts a node and configures it. Errors say which step failed and show Garage's log.
    pub fn start() -> Result<Self, GarageError> {
        let bin = garage_binary().ok_or(GarageError::NotInstalled)?;
        let dir = tempfile::Builder::new()
            .prefix("strata-garage-")
            .tempdir()
            .map_err(GarageError::Io)?;
        let (rpc, s3) = (free_port(), free_port());
        let rpc_secret = format!(
            "{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        );
        let config = format!(
            r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{rpc_secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"
"#,
            d = dir.path().display()
        );
        let config_path = dir.path().join("garage.toml");
        std::fs::write(&config_path, config).map_err(GarageError::Io)?;
        let log = std::fs::File::create(dir.path().join("garage.log")).map_err(GarageError::Io)?;
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&config_path)
            .arg("server")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(GarageError::Io)?)
            .stderr(log)
            .spawn()
            .map_err(|e| GarageError::Failed(format!("cannot start {}: {e}", bin.display())))?;
        let access_key = format!("GK{:024x}", rand::random::<u128>() >> 32);
        let secret_key = format!(
            "{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        );
        let mut server = Self {
            child,
            s3_addr: SocketAddr::from(([127, 0, 0, 1], s3)),
            access_key,
            secret_key,
            config_path,
            bin,
            _dir: dir,
        };
        server.configure().map_err(|e| {
            GarageError::Failed(format!("{e}\n--- garage log ---\n{}", server.log()))
        })?;
        Ok(server)
    }

    fn cli(&self, args: &[&str]) -> Result<String, GarageError> {
        run_cli(&self.bin, &self.config_path, args)
    }

    fn retry_cli(&mut self, args: &[&str], within: Duration) -> Result<String, GarageError> {
        let start = Instant::now();
        loop {
            match self.cli(args) {
                Ok(o) => return Ok(o),
                Err(e) if start.elapsed() > within => return Err(e),
                Err(e) if matches!(self.child.try_wait(), Ok(Some(_))) => {
                    return Err(GarageError::Failed(format!(
                        "the garage server exited: {e}"
                    )));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn configure(&mut self) -> Result<(), GarageError> {
        let id = self.retry_cli(&["node", "id", "-q"], Duration::from_secs(30))?;
        let id = id.trim().split('@').next().unwrap_or_default().to_string();
        if id.len() < 16 {
            return Err(GarageError::Failed(format!("unexpected node id {id:?}")));
        }
        // `node id` reads the key from disk without the server; the layout commands need its
        // RPC port, which a loaded machine may open late (its SQLite store can be briefly
        // locked at start): retry them too.
        self.retry_cli(
            &["layout", "assign", "-z", "dc1", "-c", "1G", &id],
            Duration::from_secs(30),
        )?;
        self.retry_cli(
            &["layout", "apply", "--version", "1"],
            Duration::from_secs(30),
        )?;
        let (ak, sk) = (self.access_key.clone(), self.secret_key.clone());
        self.retry_cli(
            &["key", "import", "--yes", "-n", "strata-test", &ak, &sk],
            Duration::from_secs(20),
        )?;
        self.retry_cli(&["bucket", "create", BUCKET], Duration::from_secs(20))?;
        self.cli(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            BUCKET,
            "--key",
            "strata-test",
        ])?;
        self.wait_ready()
    }

    /// Waits until the S3 API answers a listing of the bucket.
    fn wait_ready(&self) -> Result<(), GarageError> {
        wait_listed(
            &self.url(""),
            &self.store_config(),
            Duration::from_secs(30),
            "Garage",
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.config_path.with_file_name("garage.log")).unwrap_or_default()
    }

    /// The S3 API address.
    pub fn addr(&self) -> SocketAddr {
        self.s3_addr
    }

    /// The process id of the node.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The node's data directory.
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }
}

/// Runs `garage -c CONFIG ARGS`; its standard output, or an error with both outputs.
pub(crate) fn run_cli(bin: &Path, config: &Path, args: &[&str]) -> Result<String, GarageError> {
    let out = Command::new(bin)
        .arg("-c")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .map_err(GarageError::Io)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(GarageError::Failed(format!(
            "garage -c {} {} failed: {}{}",
            config.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

/// Waits until the S3 API at `cfg`'s endpoint answers a listing of the bucket of `url`
/// (`what` names it in the error).
pub(crate) fn wait_listed(
    url: &strata_store::StoreUrl,
    cfg: &strata_store::StoreConfig,
    within: Duration,
    what: &str,
) -> Result<(), GarageError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(GarageError::Io)?;
    let store = strata_store::Store::open(url, cfg)
        .map_err(|e| GarageError::Failed(format!("{what}'s store: {e}")))?;
    let start = Instant::now();
    loop {
        match rt.block_on(store.list_dir("")) {
            Ok(_) => return Ok(()),
            Err(e) if start.elapsed() > within => {
                return Err(GarageError::Failed(format!(
                    "{what}: S3 API not ready: {e}"
                )));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

impl S3Endpoint for GarageServer {
    fn addr(&self) -> SocketAddr {
        self.s3_addr
    }
    fn region(&self) -> &str {
        REGION
    }
    fn bucket(&self) -> &str {
        BUCKET
    }
    fn access_key(&self) -> &str {
        &self.access_key
    }
    fn secret_key(&self) -> &str {
        &self.secret_key
    }
}

impl Drop for GarageServer {
    fn drop(&mut self) {
        // Stop by process id, then reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
