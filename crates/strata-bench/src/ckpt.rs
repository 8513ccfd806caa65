//! `strata bench ckpt`: what a checkpoint costs training, and how fast it reaches the store
//! and comes back, against this machine's limits.
//!
//! One run, on an S3 server (the in-process one by default, or Garage) behind the link
//! emulator (default `s3` profile):
//!
//! 1. The machine: memcpy bandwidth; the local directory's write bandwidth (write `size`
//!    bytes, fsync) and read bandwidth (page cache dropped).
//! 2. Snapshot save: the stall (copy into staging memory) against `size` / memcpy.
//! 3. Durable-local save: the stall (write and fsync on the local tier) against `size` / the
//!    measured write bandwidth.
//! 4. The drain of each: upload throughput against the emulator's cap, and a single-stream
//!    upload (one PUT) of a sample as the naive way.
//! 5. Restore from the store alone (another node): throughput against the cap.
//! 6. Restore from the local tier, page cache dropped: throughput against the read bandwidth.

use crate::error::BenchError;
use crate::workdir::WorkDir;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_ckpt::{AdmissionKind, Checkpointer, CkptConfig, Item, SaveMode, Tier};
use strata_store::Location;
use strata_testkit::{LinkProfile, Linked, data};
use strata_units::format_size;

use crate::machine::{CacheDrop, MachineLimits, drop_page_cache, mib};
use crate::server::BenchServer;

/// Settings of the checkpoint benchmark.
#[derive(Debug, Clone)]
pub struct CkptBench {
    /// Checkpoint size in bytes. Default: 2 GiB.
    pub size: u64,
    /// Files it is cut into. Default: 4.
    pub files: usize,
    /// Bytes of the single-stream baseline upload. Default: 64 MiB (at most `size`).
    pub single_sample: u64,
    /// The emulated link. Default: `s3`.
    pub profile: LinkProfile,
    /// The local tier's directory. Default: a temporary directory.
    pub work_dir: Option<PathBuf>,
    /// The S3 server. Default: the in-process one.
    pub server: BenchServer,
}

impl Default for CkptBench {
    fn default() -> Self {
        Self {
            size: 2 << 30,
            files: 4,
            single_sample: 64 << 20,
            profile: LinkProfile::s3(),
            work_dir: None,
            server: BenchServer::default(),
        }
    }
}

/// What the benchmark measured. Times in seconds, rates in MiB/s.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CkptBenchReport {
    /// When it ran (UTC).
    pub date: String,
    /// The machine's limits, measured in the same run.
    pub machine: MachineLimits,
    /// The S3 server behind the link.
    pub server: BenchServer,
    /// Bytes of the checkpoint.
    pub bytes: u64,
    /// Files in it.
    pub files: usize,
    /// The emulated link.
    pub link: LinkProfile,
    /// The link's cap, MiB/s.
    pub link_cap_mib_per_sec: f64,
    /// The mean of the two probe writes (`local_write_runs_mib_per_sec`).
    pub local_write_mib_per_sec: f64,
    /// The local tier's write rate in each run, MiB/s.
    pub local_write_runs_mib_per_sec: Vec<f64>,
    /// The local tier's read rate, MiB/s.
    pub local_read_mib_per_sec: f64,
    /// How the page cache was emptied before local reads.
    pub page_cache_drop: CacheDrop,
    /// The first snapshot's stall (staging memory mapped for the first time).
    pub snapshot_first_stall_secs: f64,
    /// The next snapshot's stall (staging memory reused), the steady state of training.
    pub snapshot_stall_secs: f64,
    /// The steady stall / (bytes / memcpy bandwidth): 1.0 is one memory copy.
    pub snapshot_stall_vs_memcpy: f64,
    /// Seconds a durable-local save stalled the caller.
    pub durable_stall_secs: f64,
    /// The stall / (bytes / local write bandwidth): 1.0 is one write of the bytes.
    pub durable_stall_vs_local_write: f64,
    /// The mean of the two drains (`drain_runs_mib_per_sec`).
    pub drain_mib_per_sec: f64,
    /// The drain's upload rate in each run, MiB/s.
    pub drain_runs_mib_per_sec: Vec<f64>,
    /// The store's CompleteMultipartUpload of the file that finished last (mean of the two
    /// drains): server-side time no upload overlaps. The in-process server copies the whole
    /// object there.
    pub drain_last_complete_secs: f64,
    /// The drain rate without that completion, over the cap: what the link carried.
    pub drain_without_last_complete_of_cap: f64,
    /// The median drain over the link's cap.
    pub drain_of_cap: f64,
    /// Seconds from the save to the commit (snapshot save).
    pub drain_total_secs: f64,
    /// One stream's upload rate across the same link, MiB/s.
    pub single_stream_upload_mib_per_sec: f64,
    /// The drain over one stream.
    pub drain_vs_single_stream: f64,
    /// Restore from the store alone, MiB/s.
    pub restore_remote_mib_per_sec: f64,
    /// That over the link's cap.
    pub restore_remote_of_cap: f64,
    /// Restore from the local tier, MiB/s.
    pub restore_local_mib_per_sec: f64,
    /// That over the device's read.
    pub restore_local_of_device: f64,
}

