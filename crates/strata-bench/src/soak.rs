//! `strata bench soak --minutes N`: reads, saves, restores and model pulls run together for N
//! minutes, as `strata` processes, through the link emulator injecting faults (500s and
//! 503s, connection resets and stalls mid-body) in front of a three-node Garage cluster
//! that loses a node (SIGKILL) and gets it back every minute.
//!
//! - **reader**: shuffled epochs of a packed dataset through a node cache (`dataset read
//!   --shuffle global`): every sample once per epoch, each checked against its CRC32C.
//! - **checkpointer**: saves step after step (`ckpt save`), restores each (`ckpt restore`)
//!   and compares it with the bytes saved; every committed step must stay listed.
//! - **model puller**: pulls a model into an empty cache (`models pull`) and compares each
//!   file with the one uploaded.
//!
//! Reported: operations done and failed (a failure must be one clear error; the next
//! operation is the retry), faults the link injected, bytes verified, wrong bytes (must be
//! 0), committed checkpoints lost (must be 0), the children's peak RSS against the budget.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use strata_testkit::garage_cluster::{self, GarageCluster};
use strata_testkit::{LinkEmulator, LinkProfile, data};
use strata_units::format_size;

use crate::error::{BenchError, Result};
use crate::machine::MachineLimits;
use crate::server::strata_command;

/// Settings of the soak.
#[derive(Debug, Clone)]
pub struct SoakBench {
    /// The `strata` executable the workers run.
    pub exe: PathBuf,
    /// How long the workers run. Default: 1 minute.
    pub duration: Duration,
    /// A node is killed every this long (and restarted [`SoakBench::down`] later). Default:
    /// 1 minute, or half the duration when that is shorter.
    pub kill_every: Duration,
    /// How long a killed node stays down. Default: 10 s.
    pub down: Duration,
    /// Peak RSS any `strata` process may reach, bytes. Default: 1 GiB.
    pub rss_budget: u64,
    /// Where the work files go. Default: a temporary directory.
    pub dir: Option<PathBuf>,
}

impl SoakBench {
    /// `minutes` of soak with the defaults.
    pub fn new(exe: PathBuf, minutes: f64) -> Self {
        let duration = Duration::from_secs_f64(minutes * 60.0);
        Self {
            exe,
            duration,
            kill_every: Duration::from_secs(60).min(duration / 2),
            down: Duration::from_secs(10),
            rss_budget: 1 << 30,
            dir: None,
        }
    }
}

/// What one kind of worker did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WorkerReport {
    /// Operations that finished and checked out.
    pub done: u64,
    /// Operations that failed with an error (the next one is the retry).
    pub failed: u64,
    /// Bytes compared with what was written (or checked against their CRC32C).
    pub bytes_verified: u64,
    /// Bytes that differed from what was written. Must be 0.
    pub wrong_bytes: u64,
    /// The first failure's last error line, if any.
    pub first_error: Option<String>,
}

/// What the soak measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SoakReport {
    /// When it ran (UTC).
    pub date: String,
    /// The machine's limits, measured in the same run.
    pub machine: MachineLimits,
    /// Seconds the workers ran.
    pub secs: f64,
    /// The link's profile (faults included).
    pub link: LinkProfile,
    /// Nodes killed and restarted.
    pub node_kills: u64,
    /// Shuffled epochs.
    pub reader: WorkerReport,
    /// Saves and restores.
    pub checkpointer: WorkerReport,
    /// Model pulls.
    pub models: WorkerReport,
    /// Faults the link injected (each one a retry for the client): 500/503 answers,
    /// connections reset and stalled mid-body.
    pub injected_errors: u64,
    /// Connections reset mid-body.
    pub resets: u64,
    /// Bodies stalled.
    pub stalls: u64,
    /// Requests the link carried.
    pub requests: u64,
    /// Checkpoints committed during the soak.
    pub committed: u64,
    /// Committed checkpoints missing from the final listing. Must be 0.
    pub lost_checkpoints: u64,
    /// The largest peak RSS of any `strata` process, bytes.
    pub peak_rss: u64,
    /// The budget it is held to, bytes.
    pub rss_budget: u64,
}

