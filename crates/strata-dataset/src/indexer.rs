//! Indexing existing shards (`strata index URL`) and reading tars that have no index.
//!
//! [`index_prefix_into`] streams each shard once (never holding it whole), builds its
//! [`ShardIndex`], writes it as `SHARD.idx` under the index location (beside the shard, or
//! elsewhere for a dataset in a bucket the job may only read), and writes a manifest over all
//! of them last. [`index_raw_into`] writes the manifest of a raw dataset (one object per
//! sample, with sizes and ETags, so readers neither list nor HEAD). [`stream_unindexed`]
//! reads a tar in archive order, sample by sample, without an index (plain WebDataset
//! streaming).

use bytes::BytesMut;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt, stream};

use crate::error::{DatasetError, Result};
use crate::index::{INDEX_SUFFIX, IndexBuilder, ShardFormat, ShardIndex, index_path, split_key};
use crate::manifest::{Layout, MANIFEST_NAME, Manifest, ShardInfo};
use crate::sample::Sample;
use crate::tar::TarScanner;
use strata_store::Location;

/// Whether a key names a shard (`.tar`, `.tfrecord`, `.tfrecords`, `.tfr`).
pub fn is_shard(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.ends_with(".tar") || ShardFormat::of(&k) == ShardFormat::Tfrecord
}

/// Indexes one shard object; returns its index (not written).
pub async fn index_shard(loc: &Location, rel: &str) -> Result<ShardIndex> {
    Ok(index_shard_versioned(loc, rel).await?.0)
}

/// Indexes one shard object; returns its index (not written) and the ETag it was read at.
async fn index_shard_versioned(loc: &Location, rel: &str) -> Result<(ShardIndex, Option<String>)> {
    let key = loc.key(rel);
    let info = loc.store.head(&key).await?;
    let etag = info.e_tag.clone();
    let mut parts = loc
        .store
        .download_stream(&key, &info, &loc.store.config().transfer);
    let mut b = IndexBuilder::new(ShardFormat::of(rel));
    let mut buf = BytesMut::new();
    let shard_err = |cause: String| DatasetError::Shard {
        shard: loc.display(rel),
        cause,
    };
    while let Some(part) = parts.next().await {
        buf.extend_from_slice(&part?);
        b.push(&mut buf).map_err(|e| shard_err(e.to_string()))?;
    }
    let (n, examples) = b.left_out();
    if n > 0 {
        tracing::warn!(
            "{}: {n} tar member(s) left out of the index (not sample members), e.g. {}",
            loc.display(rel),
            examples.join(", ")
        );
    }
    let idx = b.finish(&buf).map_err(|e| shard_err(e.to_string()))?;
    Ok((idx, etag))
}