impl CkptBench {
    /// Runs it.
    pub fn run(&self) -> Result<CkptBenchReport, BenchError> {
        let machine = MachineLimits::measure();
        let rig = Linked::start(self.server.start()?, self.profile.clone())?;
        let (store, cap) = (&rig.linked, rig.cap_mib_per_sec);
        let work_dir = WorkDir::new(self.work_dir.as_deref(), "strata-bench-ckpt-")?;
        let work = work_dir.path().to_path_buf();
        let files = self.files.max(1);
        let per = (self.size / files as u64).max(1);
        let items: Vec<(String, Bytes)> = (0..files)
            .map(|i| {
                (
                    format!("model-{i:05}-of-{files:05}.safetensors"),
                    Bytes::from(data::bytes(i as u64, per as usize)),
                )
            })
            .collect();
        let bytes = per * files as u64;
        // 1. The local directory's own write and read bandwidth, same size.
        // This VM's disk takes bursts faster than it sustains writes (2.2 GiB/s or 0.36 GiB/s
        // for the same 2 GiB, depending on what came before), so the write is measured
        // twice, before the saves and right after the durable-local one, and averaged.
        let probe = work.join("probe.bin");
        let probe_write = || -> Result<f64, BenchError> {
            use std::io::Write;
            let t = Instant::now();
            let mut f = std::fs::File::create(&probe)?;
            for (_, b) in &items {
                f.write_all(b)?;
            }
            f.sync_all()?;
            Ok(t.elapsed().as_secs_f64())
        };
        let write_before = probe_write()?;
        let drop_how = drop_page_cache(&work);
        let t = Instant::now();
        let n = std::fs::read(&probe)?.len();
        let read_secs = t.elapsed().as_secs_f64();
        let _ = std::fs::remove_file(&probe);
        let local_read = mib(n as u64, read_secs);

        let rt = crate::machine::runtime()?;
        rt.block_on(async {
            let cfg = |mode, local: Option<PathBuf>| {
                let mut c = CkptConfig {
                    remote: Some(Location {
                        store: store.clone(),
                        prefix: "bench/ckpt".into(),
                    }),
                    local,
                    mode,
                    staging_bytes: bytes + (64 << 20),
                    ..Default::default()
                };
                c.drain.jitter = Duration::ZERO;
                c.drain.admission.kind = AdmissionKind::Auto;
                c
            };
            let as_items = || {
                items
                    .iter()
                    .map(|(n, b)| Item::bytes(n.clone(), b.clone()))
                    .collect::<Vec<_>>()
            };
            // 2 and 4: snapshot.
            let ck = Checkpointer::open(cfg(SaveMode::Snapshot, Some(work.join("snap"))))?;
            let h = ck.save(1, as_items()).await?;
            let snapshot_cold = h.stall.as_secs_f64();
            let drain1 = h.wait().await?;
            // Training saves again and again: the second snapshot copies into the staging
            // memory the first one mapped.
            let h = ck.save(3, as_items()).await?;
            let snapshot_stall = h.stall.as_secs_f64();
            let drain2 = h.wait().await?;
            ck.close().await;
            // 3: durable-local.
            let local2 = work.join("durable");
            let ck = Checkpointer::open(cfg(SaveMode::DurableLocal, Some(local2.clone())))?;
            let h = ck.save(2, as_items()).await?;
            let durable_stall = h.stall.as_secs_f64();
            let write_after = probe_write()?;
            let _ = std::fs::remove_file(&probe);
            let write_secs = (write_before + write_after) / 2.0;
            h.wait().await?;
            ck.close().await;
            // The naive upload: one PUT of a sample.
            let sample = self.single_sample.min(per) as usize;
            let t = Instant::now();
            store
                .put("bench/single", items[0].1.slice(..sample))
                .await?;
            let single = mib(sample as u64, t.elapsed().as_secs_f64());
            // 5: restore from the store alone.
            let other = Checkpointer::open(cfg(SaveMode::Snapshot, None))?;
            let r = other.load(Some(2)).await?;
            if r.tier != Tier::Remote || r.items.len() != files {
                return Err(BenchError::Failed(format!(
                    "restore from the store: {:?}",
                    r.tier
                )));
            }
            let remote_rate = mib(bytes, r.secs);
            drop(r);
            // 6: restore from the local tier, page cache dropped.
            drop_page_cache(&local2);
            let ck = Checkpointer::open(cfg(SaveMode::DurableLocal, Some(local2.clone())))?;
            let r = ck.load(Some(2)).await?;
            if r.tier != Tier::Local {
                return Err(BenchError::Failed(format!(
                    "restore from the local tier came from {:?}",
                    r.tier
                )));
            }
            let local_rate = mib(bytes, r.secs);
            let memcpy_secs = bytes as f64 / (machine.memcpy_gib_per_sec * (1u64 << 30) as f64);
            let drain_rates = [
                mib(drain1.bytes, drain1.upload_secs),
                mib(drain2.bytes, drain2.upload_secs),
            ];
            let drain_rate = (drain_rates[0] + drain_rates[1]) / 2.0;
            let last_complete = (drain1.last_complete_secs + drain2.last_complete_secs) / 2.0;
            let upload_secs = (drain1.upload_secs + drain2.upload_secs) / 2.0;
            let without = mib(drain1.bytes, (upload_secs - last_complete).max(1e-9));
            Ok(CkptBenchReport {
                date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
                machine: machine.clone(),
                server: self.server,
                bytes,
                files,
                link: self.profile.clone(),
                link_cap_mib_per_sec: cap,
                local_write_mib_per_sec: mib(bytes, write_secs),
                local_write_runs_mib_per_sec: vec![
                    mib(bytes, write_before),
                    mib(bytes, write_after),
                ],
                local_read_mib_per_sec: local_read,
                page_cache_drop: drop_how,
                snapshot_first_stall_secs: snapshot_cold,
                snapshot_stall_secs: snapshot_stall,
                snapshot_stall_vs_memcpy: snapshot_stall / memcpy_secs,
                durable_stall_secs: durable_stall,
                durable_stall_vs_local_write: durable_stall / write_secs,
                drain_mib_per_sec: drain_rate,
                drain_of_cap: drain_rate / cap,
                drain_runs_mib_per_sec: drain_rates.to_vec(),
                drain_last_complete_secs: last_complete,
                drain_without_last_complete_of_cap: without / cap,
                drain_total_secs: drain2.total_secs,
                single_stream_upload_mib_per_sec: single,
                drain_vs_single_stream: drain_rate / single,
                restore_remote_mib_per_sec: remote_rate,
                restore_remote_of_cap: remote_rate / cap,
                restore_local_mib_per_sec: local_rate,
                restore_local_of_device: local_rate / local_read,
            })
        })
    }
}

