//! `strata bench transfer`: download and upload one object through the link emulator, with
//! Strata's parallel engines and with a single stream, and straight to the server.
//!
//! The object lives on the in-process S3 server. Through the emulator (default profile `s3`:
//! 30 ms to first byte, 10 MiB/s per connection, 160 MiB/s in total) the engine should reach
//! at least 85% of the total cap and at least 5× a single stream. The single stream is
//! measured on a sample (default 64 MiB) so the run stays short: at the per-connection cap
//! it takes seconds, not minutes; its rate does not depend on the length.

use crate::error::BenchError;
use crate::workdir::WorkDir;
use std::path::PathBuf;
use std::time::Instant;

use bytes::Bytes;
use strata_store::{Store, StoreConfig};
use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, S3Server, data};
use strata_units::format_size;

use crate::machine::MachineLimits;

/// Settings of the transfer benchmark.
#[derive(Debug, Clone)]
pub struct TransferBench {
    /// Object size in bytes. Default: 1 GiB.
    pub size: u64,
    /// Bytes moved by the single-stream baseline. Default: 64 MiB (at most `size`).
    pub single_sample: u64,
    /// The emulated link. Default: the `s3` profile.
    pub profile: LinkProfile,
    /// Settings for the client: engine, retries, limits, S3 options (checksum, unsigned
    /// payload). Endpoint, region and credentials are replaced by the test server's.
    /// Default: the defaults (8 MiB parts, 16 in flight).
    pub config: StoreConfig,
    /// Where the source file and downloads go. Default: a temporary directory.
    pub work_dir: Option<PathBuf>,
}

impl Default for TransferBench {
    fn default() -> Self {
        Self {
            size: 1 << 30,
            single_sample: 64 << 20,
            profile: LinkProfile::s3(),
            config: StoreConfig::default(),
            work_dir: None,
        }
    }
}

/// One measured transfer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    /// `emulated` (through the link emulator) or `direct` (straight to the server).
    pub path: &'static str,
    /// `download` or `upload`.
    pub direction: &'static str,
    /// `strata` (parallel engine) or `single-stream`.
    pub method: &'static str,
    /// Bytes moved.
    pub bytes: u64,
    /// Seconds it took.
    pub secs: f64,
    /// The rate, MiB/s.
    pub mib_per_sec: f64,
    /// Throughput / the emulator's total cap (emulated rows).
    pub of_link_cap: Option<f64>,
    /// Throughput / the single stream's throughput in the same path and direction.
    pub vs_single_stream: Option<f64>,
}

/// What the benchmark measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TransferBenchReport {
    /// When it ran (UTC).
    pub date: String,
    /// Bytes of the object.
    pub object_bytes: u64,
    /// The emulated link.
    pub profile: LinkProfile,
    /// The machine's limits, measured in the same run.
    pub machine: MachineLimits,
    /// Part size, bytes.
    pub part_size: u64,
    /// Parts in flight.
    pub concurrency: usize,
    /// One row per way of moving the object.
    pub rows: Vec<Row>,
    /// Emulator statistics after the run.
    pub emulator: strata_testkit::StatsSnapshot,
    /// The emulator's total cap as a fraction of the direct download rate. Above about 0.8
    /// the machine, not the emulated link, limits the emulated rows.
    pub cap_of_direct_download: Option<f64>,
}

impl TransferBenchReport {
    /// The row for a path, direction and method.
    pub fn row(&self, path: &str, direction: &str, method: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.path == path && r.direction == direction && r.method == method)
    }

    /// A table for people.
    pub fn to_table(&self) -> String {
        let p = &self.profile;
        let mib = |b: Option<u64>| {
            b.map_or("uncapped".to_string(), |b| {
                format!("{:.0} MiB/s", b as f64 / (1 << 20) as f64)
            })
        };
        let mut s = format!(
            "strata bench transfer  {}\nobject {}; engine {} parts × {} in flight\nlink profile {}: {} ms to first byte, {} per connection, {} total\nmachine: {} cores, memcpy {:.1} GiB/s\n\n",
            self.date,
            format_size(self.object_bytes),
            format_size(self.part_size),
            self.concurrency,
            p.name,
            p.first_byte_latency.as_millis(),
            mib(p.per_conn_bytes_per_sec),
            mib(p.total_bytes_per_sec),
            self.machine.cores,
            self.machine.memcpy_gib_per_sec,
        );
        s.push_str(&format!(
            "{:<9} {:<9} {:<14} {:>10} {:>9} {:>12} {:>16}\n",
            "path", "direction", "method", "bytes", "MiB/s", "of link cap", "vs single stream"
        ));
        for r in &self.rows {
            s.push_str(&format!(
                "{:<9} {:<9} {:<14} {:>10} {:>9.1} {:>12} {:>16}\n",
                r.path,
                r.direction,
                r.method,
                format_size(r.bytes),
                r.mib_per_sec,
                r.of_link_cap.map_or("-".into(), |v| format!("{v:.2}")),
                r.vs_single_stream
                    .map_or("-".into(), |v| format!("{v:.1}x")),
            ));
        }
        if let Some(f) = self.cap_of_direct_download {
            s.push_str(&format!(
                "\nthe link cap is {:.0}% of this machine's direct download rate",
                f * 100.0
            ));
            if f > 0.8 {
                s.push_str(" — WARNING: the machine, not the link, limits the emulated rows; use a lower cap");
            }
            s.push('\n');
        }
        s
    }
}

