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

use http::{HeaderValue, StatusCode, header};
use strata_cache::Why;
use strata_store::StoreUrl;

use crate::http::{ApiError, Req, Resp, json, object_response, parse_range, query};
use crate::node::Node;

/// The `url` parameter, if the daemon serves it to local clients
/// ([`crate::DaemonConfig::admits`]: local files only under its local roots).
pub(crate) fn url_param(
    node: &Node,
    q: &std::collections::HashMap<String, String>,
) -> Result<StoreUrl, ApiError> {
    let u = q
        .get("url")
        .ok_or_else(|| ApiError::bad_request("the url parameter is missing"))?;
    let url = StoreUrl::parse(u)?;
    if !node.config.admits(&url) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            format!(
                "{url}: the daemon serves local files only under its local roots ({}); add one with `strata serve --local-root DIR` or daemon.local_roots",
                if node.config.local_roots.is_empty() {
                    "none set".to_string()
                } else {
                    node.config
                        .local_roots
                        .iter()
                        .map(|r| r.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        ));
    }
    Ok(url)
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
    let url = url_param(node, &q)?;
    let r = node.resolve(&url).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"url": url.to_string(), "size": r.object.size, "etag": &*r.object.version}),
    ))
}

/// `/v1/list`.
pub async fn list(node: &Arc<Node>, req: &Req) -> Result<Resp, ApiError> {
    let q = query(req);
    let url = url_param(node, &q)?;
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
    let url = url_param(node, &q)?;
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
    let (etag, size) = (object.version.clone(), object.size);
    let body = node
        .body(&url, store, object, range.clone(), w, guard)
        .await?;
    let mut resp = object_response(body, &range, size, &etag, partial);
    resp.headers_mut()
        .insert("x-strata-size", HeaderValue::from(size));
    Ok(resp)
}

/// `/v1/blocks`.
pub async fn blocks(node: &Arc<Node>, req: &Req) -> Result<Resp, ApiError> {
    let q = query(req);
    let url = url_param(node, &q)?;
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
