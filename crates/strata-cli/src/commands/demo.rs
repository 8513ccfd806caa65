//! `strata demo`: a short tour on the embedded default (local directories as the store, no
//! servers to start by hand). It grows with every capability.
//!
//! 1. Makes a small dataset (one 256 MiB object and 200 samples of 100 KiB).
//! 2. Copies it into a local-directory store with `cp -r`, lists it and sizes it.
//! 3. Moves it through an in-process S3 server behind the link emulator's `s3` profile,
//!    with the parallel engines and with one stream, and verifies every byte.
//! 4. The access-pattern audit: the samples as raw objects read in shuffled order, against the
//!    same samples packed into shards (`strata pack`) read shuffled through the block cache.
//! 5. A short emulated training run (`strata bench train` in small): two accelerators fed by
//!    Strata, with their utilization and the I/O waterfall.
//! 6. A checkpoint: saved durable-local (the stall), drained to the S3 server across the
//!    link (the drain), restored from the store alone on "another node" and verified, and
//!    the Young–Daly interval from the measured stall and drain.

use std::time::Instant;

use anyhow::{Result, bail};
use strata_store::{Store, StoreConfig, StoreUrl};
use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, S3Server, data};
use strata_units::format_size;

use crate::args::DemoArgs;
use crate::commands::cp::{copy_one, plan};
use crate::output;
use crate::settings::Settings;

/// The large object: big enough that the request before the first part and the fsync after
/// the last do not dominate the rate shown.
const BIG: u64 = 256 << 20;

/// Prints a line of the tour, unless the output is JSON.
#[derive(Clone, Copy)]
struct Say {
    json: bool,
}

impl Say {
    fn line(self, m: &str) {
        if !self.json {
            println!("{m}");
        }
    }
}

