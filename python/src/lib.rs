//! `strata._strata`: the native half of the `strata` Python package. Thin bindings over the
//! Rust crates; the Python half (`strata/*.py`) holds the conventions (sample dicts, torch
//! integration, safetensors files, numpy views).
//!
//! Every call that does I/O releases the GIL (`Python::detach`) and runs on a Tokio runtime
//! owned by this module. The runtime is per process: after a `fork` (DataLoader workers) the
//! child makes its own, because a runtime's threads do not survive a fork.

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::stream::BoxStream;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyFileNotFoundError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use strata_cache::{CacheLayer, CacheSettings};
use strata_config::{ConfigError, Env, Sources};
use strata_dataset::{Dataset, Reader, ReaderConfig, Remainder, Sample, World};
use strata_store::{Location, StoreConfig, StoreUrl};

mod ckpt;
mod models;

create_exception!(
    _strata,
    StrataError,
    PyException,
    "An error from Strata's engine."
);

/// The process's runtime (made again after a fork).
pub(crate) fn rt() -> &'static tokio::runtime::Runtime {
    static RT: Mutex<Option<(u32, &'static tokio::runtime::Runtime)>> = Mutex::new(None);
    let mut g = RT.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    match *g {
        Some((p, rt)) if p == pid => rt,
        _ => {
            let rt: &'static _ = Box::leak(Box::new(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .thread_name("strata")
                    .build()
                    .expect("a Tokio runtime"),
            ));
            *g = Some((pid, rt));
            rt
        }
    }
}

pub(crate) fn err(e: impl std::fmt::Display) -> PyErr {
    StrataError::new_err(e.to_string())
}

pub(crate) fn store_err(e: strata_store::StoreError) -> PyErr {
    if e.kind() == strata_store::ErrorKind::NotFound {
        PyFileNotFoundError::new_err(e.to_string())
    } else {
        err(e)
    }
}

/// Settings from the environment and the config file, read as the CLI reads them
/// (`strata-config`); a call's arguments are the flags.
pub(crate) struct Settings {
    pub(crate) sources: Sources,
    pub(crate) store: StoreConfig,
    pub(crate) cache: CacheSettings,
}

/// The settings, with `cache_dir` (a call's argument) over the cache directory.
pub(crate) fn settings(cache_dir: Option<&str>) -> PyResult<Settings> {
    let mut sources = Sources::load(None, Env::process()).map_err(config_err)?;
    sources.set_flags::<CacheSettings>(CacheLayer {
        dir: cache_dir.map(str::to_string),
        ..Default::default()
    });
    Ok(Settings {
        store: StoreConfig::from_sources(&sources).map_err(config_err)?,
        cache: sources.get().map_err(config_err)?,
        sources,
    })
}

