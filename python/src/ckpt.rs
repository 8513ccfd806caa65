//! Checkpoints from Python. One engine [`strata_ckpt::Checkpointer`] serves every save and
//! load of a process for its (root, local tier, rank, world, mode): the Python half keeps it
//! and makes a new one after a fork. Tensors come in as buffers read in place (the buffer
//! protocol: a torch tensor's or numpy array's own memory), so a save copies each tensor
//! once; a load hands each file back as a [`LoadedFile`] viewing the engine's buffer (a
//! mapped local file, or the allocation the store's reads landed in), so nothing is copied
//! after the bytes arrive.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyFileNotFoundError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::{config_err, err, json_to_py, location, rt, settings};

/// Registers this module's classes and functions.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Checkpointer>()?;
    m.add_class::<SaveHandle>()?;
    m.add_class::<LoadedFile>()?;
    m.add_function(wrap_pyfunction!(ckpt_open, m)?)?;
    Ok(())
}

/// A checkpoint save in progress: its stall is known; `wait()` blocks (GIL released) until
/// it is committed.
#[pyclass(module = "strata._strata")]
struct SaveHandle {
    #[pyo3(get)]
    step: u64,
    #[pyo3(get)]
    stall_secs: f64,
    #[pyo3(get)]
    bytes: u64,
    handle: Mutex<Option<strata_ckpt::SaveHandle>>,
    tracker: strata_ckpt::DrainTracker,
    _ck: Arc<strata_ckpt::Checkpointer>,
}

#[pymethods]
impl SaveHandle {
    /// (bytes uploaded, bytes to upload) of the drain so far; (0, 0) before it uploads.
    fn progress(&self) -> (u64, u64) {
        self.tracker.progress()
    }

    /// Whether the drain has ended (committed or failed).
    fn done(&self) -> bool {
        self.tracker.is_done()
    }

    /// Waits for the drain and commit; returns its report as a dict (JSON-shaped).
    fn wait(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let h = self
            .handle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| PyValueError::new_err("wait() was already called"))?;
        let report = py.detach(move || rt().block_on(h.wait()).map_err(err))?;
        json_to_py(py, &serde_json::to_value(&report).map_err(err)?)
    }
}

/// A checkpointer's settings: the `[ckpt]` section with the call's `local` and `mode` over
/// it, for `purpose` (`strata_ckpt::CkptConfig::from_settings`).
fn ckpt_config(
    root: Option<&str>,
    local: Option<&str>,
    (rank, world): (u32, u32),
    mode: Option<&str>,
    purpose: strata_ckpt::Purpose,
) -> PyResult<strata_ckpt::CkptConfig> {
    let mut cfg = settings(None)?;
    cfg.sources
        .set_flags::<strata_ckpt::CkptSettings>(strata_ckpt::CkptLayer {
            local: local.map(str::to_string),
            mode: mode.map(str::to_string),
            ..Default::default()
        });
    let ck: strata_ckpt::CkptSettings = cfg.sources.get().map_err(config_err)?;
    let remote = root.map(|r| location(r, &cfg)).transpose()?;
    let mut c =
        strata_ckpt::CkptConfig::from_settings(&ck, &cfg.store, remote, purpose).map_err(err)?;
    c.rank = rank;
    c.world_size = world;
    Ok(c)
}

/// The engine's checkpointer for one (root, local tier, rank, world, mode).
#[pyclass(module = "strata._strata")]
struct Checkpointer {
    ck: Arc<strata_ckpt::Checkpointer>,
}

/// Opens a checkpointer for the checkpoint root `root` (a URL, or None for local only) with
/// the local tier `local`; `read`: for loads and listings only (no save mode needed).
#[pyfunction]
#[pyo3(signature = (root, local, *, rank=0, world=1, mode=None, read=false))]
fn ckpt_open(
    py: Python<'_>,
    root: Option<&str>,
    local: Option<&str>,
    rank: u32,
    world: u32,
    mode: Option<&str>,
    read: bool,
) -> PyResult<Checkpointer> {
    let purpose = if read {
        strata_ckpt::Purpose::Read
    } else {
        strata_ckpt::Purpose::Save
    };
    let c = ckpt_config(root, local, (rank, world), mode, purpose)?;
    let ck = py.detach(move || {
        let _in_runtime = rt().enter();
        strata_ckpt::Checkpointer::open(c).map_err(err)
    })?;
    Ok(Checkpointer { ck: Arc::new(ck) })
}

/// A Python buffer read in place: the memory of a tensor or array, held (and kept from being
/// freed) until the engine is done with it.
struct Borrowed(PyBuffer<u8>);

impl AsRef<[u8]> for Borrowed {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the buffer is C-contiguous (checked when borrowed) and non-empty, and
        // `PyBuffer` keeps the exporter's memory alive and in place until it is released.
        unsafe { std::slice::from_raw_parts(self.0.buf_ptr() as *const u8, self.0.len_bytes()) }
    }
}

