//! Retries with jittered exponential backoff within a total time bound.
//!
//! Every request of the store layer goes through [`with_retry`]. Throttling (503 SlowDown,
//! 429), server errors (5xx), resets, truncated bodies and timeouts are retried; everything
//! else fails at once. A refused connection is retried at most [`CONNECT_ATTEMPTS`] times, so
//! a wrong or dead endpoint fails in about a second instead of after the whole time bound.
//! When it gives up, the error names the operation, the object and the last cause.
//!
//! object_store's own retry loop is switched off (`max_retries = 0`) so that each attempt is
//! visible here: counted in metrics, and bounded by one policy for every backend.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::config::RetryPolicy;
use crate::error::{ErrorKind, Result, StoreError, classify};
use crate::metrics as m;

/// Attempts made when the endpoint refuses connections.
pub const CONNECT_ATTEMPTS: u32 = 3;

impl RetryPolicy {
    /// The pause before attempt `attempt + 1` ("equal jitter": half the exponential step,
    /// plus a random part of the other half, so that many clients spread out but every one
    /// of them really slows down).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.initial_backoff.saturating_mul(
            1u32.checked_shl(attempt.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        let cap = exp.min(self.max_backoff);
        let half = cap / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }
}

/// Runs `f` until it succeeds, fails permanently, or the policy is exhausted.
///
/// `op` is the operation for messages and metrics (`GET`, `PUT`, ...) and `url` the object.
/// Cancel safety: dropping the future abandons the current attempt; nothing is left behind
/// by the retry loop itself.
pub async fn with_retry<T, F, Fut>(
    policy: &RetryPolicy,
    op: &'static str,
    url: &(dyn Display + Sync),
    mut f: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, object_store::Error>>,
{
    let start = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let t0 = Instant::now();
        let res = f().await;
        m::record_request(op, t0.elapsed());
        let err = match res {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let kind = refine(classify(&err), &err);
        m::record_error(op, kind);
        let limit = if is_connect_error(&err) {
            CONNECT_ATTEMPTS.min(policy.max_attempts)
        } else {
            policy.max_attempts
        };
        let pause = policy.backoff(attempt);
        if !kind.is_transient()
            || attempt >= limit
            || start.elapsed() + pause > policy.total_timeout
        {
            return Err(StoreError::Request {
                op,
                url: url.to_string(),
                kind,
                attempts: attempt,
                elapsed: start.elapsed(),
                cause: describe(kind, &err),
            });
        }
        m::record_retry(op, kind);
        tracing::debug!(op, %url, attempt, ?pause, kind = kind.label(), "retrying: {err}");
        tokio::time::sleep(pause).await;
    }
}

/// Separates bad credentials from missing permissions, which S3 both answers with 403.
fn refine(kind: ErrorKind, err: &object_store::Error) -> ErrorKind {
    if kind == ErrorKind::PermissionDenied {
        let text = err.to_string();
        if text.contains("InvalidAccessKeyId")
            || text.contains("SignatureDoesNotMatch")
            || text.contains("ExpiredToken")
            || text.contains("InvalidToken")
        {
            return ErrorKind::Unauthenticated;
        }
    }
    kind
}

/// True when the error is a failure to connect (refused, unreachable, DNS).
pub fn is_connect_error(err: &object_store::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(http) = e.downcast_ref::<object_store::client::HttpError>() {
            return matches!(http.kind(), object_store::client::HttpErrorKind::Connect);
        }
        source = e.source();
    }
    false
}

/// One line of cause: a plain phrase for the common cases, then the backend's own words.
pub fn describe(kind: ErrorKind, err: &object_store::Error) -> String {
    let detail = chain_text(err);
    let phrase = match kind {
        ErrorKind::NotFound if detail.contains("NoSuchBucket") => "no such bucket",
        ErrorKind::NotFound => "no such object",
        ErrorKind::AlreadyExists => "the object already exists",
        ErrorKind::Precondition => "a precondition failed",
        ErrorKind::PermissionDenied => "access denied (missing permission or wrong credentials)",
        ErrorKind::Unauthenticated => {
            "the store rejected the credentials (check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        }
        ErrorKind::Throttled => "the store is throttling requests (503 SlowDown / 429)",
        ErrorKind::Server => "the store returned a server error",
        ErrorKind::Network if is_connect_error(err) => {
            "cannot connect to the endpoint (is it running, and is AWS_ENDPOINT_URL right?)"
        }
        ErrorKind::Network => "network error",
        _ => "",
    };
    let detail = truncate(&detail, 400);
    if phrase.is_empty() {
        detail
    } else {
        format!("{phrase}: {detail}")
    }
}

fn chain_text(err: &object_store::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        source = e.source();
    }
    parts.join(": ").replace('\n', " ")
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
            total_timeout: Duration::from_secs(5),
            ..RetryPolicy::default()
        }
    }

    fn throttled() -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 503 Service Unavailable: SlowDown".into(),
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_success() {
        let n = AtomicU32::new(0);
        let v = with_retry(&fast(), "GET", &"s3://b/k", || async {
            if n.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(throttled())
            } else {
                Ok(7)
            }
        })
        .await
        .unwrap();
        assert_eq!(v, 7);
        assert_eq!(n.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn gives_up_with_a_clear_error() {
        let n = AtomicU32::new(0);
        let err = with_retry(&fast(), "GET", &"s3://b/k", || async {
            n.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(throttled())
        })
        .await
        .unwrap_err();
        assert_eq!(n.load(Ordering::SeqCst), 5);
        let text = err.to_string();
        assert!(
            text.starts_with("GET s3://b/k failed: gave up after 5 attempts"),
            "{text}"
        );
        assert!(text.contains("SlowDown"), "{text}");
        assert_eq!(err.kind(), ErrorKind::Throttled);
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried() {
        let n = AtomicU32::new(0);
        let err = with_retry(&fast(), "HEAD", &"s3://b/missing", || async {
            n.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(object_store::Error::NotFound {
                path: "missing".into(),
                source: "404".into(),
            })
        })
        .await
        .unwrap_err();
        assert_eq!(n.load(Ordering::SeqCst), 1);
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.to_string().contains("no such object"), "{err}");
    }

    #[tokio::test]
    async fn total_time_bound_holds() {
        let p = RetryPolicy {
            max_attempts: 1000,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(20),
            total_timeout: Duration::from_millis(200),
            ..RetryPolicy::default()
        };
        let t = Instant::now();
        let _ = with_retry(&p, "GET", &"x", || async { Err::<(), _>(throttled()) }).await;
        assert!(
            t.elapsed() < Duration::from_millis(400),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        for a in 1..40 {
            let b = p.backoff(a);
            assert!(b <= p.max_backoff);
        }
        assert!(p.backoff(1) <= Duration::from_millis(100));
        assert!(p.backoff(5) >= Duration::from_millis(800));
    }
}