/// A settings error is the caller's: a `ValueError` that names the setting.
pub(crate) fn config_err(e: ConfigError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

pub(crate) fn location(url: &str, cfg: &Settings) -> PyResult<Location> {
    let u = StoreUrl::parse(url).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Location::open(&u, &cfg.store).map_err(store_err)
}

/// Samples of one worker of one rank over one epoch, as WebDataset-style dicts.
#[pyclass(module = "strata._strata")]
struct SampleReader {
    stream: Mutex<Option<BoxStream<'static, strata_dataset::Result<Sample>>>>,
    reader: Arc<Reader>,
    samples: u64,
}

#[pymethods]
impl SampleReader {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next sample: `{"__key__": key, "__position__": n, ext: bytes, ...}`.
    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let next = py.detach(|| {
            let mut g = self.stream.lock().unwrap_or_else(|e| e.into_inner());
            match g.as_mut() {
                Some(s) => rt().block_on(s.next()),
                None => None,
            }
        });
        let Some(sample) = next else {
            return Ok(None);
        };
        let sample = sample.map_err(err)?;
        let d = PyDict::new(py);
        d.set_item("__key__", &sample.key)?;
        d.set_item("__position__", sample.position)?;
        for (ext, data) in &sample.members {
            d.set_item(ext, PyBytes::new(py, data))?;
        }
        Ok(Some(d))
    }

    /// Samples this reader yields in all.
    fn __len__(&self) -> usize {
        self.samples as usize
    }

    /// Samples per rank in this epoch (equal for every rank).
    fn per_rank(&self) -> u64 {
        self.reader.partition().per_rank()
    }

    /// What this reader has read so far: `{"samples", "bytes"}` delivered, and what crossed
    /// to the store: `"requests"` (GETs: blocks the cache fetched, or direct ranged reads)
    /// and `"bytes_read"`. Blocks another process fetched into a shared cache directory are
    /// counted by that process.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        use std::sync::atomic::Ordering::Relaxed;
        let r = self.reader.stats();
        let (mut requests, mut bytes_read) = (
            r.direct_requests.load(Relaxed),
            r.direct_bytes.load(Relaxed),
        );
        if let Some(c) = self.reader.cache_stats() {
            requests += c.demand_fetches + c.prefetch_fetches;
            bytes_read += c.fetched_bytes;
        }
        let d = PyDict::new(py);
        d.set_item("samples", r.samples.load(Relaxed))?;
        d.set_item("bytes", r.bytes.load(Relaxed))?;
        d.set_item("requests", requests)?;
        d.set_item("bytes_read", bytes_read)?;
        Ok(d)
    }

    /// The resume state `(seed, epoch, consumed)` once every rank has consumed
    /// `per_rank_done` samples of this run.
    fn state_after(&self, per_rank_done: u64) -> (u64, u64, u64) {
        let s = self.reader.state_after(per_rank_done);
        (s.seed, s.epoch, s.consumed)
    }
}

