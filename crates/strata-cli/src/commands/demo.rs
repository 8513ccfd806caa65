//! `strata demo`: a short tour on the embedded default (local directories as the store, no
//! servers to start by hand). It grows with every capability.
//!
//! 1. Makes a small dataset (one 256 MiB object and 200 samples of 100 KiB).
//! 2. Copies it into a local-directory store with `cp -r`, lists it and sizes it.
//! 3. Moves it through an in-process S3 server behind the link emulator's `s3` profile,
//!    with the parallel engines and with one stream, and verifies every byte.

use std::time::Instant;

use anyhow::{Result, bail};
use strata_store::size::format_size;
use strata_store::{Store, StoreConfig, StoreUrl};
use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, S3Server, data};

use crate::args::DemoArgs;
use crate::commands::cp::{copy_one, plan};
use crate::output;
use crate::settings::Settings;

/// The large object: big enough that the request before the first part and the fsync after
/// the last do not dominate the rate shown.
const BIG: u64 = 256 << 20;

pub async fn run(args: &DemoArgs, s: &Settings) -> Result<()> {
    let dir = if args.dir.is_absolute() {
        args.dir.clone()
    } else {
        std::env::current_dir()?.join(&args.dir)
    };
    let src_dir = dir.join("source");
    let store_dir = dir.join("store");
    std::fs::create_dir_all(&src_dir)?;
    std::fs::create_dir_all(&store_dir)?;
    let say = |m: &str| {
        if !s.json {
            println!("{m}")
        }
    };

    say(&format!("Strata demo in {}\n", dir.display()));
    say("1. A dataset: one 256 MiB object and 200 samples of 100 KiB");
    let big_crc = data::write_file(&src_dir.join("weights.bin"), 7, BIG)?;
    for i in 0..200u64 {
        std::fs::write(
            src_dir.join(format!("sample-{i:04}.bin")),
            data::bytes(i, 100 * 1024),
        )?;
    }

    say("2. strata cp -r source/ store/dataset/   (local directories as the store)");
    let src_url = StoreUrl::from_local_path(&src_dir, true)?;
    let dst_url = StoreUrl::from_local_path(&store_dir.join("dataset"), true)?;
    let local = Store::open(&src_url, &s.store)?;
    let t = Instant::now();
    let jobs = plan(&src_url, &dst_url, &local, true).await?;
    let n = jobs.len();
    for j in &jobs {
        copy_one(&local, j, &local, &s.store.transfer, None, None).await?;
    }
    let listed = local.list(dst_url.key()).await?;
    let bytes: u64 = listed.iter().map(|o| o.size).sum();
    say(&format!(
        "   copied {n} files in {:.2}s; strata du store/dataset/ → {} in {} objects\n",
        t.elapsed().as_secs_f64(),
        format_size(bytes),
        listed.len()
    ));
    if listed.len() != n {
        bail!("demo: listed {} objects after copying {n}", listed.len());
    }

    say("3. The same engines against an S3 server (in this process) across an emulated link:");
    let profile = LinkProfile::s3();
    let cap = profile.total_bytes_per_sec.unwrap_or(1) as f64 / (1 << 20) as f64;
    let per_conn = profile.per_conn_bytes_per_sec.unwrap_or(1) as f64 / (1 << 20) as f64;
    say(&format!(
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
    say(&format!(
        "   upload   {}: {up_rate:7.1} MiB/s  ({:.0}% of the link cap, {} parts)",
        format_size(BIG),
        up_rate / cap * 100.0,
        up.parts
    ));
    say(&format!(
        "   download {}: {:7.1} MiB/s  ({:.0}% of the link cap, {} parts in flight)",
        format_size(BIG),
        down.mib_per_sec(),
        down.mib_per_sec() / cap * 100.0,
        cfg.transfer.concurrency
    ));
    say(&format!(
        "   one stream:         {single:7.1} MiB/s  → the engine is {:.1}× faster; CRC32C {:08x} verified",
        down.mib_per_sec() / single,
        down.crc32c
    ));

    let samples_src = StoreUrl::from_local_path(&src_dir, true)?;
    let t = Instant::now();
    let jobs: Vec<_> = plan(&samples_src, &remote_url, &local, true)
        .await?
        .into_iter()
        .filter(|j| j.size < BIG)
        .collect();
    for chunk in jobs.chunks(32) {
        futures::future::try_join_all(
            chunk
                .iter()
                .map(|j| copy_one(&local, j, &remote, &cfg.transfer, None, None)),
        )
        .await?;
    }
    say(&format!(
        "   200 samples of 100 KiB uploaded in {:.2}s, 32 at a time",
        t.elapsed().as_secs_f64()
    ));
    let stats = emu.stats();
    say(&format!(
        "   the emulator saw {} requests, {} down, {} up\n",
        stats.requests,
        format_size(stats.bytes_down),
        format_size(stats.bytes_up)
    ));

    say("Next: strata ls -H strata-demo/store/dataset/ · strata bench transfer · strata --help");
    if s.json {
        output::json(&serde_json::json!({
            "dir": dir.display().to_string(),
            "local_copy": {"files": n, "bytes": bytes},
            "emulated": {"upload_mib_per_sec": up_rate, "download_mib_per_sec": down.mib_per_sec(),
                          "single_stream_mib_per_sec": single, "link_cap_mib_per_sec": cap, "crc32c_verified": true},
        }));
    }
    let _ = std::fs::remove_file(&down_path);
    Ok(())
}