pub async fn run(args: &DemoArgs, s: &Settings) -> Result<()> {
    let dir = if args.dir.is_absolute() {
        args.dir.clone()
    } else {
        std::env::current_dir()?.join(&args.dir)
    };
    std::fs::create_dir_all(dir.join("source"))?;
    std::fs::create_dir_all(dir.join("store"))?;
    let say = Say { json: s.json };
    say.line(&format!("Strata demo in {}\n", dir.display()));
    let local = local_copy(&dir, s, say).await?;
    let link = across_the_link(&dir, s, &local, say).await?;
    let (server, emu, cfg, cap) = (&link.server, &link.emu, &link.cfg, link.cap);
    say.line("4. The access-pattern audit: 200 samples of 100 KiB, shuffled, across the same link");
    let audit = audit(server, emu, cfg, &dir).await?;
    say.line(&format!(
        "   raw objects, one GET per sample:        {:6.1} samples/s, {:4} requests",
        audit.raw_samples_per_sec, audit.raw_requests
    ));
    say.line(&format!(
        "   packed shards through the block cache:  {:6.1} samples/s, {:4} requests ({} shards)",
        audit.shard_samples_per_sec, audit.shard_requests, audit.shards
    ));
    say.line(&format!(
        "   → shards are {:.1}× faster in shuffled order, with {:.0}× fewer requests\n",
        audit.shard_samples_per_sec / audit.raw_samples_per_sec.max(1e-9),
        audit.raw_requests as f64 / audit.shard_requests.max(1) as f64
    ));

    say.line("5. A short emulated training run: resnet50 samples, 2 accelerators fed by Strata");
    let mut bench = strata_bench::TrainBench::new(
        strata_bench::Workload::named("resnet50").expect("a known workload"),
    );
    bench.accelerators = 2;
    bench.dataset_size = 48 << 20;
    bench.shard_size = 8 << 20;
    bench.block_size = 4 << 20;
    bench.training_only = true;
    bench.data_dir = Some(dir.join("train-data"));
    bench.work_dir = Some(dir.join("train-cache"));
    // The bench runs its own runtime: give it a thread of its own.
    let train = std::thread::spawn(move || bench.run())
        .join()
        .map_err(|_| anyhow::anyhow!("demo: the training run panicked"))?
        .map_err(|e| anyhow::anyhow!("demo: training run: {e}"))?;
    let run = train.training.first().expect("one training run");
    say.line(&format!(
        "   {} steps, AU {:.1}% (steady state {:.1}%), {:.0} samples/s, {:.1} MiB/s = {:.2} of the link cap; mean wait {:.3}s per step",
        run.steps,
        run.au * 100.0,
        run.au_steady * 100.0,
        run.samples_per_sec,
        run.mib_per_sec,
        run.link_fraction,
        run.wait_mean
    ));
    for (i, st) in run.waterfall.iter().take(5).enumerate() {
        let unit = (train.compute_secs_per_step / 10.0).max(1e-6);
        say.line(&format!(
            "   step {i}: {}{}  wait {:.3}s",
            ".".repeat(((st.wait / unit).round() as usize).min(40)),
            "#".repeat(10),
            st.wait
        ));
    }
    say.line(
        "6. A checkpoint: save (durable-local), drain to the S3 server, restore on another node",
    );
    let ck = checkpoint(cfg, server, &dir).await?;
    say.line(&format!(
        "   saved step 100 ({}) with {:.3}s of stall; drained at {:.1} MiB/s = {:.2} of the link cap, committed {:.2}s after the save",
        format_size(ck.bytes),
        ck.stall_secs,
        ck.drain.upload_mib_per_sec(),
        ck.drain.upload_mib_per_sec() / cap,
        ck.drain.total_secs
    ));
    say.line(&format!(
        "   restored step {} from the store alone in {:.2}s, every chunk verified (CRC32C)",
        ck.restored_step, ck.restore_secs
    ));
    let a = &ck.advice;
    say.line(&format!(
        "   Young–Daly for 1,024 nodes with a node MTBF of 30 days (job MTBF {:.0} min), this stall and a 5 min restart: checkpoint every {:.1} min (Young), {:.1} min (Daly), wasting {:.1}%",
        a.job_mtbf_secs / 60.0,
        a.young_secs / 60.0,
        a.daly_secs / 60.0,
        a.waste_at_daly * 100.0
    ));
    for w in &a.warnings {
        say.line(&format!("   warning: {w}"));
    }
    say.line("7. A model's cold start: three replicas on one node pull a 96 MiB model at once");
    let mt = models(cfg, server, emu, &dir).await?;
    say.line(&format!(
        "   pulled {} ({} tensors) at {:.1} MiB/s = {:.2} of the link cap; first tensor on disk after {:.3}s",
        format_size(mt.bytes),
        mt.tensors,
        mt.mib_per_sec,
        mt.mib_per_sec / cap,
        mt.first_tensor_secs
    ));
    say.line(&format!(
        "   {} crossed the link for 3 replicas ({:.2} of one model); {} zero-copy tensor views opened from {}",
        format_size(mt.link_bytes),
        mt.link_bytes as f64 / mt.bytes as f64,
        mt.views,
        mt.dir.display()
    ));
    say.line(
        "8. The plan for this machine: probe this disk, then size resnet50 (MLPerf, H100) on it",
    );
    let machine = machine_plan(&dir).await?;
    machine.say(&dir, say);
    say.line("");
    say.line(
        "Next: strata ls -H strata-demo/store/dataset/ · strata bench train · strata bench ckpt · strata bench models · strata plan --persona cloud-titan · strata probe DIR · strata --help",
    );
    if s.json {
        output::json(&serde_json::json!({
            "dir": dir.display().to_string(),
            "local_copy": {"files": local.files, "bytes": local.bytes},
            "emulated": {"upload_mib_per_sec": link.up_rate, "download_mib_per_sec": link.down_rate,
                          "single_stream_mib_per_sec": link.single, "link_cap_mib_per_sec": cap, "crc32c_verified": true},
            "audit": {"raw_samples_per_sec": audit.raw_samples_per_sec, "raw_requests": audit.raw_requests,
                       "shard_samples_per_sec": audit.shard_samples_per_sec, "shard_requests": audit.shard_requests},
            "training": run,
            "checkpoint": {"bytes": ck.bytes, "stall_secs": ck.stall_secs, "drain": ck.drain,
                            "restored_step": ck.restored_step, "restore_secs": ck.restore_secs,
                            "interval": ck.advice},
            "models": {"bytes": mt.bytes, "tensors": mt.tensors, "mib_per_sec": mt.mib_per_sec,
                        "first_tensor_secs": mt.first_tensor_secs, "link_bytes_for_three": mt.link_bytes},
            "machine": {"probe": machine.probe, "plan": machine.plan, "accelerators_fed": machine.accelerators},
        }));
    }
    Ok(())
}