/// Opens a reader: the dataset at `url` (a manifest written by `strata pack` or
/// `strata index`), plan (`seed`, `epoch`, `shuffle` = "window" | "global" | "sequential",
/// `window`), this reader's place (`ranks`, `rank`, `workers`, `worker`), the positions
/// already consumed, and a cache directory to read shards through (None: direct reads), or
/// the address of the node's daemon to read shards through (a DRAM cache in this process
/// over the node's cache in the daemon). `cache_bytes` sets the cache directory's tier
/// capacity (default: the configured `cache.nvme_size`), `dram_bytes` caps this process's
/// DRAM tier (default: the configured `cache.dram_size`), both in bytes: the scratch tier of
/// a read without a cache directory is small. `index` is where the manifest and shard
/// indexes are when not beside the shards (what [`open_dataset`] returned), and `raw` reads
/// every object as one sample (from the raw manifest at `index`, else from a listing).
#[pyfunction]
#[pyo3(signature = (url, *, seed=0, epoch=0, shuffle="window", window=1024, ranks=1, rank=0, workers=1, worker=0, consumed=0, drop_last=false, cache_dir=None, daemon=None, cache_bytes=None, dram_bytes=None, index=None, raw=false))]
#[allow(clippy::too_many_arguments)] // One per keyword argument of the Python call.
fn open_reader(
    py: Python<'_>,
    url: &str,
    seed: u64,
    epoch: u64,
    shuffle: &str,
    window: u64,
    ranks: u32,
    rank: u32,
    workers: u32,
    worker: u32,
    consumed: u64,
    drop_last: bool,
    cache_dir: Option<&str>,
    daemon: Option<&str>,
    cache_bytes: Option<u64>,
    dram_bytes: Option<u64>,
    index: Option<&str>,
    raw: bool,
) -> PyResult<SampleReader> {
    use strata_dataset::ShuffleMode;
    let mode = match shuffle {
        "window" => ShuffleMode::Window,
        "global" => ShuffleMode::Global,
        "sequential" => ShuffleMode::Sequential,
        m => {
            return Err(PyValueError::new_err(format!(
                "shuffle={m:?}: use 'window', 'global' or 'sequential'"
            )));
        }
    };
    let cfg = settings(cache_dir)?;
    let loc = location(url, &cfg)?;
    let opts = strata_dataset::OpenOptions {
        index: index.map(|u| location(u, &cfg)).transpose()?,
        raw,
        index_cache: None,
    };
    let world = world(ranks, rank, workers, worker)?;
    let use_cache = cache_dir.is_some();
    let client = daemon.map(daemon_client).transpose()?;
    py.detach(move || {
        rt().block_on(async move {
            let ds = Arc::new(Dataset::open_with(loc, &opts).await.map_err(err)?);
            let cache = if client.is_some() {
                // The node's cache is the daemon's; this process keeps what it reads next.
                let c = strata_cache::CacheConfig {
                    block_size: cfg.cache.block_size,
                    dram_bytes: cfg.cache.dram_size.min(512 << 20),
                    nvme: None,
                    read_concurrency: 16,
                };
                Some(Arc::new(strata_cache::BlockCache::open(&c).map_err(err)?))
            } else if use_cache {
                let mut c = cfg.cache.cache_config(true);
                if let (Some(n), Some(nvme)) = (cache_bytes, c.nvme.as_mut()) {
                    nvme.capacity = n;
                }
                if let Some(n) = dram_bytes {
                    c.dram_bytes = c.dram_bytes.min(n);
                }
                Some(Arc::new(strata_cache::BlockCache::open(&c).map_err(err)?))
            } else {
                None
            };
            let rc = ReaderConfig {
                plan: strata_dataset::PlanSpec {
                    seed,
                    epoch,
                    mode,
                    window: window.max(1),
                    streams: 1,
                },
                world,
                remainder: if drop_last {
                    Remainder::DropLast
                } else {
                    Remainder::Pad
                },
                consumed,
                ..Default::default()
            };
            let mut reader = Reader::new(ds, cache, rc).await.map_err(err)?;
            if let Some(client) = client {
                reader =
                    reader.with_source(Arc::new(strata_daemon_client::DaemonSource { client }));
            }
            let reader = Arc::new(reader);
            let samples = reader.partition().len();
            let stream = reader.stream();
            Ok(SampleReader {
                stream: Mutex::new(Some(stream)),
                reader,
                samples,
            })
        })
    })
}

/// Reads every sample of a reader inside Rust (no Python objects): `(samples, bytes,
/// seconds)`. The engine's own rate for the benchmark's comparison with the Python loop.
#[pyfunction]
#[pyo3(signature = (url, *, seed=0, shuffle="window", cache_dir=None, daemon=None))]
fn drain_reader(
    py: Python<'_>,
    url: &str,
    seed: u64,
    shuffle: &str,
    cache_dir: Option<&str>,
    daemon: Option<&str>,
) -> PyResult<(u64, u64, f64)> {
    let r = open_reader(
        py, url, seed, 0, shuffle, 1024, 1, 0, 1, 0, 0, false, cache_dir, daemon, None, None, None,
        false,
    )?;
    py.detach(move || {
        let mut g = r.stream.lock().unwrap_or_else(|e| e.into_inner());
        let Some(s) = g.as_mut() else {
            return Ok((0, 0, 0.0));
        };
        let t = std::time::Instant::now();
        let (mut n, mut bytes) = (0u64, 0u64);
        while let Some(sample) = rt().block_on(s.next()) {
            let sample = sample.map_err(err)?;
            n += 1;
            bytes += sample.bytes();
        }
        Ok((n, bytes, t.elapsed().as_secs_f64()))
    })
}

