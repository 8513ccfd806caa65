//! [`Store`]: one bucket (or local root, or memory store) reached through one backend client,
//! with the limits, retries and metrics of this crate around every request.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode,
    PutOptions, PutPayload, RetryConfig,
};

use crate::config::StoreConfig;
use crate::error::{ErrorKind, Result, StoreError};
use crate::limit::LimitedStore;
use crate::metrics as m;
use crate::retry::with_retry;
use crate::url::{Scheme, StoreUrl};

/// What the store says about one object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObjectInfo {
    /// The key inside the bucket.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// The entity tag, if the backend has one.
    pub e_tag: Option<String>,
    /// The version, on versioned buckets.
    pub version: Option<String>,
    /// Last modification time.
    pub last_modified: DateTime<Utc>,
}

impl From<ObjectMeta> for ObjectInfo {
    fn from(m: ObjectMeta) -> Self {
        Self {
            key: m.location.to_string(),
            size: m.size,
            e_tag: m.e_tag,
            version: m.version,
            last_modified: m.last_modified,
        }
    }
}

/// One level of a listing: objects directly under a prefix, and the common prefixes below.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Listing {
    /// The objects directly under the prefix.
    pub objects: Vec<ObjectInfo>,
    /// Common prefixes ("directories"), without a trailing `/`.
    pub prefixes: Vec<String>,
    /// Entries left out (see [`Skipped`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

/// An entry a listing left out, and why: a name this client cannot address (a control
/// character such as a newline, not UTF-8), or on `file://` stores a symbolic link not
/// followed or a loop. The rest of the listing is whole.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// The key as listed (show it escaped: `{:?}`).
    pub key: String,
    /// Why it was left out.
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.key, self.reason)
    }
}

/// The outcome of a conditional create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The object did not exist and was written.
    Created,
    /// The object already existed; nothing was written.
    AlreadyExists,
}

/// A bucket reached through one backend, with retries, limits and metrics.
///
/// Cheap to clone. All methods take keys relative to the bucket (for local files: the
/// absolute path without its leading `/`).
#[derive(Clone)]
pub struct Store {
    root: StoreUrl,
    pub(crate) os: Arc<dyn ObjectStore>,
    pub(crate) mp: Option<Arc<dyn MultipartStore>>,
    pub(crate) config: Arc<StoreConfig>,
    /// `file://` listings follow symbolic links (default: they skip them).
    follow_symlinks: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.root.to_string())
            .finish_non_exhaustive()
    }
}

fn memory_stores() -> &'static Mutex<HashMap<String, Arc<InMemory>>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    STORES.get_or_init(Default::default)
}