/// The objects under `loc`, keys relative to it, with the ones `keep` accepts.
pub(crate) async fn objects_under(
    loc: &Location,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<strata_store::ObjectInfo>> {
    let strip = if loc.prefix.is_empty() {
        0
    } else {
        loc.prefix.len() + 1
    };
    Ok(loc
        .store
        .list(&loc.prefix)
        .await?
        .into_iter()
        .filter_map(|mut o| {
            o.key = o.key.get(strip..)?.to_string();
            keep(&o.key).then_some(o)
        })
        .collect())
}

/// Indexes every shard under `loc` (4 at a time), writes each index beside its shard and a
/// manifest at `loc` last. Returns the manifest.
pub async fn index_prefix(
    loc: &Location,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Manifest> {
    index_prefix_into(loc, loc, progress).await
}

/// Indexes every shard under `loc` (4 at a time) and writes the indexes and the manifest
/// (last) under `out`, which may be `loc` itself, another prefix or a local directory:
/// nothing is written under `loc` unless `out` is there. Returns the manifest, which holds
/// each shard's ETag.
pub async fn index_prefix_into(
    loc: &Location,
    out: &Location,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Manifest> {
    let shards = objects_under(loc, is_shard).await?;
    if shards.is_empty() {
        return Err(DatasetError::Input {
            path: loc.display(""),
            cause: "no .tar or .tfrecord shard under this prefix".into(),
        });
    }
    let done = std::sync::atomic::AtomicU64::new(0);
    let infos: Vec<ShardInfo> = stream::iter(shards)
        .map(|o| {
            let done = &done;
            async move {
                let rel = o.key;
                let (idx, etag) = index_shard_versioned(loc, &rel).await?;
                out.store
                    .put(&out.key(&index_path(&rel)), idx.to_json().into())
                    .await?;
                let n = done.fetch_add(o.size, std::sync::atomic::Ordering::Relaxed) + o.size;
                progress(n);
                Ok::<_, DatasetError>(ShardInfo {
                    format: idx.format,
                    samples: idx.samples.len() as u64,
                    bytes: idx.shard_size,
                    path: rel,
                    etag,
                })
            }
        })
        .buffered(4)
        .try_collect()
        .await?;
    let manifest = Manifest::new(Layout::Shards, infos);
    out.store
        .put(&out.key(MANIFEST_NAME), manifest.to_json().into())
        .await?;
    Ok(manifest)
}

/// Whether an object under a raw dataset's prefix is a sample: it has an extension, and it
/// is not Strata's own (a manifest at the root, a shard index).
fn is_raw_sample(rel: &str) -> bool {
    rel != MANIFEST_NAME && !rel.ends_with(INDEX_SUFFIX) && split_key(rel).is_some()
}

/// The manifest of the raw dataset under `loc` (every object with an extension is one
/// sample, with its size and ETag), from one listing. Not written.
pub async fn raw_manifest(loc: &Location) -> Result<Manifest> {
    let infos: Vec<ShardInfo> = objects_under(loc, is_raw_sample)
        .await?
        .into_iter()
        .map(|o| ShardInfo {
            path: o.key,
            format: ShardFormat::Raw,
            samples: 1,
            bytes: o.size,
            etag: o.e_tag,
        })
        .collect();
    if infos.is_empty() {
        return Err(DatasetError::Input {
            path: loc.display(""),
            cause: "no object with an extension under this prefix".into(),
        });
    }
    Ok(Manifest::new(Layout::Raw, infos))
}

/// Writes the manifest of the raw dataset under `loc` ([`raw_manifest`]) at `out`.
pub async fn index_raw_into(loc: &Location, out: &Location) -> Result<Manifest> {
    let manifest = raw_manifest(loc).await?;
    out.store
        .put(&out.key(MANIFEST_NAME), manifest.to_json().into())
        .await?;
    Ok(manifest)
}

/// Streams the samples of a tar without an index, in archive order (WebDataset's grouping).
/// Samples carry no CRC check (there is no index to check against); tar header checksums are
/// verified.
pub fn stream_unindexed(loc: Location, rel: String) -> BoxStream<'static, Result<Sample>> {
    struct St {
        loc: Location,
        rel: String,
        parts: Option<BoxStream<'static, strata_store::Result<bytes::Bytes>>>,
        scanner: TarScanner,
        buf: BytesMut,
        current: Option<Sample>,
        index: u64,
        done: bool,
    }
    let st = St {
        loc,
        rel,
        parts: None,
        scanner: TarScanner::new(true),
        buf: BytesMut::new(),
        current: None,
        index: 0,
        done: false,
    };
    stream::try_unfold(st, |mut st| async move {
        let shard_err = |st: &St, cause: String| DatasetError::Shard {
            shard: st.loc.display(&st.rel),
            cause,
        };
        if st.parts.is_none() && !st.done {
            let key = st.loc.key(&st.rel);
            let info = st.loc.store.head(&key).await?;
            st.parts = Some(st.loc.store.download_stream(
                &key,
                &info,
                &st.loc.store.config().transfer,
            ));
        }
        loop {
            if st.done {
                return Ok(st.current.take().map(|s| (s, st)));
            }
            match st.scanner.push(&mut st.buf) {
                Err(e) => return Err(shard_err(&st, e.to_string())),
                Ok(Some(m)) => {
                    let Some((key, ext)) = split_key(&m.name) else {
                        continue;
                    };
                    let ext = ext.to_ascii_lowercase();
                    match &mut st.current {
                        Some(cur) if cur.key == key => cur.members.push((ext, m.data)),
                        _ => {
                            let next = Sample {
                                key: key.to_string(),
                                id: st.index,
                                shard: 0,
                                index: st.index,
                                position: st.index,
                                members: vec![(ext, m.data)],
                            };
                            st.index += 1;
                            if let Some(done) = st.current.replace(next) {
                                return Ok(Some((done, st)));
                            }
                        }
                    }
                }
                Ok(None) => {
                    let next = st.parts.as_mut().expect("opened").next().await;
                    match next {
                        Some(part) => st.buf.extend_from_slice(&part?),
                        None => {
                            st.scanner
                                .finish(&st.buf)
                                .map_err(|e| shard_err(&st, e.to_string()))?;
                            st.done = true;
                        }
                    }
                }
            }
        }
    })
    .boxed()
}