/// The segments of one item as `Bytes` over the callers' memory (no copy).
fn borrow_segments(name: &str, buffers: Vec<PyBuffer<u8>>) -> PyResult<Vec<Bytes>> {
    buffers
        .into_iter()
        .filter(|b| b.len_bytes() > 0)
        .map(|b| {
            if !b.is_c_contiguous() {
                return Err(PyValueError::new_err(format!(
                    "checkpoint item {name:?}: a segment is not contiguous in memory"
                )));
            }
            Ok(Bytes::from_owner(Borrowed(b)))
        })
        .collect()
}

#[pymethods]
impl Checkpointer {
    /// Saves `items` (a list of `(name, [buffer, ...])`: each item's bytes are its buffers
    /// one after another, read in place) as step `step`. Returns once the mode says
    /// (durable-local: written and fsynced on the local tier; snapshot: copied into staging
    /// memory); the callers' buffers are not used after it returns. The drain runs on.
    fn save(
        &self,
        py: Python<'_>,
        step: u64,
        items: Vec<(String, Vec<PyBuffer<u8>>)>,
    ) -> PyResult<SaveHandle> {
        let items = items
            .into_iter()
            .map(|(name, bufs)| {
                let segs = borrow_segments(&name, bufs)?;
                Ok(strata_ckpt::Item::segments(name, segs))
            })
            .collect::<PyResult<Vec<_>>>()?;
        let ck = self.ck.clone();
        py.detach(move || {
            // The items (and with them every borrowed buffer) are dropped before `save`
            // returns: staged or written, the engine keeps no reference to them.
            let h = rt().block_on(ck.save(step, items)).map_err(err)?;
            Ok(SaveHandle {
                step: h.step,
                stall_secs: h.stall.as_secs_f64(),
                bytes: h.bytes,
                tracker: h.tracker(),
                handle: Mutex::new(Some(h)),
                _ck: ck,
            })
        })
    }

    /// Loads this rank's files of `step` (None: the newest complete checkpoint) from the
    /// nearest tier, every chunk verified; `rank`: another rank's files of `step` instead.
    /// Returns `(step, tier, {name: LoadedFile}, warnings)`.
    #[pyo3(signature = (step=None, rank=None))]
    fn load<'py>(
        &self,
        py: Python<'py>,
        step: Option<u64>,
        rank: Option<u32>,
    ) -> PyResult<(u64, String, Bound<'py, PyDict>, Vec<String>)> {
        let ck = self.ck.clone();
        let r = py.detach(move || {
            let r = match (step, rank) {
                (Some(s), Some(r)) => rt().block_on(ck.load_rank(s, r)),
                (None, Some(_)) => {
                    return Err(PyValueError::new_err("load(rank=...) needs a step"));
                }
                _ => rt().block_on(ck.load(step)),
            };
            r.map_err(|e| match e {
                strata_ckpt::CkptError::NotFound { .. } => {
                    PyFileNotFoundError::new_err(e.to_string())
                }
                e => err(e),
            })
        })?;
        let d = PyDict::new(py);
        for (n, b) in r.items {
            d.set_item(n, LoadedFile::new(b))?;
        }
        Ok((
            r.step,
            format!("{:?}", r.tier).to_lowercase(),
            d,
            r.warnings,
        ))
    }

    /// Drains the local tier's complete checkpoints that never reached the store (newer
    /// than the store's newest, oldest first); returns their drain reports as dicts.
    fn sync(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let ck = self.ck.clone();
        let drained = py.detach(move || rt().block_on(ck.sync()).map_err(err))?;
        json_to_py(py, &serde_json::to_value(&drained).map_err(err)?)
    }

    /// The checkpoints under the root and the local tier: a list of dicts (step, complete,
    /// tiers, ...).
    fn list(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let ck = self.ck.clone();
        let list = py.detach(move || rt().block_on(ck.list()).map_err(err))?;
        json_to_py(py, &serde_json::to_value(&list).map_err(err)?)
    }
}

/// One restored file: the engine's buffer (a verified local file mapped copy-on-write, or
/// the allocation the store's reads landed in), viewed by numpy through
/// `__array_interface__` without a copy (`numpy.asarray(f)`: a writable uint8 array that
/// keeps this object alive).
#[pyclass(module = "strata._strata")]
struct LoadedFile {
    /// Held for the views' lifetime; its memory is read and written through `ptr`.
    _buf: strata_ckpt::Buffer,
    ptr: usize,
    len: usize,
    mapped: bool,
}

impl LoadedFile {
    fn new(mut buf: strata_ckpt::Buffer) -> Self {
        let mapped = buf.is_mapped();
        let (ptr, len) = {
            let s: &mut [u8] = &mut buf;
            (s.as_mut_ptr() as usize, s.len())
        };
        Self {
            _buf: buf,
            ptr,
            len,
            mapped,
        }
    }
}

#[pymethods]
impl LoadedFile {
    /// numpy's array interface (version 3): the bytes as a writable 1-D uint8 array.
    #[getter]
    fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("shape", (self.len,))?;
        d.set_item("typestr", "|u1")?;
        d.set_item("data", (self.ptr, false))?;
        d.set_item("version", 3)?;
        Ok(d)
    }

    fn __len__(&self) -> usize {
        self.len
    }

    /// Whether the bytes are a mapped local file (False: memory the store's reads filled).
    #[getter]
    fn mapped(&self) -> bool {
        self.mapped
    }
}
