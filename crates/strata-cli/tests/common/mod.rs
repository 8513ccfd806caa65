//! Shared by the CLI tests: the `strata` binary pointed at a test server, and output checks.

#![allow(dead_code)]

use std::process::{Command, Output, Stdio};

use strata_testkit::S3Endpoint;

/// `strata ARGS` with `server`'s credentials and region, reaching it at `endpoint` (the
/// server itself or a link emulator in front of it). No config file; the cache's free-space
/// floor off (the host disk may be nearly full, and these tests are not about the floor).
pub fn command(server: &dyn S3Endpoint, endpoint: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strata"));
    c.args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", server.access_key())
        .env("AWS_SECRET_ACCESS_KEY", server.secret_key())
        .env("AWS_REGION", server.region())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("STRATA_CONFIG")
        .env("STRATA_CACHE_MIN_FREE_FRACTION", "0")
        .stdin(Stdio::null());
    c
}

/// Runs `strata ARGS` against `server` directly.
pub fn run(server: &dyn S3Endpoint, args: &[&str]) -> Output {
    command(server, &server.endpoint(), args)
        .output()
        .expect("run strata")
}

/// Asserts success and returns standard output.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
