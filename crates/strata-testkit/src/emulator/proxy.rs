//! The proxy: accepts client connections, applies the profile to each request, forwards it
//! upstream over a pooled client, and shapes both bodies.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::Rng;
use strata_store::token_bucket::TokenBucket;
use tokio::net::TcpListener;

use super::body::{Body, BoxError, Shape, shaped};
use super::{LinkProfile, Shared, Stats, bucket_for, rate_and_burst};

/// Per-connection state: the connection's own bandwidth buckets.
struct Conn {
    down: Arc<TokenBucket>,
    up: Arc<TokenBucket>,
    rate: std::sync::Mutex<Option<u64>>,
}

impl Conn {
    fn new(rate: Option<u64>) -> Self {
        Self {
            down: Arc::new(bucket_for(rate)),
            up: Arc::new(bucket_for(rate)),
            rate: std::sync::Mutex::new(rate),
        }
    }

    /// Follows profile changes made while the connection is open.
    fn sync(&self, rate: Option<u64>) {
        let mut cur = self.rate.lock().unwrap_or_else(|e| e.into_inner());
        if *cur != rate {
            let (r, b) = rate_and_burst(rate);
            self.down.set_rate(r, b);
            self.up.set_rate(r, b);
            *cur = rate;
        }
    }
}

/// Counts a request as in flight until dropped (when its response body ends).
struct InFlight {
    stats: Arc<Stats>,
    count: u64,
}

impl InFlight {
    fn enter(stats: &Arc<Stats>) -> Self {
        let count = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        stats.peak_in_flight.fetch_max(count, Ordering::SeqCst);
        Self {
            stats: stats.clone(),
            count,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

type Upstream = Client<HttpConnector, Body>;

pub(crate) async fn serve(listener: std::net::TcpListener, shared: Arc<Shared>) {
    let listener = TcpListener::from_std(listener).expect("tokio listener");
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Upstream = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build(connector);
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let _ = socket.set_nodelay(true);
        shared.stats.connections.fetch_add(1, Ordering::Relaxed);
        let per_conn = shared
            .profile
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .per_conn_bytes_per_sec;
        let conn = Arc::new(Conn::new(per_conn));
        let (shared, client) = (shared.clone(), client.clone());
        let svc = service_fn(move |req| handle(req, shared.clone(), conn.clone(), client.clone()));
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), svc)
                .await;
        });
    }
}

/// What the dice decided for one request, drawn before any await (the RNG is per thread).
struct Fate {
    error: Option<(StatusCode, &'static str, &'static str)>,
    latency: Duration,
    reset_draw: bool,
    stall_draw: bool,
    cut_fraction: f64,
}

fn draw(p: &LinkProfile) -> Fate {
    let mut rng = rand::rng();
    let error = (rng.random::<f64>() < p.error_rate).then(|| {
        if rng.random_bool(0.5) {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "SlowDown",
                "Please reduce your request rate.",
            )
        } else {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "We encountered an internal error. Please try again.",
            )
        }
    });
    let jitter = p.latency_jitter.mul_f64(rng.random::<f64>());
    Fate {
        error,
        latency: p.first_byte_latency + jitter,
        reset_draw: rng.random::<f64>() < p.reset_rate,
        stall_draw: rng.random::<f64>() < p.stall_rate,
        cut_fraction: rng.random::<f64>(),
    }
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    conn: Arc<Conn>,
    client: Upstream,
) -> Result<Response<Body>, Infallible> {
    let stats = shared.stats.clone();
    stats.requests.fetch_add(1, Ordering::Relaxed);
    let profile = shared
        .profile
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let in_flight = InFlight::enter(&stats);
    if profile
        .max_in_flight
        .is_some_and(|max| in_flight.count > max as u64)
    {
        stats.overload_rejections.fetch_add(1, Ordering::Relaxed);
        return Ok(s3_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SlowDown",
            "Please reduce your request rate.",
        ));
    }
    let fate = draw(&profile);
    if let Some((status, code, msg)) = fate.error {
        stats.injected_errors.fetch_add(1, Ordering::Relaxed);
        return Ok(s3_error(status, code, msg));
    }
    if !fate.latency.is_zero() {
        tokio::time::sleep(fate.latency).await;
    }
    conn.sync(profile.per_conn_bytes_per_sec);
    let mut buckets = Vec::new();
    let capped = |b: &Arc<TokenBucket>, on: bool| on.then(|| b.clone());
    buckets.extend(capped(&conn.up, profile.per_conn_bytes_per_sec.is_some()));
    buckets.extend(capped(
        &shared.total_up,
        profile.total_bytes_per_sec.is_some(),
    ));

    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = match format!("http://{}{}", shared.upstream, path).parse() {
        Ok(u) => u,
        Err(_) => {
            return Ok(s3_error(
                StatusCode::BAD_REQUEST,
                "InvalidURI",
                "bad request URI",
            ));
        }
    };
    let up_shape = Shape {
        buckets,
        ..Shape::default()
    };
    let upstream_req = Request::from_parts(parts, shaped(body, up_shape, stats.clone(), false, ()));
    let resp = match client.request(upstream_req).await {
        Ok(r) => r,
        Err(e) => {
            return Ok(s3_error(
                StatusCode::BAD_GATEWAY,
                "BadGateway",
                &format!("link emulator: upstream failed: {e}"),
            ));
        }
    };
    let (parts, body) = resp.into_parts();
    let len: u64 = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cut_at = (len as f64 * fate.cut_fraction) as u64;
    let mut buckets = Vec::new();
    buckets.extend(capped(&conn.down, profile.per_conn_bytes_per_sec.is_some()));
    buckets.extend(capped(
        &shared.total_down,
        profile.total_bytes_per_sec.is_some(),
    ));
    let down_shape = Shape {
        buckets,
        reset_after: (fate.reset_draw && len > 0).then_some(cut_at),
        stall_after: (fate.stall_draw && len > 0).then_some((cut_at, profile.stall)),
    };
    Ok(Response::from_parts(
        parts,
        shaped(body, down_shape, stats, true, in_flight),
    ))
}

/// An S3-style XML error response.
fn s3_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><Resource></Resource><RequestId>link-emulator</RequestId></Error>"
    );
    let body = Full::new(Bytes::from(xml))
        .map_err(|e: Infallible| -> BoxError { match e {} })
        .boxed_unsync();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        "application/xml".parse().expect("static"),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(hyper::header::RETRY_AFTER, "1".parse().expect("static"));
    }
    resp
}
