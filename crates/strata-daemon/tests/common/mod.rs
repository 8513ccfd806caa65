//! A daemon in the test process, in front of the in-process S3 server behind the link
//! emulator, with a few objects of known content.

#![allow(dead_code)]

use std::sync::Arc;

use bytes::Bytes;
use strata_cache::{CacheLayer, CacheSettings};
use strata_config::{Env, SizeValue, Sources};
use strata_daemon::{DaemonConfig, DaemonFlags, Node, Server};
use strata_daemon_client::DaemonClient;
use strata_store::{StoreConfig, StoreUrl};
use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, S3Server};

pub struct Rig {
    pub s3: S3Server,
    pub emu: LinkEmulator,
    pub store: strata_store::Store,
    pub server: Server,
    pub cache_dir: tempfile::TempDir,
    pub base: String,
}

/// Bytes that differ at every offset, so a misplaced range shows.
pub fn content(seed: u64, len: usize) -> Bytes {
    Bytes::from(strata_testkit::data::bytes(seed, len))
}

pub struct Options {
    pub token: Option<String>,
    pub listen: Option<String>,
    pub dram: u64,
    pub block_size: u64,
    /// Serve a Unix socket too (in the cache's temporary directory).
    pub socket: bool,
    /// Directories whose files local clients may read (`--local-root`).
    pub local_roots: Vec<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            token: None,
            listen: None,
            dram: 64 << 20,
            block_size: 1 << 20,
            socket: false,
            local_roots: Vec::new(),
        }
    }
}

impl Rig {
    pub async fn start(o: Options) -> Self {
        let s3 = S3Server::start();
        let mut p = LinkProfile::local();
        p.first_byte_latency = std::time::Duration::from_millis(2);
        let emu = LinkEmulator::start(s3.addr(), p);
        let cache_dir = tempfile::tempdir().expect("tmp");
        let layer = s3.config_layer_through(&emu);
        let cfg = StoreConfig::from_layer(&layer).expect("config");
        let store = strata_store::Store::open(&s3.url(""), &cfg).expect("store");
        let env: Vec<(&str, &str)> = o
            .token
            .iter()
            .map(|t| ("STRATA_TOKEN", t.as_str()))
            .collect();
        let mut sources = Sources::load(None, Env::from_pairs(&env)).expect("sources");
        layer.apply(&mut sources);
        sources.set_flags::<CacheSettings>(CacheLayer {
            dir: Some(cache_dir.path().join("cache").display().to_string()),
            dram_size: Some(SizeValue::Bytes(o.dram)),
            block_size: Some(SizeValue::Bytes(o.block_size)),
            // The host disk may be nearly full (a CI build fills it); these tests are not
            // about the free-space floor, which would turn the NVMe tier into pass-through.
            min_free_fraction: Some(0.0),
            ..Default::default()
        });
        let flags = DaemonFlags {
            listen: Some(o.listen.unwrap_or_else(|| "127.0.0.1:0".into())),
            socket: o.socket.then(|| cache_dir.path().join("run/strata.sock")),
            buckets: vec![format!("train=s3://{}/data", s3.bucket())],
            local_roots: o.local_roots.clone(),
        };
        let dc = DaemonConfig::resolve(&sources, &flags).expect("daemon config");
        let node = Node::open(dc).expect("node");
        let server = Server::start(node).await.expect("server");
        let base = format!("http://{}", server.addr);
        Self {
            s3,
            emu,
            store,
            server,
            cache_dir,
            base,
        }
    }

    pub fn node(&self) -> &Arc<Node> {
        &self.server.node
    }

    /// Puts `len` bytes of `content(seed)` at `data/KEY`; returns them.
    pub async fn put(&self, key: &str, seed: u64, len: usize) -> Bytes {
        let b = content(seed, len);
        self.store
            .put(&format!("data/{key}"), b.clone())
            .await
            .expect("put");
        b
    }

    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/data/{key}", self.s3.bucket())
    }

    pub fn store_url(&self, key: &str) -> StoreUrl {
        StoreUrl::parse(&self.url(key)).expect("url")
    }

    pub fn client(&self) -> DaemonClient {
        DaemonClient::new(&self.base, None).expect("client")
    }
}

/// A raw HTTP request to the daemon: (status, headers, body).
pub async fn raw(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, http::HeaderMap, Bytes) {
    try_raw(base, method, path, headers, body)
        .await
        .expect("response")
}

/// Like [`raw`], with the connection's failure as an error (a server that refuses a body
/// may close the connection while the client still writes it).
pub async fn try_raw(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, http::HeaderMap, Bytes), hyper::Error> {
    use http_body_util::{BodyExt, Full};
    let hostport = base.trim_start_matches("http://").to_string();
    let s = tokio::net::TcpStream::connect(&hostport)
        .await
        .expect("connect");
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(s))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut b = http::Request::builder().method(method).uri(path);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        b = b.header("host", &hostport);
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request");
    let resp = send.send_request(req).await?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok((parts.status.as_u16(), parts.headers, body))
}

/// One request and what the daemon must answer: the status, and text the body must hold
/// (empty: anything) and must not hold (empty: nothing checked).
pub struct Case<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    pub status: u16,
    pub contains: &'a str,
    pub lacks: &'a str,
    /// What the case is about, for the failure message.
    pub why: &'a str,
}

impl Default for Case<'_> {
    fn default() -> Self {
        Self {
            method: "GET",
            path: "/",
            headers: &[],
            body: b"",
            status: 200,
            contains: "",
            lacks: "",
            why: "",
        }
    }
}

/// Sends every case to the daemon at `base` and checks its answer; a failure names the case.
pub async fn expect_all(base: &str, cases: &[Case<'_>]) {
    for c in cases {
        let (st, _, body) = raw(base, c.method, c.path, c.headers, c.body).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(st, c.status, "{} {} ({}): {text}", c.method, c.path, c.why);
        assert!(
            text.contains(c.contains),
            "{} {} ({}): the body lacks {:?}: {text}",
            c.method,
            c.path,
            c.why,
            c.contains
        );
        assert!(
            c.lacks.is_empty() || !text.contains(c.lacks),
            "{} {} ({}): the body holds {:?}",
            c.method,
            c.path,
            c.why,
            c.lacks
        );
    }
}
