//! The packer: raw files (a local directory or a store prefix) into tar shards, each with its
//! sample index, and a manifest written last.
//!
//! Files are grouped into samples by key (WebDataset's rule, [`crate::index::split_key`]) and
//! visited in a fixed order, so the same input gives byte-identical shards: in a directory,
//! each directory's files in name order, then its subdirectories in name order; from a store,
//! keys sorted by (sample key, extension). A shard is closed when the next sample would take it
//! past `shard_size`. Shards are written in parallel through a local temporary file (fsynced,
//! then uploaded), and memory holds only the shards in flight and their file lists, never the
//! whole input: a directory is walked one level at a time. Files whose name gives no sample
//! key and extension (no extension, or hidden) cannot be members and are skipped, counted
//! and reported, each with why. An unreadable input stops the
//! pack with an error naming it; the manifest is only written once every shard is in place,
//! so a failed pack leaves no dataset behind.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};

use crate::error::{DatasetError, Result};
use crate::index::split_key;
use crate::index::{INDEX_VERSION, MemberEntry, SampleEntry, ShardFormat, ShardIndex, index_path};
use crate::manifest::{Layout, MANIFEST_NAME, Manifest, ShardInfo};
use crate::tar::{BLOCK, TarWriter, padded};
use strata_store::Location;

/// Where the packer reads raw files from.
#[derive(Clone)]
pub enum PackSource {
    /// A local directory.
    Dir(PathBuf),
    /// A store prefix.
    Store(Location),
}

/// Packer settings.
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// Target shard size in bytes. Default: 256 MiB.
    pub shard_size: u64,
    /// Shards written at once. Default: 4.
    pub parallel: usize,
    /// Input files read at once per shard. Default: 16.
    pub reads_per_shard: usize,
    /// Shard file name prefix. Default: `shard-`.
    pub name_prefix: String,
    /// Directory for temporary shard files. Default: the system's.
    pub tmp_dir: Option<PathBuf>,
}

impl Default for PackOptions {
    fn default() -> Self {
        Self {
            shard_size: 256 << 20,
            parallel: 4,
            reads_per_shard: 16,
            name_prefix: "shard-".into(),
            tmp_dir: None,
        }
    }
}

/// What a pack did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PackReport {
    /// Shards written.
    pub shards: u64,
    /// Samples packed.
    pub samples: u64,
    /// Files packed.
    pub files: u64,
    /// Bytes of input read.
    pub input_bytes: u64,
    /// Bytes of shards written.
    pub shard_bytes: u64,
    /// Files skipped because their name gives no sample key and extension (no extension, or
    /// hidden: a name starting with '.'): the first few, each with why, and how many.
    pub skipped: Vec<String>,
    /// How many files were skipped.
    pub skipped_count: u64,
    /// Wall time in seconds.
    pub elapsed_secs: f64,
}

/// A file to pack.
#[derive(Debug, Clone)]
struct Entry {
    rel: String,
    size: u64,
}

struct SampleFiles {
    key: String,
    members: Vec<(String, Entry)>,
}

struct ShardJob {
    n: u64,
    samples: Vec<SampleFiles>,
}

/// Progress: bytes of input packed so far.
pub type PackProgress = Arc<dyn Fn(u64) + Send + Sync>;

