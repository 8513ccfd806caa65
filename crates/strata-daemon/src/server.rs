//! The listeners (TCP, and a Unix socket when configured) and the router.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use http::{Method, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, UnixListener};

use crate::http::{ApiError, Req, Resp, json, query, respond};
use crate::node::Node;
use crate::{api, auth, local, metrics, pages, s3};

/// A running daemon.
pub struct Server {
    /// The node served.
    pub node: Arc<Node>,
    /// The TCP address it listens on (the port is known even when 0 was asked).
    pub addr: SocketAddr,
    /// The Unix socket served too, if any.
    pub socket: Option<PathBuf>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Binds the listeners and starts serving on the current runtime.
    pub async fn start(node: Arc<Node>) -> std::io::Result<Self> {
        metrics::install();
        let tcp = TcpListener::bind(node.config.listen).await?;
        let addr = tcp.local_addr()?;
        let mut tasks = vec![tokio::spawn(accept_tcp(tcp, node.clone()))];
        let socket = node.config.socket.clone();
        if let Some(path) = &socket {
            use std::os::unix::fs::FileTypeExt;
            if let Ok(m) = std::fs::symlink_metadata(path)
                && !m.file_type().is_socket()
            {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!(
                        "{}: exists and is not a socket; not replacing it",
                        path.display()
                    ),
                ));
            }
            if path.exists() {
                // A socket left by a daemon that died; a live one would refuse the bind below
                // only after we removed it, so check first that nobody answers.
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::AddrInUse,
                        format!("{}: another daemon is listening", path.display()),
                    ));
                }
                std::fs::remove_file(path)?;
            }
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let l = UnixListener::bind(path)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
            tasks.push(tokio::spawn(accept_unix(l, node.clone())));
        }
        Ok(Self {
            node,
            addr,
            socket,
            tasks,
        })
    }

    /// Stops accepting (connections being served finish on their own).
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(p) = &self.socket {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_tcp(l: TcpListener, node: Arc<Node>) {
    let loopback = node.config.listen.ip().is_loopback();
    loop {
        let Ok((sock, _)) = l.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let _ = sock.set_nodelay(true);
        serve(TokioIo::new(sock), node.clone(), loopback);
    }
}

async fn accept_unix(l: UnixListener, node: Arc<Node>) {
    loop {
        let Ok((sock, _)) = l.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        // The socket's file mode decides who connects; the Host rule does not apply.
        serve(TokioIo::new(sock), node.clone(), false);
    }
}

fn serve<I>(io: I, node: Arc<Node>, loopback: bool)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let svc = service_fn(move |req| {
            let node = node.clone();
            async move { Ok::<_, Infallible>(handle(node, req, loopback).await) }
        });
        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
            .serve_connection(io, svc)
            .await;
    });
}

/// Which route a path is, for metrics labels.
fn route_name(path: &str) -> &'static str {
    match path.trim_start_matches('/').split('/').next().unwrap_or("") {
        "" => "root",
        "healthz" => "healthz",
        "metrics" => "metrics",
        "v1" => "v1",
        "api" => "api",
        "dashboard" | "workbench" | "static" => "pages",
        _ => "s3",
    }
}

async fn handle(node: Arc<Node>, req: Req, loopback: bool) -> Resp {
    let t = Instant::now();
    let path = req.uri().path().to_string();
    let route = route_name(&path);
    let q = query(&req);
    let resp = match auth::check(
        req.headers(),
        &q,
        node.config.token.as_ref().map(|t| t.expose()),
        loopback,
    ) {
        Err(e) => {
            metrics::error(e.kind);
            if route == "s3" || route == "root" && is_s3(&req) {
                s3::error(&e, &path)
            } else {
                e.to_json()
            }
        }
        Ok(()) => {
            let from_query = node.config.token.is_some() && q.contains_key("token");
            let mut r = dispatch(&node, req, &path, route).await;
            if from_query && route == "pages" {
                // A page opened with ?token=: the browser keeps it for the page's own requests.
                if let Some(t) = &node.config.token
                    && let Ok(v) = http::HeaderValue::from_str(&format!(
                        "{}={}; HttpOnly; SameSite=Strict; Path=/",
                        auth::COOKIE,
                        t.expose()
                    ))
                {
                    r.headers_mut().insert(http::header::SET_COOKIE, v);
                }
            }
            r
        }
    };
    metrics::request(route, resp.status().as_u16(), t.elapsed().as_secs_f64());
    resp
}

/// Whether a request to `/` comes from an S3 client (signed) rather than a browser.
fn is_s3(req: &Req) -> bool {
    req.headers().contains_key("x-amz-date")
        || req.headers().contains_key("x-amz-content-sha256")
        || req
            .headers()
            .get(http::header::AUTHORIZATION)
            .is_some_and(|v| v.as_bytes().starts_with(b"AWS4-"))
}

async fn dispatch(node: &Arc<Node>, req: Req, path: &str, route: &'static str) -> Resp {
    let method = req.method().clone();
    let result: Result<Resp, ApiError> = match (route, &method, path) {
        ("root", _, _) if is_s3(&req) => Ok(s3::handle(node, &req).await),
        ("root", &Method::GET, _) => Ok(redirect("/dashboard")),
        ("healthz", &Method::GET, "/healthz") => Ok(json(
            StatusCode::OK,
            &serde_json::json!({"status": "ok", "uptime_secs": node.started.elapsed().as_secs_f64()}),
        )),
        ("metrics", &Method::GET, "/metrics") => Ok(respond(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            metrics::render(node),
        )),
        ("v1", &Method::GET, "/v1/stat") => local::stat(node, &req).await,
        ("v1", &Method::GET, "/v1/list") => local::list(node, &req).await,
        ("v1", &Method::GET, "/v1/object") => local::object(node, &req).await,
        ("v1", &Method::GET, "/v1/blocks") => local::blocks(node, &req).await,
        ("v1", &Method::POST, "/v1/warm") => crate::warm::start(node, &req).await,
        ("v1", &Method::GET, "/v1/warm") => crate::warm::status(node, &req).await,
        ("api", &Method::GET, "/api/stats") => Ok(api::stats(node)),
        ("api", &Method::GET, "/api/scenario") => Ok(respond(
            StatusCode::OK,
            "application/toml",
            api::DEFAULT_SCENARIO,
        )),
        ("api", &Method::POST, "/api/plan") => api::plan(req).await,
        ("api", &Method::GET, "/api/personas") => Ok(api::personas()),
        ("api", &Method::GET, p) if p.starts_with("/api/personas/") => {
            api::persona(&p["/api/personas/".len()..]).await
        }
        ("api", &Method::POST, "/api/probe") => api::probe(node).await,
        ("api", &Method::GET, "/api/jobs") => Ok(api::jobs(node)),
        ("api", &Method::POST, p) if p.starts_with("/api/jobs/") => {
            let name = p["/api/jobs/".len()..].to_string();
            api::report(node, &name, req).await
        }
        ("pages", &Method::GET, p) => {
            pages::get(p).ok_or_else(|| ApiError::not_found("NotFound", format!("no page {p}")))
        }
        ("s3", _, _) => Ok(s3::handle(node, &req).await),
        (_, m, p) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no route {m} {p}"),
        )),
    };
    match result {
        Ok(r) => r,
        Err(e) => {
            metrics::error(e.kind);
            e.to_json()
        }
    }
}

fn redirect(to: &'static str) -> Resp {
    let mut r = respond(StatusCode::FOUND, "text/plain", "");
    r.headers_mut()
        .insert(http::header::LOCATION, http::HeaderValue::from_static(to));
    r
}