fn rate(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / (1 << 20) as f64 / secs.max(1e-9)
}

impl TransferBench {
    /// Runs the benchmark. Blocking: it starts its own servers and runtime.
    pub fn run(&self) -> Result<TransferBenchReport, BenchError> {
        let machine = MachineLimits::measure();
        let work = WorkDir::new(self.work_dir.as_deref(), "strata-bench-")?;
        let dir = work.path().to_path_buf();
        let src = dir.join("source.bin");
        let crc = data::write_file(&src, 1, self.size)
            .map_err(|e| BenchError::Failed(format!("{}: {e}", src.display())))?;
        let server = S3Server::start();
        let emu = LinkEmulator::start(server.addr(), self.profile.clone());
        let direct_cfg = {
            let at = server.store_config().s3;
            let mut c = self.config.clone();
            c.s3.endpoint = at.endpoint;
            c.s3.region = at.region;
            c.s3.access_key_id = at.access_key_id;
            c.s3.secret_access_key = at.secret_access_key;
            c.s3.session_token = None;
            c.s3.allow_http = true;
            c
        };
        let mut emu_cfg = direct_cfg.clone();
        emu_cfg.s3.endpoint = Some(emu.endpoint());
        let direct = Store::open(&server.url(""), &direct_cfg)?;
        let emulated = Store::open(&server.url(""), &emu_cfg)?;
        let rt = crate::machine::runtime()?;
        let opts = &self.config.transfer;
        let sample = self.single_sample.min(self.size).max(1);
        let cap = self
            .profile
            .total_bytes_per_sec
            .map(|c| c as f64 / (1 << 20) as f64);
        let mut rows: Vec<Row> = Vec::new();
        let mut push = |path, direction, method, bytes: u64, secs: f64| {
            rows.push(Row {
                path,
                direction,
                method,
                bytes,
                secs,
                mib_per_sec: rate(bytes, secs),
                of_link_cap: None,
                vs_single_stream: None,
            });
        };
        let e = |e: strata_store::StoreError| e.to_string();
        rt.block_on(async {
            // Straight to the server: what this machine can do without the link.
            let r = direct
                .upload_file(&src, "bench/object", opts, None)
                .await
                .map_err(e)?;
            push("direct", "upload", "strata", r.bytes, r.elapsed_secs);
            let r = direct
                .download_to_file("bench/object", &dir.join("direct.bin"), opts, None)
                .await
                .map_err(e)?;
            if r.crc32c != crc {
                return Err(BenchError::Failed(
                    "direct download differs from the source".into(),
                ));
            }
            push("direct", "download", "strata", r.bytes, r.elapsed_secs);
            let _ = std::fs::remove_file(dir.join("direct.bin"));
            // Through the emulated link.
            let r = emulated
                .download_to_file("bench/object", &dir.join("emulated.bin"), opts, None)
                .await
                .map_err(e)?;
            if r.crc32c != crc {
                return Err(BenchError::Failed(
                    "emulated download differs from the source".into(),
                ));
            }
            push("emulated", "download", "strata", r.bytes, r.elapsed_secs);
            let _ = std::fs::remove_file(dir.join("emulated.bin"));
            let t = Instant::now();
            let b = emulated
                .get_range("bench/object", 0..sample, None)
                .await
                .map_err(e)?;
            push(
                "emulated",
                "download",
                "single-stream",
                b.len() as u64,
                t.elapsed().as_secs_f64(),
            );
            drop(b);
            let r = emulated
                .upload_file(&src, "bench/uploaded", opts, None)
                .await
                .map_err(e)?;
            if r.crc32c != crc {
                return Err(BenchError::Failed(
                    "upload checksum differs from the source".into(),
                ));
            }
            push("emulated", "upload", "strata", r.bytes, r.elapsed_secs);
            let head = {
                use std::io::Read;
                let mut buf = vec![0u8; sample as usize];
                std::fs::File::open(&src).and_then(|mut f| f.read_exact(&mut buf))?;
                Bytes::from(buf)
            };
            let t = Instant::now();
            emulated.put("bench/single", head).await.map_err(e)?;
            push(
                "emulated",
                "upload",
                "single-stream",
                sample,
                t.elapsed().as_secs_f64(),
            );
            Ok::<_, BenchError>(())
        })?;
        for i in 0..rows.len() {
            let single = rows
                .iter()
                .find(|s| {
                    s.path == rows[i].path
                        && s.direction == rows[i].direction
                        && s.method == "single-stream"
                })
                .map(|s| s.mib_per_sec);
            let r = &mut rows[i];
            if r.path == "emulated" {
                r.of_link_cap = cap.map(|c| r.mib_per_sec / c);
            }
            r.vs_single_stream = single.map(|s| r.mib_per_sec / s);
        }
        let direct_down = rows
            .iter()
            .find(|r| r.path == "direct" && r.direction == "download")
            .map(|r| r.mib_per_sec);
        Ok(TransferBenchReport {
            cap_of_direct_download: cap.zip(direct_down).map(|(c, d)| c / d),
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            object_bytes: self.size,
            profile: self.profile.clone(),
            machine,
            part_size: opts.part_size,
            concurrency: opts.concurrency,
            rows,
            emulator: emu.stats(),
        })
    }
}
