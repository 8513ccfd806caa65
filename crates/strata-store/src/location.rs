//! Where a collection of objects lives (a dataset, a checkpoint root, a model): a store and
//! a prefix in it.

use crate::error::Result;
use crate::{Store, StoreConfig, StoreUrl};

/// A store and a prefix ("directory") in it.
#[derive(Clone)]
pub struct Location {
    /// The store.
    pub store: Store,
    /// The prefix, without a trailing slash ("" for the root).
    pub prefix: String,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Location").field(&self.display("")).finish()
    }
}

impl Location {
    /// The location a URL names, opened with `config`.
    pub fn open(url: &StoreUrl, config: &StoreConfig) -> Result<Self> {
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
}
