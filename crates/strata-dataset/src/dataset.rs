//! An opened dataset: its manifest checked against the store, its shards' versions, and their
//! indexes loaded on demand.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt, stream};
use strata_cache::ObjectVersion;

use crate::error::{DatasetError, Result};
use crate::index::{ShardFormat, ShardIndex, index_path, split_key};
use crate::manifest::{Layout, Manifest};
use strata_store::Location;

/// An opened dataset.
pub struct Dataset {
    /// Where its shards (or objects) live.
    pub location: Location,
    /// Where its manifest and shard indexes live: `location` itself, or another prefix or
    /// directory (a dataset in a bucket the job may only read; the node's index cache).
    pub index_location: Location,
    /// Its manifest (for a raw dataset: one entry per object).
    pub manifest: Manifest,
    /// Each shard's cache identity (path, ETag, size), in manifest order.
    pub shards: Vec<ObjectVersion>,
    indexes: Mutex<HashMap<usize, Arc<ShardIndex>>>,
}

/// How [`Dataset::open_with`] finds a dataset's manifest.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Where the manifest and shard indexes are (`strata index URL --out INDEX`). None:
    /// beside the shards, or, without a manifest there, in `index_cache`.
    pub index: Option<Location>,
    /// Read every object under the location as one sample (the raw layout), from the raw
    /// manifest at `index` when given, else from a listing.
    pub raw: bool,
    /// A directory of the node (its cache) where a dataset without a manifest is indexed on
    /// first use, writing nothing to the dataset's bucket, and where a raw listing is kept
    /// for the DataLoader's workers. None: a dataset needs its manifest.
    pub index_cache: Option<std::path::PathBuf>,
}

impl Dataset {
    /// Opens the sharded dataset at `location`: reads `manifest.json`, and checks that every
    /// shard exists with the size the manifest gives (HEAD requests, 16 at a time).
    pub async fn open(location: Location) -> Result<Self> {
        let index = location.clone();
        Self::open_indexed(location, index).await
    }

    /// Opens the dataset at `location` whose manifest and shard indexes are under `index`.
    /// A sharded dataset's shards are checked with HEAD requests (16 at a time): each must
    /// exist with the manifest's size, and with its ETag when the manifest has one. A raw
    /// manifest is trusted as it is: no request per object.
    pub async fn open_indexed(location: Location, index: Location) -> Result<Self> {
        let manifest = Manifest::load(&index).await?;
        Self::with_manifest(location, index, manifest).await
    }

    async fn with_manifest(
        location: Location,
        index: Location,
        manifest: Manifest,
    ) -> Result<Self> {
        // A raw dataset's objects are taken as its manifest (or listing) gives them, pinned
        // to their ETags where it has them: no request per object.
        let shards = if manifest.layout == Layout::Raw {
            let root = location.store.root().to_string();
            manifest
                .shards
                .iter()
                .map(|s| {
                    let etag = s.etag.as_deref().unwrap_or("");
                    ObjectVersion::new(&root, &location.key(&s.path), etag, s.bytes)
                })
                .collect()
        } else {
            Self::head_shards(&location, &index, &manifest).await?
        };
        Ok(Self {
            location,
            index_location: index,
            manifest,
            shards,
            indexes: Mutex::new(HashMap::new()),
        })
    }

    async fn head_shards(
        location: &Location,
        index: &Location,
        manifest: &Manifest,
    ) -> Result<Vec<ObjectVersion>> {
        stream::iter(manifest.shards.iter())
            .map(|s| async move {
                let key = location.key(&s.path);
                let info = location
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
                let changed = |what: String| DatasetError::Manifest {
                    path: index.display(crate::manifest::MANIFEST_NAME),
                    cause: format!("shard {} {what}", s.path),
                };
                if info.size != s.bytes {
                    return Err(changed(format!(
                        "is {} bytes in the store, {} in the manifest",
                        info.size, s.bytes
                    )));
                }
                if let (Some(want), Some(have)) = (&s.etag, &info.e_tag)
                    && strata_store::store::normalize_etag(want) != strata_store::store::normalize_etag(have)
                {
                    return Err(changed(format!(
                        "has changed since it was indexed (ETag {have}, indexed at {want}): index it again"
                    )));
                }
                let v = strata_cache::object_version(&location.store, &info).await?;
                Ok::<_, DatasetError>(v)
            })
            .buffered(16)
            .try_collect()
            .await
    }

