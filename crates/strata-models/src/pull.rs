//! `pull`: a model's files from a store prefix into the node's model repository.
//!
//! 1. List the files and their ETags; the version is a hash of them (and of the selection).
//! 2. If that version is published, done. Else take the version's lock (`flock`; a process
//!    that dies releases it), and look again: another process may have published it while
//!    this one waited, and then nothing is fetched.
//! 3. Read each safetensors file's header first (two ranged reads) and validate it. With a
//!    selection, a file keeps only the chosen tensors under a header of its own; files with
//!    none are skipped.
//! 4. Fetch every segment (at most `part_size` bytes) with ranged reads pinned to the ETag,
//!    `parts_in_flight` at once across files, in file order; write each at its offset in the
//!    partial directory and journal its CRC32C. A resumed pull keeps the journaled segments
//!    whose bytes still match their CRC and fetches the rest.
//! 5. fsync every file, write the manifest (sizes, ETags, CRC32C), fsync, and rename the
//!    directory into place: the model appears complete or not at all.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::stream::{self, StreamExt, TryStreamExt};
use strata_store::transfer::combine_crc32c;
use strata_store::{ErrorKind, ObjectInfo, Store, StoreError, StoreUrl};

use crate::error::{ModelError, Result};
use crate::manifest::{MANIFEST, ModelFile, ModelManifest};
use crate::repo::ModelRepo;
use crate::safetensors::{self, Header, TensorInfo};

/// The first bytes of a model are read in 1 MiB parts (see `fetch`).
const RAMP_BYTES: u64 = 16 << 20;
/// ... and further, up to the end of the model's first tensor, but not past 256 MiB: reads
/// of whole parts beyond the first tensor would share the link with it (a 98 MB first tensor
/// took 1.8 s behind the s3 link profile with 8 MiB reads after the first 16 MiB).
const MAX_RAMP_BYTES: u64 = 256 << 20;

/// A tensor whose bytes are all on disk (in the partial directory) during a pull.
#[derive(Debug, Clone)]
pub struct TensorReady {
    /// The file, as named in the model directory.
    pub file: String,
    /// Where the file is being written (in the partial directory). A file opened or mapped
    /// from here stays valid when the pull publishes the directory by renaming it.
    pub path: PathBuf,
    /// Whether this is the last tensor the pull will report.
    pub last: bool,
    /// The tensor, with its offsets in the local file.
    pub tensor: TensorInfo,
    /// Seconds since the pull started.
    pub secs: f64,
}

/// Called for each tensor as soon as its bytes are written, in file order per file.
pub type TensorCallback = Arc<dyn Fn(&TensorReady) + Send + Sync>;

/// How to pull.
#[derive(Clone, Default)]
pub struct PullOptions {
    /// Tensor names or prefixes (`layers.0.` or `layers.0*`) to keep; empty: everything.
    pub tensors: Vec<String>,
    /// Ranged reads in flight across all files. Default (0): 32.
    pub parts_in_flight: usize,
    /// Bytes per ranged read. Default (0): the store's `transfer.part_size` (8 MiB).
    pub part_size: u64,
    /// Told about each tensor as it lands.
    pub on_tensor: Option<TensorCallback>,
    /// Called with the bytes of each segment written (progress bars).
    pub progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    /// Before serving a cached copy, read it and check every file's CRC32C (without this,
    /// only the sizes are checked). A damaged copy is removed and pulled again.
    pub verify: bool,
}

/// What a pull did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PullReport {
    /// The model's URL.
    pub source: String,
    /// The published model directory.
    pub dir: PathBuf,
    /// The version (a hash of every file's name, size and ETag, and the selection).
    pub version: String,
    /// Files in the model.
    pub files: usize,
    /// Tensors in the model.
    pub tensors: usize,
    /// Bytes of the model on disk.
    pub bytes: u64,
    /// Bytes read from the store by this process (headers included).
    pub fetched_bytes: u64,
    /// Bytes kept from an interrupted pull.
    pub resumed_bytes: u64,
    /// The version was published before this call.
    pub already_cached: bool,
    /// Another process pulled it while this one waited for the lock.
    pub waited_for_other: bool,
    /// Seconds the call took.
    pub elapsed_secs: f64,
    /// From the start of the call until the first tensor's bytes were on disk.
    pub first_tensor_secs: Option<f64>,
}

impl PullReport {
    /// Throughput of the bytes fetched, MiB/s.
    pub fn mib_per_sec(&self) -> f64 {
        self.fetched_bytes as f64 / (1 << 20) as f64 / self.elapsed_secs.max(1e-9)
    }
}

