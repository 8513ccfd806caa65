//! The remote tier: a prefix in an object store, laid out as `layout` says.

use std::path::Path;

use bytes::Bytes;
use futures::stream;
use strata_store::{ErrorKind, Location, ProgressFn, TransferConfig, TransferReport};

use crate::buffer::Buffer;
use crate::error::{CkptError, Result};
use crate::layout;
use crate::manifest::{FileEntry, MAX_MANIFEST_BYTES, Manifest, RankPart};

/// A checkpoint root in an object store.
#[derive(Clone)]
pub struct RemoteTier {
    /// The checkpoint root in the store.
    pub loc: Location,
}

impl RemoteTier {
    /// The root as a URL (for messages).
    pub fn display(&self) -> String {
        self.loc.display("")
    }

    /// Uploads a local file (parallel multipart for large ones); `progress` gets the bytes
    /// of each part as it lands.
    pub async fn upload_file(
        &self,
        src: &Path,
        rel: &str,
        opts: &TransferConfig,
        progress: Option<ProgressFn>,
    ) -> Result<TransferReport> {
        Ok(self
            .loc
            .store
            .upload_file(src, &self.loc.key(rel), opts, progress)
            .await?)
    }

    /// Uploads bytes in memory (parallel multipart for large ones), its parts also taking
    /// slots from `slots` when given (shared with the other objects of one file).
    pub async fn upload_bytes(
        &self,
        data: Bytes,
        rel: &str,
        opts: &TransferConfig,
        slots: Option<&strata_store::PartSlots>,
        progress: Option<ProgressFn>,
    ) -> Result<TransferReport> {
        Ok(self
            .loc
            .store
            .upload_bytes_sharing(data, &self.loc.key(rel), opts, slots, progress)
            .await?)
    }

    /// Writes a rank's marker.
    pub async fn put_marker(&self, part: &RankPart) -> Result<()> {
        let rel = layout::marker_rel(part.step, part.rank);
        self.loc
            .store
            .put(&self.loc.key(&rel), Bytes::from(part.to_json()))
            .await?;
        Ok(())
    }

    /// The markers present for `step` (invalid ones are errors: a committer must not guess).
    pub async fn markers(&self, step: u64) -> Result<Vec<RankPart>> {
        let dir = self
            .loc
            .key(&format!("{}/{}", layout::step_dir(step), layout::RANKS));
        let mut parts = Vec::new();
        for o in self.loc.store.list(&dir).await? {
            // The listing gave the size: no HEAD before the GET.
            let bytes = self.get_bounded(&o.key, o.size).await?;
            let part = RankPart::from_json(&bytes).map_err(|cause| CkptError::Manifest {
                path: self.loc.store.url(&o.key).to_string(),
                cause: cause.to_string(),
            })?;
            if part.step == step {
                parts.push(part);
            }
        }
        Ok(parts)
    }

    /// Writes the manifest: the commit.
    pub async fn put_manifest(&self, m: &Manifest) -> Result<()> {
        self.loc
            .store
            .put(
                &self.loc.key(&layout::manifest_rel(m.step)),
                Bytes::from(m.to_json()),
            )
            .await?;
        Ok(())
    }

