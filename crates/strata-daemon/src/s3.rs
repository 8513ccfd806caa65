//! The S3-compatible read endpoint: unmodified S3 clients (boto3, s3torchconnector, the AWS
//! CLI) point their endpoint at the daemon and read through the node's cache.
//!
//! Path-style only (`http://127.0.0.1:7420/BUCKET/KEY`), for the buckets configured in
//! `[daemon.buckets]`, each mapped to an upstream bucket or prefix. Supported: `GET` object
//! (with one `Range`), `HEAD` object, `ListObjectsV2` (`GET /BUCKET?list-type=2`, with
//! `prefix`, `delimiter`, `max-keys`, `continuation-token`, `start-after`), `HEAD` bucket and
//! `ListBuckets`. Anything else answers `NotImplemented`; writes answer `AccessDenied`
//! (the endpoint is read-only). Errors are S3's XML.
//!
//! Signatures are not verified (the daemon holds no S3 secrets of its clients): on loopback
//! any credentials are accepted; with a token, the access key id must be the token.

use std::sync::Arc;

use http::{HeaderValue, Method, StatusCode, header};
use strata_cache::Why;
use strata_store::StoreUrl;

use crate::http::{
    ApiError, Req, Resp, escape, http_date, object_response, parse_range, query, respond,
};
use crate::node::Node;

/// First path segments the daemon's own routes use; no bucket may take them.
pub const RESERVED: &[&str] = &[
    "api",
    "v1",
    "metrics",
    "healthz",
    "dashboard",
    "workbench",
    "static",
];

/// An S3 XML error.
pub fn error(e: &ApiError, resource: &str) -> Resp {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><Resource>{}</Resource></Error>",
        e.code,
        escape(&e.message),
        escape(resource)
    );
    respond(e.status, "application/xml", body)
}

/// Splits `/bucket/key…` into the configured bucket's upstream URL and the key.
fn locate(node: &Node, path: &str) -> Result<(String, StoreUrl, String), ApiError> {
    let p = path.trim_start_matches('/');
    let (bucket, key) = p.split_once('/').unwrap_or((p, ""));
    let bucket = percent_decode(bucket)?;
    let key = percent_decode(key)?;
    let upstream = node.config.buckets.get(&bucket).ok_or_else(|| {
        ApiError::not_found(
            "NoSuchBucket",
            format!("the daemon serves no bucket {bucket:?} (see [daemon.buckets])"),
        )
    })?;
    Ok((bucket, upstream.clone(), key))
}

fn percent_decode(s: &str) -> Result<String, ApiError> {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| ApiError::bad_request("bad percent-encoding"))
}

/// The upstream URL of `key` under a bucket's upstream prefix. Keys that would escape the
/// prefix (`..`, empty segments) are refused.
fn upstream_key(upstream: &StoreUrl, key: &str) -> Result<StoreUrl, ApiError> {
    if key.is_empty() {
        return Err(ApiError::bad_request("the object key is empty"));
    }
    upstream.join(key).map_err(|e| {
        let mut a = ApiError::from(e);
        a.code = "InvalidArgument";
        a
    })
}

/// Serves one S3 request.
pub async fn handle(node: &Arc<Node>, req: &Req) -> Resp {
    let path = req.uri().path().to_string();
    match route(node, req, &path).await {
        Ok(r) => r,
        Err(e) => {
            crate::metrics::error(e.kind);
            let mut r = error(&e, &path);
            if req.method() == Method::HEAD {
                *r.body_mut() = crate::http::full(bytes::Bytes::new());
            }
            r
        }
    }
}

async fn route(node: &Arc<Node>, req: &Req, path: &str) -> Result<Resp, ApiError> {
    if path == "/" {
        return list_buckets(node);
    }
    match *req.method() {
        Method::GET | Method::HEAD => {}
        Method::PUT | Method::POST | Method::DELETE => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "the daemon's S3 endpoint is read-only",
            ));
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                format!("{} is not supported", req.method()),
            ));
        }
    }
    let (bucket, upstream, key) = locate(node, path)?;
    let q = query(req);
    if key.is_empty() {
        if req.method() == Method::HEAD {
            return Ok(respond(StatusCode::OK, "application/xml", ""));
        }
        if q.get("list-type").map(String::as_str) == Some("2") {
            return list_objects_v2(node, &bucket, &upstream, &q).await;
        }
        if q.contains_key("location") {
            return Ok(respond(
                StatusCode::OK,
                "application/xml",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></LocationConstraint>",
            ));
        }
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "only ListObjectsV2 (list-type=2) is supported on a bucket",
        ));
    }
    get_object(node, req, &upstream, &key).await
}

fn list_buckets(node: &Node) -> Result<Resp, ApiError> {
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>strata</ID><DisplayName>strata</DisplayName></Owner><Buckets>",
    );
    let created = http_iso(chrono::DateTime::<chrono::Utc>::from(std::time::UNIX_EPOCH));
    for name in node.config.buckets.keys() {
        x.push_str(&format!(
            "<Bucket><Name>{}</Name><CreationDate>{created}</CreationDate></Bucket>",
            escape(name)
        ));
    }
    x.push_str("</Buckets></ListAllMyBucketsResult>");
    Ok(respond(StatusCode::OK, "application/xml", x))
}