/// Packs `src` into shards under `dst`. `progress` is called with input bytes as they are
/// packed. Returns the manifest (also written to `dst`) and a report.
pub async fn pack(
    src: &PackSource,
    dst: &Location,
    opts: &PackOptions,
    progress: Option<PackProgress>,
) -> Result<(Manifest, PackReport)> {
    if opts.shard_size < 4096 {
        return Err(DatasetError::Invalid(format!(
            "shard size {} is too small (at least 4 KiB)",
            opts.shard_size
        )));
    }
    let start = std::time::Instant::now();
    let entries: Box<dyn Iterator<Item = Result<Entry>> + Send> = match src {
        PackSource::Dir(root) => {
            if !root.is_dir() {
                return Err(DatasetError::Input {
                    path: root.display().to_string(),
                    cause: "not a directory".into(),
                });
            }
            Box::new(DirWalk::new(root.clone()))
        }
        PackSource::Store(loc) => {
            let mut objects = loc.store.list(&loc.prefix).await?;
            if objects.is_empty() {
                return Err(DatasetError::Input {
                    path: loc.display(""),
                    cause: "nothing under this prefix".into(),
                });
            }
            let strip = if loc.prefix.is_empty() {
                0
            } else {
                loc.prefix.len() + 1
            };
            let mut entries: Vec<Entry> = objects
                .drain(..)
                .map(|o| Entry {
                    rel: o.key[strip..].to_string(),
                    size: o.size,
                })
                .collect();
            entries.sort_by(|a, b| sort_key(&a.rel).cmp(&sort_key(&b.rel)));
            Box::new(entries.into_iter().map(Ok))
        }
    };
    let skipped = std::sync::Mutex::new((Vec::new(), 0u64));
    let jobs = ShardJobs {
        entries: entries.peekable(),
        shard_size: opts.shard_size,
        next: 0,
        pending: None,
        skipped: &skipped,
    };
    let done = Arc::new(AtomicU64::new(0));
    let mut infos: Vec<(u64, ShardInfo, u64, u64)> = stream::iter(jobs)
        .map(|job| {
            let done = done.clone();
            let progress = progress.clone();
            async move {
                let job = job?;
                write_shard(src, dst, opts, job, &done, progress.as_deref()).await
            }
        })
        .buffer_unordered(opts.parallel.max(1))
        .try_collect()
        .await?;
    infos.sort_by_key(|x| x.0);
    let (skipped, skipped_count) = skipped.into_inner().unwrap_or_else(|e| e.into_inner());
    if infos.is_empty() {
        return Err(DatasetError::Input {
            path: match src {
                PackSource::Dir(p) => p.display().to_string(),
                PackSource::Store(l) => l.display(""),
            },
            cause: format!("no file with an extension to pack ({skipped_count} skipped)"),
        });
    }
    let files = infos.iter().map(|x| x.2).sum();
    let input_bytes = infos.iter().map(|x| x.3).sum();
    let manifest = Manifest::new(Layout::Shards, infos.into_iter().map(|x| x.1).collect());
    // The manifest last: without it the shards are not a dataset.
    dst.store
        .put(&dst.key(MANIFEST_NAME), Bytes::from(manifest.to_json()))
        .await?;
    let report = PackReport {
        shards: manifest.shards.len() as u64,
        samples: manifest.samples,
        files,
        input_bytes,
        shard_bytes: manifest.bytes,
        skipped,
        skipped_count,
        elapsed_secs: start.elapsed().as_secs_f64(),
    };
    Ok((manifest, report))
}

/// Orders store keys so that a sample's members are adjacent: by (sample key, extension).
fn sort_key(rel: &str) -> (&str, &str) {
    split_key(rel).unwrap_or((rel, ""))
}

/// Bytes a sample takes in a tar (headers, long-name headers, padding).
fn tar_bytes(s: &SampleFiles) -> u64 {
    s.members
        .iter()
        .map(|(_, e)| {
            let long = if e.rel.len() > 100 {
                3 * BLOCK as u64
            } else {
                0
            };
            BLOCK as u64 + long + padded(e.size)
        })
        .sum()
}

struct ShardJobs<'a, I: Iterator<Item = Result<Entry>>> {
    entries: std::iter::Peekable<I>,
    shard_size: u64,
    next: u64,
    /// A sample that did not fit in the previous shard.
    pending: Option<SampleFiles>,
    skipped: &'a std::sync::Mutex<(Vec<String>, u64)>,
}

