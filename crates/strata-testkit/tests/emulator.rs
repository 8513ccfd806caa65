//! The link emulator does what its profile says: latency, per-connection and total caps,
//! overload answers, stalls, and changes at run time. Measured with the store client, across
//! real sockets, against the in-process S3 server.

use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_store::{Store, StoreConfig};
use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, S3Server, data};

const MIB: u64 = 1 << 20;

fn through(server: &S3Server, emu: &LinkEmulator) -> StoreConfig {
    let mut l = server.config_layer_through(emu);
    l.retry.initial_backoff_ms = Some(5);
    StoreConfig::from_layer(&l).unwrap()
}

async fn seed(server: &S3Server, key: &str, len: usize) {
    let s = Store::open(&server.url(""), &server.store_config()).unwrap();
    s.put(key, Bytes::from(data::bytes(9, len))).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_byte_latency_is_added() {
    let server = S3Server::start();
    seed(&server, "small", 100).await;
    let mut p = LinkProfile::local();
    p.first_byte_latency = Duration::from_millis(50);
    let emu = LinkEmulator::start(server.addr(), p);
    let store = Store::open(&server.url(""), &through(&server, &emu)).unwrap();
    store.head("small").await.unwrap(); // warm the connection
    let t = Instant::now();
    for _ in 0..5 {
        store.get_range("small", 0..100, None).await.unwrap();
    }
    let per = t.elapsed().as_secs_f64() / 5.0;
    assert!(
        (0.048..0.5).contains(&per),
        "per-request latency {per:.3}s, want about 0.05"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_connection_and_total_caps_hold() {
    let server = S3Server::start();
    seed(&server, "obj", (16 * MIB) as usize).await;
    let mut p = LinkProfile::local();
    p.per_conn_bytes_per_sec = Some(8 * MIB);
    p.total_bytes_per_sec = Some(24 * MIB);
    let emu = LinkEmulator::start(server.addr(), p);
    let cfg = through(&server, &emu);
    let store = Store::open(&server.url(""), &cfg).unwrap();
    // One stream: the per-connection cap.
    let t = Instant::now();
    store.get_range("obj", 0..8 * MIB, None).await.unwrap();
    let one = 8.0 / t.elapsed().as_secs_f64();
    // The upper bound is the claim; the lower one (loose, for a loaded CI machine) shows the
    // cap is not stricter than asked.
    assert!(
        (4.0..8.8).contains(&one),
        "one stream {one:.1} MiB/s, cap 8"
    );
    // Many streams: the total cap.
    let mut opts = cfg.transfer.clone();
    opts.part_size = MIB;
    opts.concurrency = 16;
    let t = Instant::now();
    store.download_to_vec("obj", &opts).await.unwrap();
    let many = 16.0 / t.elapsed().as_secs_f64();
    assert!(
        (10.0..26.0).contains(&many),
        "16 streams {many:.1} MiB/s, total cap 24, one stream {one:.1}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_answers_slow_down_and_clients_recover() {
    let server = S3Server::start();
    seed(&server, "obj", (8 * MIB) as usize).await;
    let mut p = LinkProfile::local();
    p.max_in_flight = Some(2);
    p.first_byte_latency = Duration::from_millis(20);
    let emu = LinkEmulator::start(server.addr(), p);
    let cfg = through(&server, &emu);
    let store = Store::open(&server.url(""), &cfg).unwrap();
    let mut opts = cfg.transfer.clone();
    opts.part_size = MIB;
    opts.concurrency = 8;
    let (got, _) = store.download_to_vec("obj", &opts).await.unwrap();
    assert!(got == data::bytes(9, (8 * MIB) as usize));
    let s = emu.stats();
    assert!(s.overload_rejections > 0, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalls_are_cut_by_the_request_timeout_and_retried() {
    let server = S3Server::start();
    seed(&server, "obj", (2 * MIB) as usize).await;
    let mut p = LinkProfile::local();
    p.stall_rate = 1.0;
    p.stall = Duration::from_secs(30);
    let emu = LinkEmulator::start(server.addr(), p);
    let mut l = server.config_layer_through(&emu);
    l.retry.request_timeout_secs = Some(0.5);
    l.retry.initial_backoff_ms = Some(5);
    let store = Store::open(&server.url(""), &StoreConfig::from_layer(&l).unwrap()).unwrap();
    let stalled = {
        let store = store.clone();
        tokio::spawn(async move { store.get_range("obj", 0..2 * MIB, None).await })
    };
    // Let the first attempt stall, then heal the link: the retry after the timeout succeeds.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut healed = emu.profile();
    healed.stall_rate = 0.0;
    emu.set_profile(healed);
    let t = Instant::now();
    let got = stalled.await.unwrap().unwrap();
    assert_eq!(got.len() as u64, 2 * MIB);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(emu.stats().stalls >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_changes_take_effect_at_run_time() {
    let server = S3Server::start();
    seed(&server, "obj", (4 * MIB) as usize).await;
    let mut p = LinkProfile::local();
    p.per_conn_bytes_per_sec = Some(4 * MIB);
    let emu = LinkEmulator::start(server.addr(), p.clone());
    let store = Store::open(&server.url(""), &through(&server, &emu)).unwrap();
    let t = Instant::now();
    store.get_range("obj", 0..4 * MIB, None).await.unwrap();
    let slow = t.elapsed().as_secs_f64();
    p.per_conn_bytes_per_sec = Some(64 * MIB);
    emu.set_profile(p);
    let t = Instant::now();
    store.get_range("obj", 0..4 * MIB, None).await.unwrap();
    let fast = t.elapsed().as_secs_f64();
    assert!(slow > 0.8, "{slow}");
    assert!(fast < slow / 4.0, "after raising the cap: {fast} vs {slow}");
}

#[test]
fn named_profiles() {
    for name in ["s3", "nfs", "lustre", "local"] {
        assert_eq!(LinkProfile::named(name).unwrap().name, name);
    }
    assert!(LinkProfile::named("dialup").is_none());
    let s3 = LinkProfile::s3();
    assert!(s3.per_conn_bytes_per_sec.unwrap() * 16 <= s3.total_bytes_per_sec.unwrap());
}
