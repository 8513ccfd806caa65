//! `strata bench daemon`: four processes on one node read the same dataset, through the
//! node's daemon against each with its own in-process cache.
//!
//! One run, on an S3 server behind the link emulator (default `s3` profile):
//!
//! 1. A dataset (`--size`, 1 GiB by default, in `--objects` objects) is uploaded directly.
//! 2. Own caches: `--processes` processes `strata --cache DIR_i cat URL…` at once, each with
//!    its own cache directory (what four training processes without a daemon do).
//! 3. Through the daemon: `strata serve` starts with an empty cache, and the same processes
//!    run `strata cat --daemon ADDR URL…` at once.
//!
//! For each: the bytes that crossed the link against one dataset (the daemon's claim: 1.0),
//! the wall time, the bytes delivered to the processes per second, and the link's rate
//! against its cap. Every process's output is counted to the byte.

use crate::error::BenchError;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::Child;
use std::time::Instant;

use bytes::Bytes;
use strata_testkit::{LinkProfile, Linked};
use strata_units::format_size;

use crate::machine::{MachineLimits, mib};
use crate::server::{BenchServer, strata_command};

/// Settings of the daemon benchmark.
#[derive(Debug, Clone)]
pub struct DaemonBench {
    /// The `strata` executable the daemon and the readers run.
    pub exe: PathBuf,
    /// Dataset bytes. Default: 1 GiB.
    pub size: u64,
    /// Objects it is cut into. Default: 8.
    pub objects: usize,
    /// Reader processes. Default: 4.
    pub processes: usize,
    /// Default: `s3`.
    pub profile: LinkProfile,
    /// Default: the in-process server.
    pub server: BenchServer,
}

impl DaemonBench {
    /// The defaults, running `exe`.
    pub fn new(exe: PathBuf) -> Self {
        Self {
            exe,
            size: 1 << 30,
            objects: 8,
            processes: 4,
            profile: LinkProfile::s3(),
            server: BenchServer::default(),
        }
    }
}

/// One way of reading.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Mode {
    /// `own caches` or `daemon`.
    pub name: &'static str,
    /// Seconds until every process had read everything.
    pub secs: f64,
    /// Bytes that crossed the link.
    pub link_bytes: u64,
    /// `link_bytes` / the dataset's size: 1.0 is one download for the node.
    pub link_of_dataset: f64,
    /// Bytes delivered to all processes per second.
    pub delivered_mib_per_sec: f64,
    /// The link's rate over the run against its cap.
    pub link_of_cap: f64,
}

/// What it measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DaemonBenchReport {
    /// When it ran (UTC).
    pub date: String,
    /// The machine's limits, measured in the same run.
    pub machine: MachineLimits,
    /// The S3 server behind the link.
    pub server: BenchServer,
    /// The emulated link.
    pub link: LinkProfile,
    /// The link's cap, MiB/s.
    pub link_cap_mib_per_sec: f64,
    /// Bytes every process reads.
    pub dataset_bytes: u64,
    /// Objects in the dataset.
    pub objects: usize,
    /// Processes reading it at once.
    pub processes: usize,
    /// Each process with a cache of its own.
    pub own_caches: Mode,
    /// Every process reading through one daemon.
    pub daemon: Mode,
    /// Delivered throughput through the daemon over own caches.
    pub daemon_vs_own: f64,
}