    /// Opens a raw dataset: every object under `location` is one sample, its member named by
    /// its extension (the baseline layout: one request per sample), from one listing.
    pub async fn open_raw(location: Location) -> Result<Self> {
        let manifest = crate::indexer::raw_manifest(&location).await?;
        let index = location.clone();
        Self::with_manifest(location, index, manifest).await
    }

    /// Opens the dataset at `location` as `opts` says: the manifest at `opts.index`, else
    /// beside the shards (with `opts.raw`, a raw one), else (with `opts.index_cache`) one built on first use in the node's
    /// cache, and rebuilt there when the shards listed no longer match it. A raw dataset
    /// without a raw manifest is listed once, and the listing kept in `index_cache` so that
    /// the workers which open it next ([`Dataset::index_location`]) do not list again.
    pub async fn open_with(location: Location, opts: &OpenOptions) -> Result<Self> {
        let cache = match &opts.index_cache {
            Some(dir) => Some(Self::cache_location(&location, dir)?),
            None => None,
        };
        if let Some(index) = &opts.index {
            let ds = Self::open_indexed(location, index.clone()).await?;
            if opts.raw && ds.manifest.layout != Layout::Raw {
                return Err(DatasetError::Manifest {
                    path: index.display(crate::manifest::MANIFEST_NAME),
                    cause: "is the manifest of a sharded dataset, not of a raw one (`strata index --raw`)".into(),
                });
            }
            return ds.indexes_kept_in(cache).await;
        }
        let beside = Manifest::try_load(&location).await?;
        if opts.raw {
            if let Some(m) = beside.filter(|m| m.layout == Layout::Raw) {
                // `strata index --raw` wrote it beside the objects.
                let index = location.clone();
                return Self::with_manifest(location, index, m).await;
            }
            return match cache {
                Some(cache) => {
                    let m = crate::indexer::index_raw_into(&location, &cache).await?;
                    Self::with_manifest(location, cache, m).await
                }
                None => Self::open_raw(location).await,
            };
        }
        if let Some(m) = beside {
            let index = location.clone();
            return Self::with_manifest(location, index, m)
                .await?
                .indexes_kept_in(cache)
                .await;
        }
        let Some(cache) = cache else {
            // The same error as a plain open: no manifest here.
            return Self::open(location).await;
        };
        if let Some(m) = Manifest::try_load(&cache).await.ok().flatten()
            && Self::matches_listing(&location, &m).await?
            && Self::indexes_intact(&cache, &m).await
        {
            // A shard changed in place (same size; a listing without ETags cannot tell)
            // shows at the HEADs: index again.
            match Self::with_manifest(location.clone(), cache.clone(), m).await {
                Err(DatasetError::Manifest { .. }) => {}
                r => return r,
            }
        }
        tracing::info!(
            dataset = %location.display(""),
            index = %cache.display(""),
            "no manifest beside the shards: indexing them into the node's cache"
        );
        let m = match crate::indexer::index_prefix_into(&location, &cache, &|_| {}).await {
            Err(DatasetError::Input { .. }) => {
                return Err(DatasetError::Manifest {
                    path: location.display(crate::manifest::MANIFEST_NAME),
                    cause: "not found, and no .tar or .tfrecord shard under this prefix to index \
                            (make a dataset with `strata pack`)"
                        .into(),
                });
            }
            r => r?,
        };
        Self::with_manifest(location, cache, m).await
    }