impl<I: Iterator<Item = Result<Entry>>> ShardJobs<'_, I> {
    fn next_sample(&mut self) -> Option<Result<SampleFiles>> {
        let mut sample: Option<SampleFiles> = None;
        loop {
            let key_of_next = match self.entries.peek() {
                None => return sample.map(Ok),
                Some(Err(_)) => {
                    return Some(Err(self.entries.next().expect("peeked").unwrap_err()));
                }
                Some(Ok(e)) => split_key(&e.rel).map(|(k, x)| (k.to_string(), x.to_string())),
            };
            let Some((key, ext)) = key_of_next else {
                let e = self.entries.next().expect("peeked").expect("ok");
                let mut s = self.skipped.lock().unwrap_or_else(|e| e.into_inner());
                if s.0.len() < 10 {
                    let why = crate::index::why_not_a_member(&e.rel);
                    s.0.push(format!("{:?} ({why})", e.rel));
                }
                s.1 += 1;
                continue;
            };
            match &mut sample {
                Some(s) if s.key != key => return sample.map(Ok),
                Some(s) => {
                    let e = self.entries.next().expect("peeked").expect("ok");
                    s.members.push((ext.to_ascii_lowercase(), e));
                }
                None => {
                    let e = self.entries.next().expect("peeked").expect("ok");
                    sample = Some(SampleFiles {
                        key,
                        members: vec![(ext.to_ascii_lowercase(), e)],
                    });
                }
            }
        }
    }
}

impl<I: Iterator<Item = Result<Entry>>> Iterator for ShardJobs<'_, I> {
    type Item = Result<ShardJob>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut samples = Vec::new();
        let mut bytes = 0u64;
        loop {
            let s = match self.pending.take() {
                Some(s) => s,
                None => match self.next_sample() {
                    None => break,
                    Some(Err(e)) => return Some(Err(e)),
                    Some(Ok(s)) => s,
                },
            };
            let b = tar_bytes(&s);
            if !samples.is_empty() && bytes + b + 2 * BLOCK as u64 > self.shard_size {
                self.pending = Some(s);
                break;
            }
            bytes += b;
            samples.push(s);
        }
        if samples.is_empty() {
            return None;
        }
        let n = self.next;
        self.next += 1;
        Some(Ok(ShardJob { n, samples }))
    }
}

async fn read_input(src: &PackSource, e: &Entry) -> Result<Bytes> {
    match src {
        PackSource::Dir(root) => {
            let path = root.join(&e.rel);
            tokio::fs::read(&path)
                .await
                .map(Bytes::from)
                .map_err(|err| DatasetError::Input {
                    path: path.display().to_string(),
                    cause: err.to_string(),
                })
        }
        PackSource::Store(loc) => {
            loc.store
                .get(&loc.key(&e.rel))
                .await
                .map_err(|err| DatasetError::Input {
                    path: loc.display(&e.rel),
                    cause: err.to_string(),
                })
        }
    }
}