fn http_iso(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

async fn get_object(
    node: &Arc<Node>,
    req: &Req,
    upstream: &StoreUrl,
    key: &str,
) -> Result<Resp, ApiError> {
    let url = upstream_key(upstream, key)?;
    let r = node.resolve(&url).await.map_err(|e| {
        let mut a = ApiError::from(e);
        if a.status == StatusCode::NOT_FOUND {
            a.message = format!("no object {key:?}");
        }
        a
    })?;
    let size = r.object.size;
    let range_header = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let range = parse_range(range_header, size)?;
    let partial = range.is_some();
    let range = range.unwrap_or(0..size);
    let body = if req.method() == Method::HEAD {
        crate::http::full(bytes::Bytes::new())
    } else {
        node.body(
            &url,
            r.store.clone(),
            r.object.clone(),
            range.clone(),
            Why::Demand,
            (),
        )
        .await?
    };
    let mut resp = object_response(body, &range, size, r.object.normalized_version(), partial);
    if let Ok(v) = HeaderValue::from_str(&http_date(r.info.last_modified)) {
        resp.headers_mut().insert(header::LAST_MODIFIED, v);
    }
    Ok(resp)
}

async fn list_objects_v2(
    node: &Arc<Node>,
    bucket: &str,
    upstream: &StoreUrl,
    q: &std::collections::HashMap<String, String>,
) -> Result<Resp, ApiError> {
    let prefix = q.get("prefix").cloned().unwrap_or_default();
    let delimiter = q.get("delimiter").cloned().filter(|d| !d.is_empty());
    let max_keys: usize = match q.get("max-keys") {
        None => 1000,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("max-keys={v:?} is not a number")))?
            .min(1000),
    };
    let token = q.get("continuation-token").cloned();
    let start_after = q.get("start-after").cloned();
    let after = token.clone().or(start_after.clone()).unwrap_or_default();
    let store = node.store(upstream)?;
    // The upstream prefix of the bucket, then the client's prefix under it.
    let base = upstream.key().trim_end_matches('/');
    let base_slash = if base.is_empty() {
        String::new()
    } else {
        format!("{base}/")
    };
    // The store lists directories; S3 prefixes are any string: list the directory that
    // holds the prefix, then keep what starts with it.
    let full = format!("{base_slash}{prefix}");
    let dir = full.rfind('/').map_or("", |i| &full[..i]);
    let objects = store.list(dir).await?;
    let mut keys: Vec<(String, u64, Option<String>, chrono::DateTime<chrono::Utc>)> = objects
        .into_iter()
        .filter_map(|o| {
            let k = o.key.strip_prefix(&base_slash)?.to_string();
            k.starts_with(&prefix)
                .then_some((k, o.size, o.e_tag, o.last_modified))
        })
        .collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    // Entries in order: objects, and common prefixes folded at the delimiter.
    enum Entry {
        Object(String, u64, Option<String>, chrono::DateTime<chrono::Utc>),
        Prefix(String),
    }
    let mut entries: Vec<Entry> = Vec::new();
    for (k, size, etag, lm) in keys {
        if let Some(d) = &delimiter
            && let Some(pos) = k[prefix.len()..].find(d.as_str())
        {
            let cp = k[..prefix.len() + pos + d.len()].to_string();
            if !matches!(entries.last(), Some(Entry::Prefix(p)) if *p == cp) {
                entries.push(Entry::Prefix(cp));
            }
            continue;
        }
        entries.push(Entry::Object(k, size, etag, lm));
    }
    let name = |e: &Entry| match e {
        Entry::Object(k, ..) => k.clone(),
        Entry::Prefix(p) => p.clone(),
    };
    let rest: Vec<&Entry> = entries.iter().filter(|e| name(e) > after).collect();
    let page = &rest[..rest.len().min(max_keys)];
    let truncated = rest.len() > page.len();
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
    );
    x.push_str(&format!(
        "<Name>{}</Name><Prefix>{}</Prefix>",
        escape(bucket),
        escape(&prefix)
    ));
    if let Some(d) = &delimiter {
        x.push_str(&format!("<Delimiter>{}</Delimiter>", escape(d)));
    }
    x.push_str(&format!(
        "<MaxKeys>{max_keys}</MaxKeys><KeyCount>{}</KeyCount>",
        page.len()
    ));
    x.push_str(&format!("<IsTruncated>{truncated}</IsTruncated>"));
    if let Some(t) = &token {
        x.push_str(&format!(
            "<ContinuationToken>{}</ContinuationToken>",
            escape(t)
        ));
    }
    if let Some(s) = &start_after {
        x.push_str(&format!("<StartAfter>{}</StartAfter>", escape(s)));
    }
    if truncated && let Some(last) = page.last() {
        x.push_str(&format!(
            "<NextContinuationToken>{}</NextContinuationToken>",
            escape(&name(last))
        ));
    }
    for e in page {
        match e {
            Entry::Object(k, size, etag, lm) => {
                let etag = etag
                    .as_deref()
                    .map(strata_store::store::normalize_etag)
                    .unwrap_or_default();
                x.push_str(&format!(
                    "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>&quot;{}&quot;</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                    escape(k),
                    http_iso(*lm),
                    escape(etag)
                ));
            }
            Entry::Prefix(p) => {
                x.push_str(&format!(
                    "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                    escape(p)
                ));
            }
        }
    }
    x.push_str("</ListBucketResult>");
    Ok(respond(StatusCode::OK, "application/xml", x))
}
