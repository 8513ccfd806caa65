//! Who may talk to the daemon.
//!
//! - With a token (required off loopback), every request carries it: as
//!   `Authorization: Bearer TOKEN`; from an S3 client, as the access key id of its SigV4
//!   signature (`Credential=TOKEN/…`, header or presigned query); from a browser opening a
//!   page, once as `?token=TOKEN`, after which the daemon sets it as a cookie
//!   ([`COOKIE`], `HttpOnly; SameSite=Strict`) that the page's scripts and API calls carry.
//! - Without a token the daemon is on loopback, and a request must name a loopback host
//!   (`Host: 127.0.0.1:…`, `localhost`, `[::1]`), so a web page elsewhere cannot reach it by
//!   DNS rebinding.
//! - Never cross-origin: a request whose `Origin` is not the daemon's own, or that a browser
//!   marks `Sec-Fetch-Site: cross-site`, is refused; no CORS header is ever sent.

use http::{HeaderMap, StatusCode, header};

use crate::http::ApiError;

/// Checks a request's headers and query against the daemon's rules.
pub fn check(
    headers: &HeaderMap,
    query: &std::collections::HashMap<String, String>,
    token: Option<&str>,
    loopback: bool,
) -> Result<(), ApiError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok()) {
        let origin_host = origin
            .split_once("://")
            .map_or(origin, |(_, rest)| rest)
            .trim_end_matches('/');
        if origin_host != host {
            return Err(forbidden("cross-origin requests are refused"));
        }
    }
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return Err(forbidden("cross-site requests are refused"));
    }
    match token {
        None => {
            if loopback && !loopback_host(host) {
                return Err(forbidden(
                    "this daemon serves loopback only: use 127.0.0.1, localhost or [::1] as the host",
                ));
            }
            Ok(())
        }
        Some(t) => {
            let given = bearer(headers)
                .or_else(|| sigv4_access_key(headers))
                .or_else(|| {
                    query
                        .get("X-Amz-Credential")
                        .and_then(|c| c.split('/').next())
                })
                .or_else(|| query.get("token").map(String::as_str))
                .or_else(|| cookie(headers));
            match given {
                Some(g) if constant_time_eq(g.as_bytes(), t.as_bytes()) => Ok(()),
                Some(_) => Err(unauthorized("the token does not match")),
                None => Err(unauthorized(
                    "a token is required: send Authorization: Bearer TOKEN",
                )),
            }
        }
    }
}

fn forbidden(m: &str) -> ApiError {
    let mut e = ApiError::new(StatusCode::FORBIDDEN, "AccessDenied", m);
    e.kind = "forbidden";
    e
}

fn unauthorized(m: &str) -> ApiError {
    let mut e = ApiError::new(StatusCode::UNAUTHORIZED, "AccessDenied", m);
    e.kind = "unauthorized";
    e
}

fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The cookie a browser keeps the token in.
pub const COOKIE: &str = "strata-token";

fn cookie(h: &HeaderMap) -> Option<&str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

fn bearer(h: &HeaderMap) -> Option<&str> {
    h.get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The access key id of a SigV4 `Authorization` header.
fn sigv4_access_key(h: &HeaderMap) -> Option<&str> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let rest = v.strip_prefix("AWS4-HMAC-SHA256")?;
    let cred = rest
        .split(',')
        .find_map(|p| p.trim().strip_prefix("Credential="))?;
    cred.split('/').next()
}

/// Compares without an early exit, so timing does not reveal how much of a guess matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::collections::HashMap;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    const T: &str = "0123456789abcdef0123";

    #[test]
    fn tokens() {
        let q = HashMap::new();
        let ok = |hs: &[(&'static str, &str)]| check(&h(hs), &q, Some(T), false);
        assert!(ok(&[("host", "node:7420")]).is_err());
        assert!(ok(&[("host", "node:7420"), ("authorization", "Bearer nope")]).is_err());
        assert!(
            ok(&[
                ("host", "node:7420"),
                ("authorization", &format!("Bearer {T}"))
            ])
            .is_ok()
        );
        let sig = format!(
            "AWS4-HMAC-SHA256 Credential={T}/20261123/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc"
        );
        assert!(ok(&[("host", "node:7420"), ("authorization", &sig)]).is_ok());
        let mut q = HashMap::new();
        q.insert("token".to_string(), T.to_string());
        assert!(check(&h(&[("host", "node:7420")]), &q, Some(T), false).is_ok());
    }

    #[test]
    fn loopback_and_origins() {
        let q = HashMap::new();
        assert!(check(&h(&[("host", "127.0.0.1:7420")]), &q, None, true).is_ok());
        assert!(check(&h(&[("host", "localhost:7420")]), &q, None, true).is_ok());
        assert!(check(&h(&[("host", "[::1]:7420")]), &q, None, true).is_ok());
        assert!(check(&h(&[("host", "evil.example:7420")]), &q, None, true).is_err());
        let cross = h(&[
            ("host", "127.0.0.1:7420"),
            ("origin", "http://evil.example"),
        ]);
        assert!(check(&cross, &q, None, true).is_err());
        let same = h(&[
            ("host", "127.0.0.1:7420"),
            ("origin", "http://127.0.0.1:7420"),
        ]);
        assert!(check(&same, &q, None, true).is_ok());
        let site = h(&[("host", "127.0.0.1:7420"), ("sec-fetch-site", "cross-site")]);
        assert!(check(&site, &q, None, true).is_err());
    }
}