/// Packs the files under `src` (raw samples, grouped by key: `a/0001.jpg` + `a/0001.cls`)
/// into WebDataset tar shards with an index and a manifest under `dst`. Returns the manifest
/// as JSON text.
#[pyfunction]
#[pyo3(signature = (src, dst, *, shard_size=256 << 20))]
fn pack(py: Python<'_>, src: &str, dst: &str, shard_size: u64) -> PyResult<String> {
    let cfg = settings(None)?;
    let src = if std::path::Path::new(src).is_dir() {
        strata_dataset::pack::PackSource::Dir(src.into())
    } else {
        strata_dataset::pack::PackSource::Store(location(src, &cfg)?)
    };
    let dst = location(dst, &cfg)?;
    py.detach(move || {
        rt().block_on(async move {
            let opts = strata_dataset::pack::PackOptions {
                shard_size,
                ..Default::default()
            };
            let (m, _) = strata_dataset::pack::pack(&src, &dst, &opts, None)
                .await
                .map_err(err)?;
            serde_json::to_string(&m).map_err(err)
        })
    })
}

/// Builds the sample index and manifest of existing shards (`.tar`, `.tfrecord`) under `url`,
/// written under `out` (default: beside the shards), or with `raw` the manifest of every
/// object under `url` as one sample. Returns the manifest as JSON text.
#[pyfunction]
#[pyo3(signature = (url, *, out=None, raw=false))]
fn index(py: Python<'_>, url: &str, out: Option<&str>, raw: bool) -> PyResult<String> {
    let cfg = settings(None)?;
    let loc = location(url, &cfg)?;
    let out = match out {
        Some(u) => location(u, &cfg)?,
        None => loc.clone(),
    };
    py.detach(move || {
        rt().block_on(async move {
            let m = if raw {
                strata_dataset::indexer::index_raw_into(&loc, &out).await
            } else {
                strata_dataset::indexer::index_prefix_into(&loc, &out, &|_| {}).await
            }
            .map_err(err)?;
            serde_json::to_string(&m).map_err(err)
        })
    })
}

pub(crate) fn json_to_py(py: Python<'_>, v: &serde_json::Value) -> PyResult<Py<PyAny>> {
    let json = py.import("json")?;
    Ok(json.call_method1("loads", (v.to_string(),))?.unbind())
}

/// Finds the dataset at `url` once, in the process that builds the DataLoader, so that its
/// workers open it without listing, HEADing or indexing again: its manifest at `index`, else
/// beside the shards, else one built on first use in the node's index cache (under
/// `cache_dir`, default the configured cache directory), writing nothing to the dataset's
/// bucket. `layout="raw"` reads every object as one sample (its listing kept in the index
/// cache). Returns `(index, layout, samples)`: where the workers find the manifest ("" when
/// beside the shards), "shards" or "raw", and the number of samples.
#[pyfunction]
#[pyo3(signature = (url, *, index=None, layout=None, cache_dir=None))]
fn open_dataset(
    py: Python<'_>,
    url: &str,
    index: Option<&str>,
    layout: Option<&str>,
    cache_dir: Option<&str>,
) -> PyResult<(String, String, u64)> {
    let raw = match layout {
        None | Some("shards") => false,
        Some("raw") => true,
        Some(l) => {
            return Err(PyValueError::new_err(format!(
                "layout={l:?}: use 'shards' (a manifest and shard indexes) or 'raw' (one object per sample)"
            )));
        }
    };
    let cfg = settings(cache_dir)?;
    let loc = location(url, &cfg)?;
    let opts = strata_dataset::OpenOptions {
        index: index.map(|u| location(u, &cfg)).transpose()?,
        raw,
        index_cache: Some(cfg.cache.dir.clone()),
    };
    py.detach(move || {
        rt().block_on(async move {
            let beside = loc.clone();
            let ds = Dataset::open_with(loc, &opts).await.map_err(err)?;
            let at = ds.index_location.display("");
            let at = if at == beside.display("") {
                String::new()
            } else {
                at
            };
            let layout = match ds.manifest.layout {
                strata_dataset::Layout::Raw => "raw",
                strata_dataset::Layout::Shards => "shards",
            };
            Ok((at, layout.to_string(), ds.manifest.samples))
        })
    })
}