    /// The manifest of `step`: `None` when there is none; an error when it cannot be read
    /// or is invalid (for a step named by the caller: restore, verify, show).
    pub async fn manifest(&self, step: u64) -> Result<Option<Manifest>> {
        let key = self.loc.key(&layout::manifest_rel(step));
        let bytes = match self.get_small(&key).await {
            Ok(b) => b,
            Err(CkptError::Store(e)) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let m = Manifest::from_json(&bytes).map_err(|cause| CkptError::Manifest {
            path: self.loc.display(&layout::manifest_rel(step)),
            cause: cause.to_string(),
        })?;
        if m.step != step {
            return Err(CkptError::Manifest {
                path: self.loc.display(&layout::manifest_rel(step)),
                cause: format!("says step {}", m.step),
            });
        }
        Ok(Some(m))
    }

    /// The manifest of `step` when there is a valid one. A checkpoint without a valid manifest
    /// does not exist: a damaged one is skipped with a warning naming it (so one bad step
    /// hides nothing else from listings, `latest` and retention), and `gc` collects it like
    /// any incomplete step. Other errors (the store unreachable) are errors.
    pub async fn valid_manifest(&self, step: u64) -> Result<Option<Manifest>> {
        match self.manifest(step).await {
            Err(CkptError::Manifest { path, cause }) => {
                tracing::warn!("checkpoint {path}: bad manifest: {cause}; step {step} ignored");
                Ok(None)
            }
            other => other,
        }
    }

    /// The steps with objects under the root (complete or not), ascending.
    pub async fn steps(&self) -> Result<Vec<u64>> {
        let listing = self.loc.store.list_dir(&self.loc.prefix).await?;
        let mut steps: Vec<u64> = listing
            .prefixes
            .iter()
            .filter_map(|p| layout::parse_step_dir(p.rsplit('/').next().unwrap_or(p)))
            .collect();
        steps.sort_unstable();
        Ok(steps)
    }

    /// Every object of a step, as (key, size, last modified).
    pub async fn step_objects(&self, step: u64) -> Result<Vec<strata_store::ObjectInfo>> {
        Ok(self
            .loc
            .store
            .list(&self.loc.key(&layout::step_dir(step)))
            .await?)
    }

    /// Reads one file and checks it against its entry: chunk-aligned ranged reads in
    /// parallel (`opts.concurrency` in flight), each written straight into its place in one
    /// allocation and its chunks verified as it lands. No HEAD: the manifest gives the size,
    /// and the checksums catch an object that changed.
    pub async fn read_file(
        &self,
        step: u64,
        rank: u32,
        entry: &FileEntry,
        chunk: u64,
        opts: &TransferConfig,
    ) -> Result<Buffer> {
        use futures::{StreamExt, TryStreamExt};
        let rel = layout::file_rel(step, rank, &entry.name);
        let corrupt = |cause: String| CkptError::Corrupt {
            root: self.display(),
            step,
            file: rel.clone(),
            cause,
        };
        crate::manifest::check_chunk_count(entry, chunk).map_err(|e| corrupt(e.to_string()))?;
        let size =
            usize::try_from(entry.size).map_err(|_| corrupt("too large for memory".into()))?;
        let chunk = chunk.max(1);
        // Parts hold whole chunks, so each part is verified on its own, and lie inside one
        // piece of a file stored in pieces.
        let mut part = opts.download_part_size(entry.size).div_ceil(chunk).max(1) * chunk;
        if entry.piece_size.is_some_and(|p| p % part != 0) {
            part = chunk;
        }
        let mut buf = crate::buffer::zeroed(size);
        let store = &self.loc.store;
        stream::iter(buf.chunks_mut(part as usize).enumerate())
            .map(|(i, slot)| {
                let start = i as u64 * part;
                let corrupt = &corrupt;
                let (object, at) = layout::object_at(step, rank, &entry.name, entry.piece_size, start);
                let key = self.loc.key(&object);
                async move {
                    let range = at..at + slot.len() as u64;
                    let body = store.get_range(&key, range, None).await?;
                    if body.len() != slot.len() {
                        return Err(corrupt(format!(
                            "bytes {start}..: {} bytes came, {} expected (the object is shorter than its manifest says)",
                            body.len(),
                            slot.len()
                        )));
                    }
                    slot.copy_from_slice(&body);
                    let first = (start / chunk) as usize;
                    crate::manifest::verify_piece(entry, first, slot, chunk)
                        .map_err(|e| corrupt(e.to_string()))
                }
            })
            .buffer_unordered(opts.concurrency.max(1))
            .try_collect::<()>()
            .await?;
        Ok(Buffer::owned(buf))
    }

    /// Deletes a step: the manifest first, then its other objects.
    pub async fn remove_step(&self, step: u64) -> Result<usize> {
        self.loc
            .store
            .delete(&self.loc.key(&layout::manifest_rel(step)))
            .await?;
        let objects = self.step_objects(step).await?;
        let n = objects.len();
        for o in objects {
            self.loc.store.delete(&o.key).await?;
        }
        // A file store keeps the step's directories: without this, the step would still
        // list (as incomplete) after every later gc.
        self.loc
            .store
            .prune_empty_dirs(&self.loc.key(&layout::step_dir(step)))
            .await?;
        Ok(n)
    }

    /// Reads a manifest or marker whose size is not known yet (HEAD first, so a huge object
    /// is refused before it is read).
    async fn get_small(&self, key: &str) -> Result<Bytes> {
        let size = self.loc.store.head(key).await?.size;
        self.get_bounded(key, size).await
    }

    /// Reads a manifest or marker of `size` bytes (from a HEAD or a listing).
    async fn get_bounded(&self, key: &str, size: u64) -> Result<Bytes> {
        if size > MAX_MANIFEST_BYTES {
            return Err(CkptError::Manifest {
                path: self.loc.store.url(key).to_string(),
                cause: format!("{size} bytes, more than {MAX_MANIFEST_BYTES}"),
            });
        }
        Ok(self.loc.store.get(key).await?)
    }
}