/// One file of the plan.
struct PlannedFile {
    name: String,
    key: String,
    info: ObjectInfo,
    /// Bytes written before the segments (a subset's own header).
    head: Vec<u8>,
    size: u64,
    segments: Vec<Segment>,
    /// Tensors with their offsets in the local file, in order.
    tensors: Vec<TensorInfo>,
    subset: bool,
}

#[derive(Clone)]
struct Segment {
    file: usize,
    src: std::ops::Range<u64>,
    dst: u64,
}

fn is_safetensors(name: &str) -> bool {
    name.ends_with(".safetensors")
}

/// The objects a URL names: everything under it, or the one object.
async fn list_files(store: &Store, url: &StoreUrl) -> Result<(String, Vec<(String, ObjectInfo)>)> {
    let key = url.key().trim_end_matches('/').to_string();
    let prefix = if key.is_empty() {
        String::new()
    } else {
        format!("{key}/")
    };
    let mut out: Vec<(String, ObjectInfo)> = store
        .list(&key)
        .await?
        .into_iter()
        .filter_map(|o| {
            let rel = o.key.strip_prefix(&prefix)?.to_string();
            (!rel.is_empty() && !rel.ends_with('/')).then_some((rel, o))
        })
        .collect();
    if out.is_empty() && !url.is_prefix_syntax() && !key.is_empty() {
        match store.head(&key).await {
            Ok(o) => {
                let name = key.rsplit('/').next().unwrap_or(&key).to_string();
                out.push((name, o));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    if out.is_empty() {
        return Err(ModelError::Empty(url.to_string()));
    }
    // Listings of some servers carry no ETag; the version must not be blind to changes.
    // (HEADs run side by side: each is a round trip.)
    let heads = futures::future::try_join_all(out.iter().map(|(_, o)| async move {
        match &o.e_tag {
            Some(_) => Ok(o.clone()),
            None => store.head(&o.key).await,
        }
    }))
    .await?;
    for ((_, o), h) in out.iter_mut().zip(heads) {
        *o = h;
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((url.to_string(), out))
}

/// Reads and validates the header of a safetensors object.
pub async fn read_header(store: &Store, key: &str, info: &ObjectInfo) -> Result<Header> {
    let shown = store.url(key).to_string();
    let bad = |cause: String| ModelError::Header {
        file: shown.clone(),
        cause,
    };
    let first = if info.size >= 8 {
        store.get_range(key, 0..8, info.e_tag.as_deref()).await?
    } else {
        bytes::Bytes::new()
    };
    let n = safetensors::header_len(&first, info.size).map_err(|e| bad(e.0))?;
    let json = store
        .get_range(key, 8..8 + n, info.e_tag.as_deref())
        .await?;
    Header::parse(&json, info.size).map_err(|e| bad(e.0))
}

fn changed(e: StoreError, url: &str) -> ModelError {
    match e {
        StoreError::Changed { .. } => ModelError::Changed(url.to_string()),
        e => e.into(),
    }
}

/// Pulls the model at `url` into `repo`.
pub async fn pull(
    repo: &ModelRepo,
    store: &Store,
    url: &StoreUrl,
    opts: &PullOptions,
) -> Result<PullReport> {
    let start = Instant::now();
    let (source, objects) = list_files(store, url).await?;
    let key = ModelRepo::model_key(&source);
    let ids: Vec<(String, u64, Option<String>)> = objects
        .iter()
        .map(|(n, o)| (n.clone(), o.size, o.e_tag.clone()))
        .collect();
    let version = ModelRepo::version_of(&ids, &opts.tensors);
    let published = repo.published(&key, &version);
    let done = |dir: &Path, already: bool, waited: bool| -> Result<PullReport> {
        let m = ModelManifest::read(dir)?;
        Ok(PullReport {
            source: source.clone(),
            dir: dir.to_path_buf(),
            version: version.clone(),
            files: m.files.len(),
            tensors: m.files.iter().map(|f| f.tensors).sum(),
            bytes: m.bytes(),
            fetched_bytes: 0,
            resumed_bytes: 0,
            already_cached: already,
            waited_for_other: waited,
            elapsed_secs: start.elapsed().as_secs_f64(),
            first_tensor_secs: None,
        })
    };
    if published.join(MANIFEST).is_file() && damage(&published, opts.verify).is_empty() {
        return done(&published, true, false);
    }
    let lock_path = repo.lock_path(&key, &version);
    let lock = tokio::task::spawn_blocking(move || -> std::io::Result<File> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        // SAFETY: a valid fd; flock has no memory effects.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(f)
    })
    .await
    .map_err(|e| ModelError::io(repo.dir(), std::io::Error::other(e)))?
    .map_err(|e| ModelError::io(repo.lock_path(&key, &version), e))?;
    if published.join(MANIFEST).is_file() {
        let problems = damage(&published, opts.verify);
        if problems.is_empty() {
            return done(&published, false, true);
        }
        for p in &problems {
            tracing::warn!("cached model damaged, pulling it again: {p}");
        }
        retire(repo, &published)?;
    }
    let pull = Pull {
        repo,
        store,
        source: &source,
        key: &key,
        version: &version,
        opts,
        start,
        part: if opts.part_size > 0 {
            opts.part_size
        } else {
            store.config().transfer.part_size
        },
        fetched: std::sync::atomic::AtomicU64::new(0),
    };
    let result = pull.run(&objects).await;
    drop(lock);
    result
}

/// One pull under way: what every stage needs.
struct Pull<'a> {
    repo: &'a ModelRepo,
    store: &'a Store,
    /// The model's URL, for messages.
    source: &'a str,
    key: &'a str,
    version: &'a str,
    opts: &'a PullOptions,
    start: Instant,
    /// Bytes per ranged read.
    part: u64,
    /// Bytes read from the store so far (headers included).
    fetched: std::sync::atomic::AtomicU64,
}

/// The partial directory of a pull: its open files and journal, and what a resumed pull
/// keeps.
struct Partial {
    dir: PathBuf,
    handles: Vec<Arc<File>>,
    journal_path: PathBuf,
    journal: File,
    /// CRC32C of every segment on disk, by (file, destination offset).
    crcs: HashMap<(usize, u64), u32>,
    /// The segments still to fetch.
    todo: Vec<Segment>,
    /// Bytes kept from an interrupted pull.
    resumed: u64,
}

/// Which tensors have all their bytes on disk: per file, the segments done by offset, the
/// offset below which every byte is written, and the next tensor to report.
struct TensorProgress {
    dir: PathBuf,
    /// Tensors not yet reported, across all files.
    left: usize,
    done: Vec<BTreeMap<u64, u64>>,
    watermark: Vec<u64>,
    next_tensor: Vec<usize>,
    /// Seconds to the first tensor.
    first: Option<f64>,
}

impl TensorProgress {
    fn new(dir: &Path, files: &[PlannedFile], crcs: &HashMap<(usize, u64), u32>) -> Self {
        Self {
            dir: dir.to_path_buf(),
            left: files.iter().map(|f| f.tensors.len()).sum(),
            done: files
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    f.segments
                        .iter()
                        .filter(|s| crcs.contains_key(&(i, s.dst)))
                        .map(|s| (s.dst, s.dst + (s.src.end - s.src.start)))
                        .collect()
                })
                .collect(),
            watermark: files.iter().map(|f| f.head.len() as u64).collect(),
            next_tensor: vec![0; files.len()],
            first: None,
        }
    }

    /// Moves file `i`'s watermark over the segments done and reports each tensor below it.
    fn advance(&mut self, i: usize, f: &PlannedFile, pull: &Pull<'_>) {
        while let Some(end) = self.done[i].get(&self.watermark[i]).copied() {
            self.watermark[i] = end;
        }
        while let Some(t) = f.tensors.get(self.next_tensor[i]) {
            if t.end > self.watermark[i] && !t.is_empty() {
                break;
            }
            let secs = pull.start.elapsed().as_secs_f64();
            self.first.get_or_insert(secs);
            self.left = self.left.saturating_sub(1);
            if let Some(cb) = &pull.opts.on_tensor {
                cb(&TensorReady {
                    file: f.name.clone(),
                    path: self.dir.join(&f.name),
                    last: self.left == 0,
                    tensor: t.clone(),
                    secs,
                });
            }
            self.next_tensor[i] += 1;
        }
    }
}