impl SoakReport {
    /// Whether the soak passed: no wrong byte, no lost checkpoint, RSS within the budget,
    /// and every worker finished operations.
    pub fn passed(&self) -> bool {
        let workers = [&self.reader, &self.checkpointer, &self.models];
        workers.iter().all(|w| w.wrong_bytes == 0 && w.done > 0)
            && self.lost_checkpoints == 0
            && self.peak_rss <= self.rss_budget
    }

    /// The report as text.
    pub fn to_table(&self) -> String {
        let mut s = format!(
            "soak: {:.0} s, {} node kill(s), link {} with {:.0}% errors, {:.0}% resets, {:.0}% stalls ({})\n",
            self.secs,
            self.node_kills,
            self.link.name,
            self.link.error_rate * 100.0,
            self.link.reset_rate * 100.0,
            self.link.stall_rate * 100.0,
            self.date
        );
        s += &format!(
            "  {:<18} {:>6} {:>7} {:>14} {:>11}\n",
            "worker", "done", "failed", "verified", "wrong bytes"
        );
        for (name, w) in [
            ("epochs", &self.reader),
            ("ckpt save+restore", &self.checkpointer),
            ("model pulls", &self.models),
        ] {
            s += &format!(
                "  {:<18} {:>6} {:>7} {:>14} {:>11}\n",
                name,
                w.done,
                w.failed,
                format_size(w.bytes_verified),
                w.wrong_bytes
            );
            if let Some(e) = &w.first_error {
                s += &format!("    first failure: {e}\n");
            }
        }
        s += &format!(
            "  link: {} requests; injected {} errors, {} resets, {} stalls (each retried)\n",
            self.requests, self.injected_errors, self.resets, self.stalls
        );
        s += &format!(
            "  checkpoints committed {}, lost {} (must be 0)\n",
            self.committed, self.lost_checkpoints
        );
        s += &format!(
            "  peak RSS of a strata process {} (budget {}) {}\n",
            format_size(self.peak_rss),
            format_size(self.rss_budget),
            if self.peak_rss <= self.rss_budget {
                "✓"
            } else {
                "✗"
            }
        );
        s += &format!("  {}\n", if self.passed() { "passed" } else { "FAILED" });
        s
    }
}

/// The run's shared state.
struct Run<'a> {
    bench: &'a SoakBench,
    cluster: &'a GarageCluster,
    endpoint: String,
    dir: &'a Path,
    stop: AtomicBool,
}