impl Store {
    /// Opens the bucket that `url` names. No request is sent: a wrong endpoint or bucket shows
    /// up on the first operation, with a clear error.
    pub fn open(url: &StoreUrl, config: &StoreConfig) -> Result<Self> {
        let root = url.with_key("");
        let cfg = |e: object_store::Error| StoreError::Config {
            reason: format!("cannot configure a client for {root}: {e}"),
        };
        let retry = RetryConfig {
            max_retries: 0,
            retry_timeout: config.retry.total_timeout,
            ..Default::default()
        };
        let client = ClientOptions::new()
            .with_timeout(config.retry.request_timeout)
            .with_connect_timeout(config.retry.connect_timeout)
            .with_allow_http(config.s3.allow_http)
            // Many parts of one object go to one host at once; keep their connections.
            .with_pool_max_idle_per_host(1024);
        let limits = &config.limits;
        let (os, mp): (Arc<dyn ObjectStore>, Option<Arc<dyn MultipartStore>>) = match url.scheme() {
            Scheme::S3 => {
                let s3 = &config.s3;
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(url.bucket())
                    .with_region(&s3.region)
                    .with_allow_http(s3.allow_http)
                    .with_virtual_hosted_style_request(s3.virtual_hosted)
                    .with_retry(retry)
                    .with_client_options(client);
                if let Some(ep) = &s3.endpoint {
                    b = b.with_endpoint(ep);
                }
                if let Some(k) = &s3.access_key_id {
                    b = b.with_access_key_id(k);
                }
                if let Some(k) = &s3.secret_access_key {
                    b = b.with_secret_access_key(k.expose());
                }
                if let Some(t) = &s3.session_token {
                    b = b.with_token(t.expose());
                }
                if let Some(c) = s3.checksum {
                    b = b.with_checksum_algorithm(c);
                }
                if s3.unsigned_payload {
                    b = b.with_unsigned_payload(true);
                }
                if s3.anonymous() {
                    b = b.with_skip_signature(true);
                }
                both(b.build().map_err(cfg)?, limits)
            }
            Scheme::Gcs => both(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(url.bucket())
                    .with_retry(retry)
                    .with_client_options(client)
                    .build()
                    .map_err(cfg)?,
                limits,
            ),
            Scheme::Azure => both(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_container_name(url.bucket())
                    .with_retry(retry)
                    .with_client_options(client)
                    .build()
                    .map_err(cfg)?,
                limits,
            ),
            Scheme::Memory => {
                let store = memory_stores()
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(url.bucket().to_string())
                    .or_insert_with(|| Arc::new(InMemory::new()))
                    .clone();
                let limited = Arc::new(LimitedStore::new(store, limits));
                (limited.clone(), Some(limited))
            }
            Scheme::File => {
                let fs = Arc::new(object_store::local::LocalFileSystem::new());
                (Arc::new(LimitedStore::new(fs, limits)), None)
            }
        };
        Ok(Self {
            root,
            os,
            mp,
            config: Arc::new(config.clone()),
            follow_symlinks: false,
        })
    }

    /// This store, its `file://` listings following symbolic links (a link back to a
    /// directory being walked is reported as a loop and not entered). By default links are
    /// skipped and reported. No effect on other backends.
    pub fn with_follow_symlinks(mut self, follow: bool) -> Self {
        self.follow_symlinks = follow;
        self
    }

    /// The URL of the bucket root.
    pub fn root(&self) -> &StoreUrl {
        &self.root
    }

    /// The URL of `key` in this store.
    pub fn url(&self, key: &str) -> StoreUrl {
        self.root.with_key(key)
    }

    /// The settings this store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The underlying multipart API (`None` for local files), limits included but without
    /// retries: for tools and tests that manage uploads themselves; prefer the upload engine.
    pub fn multipart_store(&self) -> Option<Arc<dyn MultipartStore>> {
        self.mp.clone()
    }