/// What steps 1 and 2 made: the source files and their copy in a local-directory store.
struct LocalCopy {
    src_dir: std::path::PathBuf,
    local: Store,
    big_crc: u32,
    files: usize,
    bytes: u64,
}

/// Steps 1 and 2: a dataset, copied with `cp -r` into a local-directory store and listed.
async fn local_copy(dir: &std::path::Path, s: &Settings, say: Say) -> Result<LocalCopy> {
    let src_dir = dir.join("source");
    let store_dir = dir.join("store");
    say.line("1. A dataset: one 256 MiB object and 200 samples of 100 KiB");
    let big_crc = data::write_file(&src_dir.join("weights.bin"), 7, BIG)?;
    for i in 0..200u64 {
        std::fs::write(
            src_dir.join(format!("sample-{i:04}.bin")),
            data::bytes(i, 100 * 1024),
        )?;
    }

    say.line("2. strata cp -r source/ store/dataset/   (local directories as the store)");
    let src_url = StoreUrl::from_local_path(&src_dir, true)?;
    let dst_url = StoreUrl::from_local_path(&store_dir.join("dataset"), true)?;
    let local = Store::open(&src_url, &s.store)?;
    let t = Instant::now();
    let (jobs, _) = plan(&src_url, &dst_url, &local, true).await?;
    let n = jobs.len();
    for j in &jobs {
        copy_one(&local, j, &local, &s.store.transfer, None, None).await?;
    }
    let listed = local.list(dst_url.key()).await?;
    let bytes: u64 = listed.iter().map(|o| o.size).sum();
    say.line(&format!(
        "   copied {n} files in {:.2}s; strata du store/dataset/ → {} in {} objects\n",
        t.elapsed().as_secs_f64(),
        format_size(bytes),
        listed.len()
    ));
    if listed.len() != n {
        bail!("demo: listed {} objects after copying {n}", listed.len());
    }

    Ok(LocalCopy {
        src_dir,
        local,
        big_crc,
        files: n,
        bytes,
    })
}

/// What step 3 measured, and the server and link the later steps use.
struct LinkTour {
    server: S3Server,
    emu: LinkEmulator,
    cfg: StoreConfig,
    /// The link's cap, MiB/s.
    cap: f64,
    up_rate: f64,
    down_rate: f64,
    single: f64,
}

