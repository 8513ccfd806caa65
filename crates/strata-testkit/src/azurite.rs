//! An Azure Blob Storage emulator as a test fixture: Microsoft's Azurite (blob service only)
//! on loopback, its data in a temporary directory, with one container; stopped by its
//! process id when dropped.
//!
//! Azurite comes from the npm registry (`scripts/test` installs it under `.tools/` with the
//! machine's Node.js): found through `$STRATA_AZURITE_BIN`, then `.tools/node_modules/.bin/
//! azurite-blob` in the repository, then `azurite-blob` on `PATH`. Clients reach it the way
//! object_store is pointed at Azurite: [`Azurite::env`] (`AZURE_STORAGE_USE_EMULATOR=true`
//! and `AZURITE_BLOB_STORAGE_URL`), with Azurite's well-known development account.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{KeyInit, Mac};

/// The container the fixture creates.
pub const CONTAINER: &str = "strata-test";
/// Azurite's development account and its published key.
const ACCOUNT: &str = "devstoreaccount1";
const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A running Azurite blob service.
pub struct Azurite {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

/// Where `azurite-blob` is, if anywhere.
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("STRATA_AZURITE_BIN") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../.tools/node_modules/.bin/azurite-blob");
    if local.is_file() {
        return Some(local);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join("azurite-blob"))
        .find(|p| p.is_file())
}

/// Starts Azurite for a test, or `None` (after printing `SKIPPED`) when it is not
/// installed, unless `STRATA_REQUIRE_EMULATORS=1` (which `scripts/test` sets): then a
/// missing binary or a failed start panics with the reason. Blocking.
pub fn start_or_skip() -> Option<Azurite> {
    if !crate::fixture::installed_or_required(
        binary().is_some(),
        "STRATA_REQUIRE_EMULATORS",
        "azurite",
    ) {
        return None;
    }
    Some(Azurite::start().unwrap_or_else(|e| panic!("{e}")))
}

impl Azurite {
    /// Starts the blob service and creates [`CONTAINER`].
    pub fn start() -> Result<Self, String> {
        let bin = binary().ok_or("azurite-blob not found (set STRATA_AZURITE_BIN)")?;
        let dir = tempfile::Builder::new()
            .prefix("strata-azurite-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let port = crate::fixture::free_port();
        let log =
            std::fs::File::create(dir.path().join("azurite.log")).map_err(|e| e.to_string())?;
        let child = Command::new(&bin)
            .args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &port.to_string(),
                "--location",
            ])
            .arg(dir.path().join("data"))
            .args(["--silent", "--skipApiVersionCheck"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let s = Self {
            child,
            port,
            _dir: dir,
        };
        let start = Instant::now();
        loop {
            match s.create_container(CONTAINER) {
                Ok(()) => return Ok(s),
                Err(e) if start.elapsed() > Duration::from_secs(30) => {
                    return Err(format!("azurite did not come up: {e}"));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Creates a container with a request signed by the development account's key (Shared
    /// Key): object_store has no call for it.
    fn create_container(&self, name: &str) -> Result<(), String> {
        use std::io::{Read, Write};
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let version = "2021-08-06";
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{ACCOUNT}/{ACCOUNT}/{name}\nrestype:container"
        );
        let key = base64::engine::general_purpose::STANDARD
            .decode(ACCOUNT_KEY)
            .map_err(|e| e.to_string())?;
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
        mac.update(to_sign.as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let mut c =
            std::net::TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        c.set_read_timeout(Some(Duration::from_secs(10))).ok();
        write!(
            c,
            "PUT /{ACCOUNT}/{name}?restype=container HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nx-ms-date: {date}\r\nx-ms-version: {version}\r\nAuthorization: SharedKey {ACCOUNT}:{sig}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .map_err(|e| e.to_string())?;
        let mut out = String::new();
        c.read_to_string(&mut out).map_err(|e| e.to_string())?;
        match out.split_whitespace().nth(1) {
            Some("201") | Some("409") => Ok(()),
            _ => Err(format!(
                "creating container {name}: {}",
                out.lines().next().unwrap_or("")
            )),
        }
    }

    /// The blob service's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment that points object_store (and so `strata`) at this emulator.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
            ("AZURITE_BLOB_STORAGE_URL", self.url()),
        ]
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