    /// The underlying object_store client, limits included but without retries. For callers
    /// that need an operation this type does not offer; prefer the methods here.
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.os.clone()
    }

    /// Size, ETag and modification time of one object.
    pub async fn head(&self, key: &str) -> Result<ObjectInfo> {
        let path = object_path(key)?;
        let url = self.url(key);
        let meta = with_retry(&self.config.retry, "HEAD", &url, || {
            let os = self.os.clone();
            let path = path.clone();
            async move { os.head(&path).await }
        })
        .await?;
        Ok(meta.into())
    }

    /// Reads `range` of an object. When `expect_e_tag` is given and the object now has
    /// another ETag, fails with [`StoreError::Changed`] instead of mixing versions.
    pub async fn get_range(
        &self,
        key: &str,
        range: Range<u64>,
        expect_e_tag: Option<&str>,
    ) -> Result<Bytes> {
        let url = self.url(key);
        let path = object_path(key)?;
        let want = range.end - range.start;
        let (e_tag, bytes) = with_retry(&self.config.retry, "GET", &url, || {
            let os = self.os.clone();
            let path = path.clone();
            let range = range.clone();
            async move {
                let res = os.get_opts(&path, ranged(range)).await?;
                let e_tag = res.meta.e_tag.clone();
                let bytes = res.bytes().await?;
                if bytes.len() as u64 != want {
                    return Err(short_read(bytes.len(), want));
                }
                Ok((e_tag, bytes))
            }
        })
        .await?;
        pinned(&url, expect_e_tag, e_tag.as_deref())?;
        m::record_bytes_read(bytes.len() as u64);
        Ok(bytes)
    }

    /// Like [`Store::get_range`], into `buf` (cleared first; its capacity is reused), so a
    /// caller that recycles buffers (the block cache) reads a block without mapping and
    /// zero-filling fresh memory: 2,048 page faults an 8 MiB block otherwise.
    pub async fn get_range_into(
        &self,
        key: &str,
        range: Range<u64>,
        expect_e_tag: Option<&str>,
        buf: Vec<u8>,
    ) -> Result<Vec<u8>> {
        let url = self.url(key);
        let path = object_path(key)?;
        let want = range.end - range.start;
        let buf = Mutex::new(buf);
        let e_tag = with_retry(&self.config.retry, "GET", &url, || {
            let os = self.os.clone();
            let path = path.clone();
            let range = range.clone();
            let buf = &buf;
            async move {
                let res = os.get_opts(&path, ranged(range)).await?;
                let e_tag = res.meta.e_tag.clone();
                let mut out = std::mem::take(&mut *buf.lock().unwrap_or_else(|e| e.into_inner()));
                out.clear();
                out.reserve(want as usize);
                let mut body = res.into_stream();
                let mut failed = None;
                while let Some(chunk) = body.next().await {
                    match chunk {
                        Ok(c) if out.len() + c.len() <= want as usize => out.extend_from_slice(&c),
                        Ok(_) => {
                            failed = Some(object_store::Error::Generic {
                                store: "strata",
                                source: format!("long read: more than the {want} bytes asked for")
                                    .into(),
                            });
                            break;
                        }
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                let got = out.len();
                *buf.lock().unwrap_or_else(|e| e.into_inner()) = out;
                if let Some(e) = failed {
                    return Err(e);
                }
                if got as u64 != want {
                    return Err(short_read(got, want));
                }
                Ok(e_tag)
            }
        })
        .await?;
        pinned(&url, expect_e_tag, e_tag.as_deref())?;
        let out = buf.into_inner().unwrap_or_else(|e| e.into_inner());
        m::record_bytes_read(out.len() as u64);
        Ok(out)
    }

    /// Reads a whole object with one request. For large objects use
    /// [`Store::download`](crate::download), which reads parts in parallel.
    pub async fn get(&self, key: &str) -> Result<Bytes> {
        let url = self.url(key);
        let path = object_path(key)?;
        let bytes = with_retry(&self.config.retry, "GET", &url, || {
            let os = self.os.clone();
            let path = path.clone();
            async move {
                os.get_opts(&path, GetOptions::default())
                    .await?
                    .bytes()
                    .await
            }
        })
        .await?;
        m::record_bytes_read(bytes.len() as u64);
        Ok(bytes)
    }

    /// Opens a GET of a whole object and hands its body on as it arrives, for callers that
    /// time the first byte (the probe) or consume as they go. The request is sent under the
    /// retry policy until a response arrives, and counted like every other; an error in the
    /// body ends the stream with an error that names the object, not retried (the bytes
    /// already handed on cannot be taken back). Dropping the stream closes the request.
    pub async fn get_stream(&self, key: &str) -> Result<BoxStream<'static, Result<Bytes>>> {
        let url = self.url(key);
        let path = object_path(key)?;
        let res = with_retry(&self.config.retry, "GET", &url, || {
            let os = self.os.clone();
            let path = path.clone();
            async move { os.get_opts(&path, GetOptions::default()).await }
        })
        .await?;
        let url = url.to_string();
        Ok(res
            .into_stream()
            .map(move |chunk| match chunk {
                Ok(b) => {
                    m::record_bytes_read(b.len() as u64);
                    Ok(b)
                }
                Err(e) => {
                    let kind = crate::error::classify(&e);
                    m::record_error("GET", kind);
                    Err(StoreError::Request {
                        op: "GET",
                        url: url.clone(),
                        kind,
                        attempts: 1,
                        elapsed: std::time::Duration::ZERO,
                        cause: crate::retry::describe(kind, &e),
                    })
                }
            })
            .boxed())
    }

    /// Writes a whole object with one PUT (overwriting). For large objects use
    /// [`Store::upload`](crate::upload), which sends parts in parallel.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<Option<String>> {
        let url = self.url(key);
        let path = object_path(key)?;
        let len = bytes.len() as u64;
        let res = with_retry(&self.config.retry, "PUT", &url, || {
            let os = self.os.clone();
            let path = path.clone();
            let payload = PutPayload::from(bytes.clone());
            async move { os.put_opts(&path, payload, PutOptions::default()).await }
        })
        .await?;
        m::record_bytes_written(len);
        Ok(res.e_tag)
    }

    /// Writes an object only if none exists under `key` (`If-None-Match: *` on S3).
    ///
    /// Some stores silently ignore the condition and overwrite; [`Store::probe`] detects
    /// that, and callers that need mutual exclusion must check it. If an attempt's response
    /// is lost and the retry finds the object, the outcome is `AlreadyExists` although this
    /// call wrote it: callers that must know should write a unique body and read it back.
    pub async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<CreateOutcome> {
        let url = self.url(key);
        let path = object_path(key)?;
        let len = bytes.len() as u64;
        let res = with_retry(&self.config.retry, "PUT", &url, || {
            let os = self.os.clone();
            let path = path.clone();
            let payload = PutPayload::from(bytes.clone());
            async move {
                let opts = PutOptions {
                    mode: PutMode::Create,
                    ..Default::default()
                };
                os.put_opts(&path, payload, opts).await
            }
        })
        .await;
        match res {
            Ok(_) => {
                m::record_bytes_written(len);
                Ok(CreateOutcome::Created)
            }
            Err(e) if matches!(e.kind(), ErrorKind::AlreadyExists | ErrorKind::Precondition) => {
                Ok(CreateOutcome::AlreadyExists)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes one object. Deleting a missing object succeeds (as on S3).
    pub async fn delete(&self, key: &str) -> Result<()> {
        let url = self.url(key);
        let path = object_path(key)?;
        let res = with_retry(&self.config.retry, "DELETE", &url, || {
            let os = self.os.clone();
            let path = path.clone();
            async move { os.delete(&path).await }
        })
        .await;
        // S3 answers 204 for a missing object; other backends say 404. Both mean "gone".
        match res {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// On a `file://` store, removes the empty directories under the directory `prefix` and
    /// `prefix` itself if it ends up empty: an object store has no empty prefixes, and a
    /// directory left behind by deleted objects would still list as one. Directories that
    /// hold a file are kept. A no-op on other backends. Returns the directories removed.
    pub async fn prune_empty_dirs(&self, prefix: &str) -> Result<usize> {
        let Some(dir) = self.url(prefix.trim_end_matches('/')).local_path() else {
            return Ok(0);
        };
        let shown = dir.clone();
        tokio::task::spawn_blocking(move || prune(&dir))
            .await
            .map_err(|e| StoreError::io("prune", &shown, std::io::Error::other(e)))?
            .map_err(|e| StoreError::io("prune", &shown, e))
    }

    /// Every object under the directory `prefix` (recursively; `a/b` lists `a/b/...`, not the
    /// object `a/b` nor `a/bc`), in key order. A listing interrupted by a transient fault
    /// resumes after the last key received.
    /// Entries that cannot be listed (see [`Skipped`]) are logged, at most ten by name, and
    /// left out; [`Store::list_checked`] returns them.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let (objects, skipped) = self.list_checked(prefix).await?;
        warn_skipped(&self.url(prefix), &skipped);
        Ok(objects)
    }

    /// Like [`Store::list`], with the entries left out.
    pub async fn list_checked(&self, prefix: &str) -> Result<(Vec<ObjectInfo>, Vec<Skipped>)> {
        let url = self.url(prefix);
        if let Some(dir) = self.url(prefix.trim_end_matches('/')).local_path() {
            let l = self.list_local(dir, prefix, true).await?;
            return Ok((l.objects, l.skipped));
        }
        let path = (!prefix.is_empty())
            .then(|| object_path(prefix))
            .transpose()?;
        // Shared with each attempt so that a retry resumes after the last key received.
        let got: Mutex<Vec<ObjectInfo>> = Mutex::new(Vec::new());
        let got_ref = &got;
        // Set when object_store met a key it cannot carry: its listing ends there.
        let unaddressable = std::sync::atomic::AtomicBool::new(false);
        let unaddressable_ref = &unaddressable;
        with_retry(&self.config.retry, "LIST", &url, || {
            let last = got_ref
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .last()
                .and_then(|o| Path::parse(&o.key).ok());
            let mut stream = match &last {
                None => self.os.list(path.as_ref()),
                Some(last) => self.os.list_with_offset(path.as_ref(), last),
            };
            async move {
                while let Some(item) = stream.next().await {
                    let item = match item {
                        Err(object_store::Error::InvalidPath { .. }) => {
                            unaddressable_ref.store(true, std::sync::atomic::Ordering::Relaxed);
                            return Ok(());
                        }
                        item => item?,
                    };
                    got_ref
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(item.into());
                }
                Ok(())
            }
        })
        .await?;
        if unaddressable.into_inner() {
            return self
                .list_unaddressable(prefix, false)
                .await
                .map(|l| (l.objects, l.skipped));
        }
        let mut out = got.into_inner().unwrap_or_else(|e| e.into_inner());
        if !prefix.is_empty() {
            // object_store lists by path segments; keep only keys really under the prefix.
            let dir = format!("{prefix}/");
            out.retain(|o| o.key.starts_with(&dir));
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok((out, Vec::new()))
    }

    /// One level under `prefix`: its objects and its common prefixes (and the entries left
    /// out, see [`Skipped`]).
    pub async fn list_dir(&self, prefix: &str) -> Result<Listing> {
        let url = self.url(prefix);
        if let Some(dir) = self.url(prefix.trim_end_matches('/')).local_path() {
            let l = self.list_local(dir, prefix, false).await?;
            return Ok(Listing {
                objects: l.objects,
                prefixes: l.prefixes,
                skipped: l.skipped,
            });
        }
        let path = (!prefix.is_empty())
            .then(|| object_path(prefix))
            .transpose()?;
        let res = with_retry(&self.config.retry, "LIST", &url, || {
            let os = self.os.clone();
            let path = path.clone();
            async move {
                match os.list_with_delimiter(path.as_ref()).await {
                    Err(object_store::Error::InvalidPath { .. }) => Ok(None),
                    other => other.map(Some),
                }
            }
        })
        .await?;
        let Some(res) = res else {
            return self.list_unaddressable(prefix, true).await;
        };
        let mut listing = Listing {
            objects: res.objects.into_iter().map(ObjectInfo::from).collect(),
            prefixes: res
                .common_prefixes
                .into_iter()
                .map(|p| p.to_string())
                .collect(),
            skipped: Vec::new(),
        };
        listing.objects.sort_by(|a, b| a.key.cmp(&b.key));
        listing.prefixes.sort();
        Ok(listing)
    }
}

/// A GET of `range` only.
fn ranged(range: Range<u64>) -> GetOptions {
    GetOptions {
        range: Some(GetRange::Bounded(range)),
        ..Default::default()
    }
}

/// A ranged GET whose body ended before the `want` bytes asked for (retried).
fn short_read(got: usize, want: u64) -> object_store::Error {
    object_store::Error::Generic {
        store: "strata",
        source: Box::new(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("short read: got {got} of {want} bytes"),
        )),
    }
}

/// Fails with [`StoreError::Changed`] when a read pinned to `expected` got another ETag.
fn pinned(url: &StoreUrl, expected: Option<&str>, got: Option<&str>) -> Result<()> {
    match (expected, got) {
        (Some(want), Some(got)) if normalize_etag(want) != normalize_etag(got) => {
            Err(StoreError::Changed {
                url: url.to_string(),
                expected: want.to_string(),
                found: got.to_string(),
            })
        }
        _ => Ok(()),
    }
}

/// An ETag without `W/` and surrounding quotes: stores quote ETags inconsistently between
/// HEAD, GET and LIST.
pub fn normalize_etag(e: &str) -> &str {
    e.strip_prefix("W/").unwrap_or(e).trim_matches('"')
}

/// Wraps a backend that implements both traits in the limits and returns it as both.
fn both<T: ObjectStore + MultipartStore>(
    backend: T,
    limits: &crate::config::Limits,
) -> (Arc<dyn ObjectStore>, Option<Arc<dyn MultipartStore>>) {
    let limited = Arc::new(LimitedStore::new(Arc::new(backend), limits));
    (limited.clone(), Some(limited))
}

/// Removes the empty directories under `dir`, bottom-up, and `dir` if it ends up empty;
/// returns how many. A missing `dir` is nothing to do. Symbolic links are not followed.
fn prune(dir: &std::path::Path) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for e in entries {
        let e = e?;
        if e.file_type()?.is_dir() {
            removed += prune(&e.path())?;
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(removed + 1),
        // Not empty (a file, or a directory that holds one): kept.
        Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => Ok(removed),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(removed),
        Err(e) => Err(e),
    }
}

/// `key` as an object_store path, unchanged: the user's bytes are the key. (object_store's
/// `Path::from` percent-encodes non-ASCII and reserved characters, so a file `uni-é中`
/// was stored as the key `uni-%C3%A9%E4%B8%AD` and could not be found again by its name.)
/// A key the client cannot carry (a control character such as a newline, an empty or a
/// `.`/`..` segment) is an [`StoreError::InvalidKey`] naming it, escaped.
pub(crate) fn object_path(key: &str) -> Result<Path> {
    Path::parse(key).map_err(|e| StoreError::InvalidKey {
        key: key.to_string(),
        reason: match e {
            object_store::path::Error::EmptySegment { .. } => {
                "an empty segment (`//`): this client cannot address it".into()
            }
            _ => "a control character (such as a newline) or a `.`/`..` segment: this client cannot address it".into(),
        },
    })
}

impl Store {
    /// A `file://` listing of `dir` (the key `prefix`) by `local_list`, on the blocking pool.
    async fn list_local(
        &self,
        dir: std::path::PathBuf,
        prefix: &str,
        recursive: bool,
    ) -> Result<crate::local_list::LocalListing> {
        let follow = self.follow_symlinks;
        let shown = dir.clone();
        let key = prefix.trim_end_matches('/').to_string();
        tokio::task::spawn_blocking(move || crate::local_list::list(&dir, &key, recursive, follow))
            .await
            .map_err(|e| StoreError::io("list", &shown, std::io::Error::other(e)))?
            .map_err(|e| StoreError::io("list", &shown, e))
    }

    /// A listing that object_store gave up on (a key it cannot carry), sent again by Strata
    /// with URL-encoded keys: the bad keys skipped and named, the rest listed. Where that is
    /// not possible (not S3), the error names the prefix.
    async fn list_unaddressable(&self, prefix: &str, one_level: bool) -> Result<Listing> {
        match crate::s3_list::list(self, prefix, one_level).await? {
            Some(l) => {
                let mut objects = l.objects;
                objects.sort_by(|a, b| a.key.cmp(&b.key));
                Ok(Listing {
                    objects,
                    prefixes: l.prefixes,
                    skipped: l.skipped,
                })
            }
            None => Err(StoreError::InvalidKey {
                key: prefix.to_string(),
                reason: "a key under it holds a control character or an empty segment, which this client cannot list here".into(),
            }),
        }
    }
}

/// Logs the entries a listing of `url` left out: ten by name, then how many more.
fn warn_skipped(url: &StoreUrl, skipped: &[Skipped]) {
    for s in skipped.iter().take(10) {
        tracing::warn!("{url}: skipped {s}");
    }
    if skipped.len() > 10 {
        tracing::warn!("{url}: skipped {} more entries", skipped.len() - 10);
    }
}
