//! An S3 server behind the link emulator, with a store for each side: the fixture most
//! benchmarks and many tests start with.

use strata_store::{Store, StoreConfig, StoreError};

use crate::emulator::{LinkEmulator, LinkProfile};
use crate::s3_server::S3Endpoint;

/// A server, the emulator in front of it, and stores that reach it directly (to set up data
/// without touching the link) and through the link (what is measured). Dropping it stops both.
pub struct Linked {
    /// The link emulator.
    pub emu: LinkEmulator,
    /// The server, reached directly.
    pub direct: Store,
    /// The server, reached through the emulator.
    pub linked: Store,
    /// The profile's total cap, MiB/s.
    pub cap_mib_per_sec: f64,
    /// The server (declared last: dropped after the emulator and the stores).
    pub server: Box<dyn S3Endpoint>,
}

impl Linked {
    /// Puts `profile`'s emulator in front of `server` and opens both stores at the bucket.
    pub fn start(server: Box<dyn S3Endpoint>, profile: LinkProfile) -> Result<Self, StoreError> {
        let emu = LinkEmulator::start(server.addr(), profile.clone());
        let direct = Store::open(&server.url(""), &server.store_config())?;
        let through = StoreConfig::from_layer(&server.config_layer_through(&emu))
            .expect("a server's settings are valid");
        let linked = Store::open(&server.url(""), &through)?;
        Ok(Self {
            emu,
            direct,
            linked,
            cap_mib_per_sec: profile.cap_mib_per_sec(),
            server,
        })
    }
}
