//! An S3 server in the test process: `s3s` with the `s3s-fs` backend, listening on
//! 127.0.0.1 at a free port, with SigV4 authentication, serving a temporary directory.
//!
//! ```no_run
//! use strata_testkit::{S3Endpoint, S3Server};
//! let server = S3Server::start();
//! let config = server.store_config();          // endpoint, region and credentials
//! let url = server.url("some/key");            // s3://<bucket>/some/key
//! # drop((config, url));
//! // Dropping `server` stops it and deletes its directory.
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use strata_store::{Secret, StoreConfig, StoreLayer, StoreUrl};
use tokio::net::TcpListener;

use crate::runtime::Background;

/// The bucket every server starts with.
pub const BUCKET: &str = "strata-test";
/// The region the server reports.
pub const REGION: &str = "us-east-1";

/// A running in-process S3 server. Dropping it stops it.
pub struct S3Server {
    addr: SocketAddr,
    access_key: String,
    secret_key: String,
    root: PathBuf,
    /// The temporary root, removed on drop (None for a server started on a kept directory).
    _tmp: Option<tempfile::TempDir>,
    _bg: Background,
}

impl S3Server {
    /// Starts a server with one bucket, [`BUCKET`], and fresh random credentials.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("strata-s3s-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path().to_path_buf();
        Self::start_with(root, Some(dir))
    }

    /// Starts a server that keeps its objects in `root` (created if needed) after it stops,
    /// so a benchmark can reuse the data it generated.
    pub fn start_in(root: &Path) -> Self {
        Self::start_with(root.to_path_buf(), None)
    }

    fn start_with(root: PathBuf, tmp: Option<tempfile::TempDir>) -> Self {
        std::fs::create_dir_all(root.join(BUCKET)).expect("bucket dir");
        let access_key = format!("STRATA{:014X}", rand::random::<u64>() >> 8);
        let secret_key = format!("{:032x}", rand::random::<u128>());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let (ak, sk) = (access_key.clone(), secret_key.clone());
        let served = root.clone();
        let bg = Background::spawn("s3s", 2, move || serve(listener, served, ak, sk));
        Self {
            addr,
            access_key,
            secret_key,
            root,
            _tmp: tmp,
            _bg: bg,
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The directory the server stores objects in (one subdirectory per bucket).
    pub fn root_dir(&self) -> &Path {
        &self.root
    }

    /// Creates another bucket.
    pub fn create_bucket(&self, name: &str) -> PathBuf {
        let p = self.root.join(name);
        std::fs::create_dir_all(&p).expect("bucket dir");
        p
    }

    /// IDs of multipart uploads that are open on the server: started, and neither completed
    /// nor aborted.
    pub fn open_uploads(&self) -> Vec<String> {
        self.pending_uploads()
            .into_iter()
            .filter_map(|n| {
                n.strip_prefix(".upload-")
                    .and_then(|r| r.strip_suffix(".json"))
                    .map(str::to_string)
            })
            .collect()
    }

    /// Names of s3s-fs's files of multipart uploads (`.upload-ID.json` for an open upload,
    /// `.upload_id-ID.part-N` for its parts). A completion cut off by a client that died
    /// can leave parts of an upload that is no longer open.
    pub fn pending_uploads(&self) -> Vec<String> {
        std::fs::read_dir(&self.root)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(".upload"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// An S3 server a test started: where it is, its bucket and its credentials, and from those
/// the settings and URLs to reach it. Implemented by [`S3Server`] and
/// [`crate::GarageServer`], so tests and benchmarks can take either.
pub trait S3Endpoint {
    /// The S3 API's address on loopback.
    fn addr(&self) -> SocketAddr;
    /// `http://127.0.0.1:PORT`.
    fn endpoint(&self) -> String {
        format!("http://{}", self.addr())
    }
    /// The region the server expects in signatures.
    fn region(&self) -> &str;
    /// The bucket the fixture created.
    fn bucket(&self) -> &str;
    /// Access key ID.
    fn access_key(&self) -> &str;
    /// Secret access key.
    fn secret_key(&self) -> &str;

    /// A config layer with the endpoint, region and credentials (defaults otherwise).
    fn config_layer(&self) -> StoreLayer {
        let mut l = StoreLayer::default();
        l.s3.endpoint = Some(self.endpoint());
        l.s3.region = Some(self.region().to_string());
        l.s3.access_key_id = Some(self.access_key().to_string());
        l.s3.secret_access_key = Some(Secret::new(self.secret_key()));
        l
    }

    /// A config layer like [`S3Endpoint::config_layer`], with the endpoint replaced by the
    /// link emulator in front of this server.
    fn config_layer_through(&self, emu: &crate::LinkEmulator) -> StoreLayer {
        let mut l = self.config_layer();
        l.s3.endpoint = Some(emu.endpoint());
        l
    }

    /// Store settings for the server.
    fn store_config(&self) -> StoreConfig {
        StoreConfig::from_layer(&self.config_layer()).expect("valid config")
    }

    /// `s3://BUCKET/key`.
    fn url(&self, key: &str) -> StoreUrl {
        StoreUrl::parse(&format!("s3://{}/{key}", self.bucket())).expect("valid url")
    }
}

impl S3Endpoint for S3Server {
    fn addr(&self) -> SocketAddr {
        self.addr
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

async fn serve(listener: std::net::TcpListener, root: PathBuf, ak: String, sk: String) {
    let fs = s3s_fs::FileSystem::new(root.clone()).expect("s3s-fs root");
    let service = {
        let mut b = S3ServiceBuilder::new(crate::upload_listing::ListsUploads::new(
            crate::atomic_create::AtomicCreates::new(fs),
            root.clone(),
        ));
        b.set_auth(SimpleAuth::from_single(ak, sk));
        b.build()
    };
    let listener = TcpListener::from_std(listener).expect("tokio listener");
    let http = ConnBuilder::new(TokioExecutor::new());
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        // Small requests are latency-bound; never let Nagle hold a response back.
        let _ = socket.set_nodelay(true);
        let conn = http
            .serve_connection(TokioIo::new(socket), service.clone())
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
