//! The local tier: a directory (on NVMe) laid out as `layout` says.
//!
//! Every write is durable before it is visible: a rank's files are written into a hidden
//! temporary directory, each fsynced, the directory renamed into place and its parent
//! fsynced; then the rank's part and, last, the manifest are written by temporary file +
//! fsync + rename. A crash leaves at most a hidden temporary directory, or files without a
//! part or manifest: none of them is a checkpoint, and [`LocalTier::gc`] removes them.
//! Methods block: call them from `spawn_blocking` in async code.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::buffer::Buffer;
use crate::error::{CkptError, Result};
use crate::layout;
use crate::manifest::{Checksummer, FileEntry, MAX_MANIFEST_BYTES, Manifest, RankPart};

/// What an item holds: bytes in memory, pieces of memory to join, or a file to copy.
#[derive(Debug, Clone)]
pub enum ItemData {
    /// Bytes in memory.
    Bytes(Bytes),
    /// Pieces of memory that make the file one after another (a safetensors header, then
    /// each tensor's own memory): written or staged with no copy into a joined buffer first.
    Segments(Vec<Bytes>),
    /// A file on disk, read (or copied) by the save.
    File(PathBuf),
}

/// A named piece of a checkpoint (a safetensors file, an optimizer shard, a JSON state).
#[derive(Debug, Clone)]
pub struct Item {
    /// A relative path, see [`crate::manifest::validate_name`].
    pub name: String,
    /// The item's bytes.
    pub data: ItemData,
}

impl Item {
    /// An item from bytes in memory.
    pub fn bytes(name: impl Into<String>, data: impl Into<Bytes>) -> Self {
        Self {
            name: name.into(),
            data: ItemData::Bytes(data.into()),
        }
    }

    /// An item made of `segments`, one after another.
    pub fn segments(name: impl Into<String>, segments: Vec<Bytes>) -> Self {
        Self {
            name: name.into(),
            data: ItemData::Segments(segments),
        }
    }

    /// The item's size in bytes (a file's from its metadata).
    pub fn size(&self) -> Result<u64> {
        Ok(match &self.data {
            ItemData::Bytes(b) => b.len() as u64,
            ItemData::Segments(s) => s.iter().map(|b| b.len() as u64).sum(),
            ItemData::File(p) => fs::metadata(p)
                .map_err(|e| CkptError::io("stat", p, e))?
                .len(),
        })
    }

    /// An item copied from the file at `path`.
    pub fn file(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            data: ItemData::File(path.into()),
        }
    }
}

/// Copy buffer for files: 8 MiB.
const COPY_BUF: usize = 8 << 20;

/// A local checkpoint directory.
#[derive(Debug, Clone)]
pub struct LocalTier {
    dir: PathBuf,
}

