//! Typed errors of the store layer.
//!
//! Every error names the operation, the object (as a URL the user typed or can type) and the
//! cause. Credentials never appear: the backend errors that are wrapped here carry request
//! URIs and response bodies, never signing keys, and [`crate::config::Secret`] redacts itself.

use std::time::Duration;

/// What went wrong, in the coarse classes that decide retrying, exit codes and metrics labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The object, bucket or prefix does not exist.
    NotFound,
    /// A conditional create found the object already there.
    AlreadyExists,
    /// A precondition (ETag match) failed, or the object changed while it was read.
    Precondition,
    /// The credentials are valid but lack the permission.
    PermissionDenied,
    /// The credentials are missing, malformed or rejected.
    Unauthenticated,
    /// The store asked us to slow down (HTTP 503 SlowDown, 429).
    Throttled,
    /// The store failed (HTTP 5xx other than throttling).
    Server,
    /// The connection failed: refused, reset, timed out, or the body was cut short.
    Network,
    /// The request was malformed or refused for a reason retrying cannot fix (other 4xx).
    Client,
    /// The input given to Strata is invalid: a URL, a key, a configuration value.
    InvalidInput,
    /// The backend does not support the operation.
    Unsupported,
    /// A local file system operation failed.
    Io,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// True for the kinds that a later attempt may fix: throttling, server errors and network
    /// faults.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Throttled | Self::Server | Self::Network)
    }

    /// A short stable label, used in metrics and in `--json` output.
    pub fn label(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::Precondition => "precondition",
            Self::PermissionDenied => "permission_denied",
            Self::Unauthenticated => "unauthenticated",
            Self::Throttled => "throttled",
            Self::Server => "server",
            Self::Network => "network",
            Self::Client => "client",
            Self::InvalidInput => "invalid_input",
            Self::Unsupported => "unsupported",
            Self::Io => "io",
            Self::Other => "other",
        }
    }
}

/// An error of the store layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A URL could not be parsed or names an unsupported scheme.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An object key is unsafe or invalid (for example `../x` when writing into a directory).
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey {
        /// The key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The configuration (file, environment or flags) is invalid.
    #[error("invalid configuration: {reason}")]
    Config {
        /// What is wrong with the backend's settings.
        reason: String,
    },

    /// A request to the store failed; if the cause was transient, after all retries.
    #[error("{op} {url} failed: {}{cause}", attempts_note(*attempts, *elapsed))]
    Request {
        /// The operation, such as `GET`, `PUT`, `LIST`.
        op: &'static str,
        /// The object or prefix as a URL.
        url: String,
        /// The class of the last failure.
        kind: ErrorKind,
        /// How many attempts were made.
        attempts: u32,
        /// Time spent on all attempts.
        elapsed: Duration,
        /// The last cause, as text (backend errors are not `Clone` and may be large).
        cause: String,
    },

    /// The object changed (new ETag) while it was being read in parts.
    #[error(
        "GET {url} failed: the object changed while it was read (ETag {expected} became {found}); retry the copy"
    )]
    Changed {
        /// The object.
        url: String,
        /// The ETag the read was pinned to.
        expected: String,
        /// The ETag the store has now.
        found: String,
    },

    /// A local file could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done, e.g. `write`.
        op: &'static str,
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn attempts_note(attempts: u32, elapsed: Duration) -> String {
    if attempts > 1 {
        format!(
            "gave up after {attempts} attempts in {:.1}s; last cause: ",
            elapsed.as_secs_f64()
        )
    } else {
        String::new()
    }
}

