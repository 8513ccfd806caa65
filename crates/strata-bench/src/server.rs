//! Which S3 server a benchmark runs against.

use strata_testkit::{GarageServer, S3Endpoint, S3Server};

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
    pub fn start(self) -> Result<Box<dyn S3Endpoint>, String> {
        Ok(match self {
            Self::InProcess => Box::new(S3Server::start()),
            Self::Garage => Box::new(GarageServer::start()?),
        })
    }
}
