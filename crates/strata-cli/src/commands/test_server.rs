//! `strata test-s3-server`: the in-process S3 server of the test kit (or a Garage node), as a
//! process of its own, so that tests and benchmarks in other languages (the Python
//! package's) talk to a real S3 server.

use anyhow::{Result, anyhow};
use strata_testkit::{GarageServer, LinkEmulator, LinkProfile, S3Endpoint, S3Server};
use tokio::io::AsyncBufReadExt;

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

    /// CPU seconds the server has used so far: Garage's process, or the in-process server's
    /// threads (the link emulator's threads, named `link-emu`, are counted apart).
    fn cpu_secs(&self) -> f64 {
        match self {
            // The whole process (threads that have exited included) less the emulator's.
            Server::InProcess(_) => {
                proc_cpu_secs("/proc/self/stat") - threads_cpu_secs(|n| n.starts_with("link-emu"))
            }
            Server::Garage(g) => proc_cpu_secs(&format!("/proc/{}/stat", g.pid())),
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
    // the server's temporary directory is removed (SIGKILL would leave it behind). A line
    // `stats` on stdin prints what has crossed the emulated link so far (the peak of requests in flight since
    // the previous `stats`), as one JSON line
    // (without `--link`, only the
    // server's CPU seconds): benchmarks count requests and bytes per tool with it.
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(l)) if l.trim() == "stats" => {
                    let mut stats = emu.as_ref().map_or(serde_json::json!({}), |e| serde_json::json!(e.take_stats()));
                    stats["server_cpu_secs"] = server.cpu_secs().into();
                    if emu.is_some() {
                        stats["link_cpu_secs"] = threads_cpu_secs(|name| name.starts_with("link-emu")).into();
                    }
                    println!("{stats}");
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    drop(emu);
    drop(server);
    Ok(())
}

/// utime + stime of a `/proc/.../stat` file, in seconds (0 when it cannot be read).
fn proc_cpu_secs(path: &str) -> f64 {
    let Ok(text) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let Some(rest) = text.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // Fields 14 and 15 of the file are the 12th and 13th after the name.
    (ticks(11) + ticks(12)) as f64 / clock_ticks_per_sec()
}

/// CPU seconds of this process's threads whose names pass `keep`.
fn threads_cpu_secs(keep: impl Fn(&str) -> bool) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    dir.flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|n| keep(n.trim_end()))
        })
        .map(|t| proc_cpu_secs(&t.path().join("stat").to_string_lossy()))
        .sum()
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}