impl Run<'_> {
    /// Runs `strata ARGS`; (success, stdout, the last line of stderr).
    fn strata(&self, args: &[&str]) -> Result<(bool, String, String)> {
        let out = strata_command(&self.bench.exe, self.cluster, &self.endpoint)
            .args(args)
            .output()?;
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or_default().to_string();
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            last,
        ))
    }

    fn failed(w: &mut WorkerReport, err: String) {
        w.failed += 1;
        w.first_error.get_or_insert(err);
    }

    /// Shuffled epochs until stopped.
    fn reader(&self, url: &str, samples: u64) -> Result<WorkerReport> {
        let mut w = WorkerReport::default();
        let cache = self.dir.join("reader-cache");
        let cache = cache.to_string_lossy();
        let mut epoch = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            let e = epoch.to_string();
            let args = [
                "--cache",
                &cache,
                "dataset",
                "read",
                url,
                "--shuffle",
                "global",
                "--epoch",
                &e,
                "--drop-last",
            ];
            let (ok, out, err) = self.strata(&args)?;
            if !ok {
                Self::failed(&mut w, err);
                continue;
            }
            let mut keys = Vec::new();
            let mut bytes = 0u64;
            for line in out.lines() {
                let mut f = line.split('\t');
                let (_, Some(key), Some(members)) = (f.next(), f.next(), f.next()) else {
                    continue;
                };
                keys.push(key.to_string());
                bytes += members
                    .split(' ')
                    .filter_map(|m| m.rsplit(':').next()?.parse::<u64>().ok())
                    .sum::<u64>();
            }
            keys.sort_unstable();
            keys.dedup();
            if keys.len() as u64 == samples {
                w.done += 1;
                w.bytes_verified += bytes;
            } else {
                // Samples missing or repeated: counted as wrong (the epoch's whole bytes).
                w.wrong_bytes += bytes.max(1);
                w.first_error.get_or_insert(format!(
                    "epoch {epoch}: {} distinct samples of {samples}",
                    keys.len()
                ));
            }
            epoch += 1;
        }
        Ok(w)
    }

    /// Saves, restores and compares steps until stopped; returns the steps committed.
    fn checkpointer(&self, root: &str) -> Result<(WorkerReport, Vec<u64>)> {
        let mut w = WorkerReport::default();
        let mut committed = Vec::new();
        let mut step = 1u64;
        while !self.stop.load(Ordering::Relaxed) {
            let bytes = data::bytes(step, (4 << 20) + step as usize);
            let f = self.dir.join("ckpt.bin");
            std::fs::write(&f, &bytes)?;
            let s = step.to_string();
            let item = format!("state.bin={}", f.display());
            let (ok, _, err) = self.strata(&["-q", "ckpt", "save", root, "--step", &s, &item])?;
            if !ok {
                Self::failed(&mut w, err);
                // A failed save may have committed all the same (the error came after the
                // commit): the listing at the end tells. Next step either way.
                step += 1;
                continue;
            }
            committed.push(step);
            let out = self.dir.join("restored");
            let _ = std::fs::remove_dir_all(&out);
            let (ok, _, err) =
                self.strata(&["-q", "ckpt", "restore", root, &s, &out.to_string_lossy()])?;
            if !ok {
                Self::failed(&mut w, err);
            } else {
                let got = std::fs::read(out.join("rank-00000/state.bin")).unwrap_or_default();
                let wrong = differing(&got, &bytes);
                w.wrong_bytes += wrong;
                if wrong == 0 {
                    w.done += 1;
                    w.bytes_verified += bytes.len() as u64;
                }
            }
            step += 1;
        }
        Ok((w, committed))
    }

    /// Pulls the model into an empty cache and compares it, until stopped.
    fn puller(&self, url: &str, files: &[(String, Vec<u8>)]) -> Result<WorkerReport> {
        let mut w = WorkerReport::default();
        let mut n = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            let cache = self.dir.join(format!("models-{n}"));
            n += 1;
            let c = cache.to_string_lossy().into_owned();
            let (ok, out, err) = self.strata(&["--cache", &c, "--json", "models", "pull", url])?;
            if !ok {
                Self::failed(&mut w, err);
                let _ = std::fs::remove_dir_all(&cache);
                continue;
            }
            let dir = serde_json::from_str::<serde_json::Value>(&out)
                .ok()
                .and_then(|v| v["dir"].as_str().map(PathBuf::from));
            let Some(dir) = dir else {
                Self::failed(&mut w, format!("models pull printed no directory: {out}"));
                continue;
            };
            let mut wrong = 0;
            let mut verified = 0;
            for (name, want) in files {
                let got = std::fs::read(dir.join(name)).unwrap_or_default();
                wrong += differing(&got, want);
                verified += want.len() as u64;
            }
            w.wrong_bytes += wrong;
            if wrong == 0 {
                w.done += 1;
                w.bytes_verified += verified;
            }
            let _ = std::fs::remove_dir_all(&cache);
        }
        Ok(w)
    }
}

/// Bytes of `got` that differ from `want` (a length difference counts in full).
fn differing(got: &[u8], want: &[u8]) -> u64 {
    let common = got.iter().zip(want).filter(|(a, b)| a != b).count() as u64;
    common + got.len().abs_diff(want.len()) as u64
}

/// The largest peak RSS of this process's children waited for so far, bytes.
fn children_peak_rss() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage struct.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    ru.ru_maxrss.max(0) as u64 * 1024
}

