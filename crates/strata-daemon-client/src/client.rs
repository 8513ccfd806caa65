//! The client of a node's daemon, for the CLI (`--daemon`) and the Python package
//! (`STRATA_DAEMON`, `strata.connect()`).
//!
//! An address is `http://HOST:PORT`, `HOST:PORT`, or `unix:/path/to/socket`. The token, if
//! the daemon wants one, comes from `$STRATA_TOKEN`.
//!
//! Reads of a known object version ([`DaemonClient::read_pinned`]) first ask the daemon for
//! the block files that hold the bytes (`/v1/blocks`) and read them from the NVMe tier
//! directly, verifying each file's CRC32C and key: the bytes are not copied through the
//! daemon. When that is not possible (another machine, no permission to read the cache
//! directory, a block evicted meanwhile, no NVMe tier), the bytes come through the socket
//! (`/v1/object`) instead.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use strata_config::Secret;

use crate::wire::{JobReport, WarmStatus};

/// Why a daemon request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The daemon could not be reached.
    #[error("cannot reach the Strata daemon at {addr}: {source} (is `strata serve` running?)")]
    Connect {
        /// The daemon's address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The address does not parse.
    #[error("daemon address {addr:?}: {reason}")]
    Address {
        /// The address given.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The daemon answered with an error.
    #[error("the daemon answered {status} for {what}: {message}")]
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// The object or operation asked for.
        what: String,
        /// The daemon's message.
        message: String,
    },
    /// The connection failed mid-request.
    #[error("talking to the daemon at {addr}: {source}")]
    Http {
        /// The daemon's address.
        addr: String,
        /// The cause.
        #[source]
        source: hyper::Error,
    },
    /// The daemon's answer does not have the expected shape.
    #[error("the daemon's answer for {what} is malformed: {reason}")]
    Malformed {
        /// The object or operation asked for.
        what: String,
        /// What is wrong with the answer.
        reason: String,
    },
}

impl ClientError {
    /// The HTTP status, when the daemon answered with an error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
enum Endpoint {
    Tcp(String),
    Unix(PathBuf),
}

/// A connection pool to one daemon. Cheap to clone.
#[derive(Clone)]
pub struct DaemonClient {
    endpoint: Endpoint,
    addr: String,
    token: Option<Secret>,
    idle: Arc<Mutex<Vec<SendRequest<Full<Bytes>>>>>,
    /// Whether block files may be read directly (the daemon is on this machine).
    handoff: bool,
}

impl std::fmt::Debug for DaemonClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonClient")
            .field("addr", &self.addr)
            .field("token", &self.token)
            .finish()
    }
}

