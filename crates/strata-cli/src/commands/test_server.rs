//! `strata test-s3-server`: the in-process S3 server of the test kit (or a Garage node), as a
//! process of its own, so that tests and benchmarks in other languages (the Python
//! package's) talk to a real S3 server.

use anyhow::{Result, anyhow};
use strata_testkit::{GarageServer, LinkEmulator, LinkProfile, S3Endpoint, S3Server};
use tokio::io::AsyncReadExt;

use crate::args::TestS3ServerArgs;

/// The server a run started: the in-process one, or a Garage node.
enum Server {
    InProcess(S3Server),
    Garage(GarageServer),
}

impl Server {
    fn endpoint(&self) -> &dyn S3Endpoint {
        match self {
            Server::InProcess(s) => s,
            Server::Garage(g) => g,
        }
    }

    fn root_dir(&self) -> std::path::PathBuf {
        match self {
            Server::InProcess(s) => s.root_dir().to_path_buf(),
            Server::Garage(g) => g.dir().to_path_buf(),
        }
    }
}

pub async fn run(a: &TestS3ServerArgs) -> Result<()> {
    let server = match a.server.as_deref() {
        None | Some("s3s") => Server::InProcess(S3Server::start()),
        // Garage's start blocks (it runs its own commands and waits for the API).
        Some("garage") => Server::Garage(
            tokio::task::spawn_blocking(GarageServer::start)
                .await
                .map_err(|e| anyhow!("garage: {e}"))??,
        ),
        Some(other) => return Err(anyhow!("--server {other:?}: use s3s or garage")),
    };
    let root = server.root_dir();
    let ep = server.endpoint();
    let emu = match &a.link {
        Some(name) => Some(LinkEmulator::start(
            ep.addr(),
            LinkProfile::named(name)
                .ok_or_else(|| anyhow!("--link {name:?}: use s3, nfs, lustre or local"))?,
        )),
        None => None,
    };
    let endpoint = emu.as_ref().map_or_else(|| ep.endpoint(), |e| e.endpoint());
    // The keys are random per run and only valid for this throwaway server.
    println!(
        "{}",
        serde_json::json!({
            "endpoint": endpoint,
            "server": ep.endpoint(),
            "bucket": ep.bucket(),
            "region": ep.region(),
            "access_key_id": ep.access_key(),
            "secret_access_key": ep.secret_key(),
            "root": root,
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
