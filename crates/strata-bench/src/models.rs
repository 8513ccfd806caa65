//! `strata bench models`: a model's cold start from the object store, against the link.
//!
//! One run, on an S3 server (in-process by default, or Garage) behind the link emulator
//! (default `s3` profile):
//!
//! 1. A synthetic safetensors model (`--size`, 2 GiB by default, in `--shards` shards, plus a
//!    config) is uploaded to the server directly (not through the emulator).
//! 2. `strata-models` pulls it through the emulator: throughput against the emulator's cap,
//!    and the time until the first tensor's bytes are on disk.
//! 3. The naive way: one GET per file, one stream each, as a plain client downloads. Measured
//!    on `--naive-sample` bytes of each file (a whole 1 GiB file at one stream's rate would
//!    take minutes) and reported as a rate and the time the whole model would take.
//! 4. `--processes` processes (`strata models pull`) pull the model at once into one new
//!    cache directory: the bytes that crossed the link against one model's size.

use crate::error::BenchError;
use std::path::PathBuf;
use std::time::Instant;

use bytes::Bytes;
use strata_models::{ModelRepo, PullOptions, synth};
use strata_testkit::{LinkProfile, Linked};
use strata_units::format_size;

use crate::machine::{MachineLimits, mib};
use crate::server::{BenchServer, strata_command};

/// Settings of the model benchmark.
#[derive(Debug, Clone)]
pub struct ModelsBench {
    /// The `strata` executable the concurrent pullers run.
    pub exe: PathBuf,
    /// Model size in bytes. Default: 2 GiB.
    pub size: u64,
    /// Safetensors shards. Default: 2.
    pub shards: usize,
    /// Bytes of each file read by the naive single stream. Default: 64 MiB.
    pub naive_sample: u64,
    /// Processes pulling at once. Default: 4.
    pub processes: usize,
    /// Default: `s3`.
    pub profile: LinkProfile,
    /// Default: the in-process server.
    pub server: BenchServer,
}

impl ModelsBench {
    /// The defaults, running `exe` for the concurrent pulls.
    pub fn new(exe: PathBuf) -> Self {
        Self {
            exe,
            size: 2 << 30,
            shards: 2,
            naive_sample: 64 << 20,
            processes: 4,
            profile: LinkProfile::s3(),
            server: BenchServer::default(),
        }
    }
}

/// What it measured. Rates in MiB/s, times in seconds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelsBenchReport {
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
    /// Bytes of the model.
    pub model_bytes: u64,
    /// Files in it.
    pub files: usize,
    /// Tensors in it.
    pub tensors: usize,
    /// Seconds the pull took.
    pub pull_secs: f64,
    /// The pull's rate, MiB/s.
    pub pull_mib_per_sec: f64,
    /// That over the link's cap.
    pub pull_of_cap: f64,
    /// Seconds until the first tensor was on disk.
    pub first_tensor_secs: f64,
    /// One GET per file in turn, MiB/s.
    pub naive_mib_per_sec: f64,
    /// The whole model at the naive rate, one file after another.
    pub naive_projected_secs: f64,
    /// The pull over the naive way.
    pub pull_vs_naive: f64,
    /// Processes pulling the same model at once.
    pub processes: usize,
    /// Seconds until all of them had it.
    pub processes_secs: f64,
    /// Bytes that crossed the link while the processes pulled.
    pub processes_link_bytes: u64,
    /// `processes_link_bytes` / the model's size: 1.0 is one download for the node.
    pub processes_link_of_model: f64,
    /// Processes that downloaded (the others waited and used the result).
    pub processes_downloading: usize,
}