impl SoakBench {
    /// Runs the soak. Needs the `garage` binary.
    pub fn run(&self) -> Result<SoakReport> {
        let machine = MachineLimits::measure();
        let work = crate::workdir::WorkDir::new(self.dir.as_deref(), "strata-soak-")?;
        let dir = work.path().to_path_buf();
        let cluster = GarageCluster::start()?;
        let link = LinkProfile {
            name: "s3+faults".into(),
            error_rate: 0.10,
            reset_rate: 0.02,
            stall_rate: 0.01,
            stall: Duration::from_secs(2),
            ..LinkProfile::s3()
        };
        // Set up without faults, then turn them on.
        let emu = LinkEmulator::start(
            strata_testkit::S3Endpoint::addr(&cluster),
            LinkProfile::s3(),
        );
        let run = Run {
            bench: self,
            cluster: &cluster,
            endpoint: emu.endpoint(),
            dir: &dir,
            stop: AtomicBool::new(false),
        };
        let samples_dir = dir.join("samples");
        std::fs::create_dir_all(&samples_dir)?;
        let samples = 800u64;
        for i in 0..samples {
            std::fs::write(
                samples_dir.join(format!("s{i:05}.bin")),
                data::bytes(i, 20_000 + i as usize),
            )?;
        }
        let ds = "s3://strata-test/soak/ds/";
        let src = format!("{}/", samples_dir.display());
        let (ok, _, err) = run.strata(&["-q", "pack", &src, ds, "--shard-size", "2MiB"])?;
        if !ok {
            return Err(BenchError::Failed(format!("packing the dataset: {err}")));
        }
        let model = vec![(
            "model.safetensors".to_string(),
            strata_models::synth::shard(9, 0, 16 << 20),
        )];
        let model_url = "s3://strata-test/soak/model/";
        for (name, bytes) in &model {
            let f = dir.join(name);
            std::fs::write(&f, bytes)?;
            let (ok, _, err) = run.strata(&["-q", "cp", &f.to_string_lossy(), model_url])?;
            if !ok {
                return Err(BenchError::Failed(format!("uploading the model: {err}")));
            }
        }
        emu.set_profile(link.clone());
        let root = "s3://strata-test/soak/ckpt";
        let start = Instant::now();
        let before = emu.stats();
        let kills = Mutex::new(0u64);
        let (reader, ckpt, puller) = std::thread::scope(|sc| {
            let run = &run;
            let r = sc.spawn(move || run.reader(ds, samples));
            let c = sc.spawn(move || run.checkpointer(root));
            let m = sc.spawn(move || run.puller(model_url, &model));
            // The killer: this thread, until the duration is up.
            let mut next_kill = start + self.kill_every;
            let mut victim = 1usize;
            while start.elapsed() < self.duration {
                std::thread::sleep(Duration::from_millis(100));
                if Instant::now() >= next_kill {
                    next_kill += self.kill_every;
                    run.cluster.kill(victim);
                    *kills.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                    let back = Instant::now() + self.down;
                    while Instant::now() < back && start.elapsed() < self.duration {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    if let Err(e) = run.cluster.restart(victim) {
                        eprintln!("soak: node {victim} did not come back: {e}");
                    }
                    victim = (victim + 1) % garage_cluster::NODES;
                }
            }
            run.stop.store(true, Ordering::Relaxed);
            (r.join(), c.join(), m.join())
        });
        let secs = start.elapsed().as_secs_f64();
        let after = emu.stats();
        let reader = reader.map_err(|_| BenchError::Failed("the reader panicked".into()))??;
        let (checkpointer, committed) =
            ckpt.map_err(|_| BenchError::Failed("the checkpointer panicked".into()))??;
        let models = puller.map_err(|_| BenchError::Failed("the puller panicked".into()))??;
        // Every node back, faults off: every committed step must be listed complete.
        for i in 0..garage_cluster::NODES {
            if !cluster.is_up(i) {
                cluster.restart(i)?;
            }
        }
        emu.set_profile(LinkProfile::s3());
        let (ok, listed, err) = run.strata(&["ckpt", "ls", root])?;
        if !ok {
            return Err(BenchError::Failed(format!(
                "listing the checkpoints: {err}"
            )));
        }
        let complete: Vec<u64> = listed
            .lines()
            .filter(|l| l.contains(" complete "))
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        let lost = committed.iter().filter(|s| !complete.contains(s)).count() as u64;
        let peak_rss = children_peak_rss();
        Ok(SoakReport {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            machine,
            secs,
            link,
            node_kills: kills.into_inner().unwrap_or_else(|e| e.into_inner()),
            reader,
            checkpointer,
            models,
            injected_errors: after.injected_errors - before.injected_errors,
            resets: after.resets - before.resets,
            stalls: after.stalls - before.stalls,
            requests: after.requests - before.requests,
            committed: committed.len() as u64,
            lost_checkpoints: lost,
            peak_rss,
            rss_budget: self.rss_budget,
        })
    }
}