/// Step 3: the same engines against an S3 server in this process across the emulated link,
/// with one stream for comparison; every byte checked.
async fn across_the_link(
    dir: &std::path::Path,
    s: &Settings,
    l: &LocalCopy,
    say: Say,
) -> Result<LinkTour> {
    let (src_dir, local, big_crc) = (&l.src_dir, &l.local, l.big_crc);
    say.line("3. The same engines against an S3 server (in this process) across an emulated link:");
    let profile = LinkProfile::s3();
    let cap = profile.total_bytes_per_sec.unwrap_or(1) as f64 / (1 << 20) as f64;
    let per_conn = profile.per_conn_bytes_per_sec.unwrap_or(1) as f64 / (1 << 20) as f64;
    say.line(&format!(
        "   link profile 's3': {} ms to first byte, {per_conn:.0} MiB/s per connection, {cap:.0} MiB/s total",
        profile.first_byte_latency.as_millis()
    ));
    let server = S3Server::start();
    let emu = LinkEmulator::start(server.addr(), profile);
    let mut cfg: StoreConfig = server.store_config();
    cfg.s3.endpoint = Some(emu.endpoint());
    cfg.transfer = s.store.transfer.clone();
    let remote_url = server.url("dataset/");
    let remote = Store::open(&remote_url, &cfg)?;

    let t = Instant::now();
    let up = remote
        .upload_file(
            &src_dir.join("weights.bin"),
            "dataset/weights.bin",
            &cfg.transfer,
            None,
        )
        .await?;
    let up_rate = up.bytes as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64();
    let down_path = dir.join("weights.downloaded");
    let (bar, progress) = output::bytes_bar(BIG, s.progress, "download");
    let down = remote
        .download_to_file(
            "dataset/weights.bin",
            &down_path,
            &cfg.transfer,
            Some(progress),
        )
        .await?;
    bar.finish_and_clear();
    if down.crc32c != big_crc || up.crc32c != big_crc {
        bail!("demo: checksum mismatch after the round trip");
    }
    let t = Instant::now();
    let sample = remote
        .get_range("dataset/weights.bin", 0..16 << 20, None)
        .await?;
    let single = sample.len() as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64();
    say.line(&format!(
        "   upload   {}: {up_rate:7.1} MiB/s  ({:.0}% of the link cap, {} parts)",
        format_size(BIG),
        up_rate / cap * 100.0,
        up.parts
    ));
    say.line(&format!(
        "   download {}: {:7.1} MiB/s  ({:.0}% of the link cap, {} parts in flight)",
        format_size(BIG),
        down.mib_per_sec(),
        down.mib_per_sec() / cap * 100.0,
        cfg.transfer.concurrency
    ));
    say.line(&format!(
        "   one stream:         {single:7.1} MiB/s  → the engine is {:.1}× faster; CRC32C {:08x} verified",
        down.mib_per_sec() / single,
        down.crc32c
    ));

    let samples_src = StoreUrl::from_local_path(src_dir, true)?;
    let samples_url = server.url("samples/");
    let t = Instant::now();
    let jobs: Vec<_> = plan(&samples_src, &samples_url, local, true)
        .await?
        .0
        .into_iter()
        .filter(|j| j.size < BIG)
        .collect();
    for chunk in jobs.chunks(32) {
        futures::future::try_join_all(
            chunk
                .iter()
                .map(|j| copy_one(local, j, &remote, &cfg.transfer, None, None)),
        )
        .await?;
    }
    say.line(&format!(
        "   200 samples of 100 KiB uploaded in {:.2}s, 32 at a time",
        t.elapsed().as_secs_f64()
    ));
    let stats = emu.stats();
    say.line(&format!(
        "   the emulator saw {} requests, {} down, {} up\n",
        stats.requests,
        format_size(stats.bytes_down),
        format_size(stats.bytes_up)
    ));

    let _ = std::fs::remove_file(&down_path);
    Ok(LinkTour {
        server,
        emu,
        cfg,
        cap,
        up_rate,
        down_rate: down.mib_per_sec(),
        single,
    })
}

struct MachinePlan {
    probe: strata_plan::probe::ProbeReport,
    plan: strata_plan::Plan,
    accelerators: Option<f64>,
}

impl MachinePlan {
    /// Step 8's lines: the probe, the plan, and what this disk could feed.
    fn say(&self, dir: &std::path::Path, say: Say) {
        if say.json {
            return;
        }
        println!(
            "   probed {} in {:.1}s: sequential read {}, 4 KiB random reads one at a time {:.0}× slower",
            dir.display(),
            self.probe.secs,
            strata_units::format::rate(self.probe.sequential_read),
            self.probe.sequential_over_random
        );
        for line in self.plan.to_text().lines() {
            println!("   {line}");
        }
        if let Some(n) = self.accelerators {
            println!(
                "   this disk streams shards fast enough for {n:.1} H100-class accelerator(s) on resnet50"
            );
        }
    }
}

/// A short probe of the demo's disk (64 MiB, 16 points of 0.15 s) and the plan built on it.
async fn machine_plan(dir: &std::path::Path) -> Result<MachinePlan> {
    let mut p = strata_plan::probe::device::DeviceProbe::new(dir, true);
    p.file_size = 64 << 20;
    p.point_secs = 0.15;
    p.no_writes = true;
    let probe = tokio::task::spawn_blocking(move || p.run())
        .await?
        .map_err(anyhow::Error::msg)?;
    let (_, scenario) =
        strata_plan::machine::this_machine(dir, &probe).map_err(anyhow::Error::msg)?;
    Ok(MachinePlan {
        accelerators: strata_plan::machine::accelerators_fed(&scenario),
        plan: strata_plan::plan(&scenario),
        probe,
    })
}