impl Pull<'_> {
    /// Runs the pull: plan, fetch into the partial directory, publish.
    async fn run(&self, objects: &[(String, ObjectInfo)]) -> Result<PullReport> {
        let files = self.plan(objects).await?;
        if !self.opts.tensors.is_empty() && files.iter().all(|f| f.tensors.is_empty()) {
            return Err(ModelError::NoTensors {
                model: self.source.to_string(),
                selectors: self.opts.tensors.clone(),
            });
        }
        let mut partial = self.open_partial(&files)?;
        let progress = Mutex::new(TensorProgress::new(&partial.dir, &files, &partial.crcs));
        {
            let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
            for (i, f) in files.iter().enumerate() {
                p.advance(i, f, self);
            }
        }
        let crcs = self
            .fetch_segments(&files, &partial, &progress)
            .await
            .inspect_err(|e| {
                if matches!(e, ModelError::Changed(_)) {
                    // That version will never be complete; its partial directory is garbage.
                    let _ = std::fs::remove_dir_all(&partial.dir);
                }
            })?;
        partial.crcs.extend(crcs);
        let resumed = partial.resumed;
        let (published, manifest) = self.publish(&files, partial)?;
        let first = progress.lock().unwrap_or_else(|e| e.into_inner()).first;
        Ok(PullReport {
            source: self.source.to_string(),
            dir: published,
            version: self.version.to_string(),
            files: files.len(),
            tensors: files.iter().map(|f| f.tensors.len()).sum(),
            bytes: manifest.bytes(),
            fetched_bytes: self.fetched.load(std::sync::atomic::Ordering::Relaxed),
            resumed_bytes: resumed,
            already_cached: false,
            waited_for_other: false,
            elapsed_secs: self.start.elapsed().as_secs_f64(),
            first_tensor_secs: first,
        })
    }

    /// Step 3, the plan: every safetensors header read side by side (two round trips each) and
    /// checked, the tensors a selection keeps, and the segments to fetch. The model's first
    /// [`RAMP_BYTES`] (or up to the end of its first tensor, at most [`MAX_RAMP_BYTES`]) go in
    /// 1 MiB reads: with every read in flight sharing the link, small first reads put the
    /// first tensors on disk early.
    async fn plan(&self, objects: &[(String, ObjectInfo)]) -> Result<Vec<PlannedFile>> {
        let headers =
            futures::future::try_join_all(objects.iter().map(|(name, info)| async move {
                if !is_safetensors(name) {
                    return Ok(None);
                }
                read_header(self.store, &info.key, info)
                    .await
                    .map(Some)
                    .map_err(|e| match e {
                        ModelError::Store(s) => changed(s, self.source),
                        e => e,
                    })
            }))
            .await?;
        let part = self.part;
        // The bytes planned before the first tensor's last byte.
        let mut before = 0u64;
        let mut first_end = None;
        for ((_, info), header) in objects.iter().zip(&headers) {
            if let Some(t) = header.as_ref().and_then(|h| h.tensors.first()) {
                first_end = Some(before + t.end);
                break;
            }
            before += info.size;
        }
        let ramp = first_end.map_or(RAMP_BYTES, |e| e.clamp(RAMP_BYTES, MAX_RAMP_BYTES));
        let mut files: Vec<PlannedFile> = Vec::new();
        let mut planned = 0u64;
        for ((name, info), header) in objects.iter().zip(headers) {
            let idx = files.len();
            let mut f = PlannedFile {
                name: name.clone(),
                key: info.key.clone(),
                info: info.clone(),
                head: Vec::new(),
                size: info.size,
                segments: Vec::new(),
                tensors: Vec::new(),
                subset: false,
            };
            let mut split = |src: std::ops::Range<u64>, dst: u64, out: &mut Vec<Segment>| {
                let mut at = src.start;
                while at < src.end {
                    let step = if planned < ramp {
                        part.min(1 << 20)
                    } else {
                        part
                    };
                    let end = (at + step).min(src.end);
                    planned += end - at;
                    out.push(Segment {
                        file: idx,
                        src: at..end,
                        dst: dst + (at - src.start),
                    });
                    at = end;
                }
            };
            let Some(h) = header else {
                split(0..info.size, 0, &mut f.segments);
                files.push(f);
                continue;
            };
            self.fetched
                .fetch_add(h.data_start, std::sync::atomic::Ordering::Relaxed);
            let sel = h.select(&self.opts.tensors);
            if sel.is_empty() {
                continue;
            }
            if sel.len() == h.tensors.len() {
                f.tensors = h.tensors.clone();
                split(0..info.size, 0, &mut f.segments);
            } else {
                let (head, at) = safetensors::build_header(&sel, &h.metadata);
                f.subset = true;
                f.size = head.len() as u64 + sel.iter().map(|t| t.len()).sum::<u64>();
                for (t, &dst) in sel.iter().zip(&at) {
                    split(t.start..t.end, dst, &mut f.segments);
                    f.tensors.push(TensorInfo {
                        start: dst,
                        end: dst + t.len(),
                        ..(*t).clone()
                    });
                }
                f.head = head;
            }
            files.push(f);
        }
        Ok(files)
    }

    /// Step 4a: the partial directory with every file at its size (a subset's header written),
    /// and the journal: segments an interrupted pull wrote whose bytes still match their
    /// CRC32C are kept; the rest are to fetch.
    fn open_partial(&self, files: &[PlannedFile]) -> Result<Partial> {
        let dir = self.repo.partial(self.key, self.version);
        std::fs::create_dir_all(&dir).map_err(|e| ModelError::io(&dir, e))?;
        let mut handles = Vec::with_capacity(files.len());
        for f in files {
            let p = safe_join(&dir, &f.name)?;
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| ModelError::io(parent, e))?;
            }
            let h = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&p)
                .map_err(|e| ModelError::io(&p, e))?;
            h.set_len(f.size).map_err(|e| ModelError::io(&p, e))?;
            if !f.head.is_empty() {
                h.write_all_at(&f.head, 0)
                    .map_err(|e| ModelError::io(&p, e))?;
            }
            handles.push(Arc::new(h));
        }
        let journal_path = dir.join(".strata-journal");
        let journaled = read_journal(&journal_path);
        let journal = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal_path)
            .map_err(|e| ModelError::io(&journal_path, e))?;
        let mut crcs = HashMap::new();
        let mut todo = Vec::new();
        let mut resumed = 0u64;
        let mut buf = Vec::new();
        for f in files {
            for s in &f.segments {
                let len = s.src.end - s.src.start;
                if let Some(&crc) = journaled.get(&(f.name.clone(), s.dst, len)) {
                    buf.resize(len as usize, 0);
                    if handles[s.file].read_exact_at(&mut buf, s.dst).is_ok()
                        && crc32c::crc32c(&buf) == crc
                    {
                        crcs.insert((s.file, s.dst), crc);
                        resumed += len;
                        continue;
                    }
                }
                todo.push(s.clone());
            }
        }
        Ok(Partial {
            dir,
            handles,
            journal_path,
            journal,
            crcs,
            todo,
            resumed,
        })
    }

    /// Step 4b: every segment still to fetch, `parts_in_flight` at once (default 32) in file
    /// order, each pinned to the ETag it was planned with, written at its offset and
    /// journaled; returns their CRC32Cs.
    async fn fetch_segments(
        &self,
        files: &[PlannedFile],
        partial: &Partial,
        progress: &Mutex<TensorProgress>,
    ) -> Result<Vec<((usize, u64), u32)>> {
        let in_flight = if self.opts.parts_in_flight > 0 {
            self.opts.parts_in_flight
        } else {
            32
        };
        let journal_lock = Mutex::new(());
        stream::iter(partial.todo.iter().cloned())
            .map(|s| {
                let f = &files[s.file];
                let h = partial.handles[s.file].clone();
                let journal_lock = &journal_lock;
                async move {
                    let bytes = self
                        .store
                        .get_range(&f.key, s.src.clone(), f.info.e_tag.as_deref())
                        .await
                        .map_err(|e| changed(e, self.source))?;
                    self.fetched
                        .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    let path = partial.dir.join(&f.name);
                    let dst = s.dst;
                    let crc = tokio::task::spawn_blocking(move || {
                        h.write_all_at(&bytes, dst).map(|_| crc32c::crc32c(&bytes))
                    })
                    .await
                    .map_err(|e| ModelError::io(&path, std::io::Error::other(e)))?
                    .map_err(|e| ModelError::io(&path, e))?;
                    let len = s.src.end - s.src.start;
                    {
                        let _one = journal_lock.lock().unwrap_or_else(|e| e.into_inner());
                        let mut j: &File = &partial.journal;
                        let _ = writeln!(j, "{crc:08x} {} {len} {}", s.dst, f.name);
                    }
                    if let Some(p) = &self.opts.progress {
                        p(len);
                    }
                    let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
                    p.done[s.file].insert(s.dst, s.dst + len);
                    p.advance(s.file, f, self);
                    Ok::<_, ModelError>(((s.file, s.dst), crc))
                }
            })
            .buffer_unordered(in_flight)
            .try_collect()
            .await
    }

    /// Step 5: every file fsynced, the manifest (sizes, ETags, CRC32C) written last and fsynced,
    /// and the directory renamed into place: the model appears complete or not at all.
    fn publish(&self, files: &[PlannedFile], partial: Partial) -> Result<(PathBuf, ModelManifest)> {
        let dir = &partial.dir;
        let mut manifest_files = Vec::with_capacity(files.len());
        for (i, f) in files.iter().enumerate() {
            let p = dir.join(&f.name);
            partial.handles[i]
                .sync_all()
                .map_err(|e| ModelError::io(&p, e))?;
            let mut pieces = Vec::with_capacity(f.segments.len() + 1);
            if !f.head.is_empty() {
                pieces.push((crc32c::crc32c(&f.head), f.head.len() as u64));
            }
            for s in &f.segments {
                pieces.push((partial.crcs[&(i, s.dst)], s.src.end - s.src.start));
            }
            manifest_files.push(ModelFile {
                name: f.name.clone(),
                size: f.size,
                source_size: f.info.size,
                e_tag: f.info.e_tag.clone(),
                crc32c: combine_crc32c(&pieces),
                tensors: f.tensors.len(),
                subset: f.subset,
            });
        }
        let manifest = ModelManifest {
            format: crate::manifest::FORMAT_VERSION,
            source: self.source.to_string(),
            version: self.version.to_string(),
            selectors: self.opts.tensors.clone(),
            files: manifest_files,
            pulled_unix_ms: chrono::Utc::now().timestamp_millis(),
        };
        drop(partial.journal);
        let _ = std::fs::remove_file(&partial.journal_path);
        let mp = dir.join(MANIFEST);
        let tmp = dir.join(".strata-model.json.tmp");
        {
            let mut t = File::create(&tmp).map_err(|e| ModelError::io(&tmp, e))?;
            t.write_all(&serde_json::to_vec_pretty(&manifest).expect("serializes"))
                .and_then(|_| t.sync_all())
                .map_err(|e| ModelError::io(&tmp, e))?;
        }
        std::fs::rename(&tmp, &mp).map_err(|e| ModelError::io(&mp, e))?;
        sync_dir(dir)?;
        let published = self.repo.published(self.key, self.version);
        let parent = published.parent().expect("published has a parent");
        std::fs::create_dir_all(parent).map_err(|e| ModelError::io(parent, e))?;
        std::fs::rename(dir, &published).map_err(|e| ModelError::io(&published, e))?;
        sync_dir(parent)?;
        Ok((published, manifest))
    }
}

