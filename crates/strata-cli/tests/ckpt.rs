//! `strata ckpt` and `strata plan interval` as users run them: ranks as separate processes
//! (on the in-process S3 server and on Garage), SIGKILL at random points of a save, and bad
//! input.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{command, ok, run};

use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, S3Server, data};

/// A file of a checkpoint: its name, its bytes, and the NAME=PATH argument that saves it.
type SavedFile = (String, Vec<u8>, String);

/// Writes rank `rank`'s files of `step` under `dir`.
fn files(dir: &Path, step: u64, rank: u32) -> Vec<SavedFile> {
    std::fs::create_dir_all(dir).unwrap();
    let seed = step * 100 + rank as u64;
    // The model file is uploaded in three parts (above the 8 MiB single-PUT threshold), so
    // kills land inside multipart uploads too.
    [("model.safetensors", 11 << 20), ("optim.bin", 300_001usize)]
        .into_iter()
        .map(|(name, len)| {
            let bytes = data::bytes(seed + len as u64, len);
            let path = dir.join(format!("{name}.{step}.{rank}"));
            std::fs::write(&path, &bytes).unwrap();
            (
                name.to_string(),
                bytes,
                format!("{name}={}", path.display()),
            )
        })
        .collect()
}

/// Three ranks, three processes, three local directories (three "nodes"): the checkpoint
/// commits once, and `restore` brings every rank's files back bit-exact.
fn ranks_as_processes(server: &dyn S3Endpoint, root: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let mut children: Vec<(Child, Vec<SavedFile>)> = Vec::new();
    for rank in 0..3u32 {
        let f = files(&tmp.path().join("src"), 5, rank);
        let local = tmp.path().join(format!("node-{rank}"));
        let mut args: Vec<String> = vec![
            "ckpt".into(),
            "save".into(),
            root.into(),
            "--local".into(),
            local.display().to_string(),
            "--step".into(),
            "5".into(),
            "--rank".into(),
            rank.to_string(),
            "--world".into(),
            "3".into(),
            "--commit-timeout".into(),
            "60s".into(),
        ];
        args.extend(f.iter().map(|x| x.2.clone()));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = command(server, &server.endpoint(), &a)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        children.push((child, f));
    }
    let mut expected = Vec::new();
    for (child, f) in children {
        let out = child.wait_with_output().unwrap();
        ok(&out);
        expected.push(f);
    }
    let ls = ok(&run(server, &["ckpt", "ls", root, "--json"]));
    let list: serde_json::Value = serde_json::from_str(&ls).unwrap();
    assert_eq!(list[0]["step"], 5);
    assert_eq!(list[0]["complete"], true);
    assert_eq!(list[0]["world_size"], 3);
    let out_dir = tmp.path().join("restored");
    ok(&run(
        server,
        &["ckpt", "restore", root, "latest", out_dir.to_str().unwrap()],
    ));
    for (rank, f) in expected.iter().enumerate() {
        for (name, bytes, _) in f {
            let got = std::fs::read(out_dir.join(format!("rank-{rank:05}")).join(name)).unwrap();
            assert!(got == *bytes, "rank {rank} {name} differs");
        }
    }
    let v = ok(&run(server, &["ckpt", "verify", root, "5"]));
    assert!(v.contains("all chunks verified"), "{v}");
}

#[test]
fn ranks_as_processes_on_the_in_process_server() {
    let server = S3Server::start();
    ranks_as_processes(&server, "s3://strata-test/multi/job");
}

#[test]
fn ranks_as_processes_on_garage() {
    let Some(garage) = strata_testkit::garage::start_or_skip() else {
        return;
    };
    ranks_as_processes(&garage, "s3://strata-test/multi/job");
}

