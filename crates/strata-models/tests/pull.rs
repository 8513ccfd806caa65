//! Pulls against the in-process S3 server (through the link emulator, which counts bytes and
//! injects faults) and Garage: whole models, tensor subsets, one download for concurrent
//! pulls, resume, faults, a model changed on the store, and hostile headers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use strata_models::{Model, ModelError, ModelRepo, PullOptions, pull, synth};
use strata_store::{Store, StoreConfig};
use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, S3Server};

struct Fixture {
    files: Vec<(String, Vec<u8>)>,
}

/// Two shards (6 MiB and 5 MiB), a config and a tokenizer under `prefix`.
async fn upload(store: &Store, prefix: &str, seed: u64) -> Fixture {
    let files = vec![
        ("config.json".to_string(), br#"{"layers": 4}"#.to_vec()),
        (
            "model-00001-of-00002.safetensors".to_string(),
            synth::shard(seed, 0, 6 << 20),
        ),
        (
            "model-00002-of-00002.safetensors".to_string(),
            synth::shard(seed + 1, 3, 5 << 20),
        ),
        ("tokenizer.json".to_string(), vec![b't'; 300_000]),
    ];
    for (n, b) in &files {
        store
            .put(&format!("{prefix}/{n}"), Bytes::from(b.clone()))
            .await
            .unwrap();
    }
    Fixture { files }
}

/// A store reaching `server` through `emu`.
fn through(server: &S3Server, emu: &LinkEmulator) -> Store {
    let cfg = StoreConfig::from_layer(&server.config_layer_through(emu)).unwrap();
    Store::open(&server.url(""), &cfg).unwrap()
}

fn small() -> PullOptions {
    PullOptions {
        part_size: 1 << 20,
        parts_in_flight: 8,
        ..Default::default()
    }
}

async fn whole_model(server: &dyn S3Endpoint, store: &Store) {
    let fx = upload(store, "models/llm", 1).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = ModelRepo::open(tmp.path()).unwrap();
    let url = server.url("models/llm/");
    let seen = Arc::new(AtomicU64::new(0));
    let s2 = seen.clone();
    let opts = PullOptions {
        on_tensor: Some(Arc::new(move |_| {
            s2.fetch_add(1, Ordering::Relaxed);
        })),
        ..small()
    };
    let r = pull(&repo, store, &url, &opts).await.unwrap();
    let total: u64 = fx.files.iter().map(|f| f.1.len() as u64).sum();
    assert_eq!(r.files, 4);
    assert_eq!(r.bytes, total);
    assert!(r.fetched_bytes >= total, "{r:?}");
    assert!(r.first_tensor_secs.is_some() && r.tensors > 0);
    assert_eq!(seen.load(Ordering::Relaxed) as usize, r.tensors);
    for (n, b) in &fx.files {
        assert!(std::fs::read(r.dir.join(n)).unwrap() == *b, "{n} differs");
    }
    // Zero-copy views equal the source bytes at the header's offsets.
    let m = Model::open(&r.dir).unwrap();
    let shard = &fx.files[1].1;
    let h = {
        let n = u64::from_le_bytes(shard[..8].try_into().unwrap()) as usize;
        strata_models::safetensors::Header::parse(&shard[8..8 + n], shard.len() as u64).unwrap()
    };
    for t in &h.tensors {
        let v = m.tensor(&t.name).unwrap();
        assert_eq!(
            v.data,
            &shard[t.start as usize..t.end as usize],
            "{}",
            t.name
        );
        assert_eq!(v.shape, t.shape.as_slice());
    }
    assert_eq!(m.tensors().len(), r.tensors);
    assert!(Model::verify(&r.dir).unwrap().is_empty());
    // Pulled again: nothing fetched.
    let again = pull(&repo, store, &url, &opts).await.unwrap();
    assert!(again.already_cached && again.fetched_bytes == 0);
    assert_eq!(again.dir, r.dir);
    // A flipped byte is found by verify.
    let p = r.dir.join("tokenizer.json");
    let mut b = std::fs::read(&p).unwrap();
    b[100] ^= 1;
    std::fs::write(&p, b).unwrap();
    let problems = Model::verify(&r.dir).unwrap();
    assert!(
        problems.len() == 1 && problems[0].contains("tokenizer.json"),
        "{problems:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_model_on_the_in_process_server() {
    let server = S3Server::start();
    let store = Store::open(&server.url(""), &server.store_config()).unwrap();
    whole_model(&server, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_model_on_garage() {
    let Some(server) = tokio::task::spawn_blocking(strata_testkit::garage::start_or_skip)
        .await
        .unwrap()
    else {
        return;
    };
    let store = Store::open(&server.url(""), &server.store_config()).unwrap();
    whole_model(&server, &store).await;
}

/// A tensor-parallel rank's slice: only the selected tensors' bytes cross the link, into
/// valid safetensors files; shards without a selected tensor are skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subset_of_tensors_fetches_only_their_bytes() {
    let server = S3Server::start();
    let emu = LinkEmulator::start(server.addr(), LinkProfile::local());
    let store = through(&server, &emu);
    let fx = upload(&store, "m", 2).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = ModelRepo::open(tmp.path()).unwrap();
    let before = emu.stats().bytes_down;
    let opts = PullOptions {
        tensors: vec!["layers.1.".into()],
        ..small()
    };
    let r = pull(&repo, &store, &server.url("m/"), &opts).await.unwrap();
    let down = emu.stats().bytes_down - before;
    let m = Model::open(&r.dir).unwrap();
    let names: Vec<&str> = m.tensors().iter().map(|t| t.name).collect();
    assert_eq!(names, ["layers.1.attn.weight", "layers.1.mlp.weight"]);
    assert!(!r.dir.join("model-00002-of-00002.safetensors").exists());
    assert!(r.dir.join("config.json").is_file());
    let selected: u64 = m.tensors().iter().map(|t| t.data.len() as u64).sum();
    let total: u64 = fx.files.iter().map(|f| f.1.len() as u64).sum();
    assert!(
        down < selected + 300_000 + (64 << 10) && down < total / 2,
        "{down} bytes crossed the link for {selected} selected of {total}"
    );
    assert!(Model::verify(&r.dir).unwrap().is_empty());
    let e = pull(
        &repo,
        &store,
        &server.url("m/"),
        &PullOptions {
            tensors: vec!["nope.".into()],
            ..small()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ModelError::NoTensors { .. }), "{e}");
}

/// Four pulls at once (four tasks, each with its own lock file descriptor, as processes would
/// have): the model crosses the link once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_download_once() {
    let server = S3Server::start();
    let emu = LinkEmulator::start(server.addr(), LinkProfile::local());
    let store = through(&server, &emu);
    let fx = upload(&store, "m", 3).await;
    let total: u64 = fx.files.iter().map(|f| f.1.len() as u64).sum();
    let tmp = tempfile::tempdir().unwrap();
    let before = emu.stats().bytes_down;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        let url = server.url("m/");
        let dir = tmp.path().to_path_buf();
        tasks.push(tokio::spawn(async move {
            let repo = ModelRepo::open(&dir).unwrap();
            pull(&repo, &store, &url, &small()).await.unwrap()
        }));
    }
    let mut reports = Vec::new();
    for t in tasks {
        reports.push(t.await.unwrap());
    }
    let down = emu.stats().bytes_down - before;
    assert_eq!(reports.iter().filter(|r| r.fetched_bytes > 0).count(), 1);
    assert!(reports.iter().all(|r| r.dir == reports[0].dir));
    assert!(
        down < total + total / 10,
        "{down} bytes crossed the link for a {total}-byte model"
    );
}

/// A pull that dies mid-way (the future dropped, as a killed process would stop) resumes:
/// the second pull keeps what the first wrote and fetches the rest; no model is visible in
/// between. Then a store fault mid-pull fails clearly and leaves nothing visible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_pull_resumes_and_a_fault_leaves_nothing_visible() {
    let server = S3Server::start();
    let emu = LinkEmulator::start(server.addr(), LinkProfile::local());
    let store = through(&server, &emu);
    let fx = upload(&store, "m", 4).await;
    let total: u64 = fx.files.iter().map(|f| f.1.len() as u64).sum();
    let tmp = tempfile::tempdir().unwrap();
    let repo = ModelRepo::open(tmp.path()).unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tx = std::sync::Mutex::new(Some(tx));
    let w = written.clone();
    let opts = PullOptions {
        parts_in_flight: 2,
        progress: Some(Arc::new(move |n| {
            if w.fetch_add(n, Ordering::Relaxed) + n >= total / 2
                && let Some(tx) = tx.lock().unwrap().take()
            {
                let _ = tx.send(());
            }
        })),
        ..small()
    };
    let url = server.url("m/");
    tokio::select! {
        r = pull(&repo, &store, &url, &opts) => panic!("finished before it was interrupted: {r:?}"),
        _ = rx => {}
    }
    assert!(repo.list().is_empty(), "a partial model is visible");
    let r = pull(&repo, &store, &url, &small()).await.unwrap();
    assert!(
        r.resumed_bytes >= total / 2 - (2 << 20) && r.fetched_bytes < total - total / 3,
        "resumed {} fetched {} of {total}",
        r.resumed_bytes,
        r.fetched_bytes
    );
    for (n, b) in &fx.files {
        assert!(
            std::fs::read(r.dir.join(n)).unwrap() == *b,
            "{n} differs after resume"
        );
    }

    // A store fault mid-pull: after the first segments land, every request fails (retries
    // run out quickly). The error names the object; nothing becomes visible; once the store
    // is back, the pull resumes.
    let tmp2 = tempfile::tempdir().unwrap();
    let repo2 = ModelRepo::open(tmp2.path()).unwrap();
    let mut layer = server.config_layer_through(&emu);
    layer.retry.max_attempts = Some(2);
    layer.retry.initial_backoff_ms = Some(1);
    let flaky = Store::open(&server.url(""), &StoreConfig::from_layer(&layer).unwrap()).unwrap();
    let emu = Arc::new(emu);
    let e2 = emu.clone();
    let opts = PullOptions {
        parts_in_flight: 2,
        progress: Some(Arc::new(move |_| {
            let mut p = LinkProfile::local();
            p.error_rate = 1.0;
            e2.set_profile(p);
        })),
        ..small()
    };
    let e = pull(&repo2, &flaky, &url, &opts).await.unwrap_err();
    assert!(
        e.to_string().contains("s3://strata-test/m/"),
        "the error names the object: {e}"
    );
    assert!(repo2.list().is_empty());
    emu.set_profile(LinkProfile::local());
    let r = pull(&repo2, &flaky, &url, &small()).await.unwrap();
    assert!(r.resumed_bytes > 0, "{r:?}");
    assert!(Model::verify(&r.dir).unwrap().is_empty());
}

