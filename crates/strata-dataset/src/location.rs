//! Where a dataset lives: a store and a prefix in it.

use strata_store::{Store, StoreUrl};

use crate::error::{DatasetError, Result};
use crate::manifest::{MANIFEST_NAME, Manifest};

/// A store and a prefix ("directory") in it.
#[derive(Clone)]
pub struct Location {
    /// The store.
    pub store: Store,
    /// The prefix, without a trailing slash ("" for the root).
    pub prefix: String,
}

impl Location {
    /// The location a URL names, opened with `config`.
    pub fn open(url: &StoreUrl, config: &strata_store::StoreConfig) -> Result<Self> {
        let store = Store::open(url, config)?;
        Ok(Self {
            store,
            prefix: url.key().trim_end_matches('/').to_string(),
        })
    }

    /// The key of `rel` under the prefix.
    pub fn key(&self, rel: &str) -> String {
        if self.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.prefix)
        }
    }

    /// `rel` as a URL (for messages).
    pub fn display(&self, rel: &str) -> String {
        self.store.url(&self.key(rel)).to_string()
    }

    /// Reads the manifest at the root.
    pub async fn manifest(&self) -> Result<Manifest> {
        let path = self.display(MANIFEST_NAME);
        let bytes = self
            .store
            .get(&self.key(MANIFEST_NAME))
            .await
            .map_err(|e| DatasetError::Manifest {
                path: path.clone(),
                cause: if e.kind() == strata_store::ErrorKind::NotFound {
                    "not found: no dataset here (make one with `strata pack`, or `strata index` for existing shards)".into()
                } else {
                    e.to_string()
                },
            })?;
        Manifest::from_json(&bytes).map_err(|cause| DatasetError::Manifest { path, cause })
    }
}