/// Kills `strata ckpt save` with SIGKILL at random points (the local write, the drain, the
/// commit) 50 times. After every kill, restore returns the newest complete checkpoint
/// bit-exact, and never one older than the last save that returned; gc leaves nothing but
/// complete checkpoints on either tier.
#[test]
fn sigkill_at_random_points_loses_nothing() {
    let server = S3Server::start();
    // Slow enough that kills land inside each phase: ~11.3 MiB per save at 40 MiB/s.
    let mut p = LinkProfile::nfs();
    p.total_bytes_per_sec = Some(40 << 20);
    p.per_conn_bytes_per_sec = Some(20 << 20);
    let emu = LinkEmulator::start(server.addr(), p);
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("local");
    let root = "s3://strata-test/crash/job";
    let local_s = local.display().to_string();
    let mut rng = 0x5eed_u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut contents = std::collections::HashMap::new();
    let mut last_returned = 0u64;
    let (mut interrupted, mut finished, mut aborted) = (0, 0, 0);
    for step in 1..=50u64 {
        let f = files(&tmp.path().join("src"), step, 0);
        contents.insert(
            step,
            f.iter()
                .map(|x| (x.0.clone(), x.1.clone()))
                .collect::<Vec<_>>(),
        );
        let mut args: Vec<String> = ["ckpt", "save", root, "--local", &local_s, "--step"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(step.to_string());
        args.extend(["--keep-last".into(), "3".into()]);
        args.extend(f.iter().map(|x| x.2.clone()));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = command(&server, &emu.endpoint(), &a)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(next() % 1200));
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "step {step}: save failed without a kill");
                last_returned = step;
                finished += 1;
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                interrupted += 1;
            }
        }
        // Restore the newest complete checkpoint (the store and the local tier together).
        let out_dir = tmp.path().join(format!("restored-{step}"));
        let out = command(
            &server,
            &emu.endpoint(),
            &[
                "ckpt",
                "restore",
                root,
                "--local",
                &local_s,
                "latest",
                out_dir.to_str().unwrap(),
                "--rank",
                "0",
                "--json",
            ],
        )
        .output()
        .unwrap();
        let r: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
        let got = r["step"].as_u64().unwrap();
        assert!(
            got >= last_returned,
            "step {step}: restored {got}, but step {last_returned} had been saved"
        );
        for (name, bytes) in &contents[&got] {
            let b = std::fs::read(out_dir.join(name)).unwrap();
            assert!(
                b == *bytes,
                "step {step}: restored step {got}: {name} differs"
            );
        }
        std::fs::remove_dir_all(&out_dir).unwrap();
        if step % 10 == 0 {
            aborted += no_garbage_after_gc(&server, &emu, root, &local);
        }
    }
    assert!(
        interrupted >= 10 && finished >= 5,
        "kills landed: {interrupted} interrupted, {finished} finished"
    );
    eprintln!(
        "{interrupted} saves killed, {finished} finished, {aborted} abandoned upload(s) aborted by gc"
    );
    // 14 of 50 saves are killed here, several inside a multipart upload (11 in one run).
    assert!(aborted >= 1, "no kill left an upload open for gc to abort");
}

/// After `gc --older-than 0s`, every object in the store and every file on the local tier
/// belongs to a complete checkpoint, no lease is left, and no multipart upload is left open
/// on the server. Returns the uploads gc aborted.
fn no_garbage_after_gc(server: &S3Server, emu: &LinkEmulator, root: &str, local: &Path) -> u64 {
    let local_s = local.display().to_string();
    // `gc --older-than 0s` is for when no save is running: a killed process's requests may
    // still be on their way through the emulator (slow under load); let them land first.
    let t = std::time::Instant::now();
    while emu.stats().in_flight > 0 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = ok(&command(
        server,
        &emu.endpoint(),
        &[
            "ckpt",
            "gc",
            root,
            "--local",
            &local_s,
            "--older-than",
            "0s",
            "--json",
        ],
    )
    .output()
    .unwrap());
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["uploads_not_listed"], false, "{report}");
    assert!(
        server.open_uploads().is_empty(),
        "multipart uploads left open after gc: {:?}",
        server.open_uploads()
    );
    let objects = server.root_dir().join("strata-test/crash/job");
    for entry in walk(&objects) {
        let rel = entry
            .strip_prefix(&objects)
            .unwrap()
            .to_string_lossy()
            .to_string();
        let step_dir = rel.split('/').next().unwrap();
        assert!(
            step_dir.starts_with("step-") && objects.join(step_dir).join("MANIFEST.json").is_file(),
            "garbage in the store: {rel}"
        );
    }
    for entry in walk(local) {
        let rel = entry
            .strip_prefix(local)
            .unwrap()
            .to_string_lossy()
            .to_string();
        let step_dir = rel.split('/').next().unwrap();
        assert!(
            local.join(step_dir).join("MANIFEST.json").is_file() && !rel.contains("/."),
            "garbage on the local tier: {rel}"
        );
    }
    report["aborted_uploads"].as_u64().unwrap()
}