impl LocalTier {
    /// Opens (and creates, private to its owner) the directory.
    pub fn open(dir: &Path) -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| CkptError::io("create", dir, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of `rel` (a `layout` name).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Writes rank `rank`'s items for `step` durably and returns its part (the marker). A
    /// leftover of an earlier attempt at the same step and rank (a crash before its part was
    /// written) is replaced.
    pub fn write_part(
        &self,
        step: u64,
        rank: u32,
        world_size: u32,
        chunk_size: u64,
        items: &[Item],
    ) -> Result<RankPart> {
        let step_path = self.path(&layout::step_dir(step));
        fs::create_dir_all(&step_path).map_err(|e| CkptError::io("create", &step_path, e))?;
        let tmp = step_path.join(format!(
            ".{}.tmp-{:016x}",
            layout::rank_dir(rank),
            rand::random::<u64>()
        ));
        let result = (|| {
            fs::create_dir(&tmp).map_err(|e| CkptError::io("create", &tmp, e))?;
            let mut files = Vec::with_capacity(items.len());
            for item in items {
                files.push(write_item(&tmp, item, chunk_size)?);
            }
            sync_dir(&tmp)?;
            let dest = step_path.join(layout::rank_dir(rank));
            if dest.exists() {
                fs::remove_dir_all(&dest).map_err(|e| CkptError::io("remove", &dest, e))?;
            }
            fs::rename(&tmp, &dest).map_err(|e| CkptError::io("rename", &tmp, e))?;
            sync_dir(&step_path)?;
            let part = RankPart {
                format: crate::manifest::FORMAT_V1,
                step,
                rank,
                world_size,
                chunk_size,
                files,
                saved_unix_ms: chrono::Utc::now().timestamp_millis(),
            };
            self.write_atomic(&layout::marker_rel(step, rank), &part.to_json())?;
            Ok(part)
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        result
    }

    /// Writes the manifest of its step (last, durably).
    pub fn write_manifest(&self, m: &Manifest) -> Result<()> {
        self.write_atomic(&layout::manifest_rel(m.step), &m.to_json())
    }

    /// The manifest of `step`, if there is a valid one.
    pub fn manifest(&self, step: u64) -> Option<Manifest> {
        let path = self.path(&layout::manifest_rel(step));
        let bytes = read_small(&path)?;
        match Manifest::from_json(&bytes) {
            Ok(m) if m.step == step => Some(m),
            Ok(m) => {
                tracing::warn!("{}: says step {}; ignored", path.display(), m.step);
                None
            }
            Err(e) => {
                tracing::warn!("{}: {e}; ignored", path.display());
                None
            }
        }
    }

    /// Rank `rank`'s part of `step`, if written.
    pub fn part(&self, step: u64, rank: u32) -> Option<RankPart> {
        let path = self.path(&layout::marker_rel(step, rank));
        let bytes = read_small(&path)?;
        RankPart::from_json(&bytes)
            .ok()
            .filter(|p| p.step == step && p.rank == rank)
    }

    /// The steps with a directory here (complete or not), ascending.
    pub fn steps(&self) -> Vec<u64> {
        let mut steps: Vec<u64> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| layout::parse_step_dir(e.file_name().to_str()?))
            .collect();
        steps.sort_unstable();
        steps
    }

    /// Maps one file of a rank (copy-on-write, no copy) and checks it against its entry on
    /// `threads` threads.
    pub fn read_file(
        &self,
        step: u64,
        rank: u32,
        entry: &FileEntry,
        chunk: u64,
        threads: usize,
    ) -> Result<Buffer> {
        let path = self.path(&layout::file_rel(step, rank, &entry.name));
        let data = Buffer::map(&path).map_err(|e| CkptError::io("read", &path, e))?;
        crate::buffer::verify_parallel(entry, &data, chunk, threads).map_err(|cause| {
            CkptError::Corrupt {
                root: self.dir.display().to_string(),
                step,
                file: layout::file_rel(step, rank, &entry.name),
                cause: cause.to_string(),
            }
        })?;
        Ok(data)
    }

    /// Deletes a step: the manifest first (so a crash midway leaves an incomplete step,
    /// never a complete-looking one with files missing), then everything else.
    pub fn remove_step(&self, step: u64) -> Result<()> {
        let m = self.path(&layout::manifest_rel(step));
        match fs::remove_file(&m) {
            Ok(()) => sync_dir(m.parent().expect("a step directory"))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(CkptError::io("remove", &m, e)),
        }
        let d = self.path(&layout::step_dir(step));
        match fs::remove_dir_all(&d) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CkptError::io("remove", &d, e)),
        }
    }

    /// The newest modification time under a step directory (for "abandoned" decisions).
    pub fn step_touched(&self, step: u64) -> Option<std::time::SystemTime> {
        newest_mtime(&self.path(&layout::step_dir(step)))
    }

    fn write_atomic(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        let dest = self.path(rel);
        let parent = dest.parent().expect("a parent").to_path_buf();
        fs::create_dir_all(&parent).map_err(|e| CkptError::io("create", &parent, e))?;
        let tmp = parent.join(format!(
            ".{}.tmp-{:016x}",
            dest.file_name().and_then(|n| n.to_str()).unwrap_or("f"),
            rand::random::<u64>()
        ));
        let r = (|| {
            let mut f = File::create(&tmp).map_err(|e| CkptError::io("create", &tmp, e))?;
            f.write_all(bytes)
                .and_then(|_| f.sync_all())
                .map_err(|e| CkptError::io("write", &tmp, e))?;
            fs::rename(&tmp, &dest).map_err(|e| CkptError::io("rename", &tmp, e))?;
            sync_dir(&parent)
        })();
        if r.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        r
    }
}