impl CkptBenchReport {
    /// A table for people.
    pub fn to_table(&self) -> String {
        let mut t = self.table();
        if self.server == BenchServer::InProcess && self.drain_last_complete_secs > 0.5 {
            t.push_str(&format!(
                "note: the in-process server copies each object on CompleteMultipartUpload ({:.1} s for the last file, which no upload overlaps); `--server garage` measures a server that does not\n",
                self.drain_last_complete_secs
            ));
        }
        t
    }

    fn table(&self) -> String {
        format!(
            "strata bench ckpt  {}\ncheckpoint {} in {} files; server {}; link {} capped at {:.0} MiB/s; machine: {} cores, memcpy {:.1} GiB/s; local dir: write {:.0} MiB/s (fsync; runs {:.0} and {:.0}), read {:.0} MiB/s ({:?})\n\n\
             {:<34} {:>12} {:>24}\n\
             {:<34} {:>10.3} s {:>17.2}× memcpy   (first save {:.3} s)\n\
             {:<34} {:>10.3} s {:>16.2}× one write\n\
             {:<34} {:>8.1} MiB/s {:>15.2} of cap   (runs {:.1} and {:.1} MiB/s; {:.1}× one stream at {:.1} MiB/s; save → commit {:.1} s)\n\
             {:<34} {:>10.3} s {:>15.2} of cap without it\n\
             {:<34} {:>8.1} MiB/s {:>15.2} of cap\n\
             {:<34} {:>8.1} MiB/s {:>12.2} of device\n",
            self.date,
            format_size(self.bytes),
            self.files,
            self.server.name(),
            self.link.name,
            self.link_cap_mib_per_sec,
            self.machine.cores,
            self.machine.memcpy_gib_per_sec,
            self.local_write_mib_per_sec,
            self.local_write_runs_mib_per_sec[0],
            self.local_write_runs_mib_per_sec[1],
            self.local_read_mib_per_sec,
            self.page_cache_drop,
            "measure",
            "value",
            "against the limit",
            "stall, snapshot mode",
            self.snapshot_stall_secs,
            self.snapshot_stall_vs_memcpy,
            self.snapshot_first_stall_secs,
            "stall, durable-local mode",
            self.durable_stall_secs,
            self.durable_stall_vs_local_write,
            "drain to the store",
            self.drain_mib_per_sec,
            self.drain_of_cap,
            self.drain_runs_mib_per_sec[0],
            self.drain_runs_mib_per_sec[1],
            self.drain_vs_single_stream,
            self.single_stream_upload_mib_per_sec,
            self.drain_total_secs,
            "  of it, the last file's completion",
            self.drain_last_complete_secs,
            self.drain_without_last_complete_of_cap,
            "restore from the store",
            self.restore_remote_mib_per_sec,
            self.restore_remote_of_cap,
            "restore from the local tier",
            self.restore_local_mib_per_sec,
            self.restore_local_of_device,
        )
    }
}