impl StoreError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidUrl { .. } | Self::InvalidKey { .. } | Self::Config { .. } => {
                ErrorKind::InvalidInput
            }
            Self::Request { kind, .. } => *kind,
            Self::Changed { .. } => ErrorKind::Precondition,
            Self::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                _ => ErrorKind::Io,
            },
        }
    }

    /// "Nothing under this prefix", for listings that found nothing where something was
    /// expected; classified as [`ErrorKind::NotFound`].
    pub fn empty_prefix(url: impl std::fmt::Display) -> Self {
        Self::Request {
            op: "LIST",
            url: url.to_string(),
            kind: ErrorKind::NotFound,
            attempts: 1,
            elapsed: Duration::ZERO,
            cause: "no objects under this prefix".into(),
        }
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl AsRef<std::path::Path>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            op,
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

/// Result alias for the store layer.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Classifies a backend error.
///
/// object_store maps 404/409/412/401/403 onto typed variants for every backend; what is left
/// arrives as `Generic` with the HTTP error or status somewhere in the source chain. Its
/// `RetryError` type is private, so the status is read from its message, whose format
/// ("... status code: 503 ...") the conformance tests against real servers keep honest.
pub fn classify(err: &object_store::Error) -> ErrorKind {
    use object_store::Error as E;
    match err {
        E::NotFound { .. } => return ErrorKind::NotFound,
        E::AlreadyExists { .. } => return ErrorKind::AlreadyExists,
        E::Precondition { .. } | E::NotModified { .. } => return ErrorKind::Precondition,
        E::PermissionDenied { .. } => return ErrorKind::PermissionDenied,
        E::Unauthenticated { .. } => return ErrorKind::Unauthenticated,
        E::NotSupported { .. } | E::NotImplemented { .. } => return ErrorKind::Unsupported,
        E::InvalidPath { .. } | E::UnknownConfigurationKey { .. } => {
            return ErrorKind::InvalidInput;
        }
        _ => {}
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut status = None;
    while let Some(e) = source {
        if let Some(http) = e.downcast_ref::<object_store::client::HttpError>() {
            return match http.kind() {
                object_store::client::HttpErrorKind::Decode
                | object_store::client::HttpErrorKind::Connect
                | object_store::client::HttpErrorKind::Request
                | object_store::client::HttpErrorKind::Timeout
                | object_store::client::HttpErrorKind::Interrupted => ErrorKind::Network,
                _ => ErrorKind::Network,
            };
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::ConnectionRefused
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::TimedOut => ErrorKind::Network,
                _ => ErrorKind::Io,
            };
        }
        if status.is_none() {
            status = status_in_message(&e.to_string());
        }
        source = e.source();
    }
    match status {
        Some(404) => ErrorKind::NotFound,
        Some(401) => ErrorKind::Unauthenticated,
        Some(403) => ErrorKind::PermissionDenied,
        Some(412) => ErrorKind::Precondition,
        Some(429) | Some(503) => ErrorKind::Throttled,
        Some(408) => ErrorKind::Network,
        Some(s) if s >= 500 => ErrorKind::Server,
        Some(s) if (400..500).contains(&s) => ErrorKind::Client,
        _ => {
            let text = err.to_string();
            if text.contains("SlowDown") {
                ErrorKind::Throttled
            } else if text.contains("InternalError") || text.contains("ServiceUnavailable") {
                ErrorKind::Server
            } else {
                ErrorKind::Other
            }
        }
    }
}

/// Finds "status code: NNN" in an error message.
fn status_in_message(text: &str) -> Option<u16> {
    let at = text.find("status code: ")? + "status code: ".len();
    text.get(at..at + 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_found_in_messages() {
        assert_eq!(
            status_in_message(
                "Server returned non-2xx status code: 503 Service Unavailable: <Error>"
            ),
            Some(503)
        );
        assert_eq!(status_in_message("nothing here"), None);
        assert_eq!(status_in_message("status code: 5"), None);
    }

    #[test]
    fn typed_errors_are_classified() {
        let e = object_store::Error::NotFound {
            path: "a".into(),
            source: "x".into(),
        };
        assert_eq!(classify(&e), ErrorKind::NotFound);
        let e = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 503 Service Unavailable: SlowDown".into(),
        };
        assert_eq!(classify(&e), ErrorKind::Throttled);
        let e = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 500 Internal Server Error".into(),
        };
        assert_eq!(classify(&e), ErrorKind::Server);
        assert!(ErrorKind::Server.is_transient());
        assert!(!ErrorKind::NotFound.is_transient());
    }
}
