//! The dashboard and the workbench, embedded in the binary (no Node.js, nothing fetched
//! from elsewhere at run time). The pages read the daemon's API; see `pages/*.js`.

use http::{HeaderValue, StatusCode, header};

use crate::http::{Resp, respond};

const FILES: &[(&str, &str, &str)] = &[
    (
        "/dashboard",
        "text/html; charset=utf-8",
        include_str!("../pages/dashboard.html"),
    ),
    (
        "/workbench",
        "text/html; charset=utf-8",
        include_str!("../pages/workbench.html"),
    ),
    (
        "/static/strata.css",
        "text/css; charset=utf-8",
        include_str!("../pages/strata.css"),
    ),
    (
        "/static/common.js",
        "text/javascript; charset=utf-8",
        include_str!("../pages/common.js"),
    ),
    (
        "/static/dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../pages/dashboard.js"),
    ),
    (
        "/static/workbench.js",
        "text/javascript; charset=utf-8",
        include_str!("../pages/workbench.js"),
    ),
];

/// The page or asset at `path`, with headers that keep it same-origin: a content security
/// policy that allows only the daemon's own scripts and styles, no framing, no sniffing.
pub fn get(path: &str) -> Option<Resp> {
    let (_, ctype, body) = FILES.iter().find(|(p, _, _)| *p == path)?;
    let mut r = respond(StatusCode::OK, ctype, *body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Some(r)
}