struct ModelsTour {
    bytes: u64,
    tensors: usize,
    mib_per_sec: f64,
    first_tensor_secs: f64,
    link_bytes: u64,
    views: usize,
    dir: std::path::PathBuf,
}

/// Puts a synthetic two-shard model on `server`, has three tasks pull it at once through the
/// emulator into one node cache (each with its own lock descriptor, as processes would), and
/// opens the result with zero-copy views.
async fn models(
    cfg: &StoreConfig,
    server: &S3Server,
    emu: &LinkEmulator,
    dir: &std::path::Path,
) -> Result<ModelsTour> {
    let prefix = format!("models/demo-{}", std::process::id());
    let direct = Store::open(&server.url(""), &server.store_config())?;
    for (i, name) in [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ]
    .iter()
    .enumerate()
    {
        let shard = strata_models::synth::shard(i as u64, i * 8, 48 << 20);
        direct
            .put(&format!("{prefix}/{name}"), bytes::Bytes::from(shard))
            .await?;
    }
    let cache = dir.join("node-cache");
    let _ = std::fs::remove_dir_all(cache.join("models"));
    let through = Store::open(&server.url(""), cfg)?;
    let url = server.url(&format!("{prefix}/"));
    let before = emu.stats().bytes_down;
    let pulls = (0..3).map(|_| {
        let (through, url, cache) = (through.clone(), url.clone(), cache.clone());
        async move {
            let repo = strata_models::ModelRepo::open(&cache)?;
            strata_models::pull(&repo, &through, &url, &Default::default()).await
        }
    });
    let reports = futures::future::try_join_all(pulls).await?;
    let link_bytes = emu.stats().bytes_down - before;
    let r = reports
        .iter()
        .find(|r| r.fetched_bytes > 0)
        .unwrap_or(&reports[0]);
    let model = strata_models::Model::open(&r.dir)?;
    Ok(ModelsTour {
        bytes: r.bytes,
        tensors: r.tensors,
        mib_per_sec: r.mib_per_sec(),
        first_tensor_secs: r.first_tensor_secs.unwrap_or(0.0),
        link_bytes,
        views: model.tensors().len(),
        dir: r.dir.clone(),
    })
}

struct CheckpointTour {
    bytes: u64,
    stall_secs: f64,
    drain: strata_ckpt::DrainReport,
    restored_step: u64,
    restore_secs: f64,
    advice: strata_plan::interval::IntervalAdvice,
}

/// Saves a 72 MiB checkpoint durable-local with a drain to `server` (through the emulator
/// in `cfg`), restores it from the store alone and checks it, and computes the interval.
async fn checkpoint(
    cfg: &StoreConfig,
    server: &S3Server,
    dir: &std::path::Path,
) -> Result<CheckpointTour> {
    use strata_ckpt::{Checkpointer, CkptConfig, Item, SaveMode};
    let local = dir.join("ckpt-local");
    let _ = std::fs::remove_dir_all(&local);
    let root = strata_store::Location {
        store: Store::open(&server.url(""), cfg)?,
        prefix: format!("checkpoints/demo-{}", std::process::id()),
    };
    let items = [("model.safetensors", 64usize << 20), ("optim.bin", 8 << 20)]
        .map(|(n, len)| (n, data::bytes(len as u64, len)));
    let mut c = CkptConfig {
        remote: Some(root.clone()),
        local: Some(local.clone()),
        mode: SaveMode::DurableLocal,
        ..Default::default()
    };
    c.drain.jitter = std::time::Duration::ZERO;
    let ck = Checkpointer::open(c)?;
    let h = ck
        .save(
            100,
            items
                .iter()
                .map(|(n, b)| Item::bytes(*n, b.clone()))
                .collect(),
        )
        .await?;
    let (stall, bytes) = (h.stall.as_secs_f64(), h.bytes);
    let drain = h.wait().await?;
    ck.close().await;
    let other = Checkpointer::open(CkptConfig {
        remote: Some(root),
        mode: SaveMode::Snapshot,
        ..Default::default()
    })?;
    let r = other.load(None).await?;
    for (n, b) in &items {
        if r.get(n) != Some(&b[..]) {
            bail!("demo: the restored {n} differs");
        }
    }
    let _ = std::fs::remove_dir_all(&local);
    let advice = strata_plan::interval::advise(
        stall.max(1e-3),
        30.0 * 86_400.0,
        1024,
        300.0,
        None,
        Some(drain.total_secs),
    )
    .map_err(anyhow::Error::msg)?;
    Ok(CheckpointTour {
        bytes,
        stall_secs: stall,
        drain,
        restored_step: r.step,
        restore_secs: r.secs,
        advice,
    })
}