/// `(samples this worker reads, samples per rank)` for an epoch of `n` samples of which
/// `consumed` plan positions are done.
#[pyfunction]
#[pyo3(signature = (n, consumed, ranks, rank, workers, worker, drop_last=false))]
fn partition_len(
    n: u64,
    consumed: u64,
    ranks: u32,
    rank: u32,
    workers: u32,
    worker: u32,
    drop_last: bool,
) -> PyResult<(u64, u64)> {
    let p = strata_dataset::Partition::new(
        n,
        consumed,
        world(ranks, rank, workers, worker)?,
        remainder(drop_last),
    );
    Ok((p.len(), p.per_rank()))
}

/// The resume state `(seed, epoch, consumed)` once each of `ranks` ranks has consumed
/// `per_rank_done` samples of a run that started at `consumed`.
#[pyfunction]
#[pyo3(signature = (n, consumed, ranks, seed, epoch, per_rank_done, drop_last=false))]
fn partition_state(
    n: u64,
    consumed: u64,
    ranks: u32,
    seed: u64,
    epoch: u64,
    per_rank_done: u64,
    drop_last: bool,
) -> PyResult<(u64, u64, u64)> {
    let p =
        strata_dataset::Partition::new(n, consumed, world(ranks, 0, 1, 0)?, remainder(drop_last));
    let s = p.state_after(seed, epoch, per_rank_done);
    Ok((s.seed, s.epoch, s.consumed))
}

