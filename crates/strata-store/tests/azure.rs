//! The conformance suite against an Azure Blob Storage emulator (Azurite): `az://` URLs go
//! through object_store's Azure client to a real Blob API on loopback. Its own test binary:
//! the emulator is named through the process environment, as a user points object_store at
//! Azurite.

use strata_store::{Store, StoreConfig, StoreUrl};
use strata_testkit::conformance::{Expect, run_all};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azurite() {
    let Some(az) = tokio::task::spawn_blocking(strata_testkit::azurite::start_or_skip)
        .await
        .unwrap()
    else {
        return;
    };
    for (k, v) in az.env() {
        // SAFETY: this test binary holds one test; nothing else reads the environment now.
        unsafe { std::env::set_var(k, v) };
    }
    let cfg = StoreConfig {
        transfer: strata_testkit::conformance::small_parts(),
        ..Default::default()
    };
    let url = StoreUrl::parse(&format!("az://{}/", strata_testkit::azurite::CONTAINER)).unwrap();
    let store = Store::open(&url, &cfg).unwrap();
    let caps = store.probe().await.unwrap();
    eprintln!("azurite: conditional create {:?}", caps.conditional_create);
    run_all(
        &store,
        "conformance",
        Expect {
            conditional_create: caps.conditional_create,
        },
    )
    .await;
}