struct Audit {
    raw_samples_per_sec: f64,
    raw_requests: u64,
    shard_samples_per_sec: f64,
    shard_requests: u64,
    shards: usize,
}

/// Reads the uploaded samples shuffled as raw objects, packs them into shards on the store,
/// and reads those shuffled through a fresh block cache.
async fn audit(
    server: &S3Server,
    emu: &LinkEmulator,
    cfg: &StoreConfig,
    dir: &std::path::Path,
) -> Result<Audit> {
    use futures::TryStreamExt;
    use std::sync::Arc;
    use strata_dataset::plan::{PlanSpec, ShuffleMode};
    use strata_dataset::{Dataset, Location, Reader, ReaderConfig};

    let store = Store::open(&server.url(""), cfg)?;
    let loc = |p: &str| Location {
        store: store.clone(),
        prefix: p.to_string(),
    };
    let read = |ds: Arc<Dataset>, cache: Option<Arc<strata_cache::BlockCache>>, mode| async move {
        let r = Reader::new(
            ds,
            cache,
            ReaderConfig {
                plan: PlanSpec {
                    mode,
                    seed: 1,
                    window: 64,
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await?;
        let t = Instant::now();
        let n = r
            .stream()
            .try_fold(0u64, |n, _| async move { Ok(n + 1) })
            .await?;
        Ok::<_, anyhow::Error>(n as f64 / t.elapsed().as_secs_f64())
    };
    let raw = Arc::new(Dataset::open_raw(loc("samples")).await?);
    let before = emu.stats().requests;
    let raw_rate = read(raw, None, ShuffleMode::Global).await?;
    let raw_requests = emu.stats().requests - before;
    strata_dataset::pack::pack(
        &strata_dataset::pack::PackSource::Store(loc("samples")),
        &loc("shards"),
        &strata_dataset::pack::PackOptions {
            shard_size: 4 << 20,
            ..Default::default()
        },
        None,
    )
    .await?;
    let cache_dir = dir.join("cache");
    let _ = std::fs::remove_dir_all(&cache_dir);
    let cache = Arc::new(strata_cache::BlockCache::open(
        &strata_cache::CacheConfig {
            block_size: 1 << 20,
            dram_bytes: 64 << 20,
            nvme: Some(strata_cache::nvme::NvmeConfig {
                dir: cache_dir,
                capacity: 1 << 30,
                // The capacity bounds the demo's use; a nearly full host disk must not
                // turn its cache off.
                min_free_fraction: 0.01,
                policy: strata_cache::policy::PolicyKind::NextUse,
            }),
            read_concurrency: 16,
        },
    )?);
    let shards = Arc::new(Dataset::open(loc("shards")).await?);
    let n_shards = shards.manifest.shards.len();
    let before = emu.stats().requests;
    let shard_rate = read(shards, Some(cache.clone()), ShuffleMode::Window).await?;
    let shard_requests = emu.stats().requests - before;
    cache.flush().await;
    Ok(Audit {
        raw_samples_per_sec: raw_rate,
        raw_requests,
        shard_samples_per_sec: shard_rate,
        shard_requests,
        shards: n_shards,
    })
}