/// Kills a child process on drop.
struct Reap(Child);
impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl DaemonBench {
    /// Runs it.
    pub fn run(&self) -> Result<DaemonBenchReport, BenchError> {
        let machine = MachineLimits::measure();
        let rig = Linked::start(self.server.start()?, self.profile.clone())?;
        let (server, emu, direct, cap) = (&rig.server, &rig.emu, &rig.direct, rig.cap_mib_per_sec);
        let tmp = tempfile::tempdir()?;
        let rt = crate::machine::runtime()?;
        let n = self.objects.max(1);
        let per = (self.size / n as u64).max(1 << 20);
        let mut urls = Vec::new();
        rt.block_on(async {
            for i in 0..n {
                let key = format!("bench/daemon/part-{i:04}.bin");
                let body: Vec<u8> = (0..per)
                    .map(|j| (j as u8) ^ (i as u8).wrapping_mul(31))
                    .collect();
                direct.put(&key, Bytes::from(body)).await?;
                urls.push(server.url(&key).to_string());
            }
            Ok::<_, BenchError>(())
        })?;
        let dataset = per * n as u64;
        let processes = self.processes.max(1);
        let run = |name: &'static str, cmd: &dyn Fn(usize) -> std::process::Command| {
            let s0 = emu.stats().bytes_down;
            let t = Instant::now();
            let children: Vec<Child> = (0..processes)
                .map(|i| {
                    cmd(i)
                        .spawn()
                        .map_err(|e| BenchError::Failed(format!("{}: {e}", self.exe.display())))
                })
                .collect::<Result<_, _>>()?;
            // Count every byte each process writes, on a thread per process.
            let counters: Vec<_> = children
                .into_iter()
                .map(|mut c| {
                    let mut out = c.stdout.take().expect("piped");
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 1 << 20];
                        let mut total = 0u64;
                        loop {
                            match out.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(k) => total += k as u64,
                            }
                        }
                        let o = c.wait_with_output();
                        (total, o)
                    })
                })
                .collect();
            for h in counters {
                let (total, o) = h
                    .join()
                    .map_err(|_| "a reader thread panicked".to_string())?;
                let o = o?;
                if !o.status.success() {
                    return Err(BenchError::Failed(format!(
                        "{name}: a reader failed: {}",
                        String::from_utf8_lossy(&o.stderr).trim()
                    )));
                }
                if total != dataset {
                    return Err(BenchError::Failed(format!(
                        "{name}: a reader got {total} bytes of {dataset}"
                    )));
                }
            }
            let secs = t.elapsed().as_secs_f64();
            let link = emu.stats().bytes_down - s0;
            Ok::<_, BenchError>(Mode {
                name,
                secs,
                link_bytes: link,
                link_of_dataset: link as f64 / dataset as f64,
                delivered_mib_per_sec: mib(dataset * processes as u64, secs),
                link_of_cap: mib(link, secs) / cap,
            })
        };
        let own = run("own in-process caches", &|i| {
            let mut c = strata_command(&self.exe, &**server, &emu.endpoint());
            c.arg("--quiet")
                .arg("--cache")
                .arg(tmp.path().join(format!("own-{i}")))
                .arg("cat")
                .args(&urls)
                .env("STRATA_CACHE_MIN_FREE_FRACTION", "0");
            c
        })?;
        // The daemon, with an empty cache.
        let mut d = strata_command(&self.exe, &**server, &emu.endpoint());
        d.arg("--json")
            .arg("--cache")
            .arg(tmp.path().join("daemon"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("STRATA_CACHE_MIN_FREE_FRACTION", "0");
        let mut daemon = Reap(d.spawn()?);
        let mut line = String::new();
        BufReader::new(daemon.0.stdout.as_mut().expect("piped")).read_line(&mut line)?;
        let v: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| BenchError::Failed(format!("strata serve said {line:?}: {e}")))?;
        let base = format!("http://{}", v["listen"].as_str().unwrap_or_default());
        let via = run("through the daemon", &|_| {
            let mut c = strata_command(&self.exe, &**server, &emu.endpoint());
            c.args(["--quiet", "cat", "--daemon", &base]).args(&urls);
            c
        })?;
        drop(daemon);
        Ok(DaemonBenchReport {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            machine,
            server: self.server,
            link: self.profile.clone(),
            link_cap_mib_per_sec: cap,
            dataset_bytes: dataset,
            objects: n,
            processes,
            daemon_vs_own: via.delivered_mib_per_sec / own.delivered_mib_per_sec.max(1e-9),
            own_caches: own,
            daemon: via,
        })
    }
}

impl DaemonBenchReport {
    /// A table for people.
    pub fn to_table(&self) -> String {
        let row = |m: &Mode| {
            format!(
                "{:<26} {:>8.1} s {:>10.2} {:>14.1} MiB/s {:>10.2}\n",
                m.name, m.secs, m.link_of_dataset, m.delivered_mib_per_sec, m.link_of_cap
            )
        };
        format!(
            "strata bench daemon  {}\n{} processes read a dataset of {} ({} objects); server {}; link {} capped at {:.0} MiB/s; machine: {} cores, memcpy {:.1} GiB/s\n\n\
             {:<26} {:>10} {:>10} {:>20} {:>10}\n{}{}\n\
             through the daemon: the store sent {:.2} datasets (target 1.0); delivered {:.2}× the own caches' rate\n",
            self.date,
            self.processes,
            format_size(self.dataset_bytes),
            self.objects,
            self.server.name(),
            self.link.name,
            self.link_cap_mib_per_sec,
            self.machine.cores,
            self.machine.memcpy_gib_per_sec,
            "mode",
            "wall",
            "datasets",
            "delivered",
            "link/cap",
            row(&self.own_caches),
            row(&self.daemon),
            self.daemon.link_of_dataset,
            self.daemon_vs_own,
        )
    }
}
