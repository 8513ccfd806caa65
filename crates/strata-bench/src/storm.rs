//! `strata bench ckpt-storm`: N writer processes checkpoint at once into a store that
//! answers 503 SlowDown above K requests in flight (the link emulator, `s3` profile).
//!
//! - **naive**: every writer starts its upload at once, with the store layer's plain
//!   retries (jittered exponential backoff) and nothing else.
//! - **paced**: Strata's drain: a jittered start and fleet-wide admission through leases in
//!   the store, at most M drains at once (M = K / (requests in flight per writer + 1) by
//!   default).
//!
//! Reported per run: the time until every writer's checkpoint is committed (or its writer
//! gave up), the 503s the store sent, and failed checkpoints. The target: paced finishes
//! sooner, with zero failed checkpoints. Writers are real processes (`strata ckpt save`).

use crate::error::BenchError;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, S3Server, data};
use strata_units::format_size;

use crate::machine::MachineLimits;
use crate::server::strata_command;

/// Settings of the storm benchmark.
#[derive(Debug, Clone)]
pub struct StormBench {
    /// The `strata` executable the writers run.
    pub exe: PathBuf,
    /// Writer processes. Default: 32.
    pub writers: u32,
    /// Bytes per writer's checkpoint. Default: 32 MiB.
    pub size: u64,
    /// The store answers 503 above this many requests in flight. Default: 32.
    pub overload_above: usize,
    /// Drains at once in the paced run. Default: see the module documentation.
    pub max_writers: Option<u32>,
}

/// One run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StormRun {
    /// `naive` or `paced`.
    pub mode: String,
    /// Seconds until the last writer finished.
    pub secs: f64,
    /// Writers whose checkpoint committed.
    pub committed: u32,
    /// Writers that failed.
    pub failed: u32,
    /// 503 SlowDown answers for overload.
    pub slowdowns: u64,
    /// Requests the store saw.
    pub requests: u64,
    /// Committed bytes / seconds, MiB/s.
    pub mib_per_sec: f64,
    /// The first failure's message, if any.
    pub first_error: Option<String>,
}

/// What the benchmark measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StormBenchReport {
    /// When it ran (UTC).
    pub date: String,
    /// The machine's limits, measured in the same run.
    pub machine: MachineLimits,
    /// Writer processes.
    pub writers: u32,
    /// Bytes each writer saves.
    pub bytes_per_writer: u64,
    /// Requests in flight above which the store answers 503 SlowDown.
    pub overload_above: usize,
    /// Drains uploading at once under paced admission.
    pub max_writers: u32,
    /// The link's cap, MiB/s.
    pub link_cap_mib_per_sec: f64,
    /// All bytes / the link cap: no schedule can finish sooner.
    pub ideal_secs: f64,
    /// The naive and the paced run.
    pub runs: Vec<StormRun>,
}

impl StormBench {
    /// Requests one writer keeps in flight while uploading (parts of 8 MiB, at most 16).
    fn per_writer(&self) -> u32 {
        (self.size.div_ceil(8 << 20)).clamp(1, 16) as u32
    }

