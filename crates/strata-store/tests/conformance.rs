//! The conformance suite on every backend: memory, local files, the in-process S3 server
//! (directly and through the link emulator), and Garage.

use strata_store::{ConditionalCreate, Store, StoreConfig, StoreUrl};
use strata_testkit::conformance::{Expect, run_all};
use strata_testkit::{LinkEmulator, LinkProfile, S3Endpoint, S3Server};

const ENFORCED: Expect = Expect {
    conditional_create: ConditionalCreate::Enforced,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory() {
    let store = Store::open(
        &StoreUrl::parse("memory://conformance").unwrap(),
        &StoreConfig::default(),
    )
    .unwrap();
    run_all(&store, "run", ENFORCED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_files() {
    let dir = tempfile::tempdir().unwrap();
    let url = StoreUrl::from_local_path(dir.path(), true).unwrap();
    let store = Store::open(&url, &StoreConfig::default()).unwrap();
    run_all(&store, url.key(), ENFORCED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3s_server() {
    let server = S3Server::start();
    let store = Store::open(&server.url(""), &server.store_config()).unwrap();
    run_all(&store, "run", ENFORCED).await;
    assert!(
        server.pending_uploads().is_empty(),
        "uploads left: {:?}",
        server.pending_uploads()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3s_server_through_emulator() {
    let server = S3Server::start();
    let emu = LinkEmulator::start(server.addr(), LinkProfile::nfs());
    let layer = server.config_layer_through(&emu);
    let store = Store::open(&server.url(""), &StoreConfig::from_layer(&layer).unwrap()).unwrap();
    run_all(&store, "run", ENFORCED).await;
    assert!(
        emu.stats().requests > 50,
        "traffic went through the emulator: {:?}",
        emu.stats()
    );
}

/// Garage ignores `If-None-Match`, and the probe must say so. Skipped (with a notice) when the
/// binary is missing, unless `STRATA_REQUIRE_GARAGE=1`, which `scripts/test` sets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage() {
    let started = tokio::task::spawn_blocking(strata_testkit::garage::start_or_skip);
    let Some(garage) = started.await.unwrap() else {
        return;
    };
    let store = Store::open(&garage.url(""), &garage.store_config()).unwrap();
    run_all(
        &store,
        "run",
        Expect {
            conditional_create: ConditionalCreate::Ignored,
        },
    )
    .await;
}

/// With S3 additional checksums switched on, every PUT and part carries one and the server
/// verifies it; with `unsigned_payload` the signature does not cover the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3s_server_with_additional_checksums() {
    let server = S3Server::start();
    for (algo, unsigned) in [("sha256", false), ("crc64nvme", false), ("crc64nvme", true)] {
        let mut layer = server.config_layer();
        layer.s3.checksum = Some(algo.into());
        layer.s3.unsigned_payload = Some(unsigned);
        let store =
            Store::open(&server.url(""), &StoreConfig::from_layer(&layer).unwrap()).unwrap();
        run_all(&store, &format!("checksum-{algo}-{unsigned}"), ENFORCED).await;
    }
}