impl ModelsBench {
    /// Runs it.
    pub fn run(&self) -> Result<ModelsBenchReport, BenchError> {
        let machine = MachineLimits::measure();
        let rig = Linked::start(self.server.start()?, self.profile.clone())?;
        let (server, emu, cap) = (&rig.server, &rig.emu, rig.cap_mib_per_sec);
        let (direct, through) = (&rig.direct, &rig.linked);
        let tmp = tempfile::tempdir()?;
        let rt = crate::machine::runtime()?;
        let shards = self.shards.max(1);
        let per = (self.size / shards as u64).max(1 << 20);
        let prefix = "bench/models/synthetic";
        let mut names = Vec::new();
        rt.block_on(async {
            let opts = direct.config().transfer.clone();
            direct
                .put(
                    &format!("{prefix}/config.json"),
                    Bytes::from_static(br#"{"model_type": "synthetic"}"#),
                )
                .await?;
            for i in 0..shards {
                let name = format!("model-{:05}-of-{shards:05}.safetensors", i + 1);
                let body = Bytes::from(synth::shard(i as u64 + 1, i * 1000, per));
                direct
                    .upload_bytes(body, &format!("{prefix}/{name}"), &opts, None)
                    .await?;
                names.push(name);
            }
            Ok::<_, BenchError>(())
        })?;
        let url = server.url(&format!("{prefix}/"));
        // 2. The pull.
        let repo = ModelRepo::open(&tmp.path().join("one"))?;
        let r = rt.block_on(strata_models::pull(
            &repo,
            through,
            &url,
            &PullOptions::default(),
        ))?;
        let pull_rate = mib(r.bytes, r.elapsed_secs);
        // 3. The naive single stream.
        let (naive_bytes, naive_secs) = rt.block_on(async {
            let (mut b, mut s) = (0u64, 0f64);
            for n in &names {
                let key = format!("{prefix}/{n}");
                let t = Instant::now();
                let got = through
                    .get_range(&key, 0..self.naive_sample.min(per), None)
                    .await?;
                s += t.elapsed().as_secs_f64();
                b += got.len() as u64;
            }
            Ok::<_, BenchError>((b, s))
        })?;
        let naive_rate = mib(naive_bytes, naive_secs);
        // 4. Processes at once.
        let shared = tmp.path().join("shared");
        let s0 = emu.stats().bytes_down;
        let t = Instant::now();
        let children: Vec<_> = (0..self.processes.max(1))
            .map(|_| {
                strata_command(&self.exe, &**server, &emu.endpoint())
                    .args(["--quiet", "--json", "--cache"])
                    .arg(&shared)
                    .args(["models", "pull", &url.to_string()])
                    .spawn()
                    .map_err(|e| BenchError::Failed(format!("{}: {e}", self.exe.display())))
            })
            .collect::<Result<_, _>>()?;
        let mut downloading = 0;
        for c in children {
            let out = c.wait_with_output()?;
            if !out.status.success() {
                return Err(BenchError::Failed(format!(
                    "a concurrent pull failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)
                .map_err(|e| BenchError::Failed(format!("pull output: {e}")))?;
            if v["fetched_bytes"].as_u64().unwrap_or(0) > 0 {
                downloading += 1;
            }
        }
        let processes_secs = t.elapsed().as_secs_f64();
        let link = emu.stats().bytes_down - s0;
        Ok(ModelsBenchReport {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            machine,
            server: self.server,
            link: self.profile.clone(),
            link_cap_mib_per_sec: cap,
            model_bytes: r.bytes,
            files: r.files,
            tensors: r.tensors,
            pull_secs: r.elapsed_secs,
            pull_mib_per_sec: pull_rate,
            pull_of_cap: pull_rate / cap,
            first_tensor_secs: r.first_tensor_secs.unwrap_or(f64::NAN),
            naive_mib_per_sec: naive_rate,
            naive_projected_secs: r.bytes as f64 / (1 << 20) as f64 / naive_rate.max(1e-9),
            pull_vs_naive: pull_rate / naive_rate.max(1e-9),
            processes: self.processes.max(1),
            processes_secs,
            processes_link_bytes: link,
            processes_link_of_model: link as f64 / r.bytes as f64,
            processes_downloading: downloading,
        })
    }
}

impl ModelsBenchReport {
    /// A table for people.
    pub fn to_table(&self) -> String {
        format!(
            "strata bench models  {}\nmodel {} in {} file(s), {} tensors; server {}; link {} capped at {:.0} MiB/s; machine: {} cores\n\n\
             {:<40} {:>12} {:>26}\n\
             {:<40} {:>7.1} MiB/s {:>17.2} of cap   ({:.1} s; target ≥ 0.85)\n\
             {:<40} {:>10.3} s\n\
             {:<40} {:>7.1} MiB/s {:>16.1}× slower   (the model in {:.0} s)\n\
             {:<40} {:>9.2} GiB {:>14.3} of a model   ({} downloading, {:.1} s; target 1.0)\n",
            self.date,
            format_size(self.model_bytes),
            self.files,
            self.tensors,
            self.server.name(),
            self.link.name,
            self.link_cap_mib_per_sec,
            self.machine.cores,
            "measure",
            "value",
            "against the limit",
            "pull (parallel ranged reads)",
            self.pull_mib_per_sec,
            self.pull_of_cap,
            self.pull_secs,
            "time to first tensor",
            self.first_tensor_secs,
            "naive: one stream per file",
            self.naive_mib_per_sec,
            self.pull_vs_naive,
            self.naive_projected_secs,
            format!("{} processes pulling at once: link bytes", self.processes),
            self.processes_link_bytes as f64 / (1u64 << 30) as f64,
            self.processes_link_of_model,
            self.processes_downloading,
            self.processes_secs,
        )
    }
}