    /// Runs both modes.
    pub fn run(&self) -> Result<StormBenchReport, BenchError> {
        let machine = MachineLimits::measure();
        let server = S3Server::start();
        let mut profile = LinkProfile::s3();
        profile.max_in_flight = Some(self.overload_above);
        let cap = profile.total_bytes_per_sec.unwrap_or(u64::MAX) as f64 / (1 << 20) as f64;
        let emu = LinkEmulator::start(server.addr(), profile);
        let tmp = tempfile::tempdir()?;
        let file = tmp.path().join("state.bin");
        std::fs::write(&file, data::bytes(7, self.size as usize))?;
        let m = self
            .max_writers
            .unwrap_or_else(|| (self.overload_above as u32 / (self.per_writer() + 1)).max(1));
        let mut runs = Vec::new();
        for mode in ["naive", "paced"] {
            let s0 = emu.stats();
            let t = Instant::now();
            let children: Vec<_> = (0..self.writers)
                .map(|w| {
                    let root = format!("s3://{}/storm/{mode}/writer-{w}", server.bucket());
                    let mut c = strata_command(&self.exe, &server, &emu.endpoint());
                    c.args(["--quiet", "ckpt", "save", &root, "--step", "1"])
                        .arg(format!("state.bin={}", file.display()))
                        .stdout(Stdio::null());
                    if mode == "naive" {
                        c.args(["--admission", "off", "--jitter", "0s"]);
                    } else {
                        c.args(["--admission", "leases", "--jitter", "2s"])
                            .args(["--max-writers", &m.to_string()])
                            .arg("--lease-root")
                            .arg(format!("s3://{}/storm/leases", server.bucket()));
                    }
                    c.spawn()
                        .map_err(|e| BenchError::Failed(format!("{}: {e}", self.exe.display())))
                })
                .collect::<Result<_, _>>()?;
            let (mut committed, mut failed, mut first_error) = (0, 0, None);
            for child in children {
                let out = child.wait_with_output()?;
                if out.status.success() {
                    committed += 1;
                } else {
                    failed += 1;
                    first_error.get_or_insert_with(|| {
                        String::from_utf8_lossy(&out.stderr).trim().to_string()
                    });
                }
            }
            let secs = t.elapsed().as_secs_f64();
            let s1 = emu.stats();
            runs.push(StormRun {
                mode: mode.into(),
                secs,
                committed,
                failed,
                slowdowns: s1.overload_rejections - s0.overload_rejections,
                requests: s1.requests - s0.requests,
                mib_per_sec: committed as f64 * self.size as f64 / (1 << 20) as f64 / secs,
                first_error,
            });
        }
        Ok(StormBenchReport {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            machine,
            writers: self.writers,
            bytes_per_writer: self.size,
            overload_above: self.overload_above,
            max_writers: m,
            link_cap_mib_per_sec: cap,
            ideal_secs: self.writers as f64 * self.size as f64 / (1 << 20) as f64 / cap,
            runs,
        })
    }
}

impl StormBenchReport {
    /// A table for people.
    pub fn to_table(&self) -> String {
        let mut s = format!(
            "strata bench ckpt-storm  {}\n{} writers × {} at once; the store answers 503 SlowDown above {} requests in flight; link capped at {:.0} MiB/s (all bytes at the cap: {:.1} s); paced: at most {} drains at once\nmachine: {} cores\n\n{:<7} {:>9} {:>10} {:>7} {:>10} {:>9} {:>8}\n",
            self.date,
            self.writers,
            format_size(self.bytes_per_writer),
            self.overload_above,
            self.link_cap_mib_per_sec,
            self.ideal_secs,
            self.max_writers,
            self.machine.cores,
            "mode",
            "all done",
            "committed",
            "failed",
            "503s",
            "requests",
            "MiB/s"
        );
        for r in &self.runs {
            s.push_str(&format!(
                "{:<7} {:>7.1} s {:>10} {:>7} {:>10} {:>9} {:>8.1}\n",
                r.mode, r.secs, r.committed, r.failed, r.slowdowns, r.requests, r.mib_per_sec
            ));
        }
        if let (Some(n), Some(p)) = (
            self.runs.iter().find(|r| r.mode == "naive"),
            self.runs.iter().find(|r| r.mode == "paced"),
        ) {
            s.push_str(&format!(
                "paced / naive time: {:.2}; failed checkpoints: naive {}, paced {} (target: paced sooner, 0 failed)\n",
                p.secs / n.secs,
                n.failed,
                p.failed
            ));
            if let Some(e) = &n.first_error {
                s.push_str(&format!("naive's first failure: {e}\n"));
            }
        }
        s
    }
}