/// Writes one shard and its index; returns (n, info, files, input bytes).
async fn write_shard(
    src: &PackSource,
    dst: &Location,
    opts: &PackOptions,
    job: ShardJob,
    done: &AtomicU64,
    progress: Option<&(dyn Fn(u64) + Send + Sync)>,
) -> Result<(u64, ShardInfo, u64, u64)> {
    let name = format!("{}{:06}.tar", opts.name_prefix, job.n);
    let tmp = match &opts.tmp_dir {
        Some(d) => tempfile::NamedTempFile::new_in(d),
        None => tempfile::NamedTempFile::new(),
    }
    .map_err(|e| DatasetError::Output {
        path: "a temporary shard file".into(),
        cause: e.to_string(),
    })?;
    let out_err = |e: std::io::Error| DatasetError::Output {
        path: tmp.path().display().to_string(),
        cause: e.to_string(),
    };
    let file = tmp.reopen().map_err(out_err)?;
    let mut w = TarWriter::new(std::io::BufWriter::with_capacity(1 << 20, file));
    let members: Vec<&Entry> = job
        .samples
        .iter()
        .flat_map(|s| s.members.iter().map(|(_, e)| e))
        .collect();
    let mut data = stream::iter(members)
        .map(|e| read_input(src, e))
        .buffered(opts.reads_per_shard.max(1));
    let mut samples = Vec::with_capacity(job.samples.len());
    let (mut files, mut input) = (0u64, 0u64);
    for s in &job.samples {
        let offset = w.position();
        let mut crc = 0u32;
        let mut entries = Vec::with_capacity(s.members.len());
        for (ext, e) in &s.members {
            let bytes = data.next().await.expect("one read per member")?;
            let at = w.append(&e.rel, &bytes).map_err(out_err)?;
            crc = crc32c::crc32c_append(crc, &bytes);
            entries.push(MemberEntry {
                ext: ext.clone(),
                offset: at - offset,
                size: bytes.len() as u64,
            });
            files += 1;
            input += bytes.len() as u64;
            let total = done.fetch_add(bytes.len() as u64, Ordering::Relaxed) + bytes.len() as u64;
            if let Some(p) = progress {
                p(total);
            }
        }
        samples.push(SampleEntry {
            key: s.key.clone(),
            offset,
            size: w.position() - offset,
            crc32c: crc,
            members: entries,
        });
    }
    let buf = w.finish().map_err(out_err)?;
    let file = buf.into_inner().map_err(|e| out_err(e.into_error()))?;
    file.sync_all().map_err(out_err)?;
    let size = file.metadata().map_err(out_err)?.len();
    drop(file);
    dst.store
        .upload_file(
            tmp.path(),
            &dst.key(&name),
            &dst.store.config().transfer,
            None,
        )
        .await?;
    let index = ShardIndex {
        version: INDEX_VERSION,
        format: ShardFormat::Tar,
        shard_size: size,
        samples,
    };
    dst.store
        .put(&dst.key(&index_path(&name)), Bytes::from(index.to_json()))
        .await?;
    let info = ShardInfo {
        path: name,
        format: ShardFormat::Tar,
        samples: index.samples.len() as u64,
        bytes: size,
        etag: None,
    };
    Ok((job.n, info, files, input))
}

/// One directory of a walk: files left (name, size; reversed), subdirectories left
/// (reversed), and the directory's path relative to the root.
type Level = (Vec<(String, u64)>, Vec<String>, String);

/// A directory walk in packing order: each directory's files by name, then its
/// subdirectories by name. Holds one listing per level.
struct DirWalk {
    root: PathBuf,
    /// One entry per directory level being walked.
    stack: Vec<Level>,
    started: bool,
}

impl DirWalk {
    fn new(root: PathBuf) -> Self {
        Self {
            root,
            stack: Vec::new(),
            started: false,
        }
    }

    fn read_level(&self, rel: &str) -> Result<Level> {
        let dir = if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        };
        let err = |p: &Path, e: std::io::Error| DatasetError::Input {
            path: p.display().to_string(),
            cause: e.to_string(),
        };
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| err(&dir, e))? {
            let entry = entry.map_err(|e| err(&dir, e))?;
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                return Err(DatasetError::Input {
                    path: path.display().to_string(),
                    cause: "the file name is not UTF-8".into(),
                });
            };
            // Follows symbolic links, as a user packing a directory of links would expect.
            let meta = std::fs::metadata(&path).map_err(|e| err(&path, e))?;
            if meta.is_dir() {
                dirs.push(name);
            } else if meta.is_file() {
                files.push((name, meta.len()));
            }
        }
        files.sort_unstable_by(|a, b| b.0.cmp(&a.0));
        dirs.sort_unstable_by(|a, b| b.cmp(a));
        Ok((files, dirs, rel.to_string()))
    }
}

impl Iterator for DirWalk {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.started {
            self.started = true;
            match self.read_level("") {
                Ok(l) => self.stack.push(l),
                Err(e) => return Some(Err(e)),
            }
        }
        loop {
            let (files, dirs, rel) = self.stack.last_mut()?;
            let join = |rel: &str, name: &str| {
                if rel.is_empty() {
                    name.to_string()
                } else {
                    format!("{rel}/{name}")
                }
            };
            if let Some((name, size)) = files.pop() {
                return Some(Ok(Entry {
                    rel: join(rel, &name),
                    size,
                }));
            }
            if let Some(d) = dirs.pop() {
                let sub = join(rel, &d);
                match self.read_level(&sub) {
                    Ok(l) => self.stack.push(l),
                    Err(e) => return Some(Err(e)),
                }
                continue;
            }
            self.stack.pop();
        }
    }
}