/// A model changed on the store is pulled anew into a new version; the old one is intact and
/// never mixed. A change during a pull fails it clearly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_model_is_a_new_version() {
    let server = S3Server::start();
    let store = Store::open(&server.url(""), &server.store_config()).unwrap();
    let fx1 = upload(&store, "m", 5).await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = ModelRepo::open(tmp.path()).unwrap();
    let url = server.url("m/");
    let v1 = pull(&repo, &store, &url, &small()).await.unwrap();
    let fx2 = upload(&store, "m", 6).await;
    let v2 = pull(&repo, &store, &url, &small()).await.unwrap();
    assert_ne!(v1.version, v2.version);
    assert_ne!(v1.dir, v2.dir);
    let shard = "model-00001-of-00002.safetensors";
    assert!(std::fs::read(v1.dir.join(shard)).unwrap() == fx1.files[1].1);
    assert!(std::fs::read(v2.dir.join(shard)).unwrap() == fx2.files[1].1);
    assert_eq!(repo.list().len(), 2);
    assert_eq!(repo.find(&url.to_string(), true)[0].dir, v2.dir);

    // Changed mid-pull: the shard is overwritten after the first segment lands, before the
    // pull goes on (the progress callback waits for the overwrite, made by a client of its own
    // on a thread of its own).
    let tmp2 = tempfile::tempdir().unwrap();
    let repo2 = ModelRepo::open(tmp2.path()).unwrap();
    let once = std::sync::Once::new();
    let (root, cfg) = (server.url(""), server.store_config());
    let opts = PullOptions {
        parts_in_flight: 1,
        progress: Some(Arc::new(move |_| {
            once.call_once(|| {
                let (root, cfg) = (root.clone(), cfg.clone());
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Runtime::new().unwrap();
                    let other = Store::open(&root, &cfg).unwrap();
                    rt.block_on(other.put(
                        "m/model-00002-of-00002.safetensors",
                        Bytes::from(synth::shard(99, 3, 5 << 20)),
                    ))
                    .unwrap();
                })
                .join()
                .unwrap();
            })
        })),
        ..small()
    };
    let e = pull(&repo2, &store, &url, &opts).await.unwrap_err();
    assert!(matches!(e, ModelError::Changed(_)), "{e}");
    assert!(e.to_string().contains("run the pull again"), "{e}");
    assert!(repo2.list().is_empty());
}

