//! Which S3 server a benchmark runs against.

use crate::error::BenchError;
use std::path::Path;
use std::process::{Command, Stdio};

use strata_testkit::{GarageServer, S3Endpoint, S3Server};

/// The `strata` executable `exe` set up to reach `server` at `endpoint` (the server, or the
/// link emulator in front of it): credentials and region in the environment, no config file,
/// no instance metadata, stdin closed, stdout and stderr piped.
pub fn strata_command(exe: &Path, server: &dyn S3Endpoint, endpoint: &str) -> Command {
    let mut c = Command::new(exe);
    c.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", server.access_key())
        .env("AWS_SECRET_ACCESS_KEY", server.secret_key())
        .env("AWS_REGION", server.region())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("STRATA_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// The S3 server behind the link emulator. Default: the in-process server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BenchServer {
    /// s3s-fs in this process (files under a temporary directory). Its
    /// CompleteMultipartUpload copies the whole object, so completions cost server time.
    #[default]
    InProcess,
    /// A Garage node started for the run (the `garage` binary must be installed;
    /// `scripts/test` installs it). Its multipart completion links blocks without copying.
    Garage,
}

impl BenchServer {
    /// `in-process` or `garage`.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "in-process" => Some(Self::InProcess),
            "garage" => Some(Self::Garage),
            _ => None,
        }
    }

    /// The name [`BenchServer::named`] takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::InProcess => "in-process",
            Self::Garage => "garage",
        }
    }

    /// Starts it; stopped when the returned value is dropped. Blocking.
    pub fn start(self) -> Result<Box<dyn S3Endpoint>, BenchError> {
        Ok(match self {
            Self::InProcess => Box::new(S3Server::start()),
            Self::Garage => Box::new(GarageServer::start()?),
        })
    }
}
