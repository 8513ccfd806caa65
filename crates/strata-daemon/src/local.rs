//! The API local clients read through (`strata … --daemon`, the Python package):
//!
//! - `GET /v1/stat?url=URL`: `{url, size, etag}`.
//! - `GET /v1/list?url=PREFIX`: `{objects: [{key, size, etag}]}` (keys relative to the
//!   bucket).
//! - `GET /v1/object?url=URL[&etag=E&size=N]` with an optional `Range`: the bytes, through
//!   the node's cache. With `etag`, the read is pinned to that version (a changed object
//!   answers 412).
//! - `GET /v1/blocks?url=URL&etag=E&size=N&start=A&end=B`: the block files on the NVMe
//!   tier that hold bytes A..B, for a client on the same machine to read itself (no copy
//!   through the daemon): `{complete, pieces: [{path, key, from, to}]}`, where `key` is the
//!   key text the file's header must carry and `from..to` the part of its payload wanted.
//!   `complete` is false when some block is not on NVMe; the client then reads
//!   `/v1/object`.
//!
//! A request with `x-strata-why: prefetch` counts as a prefetch (in the prefetch queue
//! gauge, and as a prefetch fetch in the cache).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::TryStreamExt;
use http::{HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use strata_cache::Why;
use strata_store::StoreUrl;

use crate::http::{ApiError, Req, Resp, json, parse_range, query};
use crate::node::Node;

fn url_param(q: &std::collections::HashMap<String, String>) -> Result<StoreUrl, ApiError> {
    let u = q
        .get("url")
        .ok_or_else(|| ApiError::bad_request("the url parameter is missing"))?;
    Ok(StoreUrl::parse(u)?)
}

fn num(q: &std::collections::HashMap<String, String>, k: &str) -> Result<Option<u64>, ApiError> {
    q.get(k)
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("{k}={v:?} is not a whole number")))
        })
        .transpose()
}

fn why(req: &Req) -> Why {
    match req.headers().get("x-strata-why").map(|v| v.as_bytes()) {
        Some(b"prefetch") => Why::Prefetch,
        _ => Why::Demand,
    }
}

/// Counts a prefetch read for as long as it is alive.
struct PrefetchGuard(Option<Arc<Node>>);
impl Drop for PrefetchGuard {
    fn drop(&mut self) {
        if let Some(n) = &self.0 {
            n.prefetch_in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
fn prefetch_guard(node: &Arc<Node>, why: Why) -> PrefetchGuard {
    if why == Why::Prefetch {
        node.prefetch_in_flight.fetch_add(1, Ordering::Relaxed);
        PrefetchGuard(Some(node.clone()))
    } else {
        PrefetchGuard(None)
    }
}

/// `/v1/stat`.
pub async fn stat(node: &Arc<Node>, req: &Req) -> Result<Resp, ApiError> {
    let q = query(req);
    let url = url_param(&q)?;
    let r = node.resolve(&url).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"url": url.to_string(), "size": r.object.size, "etag": &*r.object.version}),
    ))
}

/// `/v1/list`.
pub async fn list(node: &Arc<Node>, req: &Req) -> Result<Resp, ApiError> {
    let q = query(req);
    let url = url_param(&q)?;
    let store = node.store(&url)?;
    let objects = store.list(url.key()).await?;
    let v: Vec<_> = objects
        .iter()
        .map(|o| serde_json::json!({"key": o.key, "size": o.size, "etag": o.e_tag}))
        .collect();
    Ok(json(StatusCode::OK, &serde_json::json!({"objects": v})))
}

/// `/v1/object`.
pub async fn object(node: &Arc<Node>, req: &Req) -> Result<Resp, ApiError> {
    let q = query(req);
    let url = url_param(&q)?;
    let (store, object) = match (q.get("etag"), num(&q, "size")?) {
        (Some(e), Some(size)) => node.pinned(&url, e, size)?,
        _ => {
            let r = node.resolve(&url).await?;
            (r.store, r.object)
        }
    };
    let range_header = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let range = parse_range(range_header, object.size)?;
    let partial = range.is_some();
    let range = range.unwrap_or(0..object.size);
    let w = why(req);
    let guard = prefetch_guard(node, w);
    let etag = object.version.clone();
    let size = object.size;
    let len = range.end - range.start;
    let start = range.start;
    let node2 = node.clone();
    let url2 = url.clone();
    let body = node
        .open_stream(store, object, range.clone(), w)
        .await
        .inspect_err(|_| node.forget(&url))?
        .map_ok(Frame::data)
        .map_err(move |e| {
            // A pinned read of a changed object: forget the HEAD answer so the next read asks.
            node2.forget(&url2);
            crate::metrics::error(e.kind().label());
            Box::new(e) as crate::http::BoxError
        });
    let body = StreamBody::new(futures::StreamExt::map(body, move |f| {
        let _keep = &guard;
        f
    }))
    .boxed_unsync();
    let mut resp = http::Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        h.insert(header::ETAG, v);
    }
    h.insert("x-strata-size", HeaderValue::from(size));
    if partial {
        let cr = format!("bytes {}-{}/{}", start, start + len - 1, size);
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&cr).expect("ASCII"),
        );
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(resp)
}

/// `/v1/blocks`.
pub async fn blocks(node: &Arc<Node>, req: &Req) -> Result<Resp, ApiError> {
    let q = query(req);
    let url = url_param(&q)?;
    let etag = q
        .get("etag")
        .ok_or_else(|| ApiError::bad_request("the etag parameter is missing"))?;
    let size = num(&q, "size")?.ok_or_else(|| ApiError::bad_request("size is missing"))?;
    let start = num(&q, "start")?.unwrap_or(0);
    let end = num(&q, "end")?.unwrap_or(size).min(size);
    if start > end {
        return Err(ApiError::bad_request(format!(
            "start {start} is after end {end}"
        )));
    }
    let (store, object) = node.pinned(&url, etag, size)?;
    let w = why(req);
    let _guard = prefetch_guard(node, w);
    let g = node.cache.geometry();
    let mut pieces = Vec::new();
    let mut complete = true;
    for i in g.blocks(&(start..end), size) {
        let (_, path) = node
            .cache
            .get_block_file(&store, &object, i, w)
            .await
            .inspect_err(|_| node.forget(&url))?;
        let r = g.block_range(i, size);
        let from = start.max(r.start) - r.start;
        let to = end.min(r.end) - r.start;
        match path {
            Some(p) => pieces.push(serde_json::json!({
                "path": p.display().to_string(),
                "key": object.key_text(i),
                "from": from,
                "to": to,
            })),
            None => complete = false,
        }
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"complete": complete, "pieces": pieces}),
    ))
}