/// Writes one item under `dir` (creating its parent directories), fsynced; returns its entry.
fn write_item(dir: &Path, item: &Item, chunk: u64) -> Result<FileEntry> {
    crate::manifest::validate_name(&item.name).map_err(|e| CkptError::Invalid(e.to_string()))?;
    let dest = dir.join(&item.name);
    let parent = dest.parent().expect("under dir").to_path_buf();
    if parent != dir {
        fs::create_dir_all(&parent).map_err(|e| CkptError::io("create", &parent, e))?;
    }
    let mut out = File::create(&dest).map_err(|e| CkptError::io("create", &dest, e))?;
    let (size, sums) = match &item.data {
        ItemData::Bytes(b) => write_segments(&mut out, &dest, std::slice::from_ref(b), chunk)?,
        ItemData::Segments(segments) => write_segments(&mut out, &dest, segments, chunk)?,
        ItemData::File(src) => copy_file(&mut out, &dest, src, chunk)?,
    };
    out.sync_all()
        .map_err(|e| CkptError::io("fsync", &dest, e))?;
    if parent != dir {
        // Subdirectories are fsynced so their entries survive too.
        let mut p = parent.as_path();
        while p != dir {
            sync_dir(p)?;
            p = p.parent().expect("under dir");
        }
    }
    let (crc32c, chunks) = sums;
    Ok(FileEntry {
        name: item.name.clone(),
        size,
        crc32c,
        chunks,
        piece_size: None,
    })
}

/// Writes each segment once, from its own memory, while another thread checksums them;
/// returns (size, checksums).
fn write_segments(
    out: &mut File,
    dest: &Path,
    segments: &[Bytes],
    chunk: u64,
) -> Result<(u64, (u32, Vec<u32>))> {
    let size = segments.iter().map(|b| b.len() as u64).sum();
    let checksum = || {
        let mut c = Checksummer::new(chunk);
        for seg in segments {
            c.update(seg);
        }
        c.finish()
    };
    if size < 4 << 20 {
        // Small (a JSON state, a marker-sized file): not worth a thread.
        for seg in segments {
            out.write_all(seg)
                .map_err(|e| CkptError::io("write", dest, e))?;
        }
        return Ok((size, checksum()));
    }
    std::thread::scope(|s| {
        let sums = s.spawn(checksum);
        // Written in pieces, each sent on to the device as soon as it is in the page cache,
        // so the fsync at the end waits for the last pieces, not for the whole file.
        const PIECE: usize = 64 << 20;
        let mut at = 0u64;
        let written = segments
            .iter()
            .flat_map(|seg| seg.chunks(PIECE))
            .try_for_each(|piece| {
                out.write_all(piece)?;
                strata_store::local::start_writeback(out, at, piece.len() as u64);
                at += piece.len() as u64;
                Ok::<_, std::io::Error>(())
            });
        let sums = sums.join().map_err(|_| CkptError::Task {
            what: "save",
            cause: "the checksum thread panicked".into(),
        })?;
        written.map_err(|e| CkptError::io("write", dest, e))?;
        Ok((size, sums))
    })
}

/// Copies the file at `src` into `out`, checksummed; returns (size, checksums).
fn copy_file(
    out: &mut File,
    dest: &Path,
    src: &Path,
    chunk: u64,
) -> Result<(u64, (u32, Vec<u32>))> {
    let mut sums = Checksummer::new(chunk);
    let mut input = File::open(src).map_err(|e| CkptError::io("open", src, e))?;
    let mut buf = vec![0u8; COPY_BUF];
    let mut n = 0u64;
    loop {
        let got = input
            .read(&mut buf)
            .map_err(|e| CkptError::io("read", src, e))?;
        if got == 0 {
            break;
        }
        sums.update(&buf[..got]);
        out.write_all(&buf[..got])
            .map_err(|e| CkptError::io("write", dest, e))?;
        n += got as u64;
    }
    Ok((n, sums.finish()))
}

/// fsyncs a directory (so renames and creations in it are durable).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CkptError::io("fsync", dir, e))
}

fn read_small(path: &Path) -> Option<Vec<u8>> {
    let f = File::open(path).ok()?;
    let mut v = Vec::new();
    f.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut v).ok()?;
    (v.len() as u64 <= MAX_MANIFEST_BYTES).then_some(v)
}

fn newest_mtime(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = fs::metadata(dir).and_then(|m| m.modified()).ok();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(md) = e.metadata() else { continue };
            if let Ok(t) = md.modified() {
                newest = Some(newest.map_or(t, |n| n.max(t)));
            }
            if md.is_dir() {
                stack.push(e.path());
            }
        }
    }
    newest
}