    /// A sharded dataset whose manifest and indexes are in a remote store, with them copied
    /// into the node's index cache `cache` (the manifest pinned to the ETags just seen), so
    /// that the DataLoader's workers, which open it after this process, read them from local
    /// files instead of fetching every index again each epoch. Unchanged when `cache` is None,
    /// the dataset is raw or its index is already local.
    async fn indexes_kept_in(self, cache: Option<Location>) -> Result<Self> {
        let Some(cache) = cache else {
            return Ok(self);
        };
        if self.manifest.layout == Layout::Raw
            || !self.index_location.store.root().scheme().is_remote()
        {
            return Ok(self);
        }
        let mut m = self.manifest.clone();
        for (info, v) in m.shards.iter_mut().zip(&self.shards) {
            if !v.version.is_empty() {
                info.etag = Some(v.version.to_string());
            }
        }
        let cached = Manifest::try_load(&cache).await.ok().flatten() == Some(m.clone())
            && Self::indexes_intact(&cache, &m).await;
        if !cached {
            let indexes = self.load_indexes().await?;
            for (s, idx) in m.shards.iter().zip(&indexes) {
                cache
                    .store
                    .put(&cache.key(&index_path(&s.path)), idx.to_json().into())
                    .await?;
            }
            cache
                .store
                .put(
                    &cache.key(crate::manifest::MANIFEST_NAME),
                    m.to_json().into(),
                )
                .await?;
        }
        Ok(Self {
            index_location: cache,
            manifest: m,
            ..self
        })
    }

    /// Whether every shard index of `m` under the node's index cache `cache` reads and
    /// agrees with `m`: a copy damaged on the node's disk is built again, never a dataset
    /// that stays unreadable until someone deletes the cache.
    async fn indexes_intact(cache: &Location, m: &Manifest) -> bool {
        for s in &m.shards {
            let Ok(bytes) = cache.store.get(&cache.key(&index_path(&s.path))).await else {
                return false;
            };
            match ShardIndex::from_json(&bytes) {
                Ok(idx) if idx.shard_size == s.bytes && idx.samples.len() as u64 == s.samples => {}
                _ => return false,
            }
        }
        true
    }

    /// Where the node's index cache under `dir` keeps the index of the dataset at `location`.
    fn cache_location(location: &Location, dir: &std::path::Path) -> Result<Location> {
        let name = format!(
            "{:016x}",
            strata_cache::key::object_hash(&location.store.root().to_string(), &location.prefix)
        );
        let path = dir.join("indexes").join(name);
        let url = strata_store::StoreUrl::parse(&path.display().to_string())?;
        Ok(Location::open(&url, &strata_store::StoreConfig::default())?)
    }

    /// Whether the shards under `location` are exactly those of `m`: paths, sizes, and ETags
    /// where the listing gives them (not every store's does).
    async fn matches_listing(location: &Location, m: &Manifest) -> Result<bool> {
        let etag = |e: Option<&str>| e.map(|e| strata_store::store::normalize_etag(e).to_string());
        let mut listed: Vec<(String, u64, Option<String>)> =
            crate::indexer::objects_under(location, crate::indexer::is_shard)
                .await?
                .into_iter()
                .map(|o| (o.key, o.size, etag(o.e_tag.as_deref())))
                .collect();
        let mut indexed: Vec<(String, u64, Option<String>)> = m
            .shards
            .iter()
            .map(|s| (s.path.clone(), s.bytes, etag(s.etag.as_deref())))
            .collect();
        listed.sort();
        indexed.sort();
        Ok(listed.len() == indexed.len()
            && listed.iter().zip(&indexed).all(|(l, i)| {
                l.0 == i.0 && l.1 == i.1 && (l.2.is_none() || i.2.is_none() || l.2 == i.2)
            }))
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
            let rel = index_path(&info.path);
            let bytes = self
                .index_location
                .store
                .get(&self.index_location.key(&rel))
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
                    path: self.index_location.display(crate::manifest::MANIFEST_NAME),
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
