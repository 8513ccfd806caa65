//! Three Garage nodes on loopback as one cluster: replication factor 3 (every block and
//! every metadata entry on all three; writes and reads need two), one zone per node, each
//! node with its own data directory, RPC port and S3 port. A node can be killed with
//! SIGKILL and started again on the same directory, where it catches up from the others.
//!
//! Clients reach the cluster through node 0's S3 port ([`S3Endpoint`]); tests that kill
//! node 0 itself reach another through [`GarageCluster::endpoint_of`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::fixture::{free_port, installed_or_required};
use crate::garage::{BUCKET, GarageError, REGION, garage_binary, run_cli, wait_listed};
use crate::s3_server::S3Endpoint;

/// Nodes in the cluster.
pub const NODES: usize = 3;

struct Node {
    child: std::sync::Mutex<Option<Child>>,
    config: PathBuf,
    rpc: u16,
    s3: u16,
}

/// A running three-node Garage cluster. Every node is stopped by its process id when
/// dropped.
pub struct GarageCluster {
    nodes: Vec<Node>,
    bin: PathBuf,
    access_key: String,
    secret_key: String,
    _dir: tempfile::TempDir,
}

/// Starts a cluster for a test, or `None` (after printing `SKIPPED`) when the binary is
/// missing, unless `STRATA_REQUIRE_GARAGE=1`: then a missing binary or a failed start
/// panics with the reason. Blocking.
pub fn start_or_skip() -> Option<GarageCluster> {
    if !installed_or_required(
        garage_binary().is_some(),
        "STRATA_REQUIRE_GARAGE",
        "garage binary",
    ) {
        return None;
    }
    Some(GarageCluster::start().unwrap_or_else(|e| panic!("{e}")))
}

impl GarageCluster {
    /// Starts three nodes, connects them, applies a layout of one zone per node with
    /// replication factor 3, imports a key and creates [`BUCKET`].
    pub fn start() -> Result<Self, GarageError> {
        let bin = garage_binary().ok_or(GarageError::NotInstalled)?;
        let dir = tempfile::Builder::new()
            .prefix("strata-garage-cluster-")
            .tempdir()
            .map_err(GarageError::Io)?;
        let secret = format!(
            "{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        );
        let mut nodes = Vec::new();
        for i in 0..NODES {
            let d = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(&d).map_err(GarageError::Io)?;
            let (rpc, s3) = (free_port(), free_port());
            let config = d.join("garage.toml");
            std::fs::write(
                &config,
                format!(
                    r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "sqlite"
replication_factor = 3
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"
"#,
                    d = d.display()
                ),
            )
            .map_err(GarageError::Io)?;
            nodes.push(Node {
                child: std::sync::Mutex::new(None),
                config,
                rpc,
                s3,
            });
        }
        let c = Self {
            nodes,
            bin,
            access_key: format!("GK{:024x}", rand::random::<u128>() >> 32),
            secret_key: format!(
                "{:032x}{:032x}",
                rand::random::<u128>(),
                rand::random::<u128>()
            ),
            _dir: dir,
        };
        for i in 0..NODES {
            c.spawn(i)?;
        }
        c.configure()
            .map_err(|e| GarageError::Failed(format!("{e}\n--- garage logs ---\n{}", c.logs())))?;
        Ok(c)
    }

    fn spawn(&self, i: usize) -> Result<(), GarageError> {
        let n = &self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(n.config.with_file_name("garage.log"))
            .map_err(GarageError::Io)?;
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&n.config)
            .arg("server")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(GarageError::Io)?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                GarageError::Failed(format!("cannot start {}: {e}", self.bin.display()))
            })?;
        *n.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        Ok(())
    }

    fn cli(&self, i: usize, args: &[&str]) -> Result<String, GarageError> {
        run_cli(&self.bin, &self.nodes[i].config, args)
    }

    fn retry_cli(&self, i: usize, args: &[&str], within: Duration) -> Result<String, GarageError> {
        let start = Instant::now();
        loop {
            match self.cli(i, args) {
                Ok(o) => return Ok(o),
                Err(e) if start.elapsed() > within => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn configure(&self) -> Result<(), GarageError> {
        let mut ids = Vec::new();
        for i in 0..NODES {
            let id = self.retry_cli(i, &["node", "id", "-q"], Duration::from_secs(30))?;
            let id = id.trim().split('@').next().unwrap_or_default().to_string();
            if id.len() < 16 {
                return Err(GarageError::Failed(format!(
                    "node {i}: unexpected id {id:?}"
                )));
            }
            ids.push(id);
        }
        for (id, node) in ids.iter().zip(&self.nodes).skip(1) {
            let peer = format!("{id}@127.0.0.1:{}", node.rpc);
            self.retry_cli(0, &["node", "connect", &peer], Duration::from_secs(30))?;
        }
        for (i, id) in ids.iter().enumerate() {
            let zone = format!("dc{}", i + 1);
            self.retry_cli(
                0,
                &["layout", "assign", "-z", &zone, "-c", "1G", id],
                Duration::from_secs(30),
            )?;
        }
        self.retry_cli(
            0,
            &["layout", "apply", "--version", "1"],
            Duration::from_secs(30),
        )?;
        let (ak, sk) = (self.access_key.clone(), self.secret_key.clone());
        self.retry_cli(
            0,
            &["key", "import", "--yes", "-n", "strata-test", &ak, &sk],
            Duration::from_secs(30),
        )?;
        self.retry_cli(0, &["bucket", "create", BUCKET], Duration::from_secs(30))?;
        self.retry_cli(
            0,
            &[
                "bucket",
                "allow",
                "--read",
                "--write",
                "--owner",
                BUCKET,
                "--key",
                "strata-test",
            ],
            Duration::from_secs(30),
        )?;
        for i in 0..NODES {
            self.wait_ready(i, Duration::from_secs(60))?;
        }
        Ok(())
    }

    /// Waits until node `i`'s S3 API answers a listing of the bucket.
    pub fn wait_ready(&self, i: usize, within: Duration) -> Result<(), GarageError> {
        let mut layer = self.config_layer();
        layer.s3.endpoint = Some(self.endpoint_of(i));
        let cfg = strata_store::StoreConfig::from_layer(&layer)
            .map_err(|e| GarageError::Failed(format!("settings: {e}")))?;
        wait_listed(&self.url(""), &cfg, within, &format!("node {i}"))
    }

    /// Kills node `i` with SIGKILL (no warning, as a machine that loses power). Safe to
    /// call from another thread while clients use the cluster.
    pub fn kill(&self, i: usize) {
        let child = self.nodes[i]
            .child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut c) = child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts node `i` again on its directory (killing it first if it runs), and waits
    /// until its S3 API answers.
    pub fn restart(&self, i: usize) -> Result<(), GarageError> {
        self.kill(i);
        self.spawn(i)?;
        self.wait_ready(i, Duration::from_secs(60))
    }

    /// Whether node `i` runs.
    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i]
            .child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Node `i`'s S3 endpoint URL.
    pub fn endpoint_of(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].s3)
    }

    /// The process id of node `i`, if it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i]
            .child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(Child::id)
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                format!(
                    "node {i}:\n{}",
                    std::fs::read_to_string(n.config.with_file_name("garage.log"))
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl S3Endpoint for GarageCluster {
    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.nodes[0].s3))
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

impl Drop for GarageCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