/// What is wrong with the published model in `dir` (empty: it may be served): a file not
/// at its manifest's size, and with `verify` a CRC32C or header that does not match.
fn damage(dir: &Path, verify: bool) -> Vec<String> {
    let checked = if verify {
        crate::Model::verify(dir)
    } else {
        crate::Model::check_sizes(dir)
    };
    checked.unwrap_or_else(|e| vec![e.to_string()])
}

/// Moves a damaged published model out of the way (processes that mapped its files keep
/// their maps) and removes it.
fn retire(repo: &ModelRepo, dir: &Path) -> Result<()> {
    let trash = repo.dir().join(".partial").join(format!(
        ".damaged-{}-{:x}",
        std::process::id(),
        unique_suffix()
    ));
    if let Some(parent) = trash.parent() {
        std::fs::create_dir_all(parent).map_err(|e| ModelError::io(parent, e))?;
    }
    std::fs::rename(dir, &trash).map_err(|e| ModelError::io(dir, e))?;
    let _ = std::fs::remove_dir_all(&trash);
    Ok(())
}

/// A value that differs between calls (with the process id, names of scratch
/// directories): the time in nanoseconds.
fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// `dir/name` for a name from a listing, refusing names that would leave `dir`.
fn safe_join(dir: &Path, name: &str) -> Result<PathBuf> {
    let ok = !name.is_empty()
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.starts_with(".strata"));
    if !ok {
        return Err(ModelError::Corrupt {
            file: name.to_string(),
            cause: "a file name that would leave the model directory".into(),
        });
    }
    Ok(dir.join(name))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ModelError::io(dir, e))
}

/// (file, offset, length) → CRC32C from a journal; damaged lines are ignored (their
/// segments are fetched again).
fn read_journal(path: &Path) -> HashMap<(String, u64, u64), u32> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(4, ' ');
            let crc = u32::from_str_radix(it.next()?, 16).ok()?;
            let dst = it.next()?.parse().ok()?;
            let len = it.next()?.parse().ok()?;
            let name = it.next()?.to_string();
            Some(((name, dst, len), crc))
        })
        .collect()
}
