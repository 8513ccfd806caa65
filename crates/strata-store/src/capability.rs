//! Capability probe: what a store really does, as opposed to what its API accepts.
//!
//! Conditional create (`PutMode::Create`, `If-None-Match: *` on S3) is the basis of
//! coordination through the store (markers, leases, one committer). Some S3-compatible stores
//! accept the header and silently overwrite anyway (Garage does), so the only way to know is
//! to try: write a probe object twice with the condition and see whether the second write is
//! refused.

use bytes::Bytes;

use crate::error::{ErrorKind, Result};
use crate::store::{CreateOutcome, Store};

/// How a store treats conditional create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionalCreate {
    /// The second create was refused: put-if-absent can be relied on.
    Enforced,
    /// The second create succeeded: the store ignores the condition. Protocols must not
    /// depend on it.
    Ignored,
    /// The backend refuses conditional writes outright.
    Unsupported,
}

/// What [`Store::probe`] found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Capabilities {
    /// Whether the store enforces put-if-absent.
    pub conditional_create: ConditionalCreate,
}

/// The prefix under which probe objects are written (and deleted again).
pub const PROBE_PREFIX: &str = ".strata-probe";

impl Store {
    /// Probes the store's behaviour. Writes and deletes two small objects under
    /// [`PROBE_PREFIX`] at the bucket's root; needs write permission.
    pub async fn probe(&self) -> Result<Capabilities> {
        self.probe_under("").await
    }

    /// Like [`Store::probe`], its objects under `prefix/`[`PROBE_PREFIX`] (a checkpoint
    /// root's own prefix, where its gc collects what a killed probe leaves).
    pub async fn probe_under(&self, prefix: &str) -> Result<Capabilities> {
        let nonce: u64 = rand::random();
        let dir = match prefix.trim_end_matches('/') {
            "" => PROBE_PREFIX.to_string(),
            p => format!("{p}/{PROBE_PREFIX}"),
        };
        let key = format!("{dir}/conditional-{}-{nonce:016x}", std::process::id());
        let first = self.put_if_absent(&key, Bytes::from_static(b"first")).await;
        let conditional_create = match first {
            Err(e) if e.kind() == ErrorKind::Unsupported => ConditionalCreate::Unsupported,
            Err(e) => return Err(e),
            Ok(CreateOutcome::AlreadyExists) => ConditionalCreate::Enforced,
            Ok(CreateOutcome::Created) => {
                match self
                    .put_if_absent(&key, Bytes::from_static(b"second"))
                    .await?
                {
                    CreateOutcome::AlreadyExists => ConditionalCreate::Enforced,
                    CreateOutcome::Created => ConditionalCreate::Ignored,
                }
            }
        };
        let _ = self.delete(&key).await;
        Ok(Capabilities { conditional_create })
    }
}