/// A validated place in the world (a ValueError names what is out of range).
/// A client of the daemon at `addr`; the token from `$STRATA_TOKEN`.
fn daemon_client(addr: &str) -> PyResult<strata_daemon_client::DaemonClient> {
    strata_daemon_client::DaemonClient::with_env_token(addr)
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Checks that the daemon at `addr` answers (`/healthz`).
#[pyfunction]
fn daemon_health(py: Python<'_>, addr: &str) -> PyResult<()> {
    let c = daemon_client(addr)?;
    py.detach(move || rt().block_on(c.health()).map_err(err))
}

/// Sends a job's report (JSON text: wait_secs, compute_secs, samples, bytes, drain_done,
/// drain_total) to the daemon at `addr`, shown on its dashboard and in its metrics.
#[pyfunction]
fn daemon_report(py: Python<'_>, addr: &str, name: &str, report: &str) -> PyResult<()> {
    let c = daemon_client(addr)?;
    let r: strata_daemon_client::JobReport =
        serde_json::from_str(report).map_err(|e| PyValueError::new_err(format!("report: {e}")))?;
    let name = name.to_string();
    py.detach(move || rt().block_on(c.report(&name, &r)).map_err(err))
}

/// Hydrates a cache with what `url` names (everything under a prefix, else the object): the
/// local cache directory (`cache_dir`, else the configured one) or, with `daemon`, that
/// daemon's own cache. With `dram`, the data must also be held in memory: the node's page
/// cache over the local directory (reported with how much stayed), or the daemon's DRAM tier,
/// which must hold it all. Returns the report as JSON text; blocks the cache could not store
/// are an error.
#[pyfunction]
#[pyo3(signature = (url, *, dram=false, cache_dir=None, daemon=None))]
fn warm(
    py: Python<'_>,
    url: &str,
    dram: bool,
    cache_dir: Option<&str>,
    daemon: Option<&str>,
) -> PyResult<String> {
    let u = StoreUrl::parse(url).map_err(|e| PyValueError::new_err(e.to_string()))?;
    if let Some(addr) = daemon {
        let c = daemon_client(addr)?;
        let url = u.to_string();
        let st = py.detach(move || rt().block_on(c.warm(&url, &|_| {})).map_err(err))?;
        if st.not_cached_blocks > 0 || (dram && st.dram_bytes < st.total_bytes) {
            return Err(err(format!(
                "warm {}: the daemon's cache stored {} block(s) fewer than it read ({}), and its DRAM tier holds {} of {} bytes (its size: {})",
                st.url,
                st.not_cached_blocks,
                st.not_cached_reason.as_deref().unwrap_or("none declined"),
                st.dram_bytes,
                st.total_bytes,
                st.dram_capacity
            )));
        }
        return serde_json::to_string(&st).map_err(err);
    }
    let cfg = settings(cache_dir)?;
    let store = strata_store::Store::open(&u, &cfg.store).map_err(store_err)?;
    py.detach(move || {
        rt().block_on(async move {
            // This process's DRAM dies with it: the NVMe tier, and the page cache over it.
            let mut cc = cfg.cache.cache_config(true);
            cc.dram_bytes = 0;
            let cache = strata_cache::BlockCache::open(&cc).map_err(err)?;
            let versions = strata_cache::objects_named(&store, &u)
                .await
                .map_err(store_err)?;
            let report = strata_cache::warm(
                &cache,
                &store,
                &versions,
                cfg.store.transfer.concurrency,
                &|_| {},
            )
            .await
            .map_err(err)?;
            if let Some(why) = report.incomplete(&cfg.cache.dir) {
                return Err(err(format!("warm {u}: {why}")));
            }
            let mut v = serde_json::to_value(&report).map_err(err)?;
            if dram {
                let h = strata_cache::hold_in_page_cache(&cache, &versions)
                    .await
                    .map_err(err)?;
                v["page_cache"] = serde_json::to_value(&h).map_err(err)?;
            }
            Ok(v.to_string())
        })
    })
}

/// `range` (start, end) of the object at `url`, read through the daemon at `addr`.
#[pyfunction]
#[pyo3(signature = (addr, url, start=None, end=None))]
fn daemon_read<'py>(
    py: Python<'py>,
    addr: &str,
    url: &str,
    start: Option<u64>,
    end: Option<u64>,
) -> PyResult<Bound<'py, PyBytes>> {
    let c = daemon_client(addr)?;
    let url = url.to_string();
    let b = py.detach(move || {
        rt().block_on(async {
            let (size, etag) = c.stat(&url).await?;
            let (s, e) = (start.unwrap_or(0).min(size), end.unwrap_or(size).min(size));
            c.read_pinned(&url, &etag, size, s..e.max(s), false).await
        })
        .map_err(err)
    })?;
    Ok(PyBytes::new(py, &b))
}

fn world(ranks: u32, rank: u32, workers: u32, worker: u32) -> PyResult<World> {
    let w = World {
        ranks,
        rank,
        workers,
        worker,
    };
    w.validate()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(w)
}

fn remainder(drop_last: bool) -> Remainder {
    if drop_last {
        Remainder::DropLast
    } else {
        Remainder::Pad
    }
}

#[pymodule]
fn _strata(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("StrataError", m.py().get_type::<StrataError>())?;
    m.add_class::<SampleReader>()?;
    ckpt::register(m)?;
    models::register(m)?;
    m.add_function(wrap_pyfunction!(open_reader, m)?)?;
    m.add_function(wrap_pyfunction!(daemon_health, m)?)?;
    m.add_function(wrap_pyfunction!(daemon_report, m)?)?;
    m.add_function(wrap_pyfunction!(daemon_read, m)?)?;
    m.add_function(wrap_pyfunction!(warm, m)?)?;
    m.add_function(wrap_pyfunction!(pack, m)?)?;
    m.add_function(wrap_pyfunction!(drain_reader, m)?)?;
    m.add_function(wrap_pyfunction!(open_dataset, m)?)?;
    m.add_function(wrap_pyfunction!(partition_len, m)?)?;
    m.add_function(wrap_pyfunction!(partition_state, m)?)?;
    m.add_function(wrap_pyfunction!(index, m)?)?;
    Ok(())
}
