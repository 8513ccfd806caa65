//! The HTTP vocabulary the routes share: the body type, responses, query strings, byte
//! ranges, and the error type that turns into a status code.

use std::collections::HashMap;
use std::ops::Range;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use strata_store::{ErrorKind, StoreError};

/// Any error a body or handler can fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every response body: a whole buffer or a stream of blocks.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;
/// A request as hyper hands it over.
pub type Req = http::Request<hyper::body::Incoming>;
/// A response with a boxed body.
pub type Resp = Response<Body>;

/// A whole body.
pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|e| match e {}).boxed_unsync()
}

/// A response with a body and a content type.
pub fn respond(status: StatusCode, content_type: &'static str, b: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(full(b));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A JSON response.
pub fn json(status: StatusCode, v: &serde_json::Value) -> Resp {
    respond(status, "application/json", v.to_string())
}

/// The decoded query string.
pub fn query(req: &Req) -> HashMap<String, String> {
    req.uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// Why a request failed, as the client will be told.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable short code (S3's where there is one: `NoSuchKey`, `InvalidRange`, …).
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// The metrics label of the error kind.
    pub kind: &'static str,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            kind: "request",
        }
    }
    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgument", message)
    }
    /// 404 with `code` (e.g. `NoSuchKey`).
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// The JSON form the local API returns.
    pub fn to_json(&self) -> Resp {
        json(
            self.status,
            &serde_json::json!({"error": self.code, "message": self.message}),
        )
    }
}

impl From<StoreError> for ApiError {
    /// A store error, named and classified; its message names the object and the cause
    /// (and never a credential: the store layer's errors hold none).
    fn from(e: StoreError) -> Self {
        let kind = e.kind();
        let (status, code) = match kind {
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "NoSuchKey"),
            ErrorKind::Precondition => (StatusCode::PRECONDITION_FAILED, "PreconditionFailed"),
            ErrorKind::PermissionDenied | ErrorKind::Unauthenticated => {
                (StatusCode::BAD_GATEWAY, "UpstreamAccessDenied")
            }
            ErrorKind::InvalidInput => (StatusCode::BAD_REQUEST, "InvalidArgument"),
            ErrorKind::Throttled => (StatusCode::SERVICE_UNAVAILABLE, "SlowDown"),
            _ => (StatusCode::BAD_GATEWAY, "UpstreamError"),
        };
        Self {
            status,
            code,
            message: e.to_string(),
            kind: kind.label(),
        }
    }
}

impl From<strata_cache::CacheError> for ApiError {
    fn from(e: strata_cache::CacheError) -> Self {
        StoreError::from(e).into()
    }
}

/// A response carrying `range` of an object of `size` bytes with entity tag `etag`: its
/// length and type, its ETag, and for a range (`partial`) 206 with its Content-Range.
pub fn object_response(
    body: Body,
    range: &Range<u64>,
    size: u64,
    etag: &str,
    partial: bool,
) -> Resp {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(range.end - range.start),
    );
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        h.insert(header::ETAG, v);
    }
    if partial && range.end > range.start {
        let cr = format!("bytes {}-{}/{size}", range.start, range.end - 1);
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&cr).expect("ASCII"),
        );
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    resp
}

/// A `Range` header resolved against an object of `size` bytes: `None` for the whole
/// object, the byte range otherwise. Errors are S3's `InvalidRange` (416).
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<Range<u64>>, ApiError> {
    let Some(h) = header else { return Ok(None) };
    let invalid = || {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            format!("the range {h:?} is not satisfiable for an object of {size} bytes"),
        )
    };
    let spec = h.trim().strip_prefix("bytes=").ok_or_else(invalid)?;
    if spec.contains(',') {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "multiple ranges in one request are not supported",
        ));
    }
    let (a, b) = spec.split_once('-').ok_or_else(invalid)?;
    let num = |t: &str| t.trim().parse::<u64>().map_err(|_| invalid());
    let r = match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => {
            let n = num(b)?;
            if n == 0 {
                return Err(invalid());
            }
            size.saturating_sub(n)..size
        }
        (false, true) => num(a)?..size,
        (false, false) => {
            let (s, e) = (num(a)?, num(b)?);
            if e < s {
                return Err(invalid());
            }
            s..(e + 1).min(size)
        }
        (true, true) => return Err(invalid()),
    };
    if r.start >= size {
        return Err(invalid());
    }
    Ok(Some(r))
}

/// An HTTP date (RFC 7231), as `Last-Modified` wants it.
pub fn http_date(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Escapes text for XML and HTML.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10).unwrap(), None);
        assert_eq!(parse_range(Some("bytes=0-3"), 10).unwrap(), Some(0..4));
        assert_eq!(parse_range(Some("bytes=5-"), 10).unwrap(), Some(5..10));
        assert_eq!(parse_range(Some("bytes=-3"), 10).unwrap(), Some(7..10));
        assert_eq!(parse_range(Some("bytes=-30"), 10).unwrap(), Some(0..10));
        assert_eq!(parse_range(Some("bytes=8-100"), 10).unwrap(), Some(8..10));
        for bad in [
            "bytes=10-",
            "bytes=5-2",
            "bytes=x-1",
            "items=0-1",
            "bytes=-0",
            "bytes=-",
        ] {
            let e = parse_range(Some(bad), 10).expect_err(bad);
            assert_eq!(e.status, StatusCode::RANGE_NOT_SATISFIABLE, "{bad}");
        }
        assert_eq!(
            parse_range(Some("bytes=0-1,3-4"), 10).unwrap_err().status,
            StatusCode::NOT_IMPLEMENTED
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
    }
}