/// Files under `dir` (s3s-fs keeps its own metadata in hidden files; those are skipped).
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn plan_interval_and_bad_input() {
    let server = S3Server::start();
    let out = ok(&run(
        &server,
        &[
            "plan",
            "interval",
            "--ckpt-cost",
            "60s",
            "--mtbf",
            "24h",
            "--interval",
            "10m",
            "--drain",
            "15m",
        ],
    ));
    assert!(out.contains("Young") && out.contains("53.7 min"), "{out}");
    assert!(out.contains("warning: the drain takes"), "{out}");
    let out = run(
        &server,
        &["plan", "interval", "--ckpt-cost", "fast", "--mtbf", "4h"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ckpt-cost"));
    // A missing checkpoint and a bad step are one clear line each.
    let out = run(
        &server,
        &[
            "ckpt",
            "restore",
            "s3://strata-test/none",
            "latest",
            "/tmp/x",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no complete checkpoint"), "{err}");
    assert_eq!(out.status.code(), Some(3), "not found: {err}");
    let out = run(&server, &["ckpt", "show", "s3://strata-test/none", "abc"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("give a number or `latest`"));
}

/// The config file's `[ckpt]` section: `local` makes saves durable-local without `--local`,
/// `keep_last` retires old checkpoints, a flag overrides the file, and a bad value fails
/// naming the setting.
#[test]
fn the_config_file_sets_checkpoint_defaults_and_flags_override_it() {
    let server = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("nvme");
    let cfg = tmp.path().join("strata.toml");
    std::fs::write(
        &cfg,
        format!(
            "[ckpt]\nlocal = \"{}\"\nkeep_last = 1\nlocal_keep_last = 1\n",
            local.display()
        ),
    )
    .unwrap();
    let root = "s3://strata-test/cfgjob";
    let save = |step: u64, extra: &[&str]| {
        let f = files(&tmp.path().join("src"), step, 0);
        let step_s = step.to_string();
        let mut args = vec!["--config", cfg.to_str().unwrap(), "ckpt", "save", root];
        args.extend(["--step", &step_s]);
        args.extend(extra);
        let specs: Vec<String> = f.iter().map(|x| x.2.clone()).collect();
        args.extend(specs.iter().map(String::as_str));
        ok(&run(&server, &args));
    };
    save(1, &[]);
    assert!(
        walk(&local).iter().any(|p| p.ends_with("MANIFEST.json")),
        "no local copy under {} (ckpt.local)",
        local.display()
    );
    save(2, &[]);
    let steps = |json: &str| -> Vec<u64> {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .filter(|c| c["complete"] == true)
            .map(|c| c["step"].as_u64().unwrap())
            .collect()
    };
    let ls = ok(&run(&server, &["ckpt", "ls", root, "--json"]));
    assert_eq!(steps(&ls), vec![2], "keep_last = 1 from the file: {ls}");
    // The flag wins over the file.
    save(3, &["--keep-last", "2"]);
    let ls = ok(&run(&server, &["ckpt", "ls", root, "--json"]));
    assert_eq!(steps(&ls), vec![2, 3], "--keep-last 2 over the file: {ls}");

    std::fs::write(&cfg, "[ckpt]\nadmission = \"polite\"\n").unwrap();
    let f = files(&tmp.path().join("src"), 4, 0);
    let out = run(
        &server,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "ckpt",
            "save",
            root,
            "--step",
            "4",
            &f[0].2,
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("ckpt.admission: \"polite\""), "{err}");
}
