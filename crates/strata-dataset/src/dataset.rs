//! An opened dataset: its manifest checked against the store, its shards' versions, and their
//! indexes loaded on demand.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt, stream};
use strata_cache::ObjectVersion;

use crate::error::{DatasetError, Result};
use crate::index::{INDEX_SUFFIX, ShardFormat, ShardIndex, split_key};
use crate::manifest::{Layout, Manifest, ShardInfo};
use strata_store::Location;

/// An opened dataset.
pub struct Dataset {
    /// Where it lives.
    pub location: Location,
    /// Its manifest (for a raw dataset: one entry per object).
    pub manifest: Manifest,
    /// Each shard's cache identity (path, ETag, size), in manifest order.
    pub shards: Vec<ObjectVersion>,
    indexes: Mutex<HashMap<usize, Arc<ShardIndex>>>,
}

impl Dataset {
    /// Opens the sharded dataset at `location`: reads `manifest.json`, and checks that every
    /// shard exists with the size the manifest gives (HEAD requests, 16 at a time).
    pub async fn open(location: Location) -> Result<Self> {
        let manifest = Manifest::load(&location).await?;
        let shards = stream::iter(manifest.shards.iter())
            .map(|s| {
                let location = &location;
                async move {
                    let key = location.key(&s.path);
                    let info =
                        location
                            .store
                            .head(&key)
                            .await
                            .map_err(|e| DatasetError::Shard {
                                shard: location.display(&s.path),
                                cause: if e.kind() == strata_store::ErrorKind::NotFound {
                                    "listed in the manifest but missing from the store".into()
                                } else {
                                    e.to_string()
                                },
                            })?;
                    if info.size != s.bytes {
                        return Err(DatasetError::Manifest {
                            path: location.display(crate::manifest::MANIFEST_NAME),
                            cause: format!(
                                "shard {} is {} bytes in the store, {} in the manifest",
                                s.path, info.size, s.bytes
                            ),
                        });
                    }
                    let v = strata_cache::object_version(&location.store, &info).await?;
                    Ok::<_, DatasetError>(v)
                }
            })
            .buffered(16)
            .try_collect()
            .await?;
        Ok(Self {
            location,
            manifest,
            shards,
            indexes: Mutex::new(HashMap::new()),
        })
    }

    /// Opens a raw dataset: every object under `location` is one sample, its member named by
    /// its extension (the baseline layout: one request per sample).
    pub async fn open_raw(location: Location) -> Result<Self> {
        let objects = location.store.list(&location.prefix).await?;
        let strip = if location.prefix.is_empty() {
            0
        } else {
            location.prefix.len() + 1
        };
        let mut infos = Vec::new();
        let mut shards = Vec::new();
        for o in objects {
            let rel = &o.key[strip..];
            if split_key(rel).is_none() {
                continue;
            }
            infos.push(ShardInfo {
                path: rel.to_string(),
                format: ShardFormat::Raw,
                samples: 1,
                bytes: o.size,
            });
            shards.push(ObjectVersion::new(
                &location.store.root().to_string(),
                &o.key,
                o.e_tag.as_deref().unwrap_or(""),
                o.size,
            ));
        }
        if infos.is_empty() {
            return Err(DatasetError::Input {
                path: location.display(""),
                cause: "no object with an extension under this prefix".into(),
            });
        }
        Ok(Self {
            location,
            manifest: Manifest::new(Layout::Raw, infos),
            shards,
            indexes: Mutex::new(HashMap::new()),
        })
    }

    /// The display URL of shard `i`.
    pub fn shard_url(&self, i: usize) -> String {
        self.location.display(&self.manifest.shards[i].path)
    }

    /// The index of shard `i` (fetched once, then kept). A raw "shard" has a one-sample index.
    pub async fn index(&self, i: usize) -> Result<Arc<ShardIndex>> {
        if let Some(idx) = self
            .indexes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&i)
        {
            return Ok(idx.clone());
        }
        let info = &self.manifest.shards[i];
        let idx = if info.format == ShardFormat::Raw {
            let (_, ext) = split_key(&info.path).expect("raw paths have an extension");
            ShardIndex::raw(ext, info.bytes)
        } else {
            let rel = format!("{}{INDEX_SUFFIX}", info.path);
            let bytes = self
                .location
                .store
                .get(&self.location.key(&rel))
                .await
                .map_err(|e| DatasetError::Shard {
                    shard: self.shard_url(i),
                    cause: if e.kind() == strata_store::ErrorKind::NotFound {
                        format!("no index ({rel}); build it with `strata index`")
                    } else {
                        format!("reading its index: {e}")
                    },
                })?;
            let idx = ShardIndex::from_json(&bytes).map_err(|e| DatasetError::Shard {
                shard: self.shard_url(i),
                cause: format!("index {rel}: {e}"),
            })?;
            if idx.shard_size != info.bytes || idx.samples.len() as u64 != info.samples {
                return Err(DatasetError::Manifest {
                    path: self.location.display(crate::manifest::MANIFEST_NAME),
                    cause: format!(
                        "shard {} has {} samples in {} bytes by its index, {} in {} by the manifest",
                        info.path,
                        idx.samples.len(),
                        idx.shard_size,
                        info.samples,
                        info.bytes
                    ),
                });
            }
            idx
        };
        let idx = Arc::new(idx);
        self.indexes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(i, idx.clone());
        Ok(idx)
    }

    /// Every shard's index, in manifest order (fetched 16 at a time, then kept).
    pub async fn load_indexes(&self) -> Result<Vec<Arc<ShardIndex>>> {
        stream::iter(0..self.shards.len())
            .map(|i| self.index(i))
            .buffered(16)
            .try_collect()
            .await
    }
}