/// Hostile headers on the store: the pull fails naming the file and the cause; nothing is
/// published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_headers_are_rejected() {
    let server = S3Server::start();
    let store = Store::open(&server.url(""), &server.store_config()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let repo = ModelRepo::open(tmp.path()).unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (u64::MAX.to_le_bytes().to_vec(), "over the limit"),
        (
            {
                let j = br#"{"w":{"dtype":"F32","shape":[1000],"data_offsets":[0,4000]}}"#;
                let mut f = (j.len() as u64).to_le_bytes().to_vec();
                f.extend_from_slice(j);
                f.extend_from_slice(&[0; 16]);
                f
            },
            "out of bounds",
        ),
        (
            {
                let j = b"{\"w\xff\":1}";
                let mut f = (j.len() as u64).to_le_bytes().to_vec();
                f.extend_from_slice(j);
                f
            },
            "UTF-8",
        ),
    ];
    for (i, (bytes, want)) in cases.into_iter().enumerate() {
        let key = format!("bad{i}/model.safetensors");
        store.put(&key, Bytes::from(bytes)).await.unwrap();
        let e = pull(&repo, &store, &server.url(&format!("bad{i}/")), &small())
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains(&key) && text.contains(want), "{text}");
    }
    assert!(repo.list().is_empty());
}
