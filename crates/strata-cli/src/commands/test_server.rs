//! `strata test-s3-server`: the in-process S3 server of the test kit, as a process of its
//! own, so that tests in other languages (the Python package's) talk to a real S3 server.

use anyhow::{Result, anyhow};
use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, S3Server};
use tokio::io::AsyncReadExt;

use crate::args::TestS3ServerArgs;

pub async fn run(a: &TestS3ServerArgs) -> Result<()> {
    let server = S3Server::start();
    let emu = match &a.link {
        Some(name) => Some(LinkEmulator::start(
            server.addr(),
            LinkProfile::named(name)
                .ok_or_else(|| anyhow!("--link {name:?}: use s3, nfs, lustre or local"))?,
        )),
        None => None,
    };
    let endpoint = emu
        .as_ref()
        .map_or_else(|| server.endpoint(), |e| e.endpoint());
    // The keys are random per run and only valid for this throwaway server.
    println!(
        "{}",
        serde_json::json!({
            "endpoint": endpoint,
            "server": server.endpoint(),
            "bucket": server.bucket(),
            "region": server.region(),
            "access_key_id": server.access_key(),
            "secret_access_key": server.secret_key(),
            "root": server.root_dir(),
            "pid": std::process::id(),
        })
    );
    // Until stdin closes (the parent went away) or SIGINT or SIGTERM stops the process; then
    // the server's temporary directory is removed (SIGKILL would leave it behind).
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 256];
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            n = stdin.read(&mut buf) => if matches!(n, Ok(0) | Err(_)) { break },
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    drop(emu);
    drop(server);
    Ok(())
}