/// An answer.
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl DaemonClient {
    /// A client of the daemon at `addr`; `token` is sent as a bearer token.
    pub fn new(addr: &str, token: Option<Secret>) -> Result<Self, ClientError> {
        let bad = |reason: &str| ClientError::Address {
            addr: addr.to_string(),
            reason: reason.to_string(),
        };
        let (endpoint, local) = if let Some(p) = addr.strip_prefix("unix:") {
            if p.is_empty() {
                return Err(bad("the socket path is empty"));
            }
            (Endpoint::Unix(PathBuf::from(p)), true)
        } else {
            let hostport = addr
                .strip_prefix("http://")
                .unwrap_or(addr)
                .trim_end_matches('/');
            if addr.starts_with("https://") {
                return Err(bad(
                    "https is not supported; the daemon is reached on the node",
                ));
            }
            let (host, port) = hostport
                .rsplit_once(':')
                .ok_or_else(|| bad("use http://HOST:PORT or unix:/path"))?;
            port.parse::<u16>()
                .map_err(|_| bad("the port is not a number"))?;
            let h = host.trim_start_matches('[').trim_end_matches(']');
            let local = h == "localhost"
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            (Endpoint::Tcp(hostport.to_string()), local)
        };
        Ok(Self {
            endpoint,
            addr: addr.to_string(),
            token,
            idle: Arc::new(Mutex::new(Vec::new())),
            handoff: local,
        })
    }

    /// The client `$STRATA_DAEMON` names (token from `$STRATA_TOKEN`), if it is set.
    pub fn from_env() -> Option<Result<Self, ClientError>> {
        let addr = std::env::var("STRATA_DAEMON")
            .ok()
            .filter(|a| !a.is_empty())?;
        Some(Self::new(&addr, Self::token_from_env()))
    }

    /// A client of the daemon at `addr` with the token from `$STRATA_TOKEN`.
    pub fn with_env_token(addr: &str) -> Result<Self, ClientError> {
        Self::new(addr, Self::token_from_env())
    }

    fn token_from_env() -> Option<Secret> {
        std::env::var("STRATA_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(Secret::new)
    }

    /// The address as given.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Turns off reading block files directly (every byte through the socket).
    pub fn without_handoff(mut self) -> Self {
        self.handoff = false;
        self
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let conn_err = |source| ClientError::Connect {
            addr: self.addr.clone(),
            source,
        };
        let http_err = |source| ClientError::Http {
            addr: self.addr.clone(),
            source,
        };
        match &self.endpoint {
            Endpoint::Tcp(hp) => {
                let s = tokio::net::TcpStream::connect(hp).await.map_err(conn_err)?;
                let _ = s.set_nodelay(true);
                let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
                    .await
                    .map_err(http_err)?;
                tokio::spawn(conn);
                Ok(send)
            }
            Endpoint::Unix(p) => {
                let s = tokio::net::UnixStream::connect(p).await.map_err(conn_err)?;
                let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
                    .await
                    .map_err(http_err)?;
                tokio::spawn(conn);
                Ok(send)
            }
        }
    }

    /// One request; `what` names it in errors. Connections are reused.
    pub async fn request(
        &self,
        method: http::Method,
        path_and_query: &str,
        headers: &[(&str, String)],
        body: Bytes,
        what: &str,
    ) -> Result<Answer, ClientError> {
        let host = match &self.endpoint {
            Endpoint::Tcp(hp) => hp.clone(),
            Endpoint::Unix(_) => "localhost".to_string(),
        };
        let mut last = None;
        // A pooled connection may have been closed by the daemon: one retry on a fresh one.
        for attempt in 0..2 {
            let pooled = if attempt == 0 {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    match idle.pop() {
                        Some(s) if s.is_ready() => break Some(s),
                        Some(_) => continue,
                        None => break None,
                    }
                }
            } else {
                None
            };
            let reused = pooled.is_some();
            let mut send = match pooled {
                Some(s) => s,
                None => self.connect().await?,
            };
            let mut b = Request::builder()
                .method(method.clone())
                .uri(path_and_query)
                .header(header::HOST, &host);
            if let Some(t) = &self.token {
                b = b.header(header::AUTHORIZATION, format!("Bearer {}", t.expose()));
            }
            for (k, v) in headers {
                b = b.header(*k, v);
            }
            let req = b
                .body(Full::new(body.clone()))
                .map_err(|e| ClientError::Malformed {
                    what: what.to_string(),
                    reason: e.to_string(),
                })?;
            let resp = match send.send_request(req).await {
                Ok(r) => r,
                Err(e) if reused => {
                    last = Some(e);
                    continue;
                }
                Err(e) => {
                    return Err(ClientError::Http {
                        addr: self.addr.clone(),
                        source: e,
                    });
                }
            };
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| ClientError::Http {
                    addr: self.addr.clone(),
                    source: e,
                })?
                .to_bytes();
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(send);
            if !parts.status.is_success() {
                let message = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
                return Err(ClientError::Status {
                    status: parts.status,
                    what: what.to_string(),
                    message,
                });
            }
            return Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            });
        }
        Err(ClientError::Http {
            addr: self.addr.clone(),
            source: last.expect("a failed attempt"),
        })
    }

    async fn get_json(&self, path: &str, what: &str) -> Result<serde_json::Value, ClientError> {
        let a = self
            .request(http::Method::GET, path, &[], Bytes::new(), what)
            .await?;
        serde_json::from_slice(&a.body).map_err(|e| ClientError::Malformed {
            what: what.to_string(),
            reason: e.to_string(),
        })
    }

    /// `/healthz`.
    pub async fn health(&self) -> Result<(), ClientError> {
        self.get_json("/healthz", "health").await.map(|_| ())
    }

    /// An object's size and ETag, as the daemon sees it.
    pub async fn stat(&self, url: &str) -> Result<(u64, String), ClientError> {
        let v = self
            .get_json(&format!("/v1/stat?{}", enc(&[("url", url)])), url)
            .await?;
        let size = v["size"].as_u64().ok_or_else(|| ClientError::Malformed {
            what: url.to_string(),
            reason: "no size".into(),
        })?;
        Ok((size, v["etag"].as_str().unwrap_or("").to_string()))
    }

    /// The objects under a prefix URL: (key, size).
    pub async fn list(&self, url: &str) -> Result<Vec<(String, u64)>, ClientError> {
        let v = self
            .get_json(&format!("/v1/list?{}", enc(&[("url", url)])), url)
            .await?;
        Ok(v["objects"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|o| Some((o["key"].as_str()?.to_string(), o["size"].as_u64()?)))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `range` of the object at `url` (the whole object if None), in its current version.
    pub async fn read(&self, url: &str, range: Option<Range<u64>>) -> Result<Bytes, ClientError> {
        let mut h = Vec::new();
        if let Some(r) = &range {
            if r.start >= r.end {
                return Ok(Bytes::new());
            }
            h.push(("range", format!("bytes={}-{}", r.start, r.end - 1)));
        }
        let a = self
            .request(
                http::Method::GET,
                &format!("/v1/object?{}", enc(&[("url", url)])),
                &h,
                Bytes::new(),
                url,
            )
            .await?;
        Ok(a.body)
    }

    /// `range` of version (`etag`, `size`) of the object at `url`: from the block files when
    /// the daemon is on this machine, else through the socket. `prefetch` marks the read as
    /// a prefetch in the daemon's counters.
    pub async fn read_pinned(
        &self,
        url: &str,
        etag: &str,
        size: u64,
        range: Range<u64>,
        prefetch: bool,
    ) -> Result<Bytes, ClientError> {
        if range.start >= range.end {
            return Ok(Bytes::new());
        }
        let why = if prefetch { "prefetch" } else { "demand" };
        let (s, e, n) = (
            range.start.to_string(),
            range.end.to_string(),
            size.to_string(),
        );
        if self.handoff {
            let q = enc(&[
                ("url", url),
                ("etag", etag),
                ("size", &n),
                ("start", &s),
                ("end", &e),
            ]);
            let a = self
                .request(
                    http::Method::GET,
                    &format!("/v1/blocks?{q}"),
                    &[("x-strata-why", why.to_string())],
                    Bytes::new(),
                    url,
                )
                .await?;
            if let Some(b) = read_pieces(&a.body, range.end - range.start) {
                return Ok(b);
            }
        }
        let q = enc(&[("url", url), ("etag", etag), ("size", &n)]);
        let a = self
            .request(
                http::Method::GET,
                &format!("/v1/object?{q}"),
                &[
                    ("range", format!("bytes={}-{}", range.start, range.end - 1)),
                    ("x-strata-why", why.to_string()),
                ],
                Bytes::new(),
                url,
            )
            .await?;
        if a.body.len() as u64 != range.end - range.start {
            return Err(ClientError::Malformed {
                what: url.to_string(),
                reason: format!(
                    "{} bytes for a range of {}",
                    a.body.len(),
                    range.end - range.start
                ),
            });
        }
        Ok(a.body)
    }

    /// Starts hydrating the node's cache with what `url` names (everything under a prefix,
    /// else the object); poll [`DaemonClient::warm_status`] with the returned id.
    pub async fn warm_start(&self, url: &str) -> Result<WarmStatus, ClientError> {
        let a = self
            .request(
                http::Method::POST,
                &format!("/v1/warm?{}", enc(&[("url", url)])),
                &[],
                Bytes::new(),
                url,
            )
            .await?;
        warm_status_from(&a.body, url)
    }

    /// The status of warm-up `id`.
    pub async fn warm_status(&self, id: u64) -> Result<WarmStatus, ClientError> {
        let what = format!("warm-up {id}");
        let a = self
            .request(
                http::Method::GET,
                &format!("/v1/warm?id={id}"),
                &[],
                Bytes::new(),
                &what,
            )
            .await?;
        warm_status_from(&a.body, &what)
    }

    /// Hydrates the node's cache with what `url` names and waits until it is done, calling
    /// `progress` with each status (every [`WARM_POLL`]). A failed warm-up is an error.
    pub async fn warm(
        &self,
        url: &str,
        progress: &(dyn Fn(&WarmStatus) + Send + Sync),
    ) -> Result<WarmStatus, ClientError> {
        let mut st = self.warm_start(url).await?;
        let id = st.id;
        loop {
            progress(&st);
            if st.finished {
                break;
            }
            tokio::time::sleep(WARM_POLL).await;
            st = self.warm_status(id).await?;
        }
        match &st.error {
            Some(e) => Err(ClientError::Status {
                status: StatusCode::BAD_GATEWAY,
                what: url.to_string(),
                message: format!("the warm-up failed: {e}"),
            }),
            None => Ok(st),
        }
    }

    /// Sends a job's report ([`JobReport`]).
    pub async fn report(&self, name: &str, r: &JobReport) -> Result<(), ClientError> {
        let body = serde_json::to_vec(r).expect("a report serializes");
        self.request(
            http::Method::POST,
            &format!("/api/jobs/{name}"),
            &[("content-type", "application/json".to_string())],
            Bytes::from(body),
            "job report",
        )
        .await
        .map(|_| ())
    }
}

/// How often [`DaemonClient::warm`] asks the daemon how far a warm-up has come.
pub const WARM_POLL: std::time::Duration = std::time::Duration::from_millis(200);

fn warm_status_from(body: &[u8], what: &str) -> Result<WarmStatus, ClientError> {
    serde_json::from_slice(body).map_err(|e| ClientError::Malformed {
        what: what.to_string(),
        reason: e.to_string(),
    })
}

fn enc(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The bytes of a `/v1/blocks` answer read from the block files, each verified; None when
/// any piece is missing or unreadable (the caller reads through the socket instead).
fn read_pieces(body: &[u8], want: u64) -> Option<Bytes> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    if !v["complete"].as_bool()? {
        return None;
    }
    let pieces = v["pieces"].as_array()?;
    let mut out = BytesMut::with_capacity(want as usize);
    let mut parts = Vec::with_capacity(pieces.len());
    for p in pieces {
        let path = std::path::Path::new(p["path"].as_str()?);
        let key = p["key"].as_str()?;
        let (from, to) = (p["from"].as_u64()? as usize, p["to"].as_u64()? as usize);
        let block = strata_cache::block_file::read(path, key).ok()?;
        if to > block.data.len() || from > to {
            return None;
        }
        parts.push(block.data.slice(from..to));
    }
    if parts.len() == 1 && parts[0].len() as u64 == want {
        return parts.pop();
    }
    for p in parts {
        out.extend_from_slice(&p);
    }
    (out.len() as u64 == want).then(|| out.freeze())
}
