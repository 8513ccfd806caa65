//! Models from Python: a pull into the node cache, the tensors of a pulled model, and a
//! pull that streams, reporting each tensor as soon as its bytes are on the node.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyFileNotFoundError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;
use strata_store::StoreUrl;

use crate::{err, json_to_py, rt, settings, store_err};

/// Registers this module's classes and functions.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ModelStream>()?;
    m.add_function(wrap_pyfunction!(models_pull, m)?)?;
    m.add_function(wrap_pyfunction!(models_stream, m)?)?;
    m.add_function(wrap_pyfunction!(model_tensors, m)?)?;
    Ok(())
}

/// A pull's error as Python sees it: an empty prefix is a `FileNotFoundError`.
fn pull_err(e: strata_models::ModelError) -> PyErr {
    match e {
        strata_models::ModelError::Empty(_) => PyFileNotFoundError::new_err(e.to_string()),
        e => err(e),
    }
}

/// The store, URL and model repository a pull of `url` uses.
fn open_pull(
    url: &str,
    cache_dir: Option<&str>,
) -> PyResult<(strata_store::Store, StoreUrl, strata_models::ModelRepo)> {
    let cfg = settings(cache_dir)?;
    let u = StoreUrl::parse(url).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let store = strata_store::Store::open(&u, &cfg.store).map_err(store_err)?;
    let repo = strata_models::ModelRepo::open(&cfg.cache.dir).map_err(err)?;
    Ok((store, u, repo))
}

/// Pulls the model at `url` into the node cache (`cache_dir`, else the configured one) and
/// returns the pull report as a dict.
#[pyfunction]
#[pyo3(signature = (url, *, cache_dir=None, tensors=Vec::new(), verify=false))]
pub(crate) fn models_pull(
    py: Python<'_>,
    url: &str,
    cache_dir: Option<&str>,
    tensors: Vec<String>,
    verify: bool,
) -> PyResult<Py<PyAny>> {
    let (store, u, repo) = open_pull(url, cache_dir)?;
    let report = py.detach(move || {
        rt().block_on(async move {
            let opts = strata_models::PullOptions {
                tensors,
                verify,
                ..Default::default()
            };
            strata_models::pull(&repo, &store, &u, &opts)
                .await
                .map_err(pull_err)
        })
    })?;
    json_to_py(py, &serde_json::to_value(&report).map_err(err)?)
}

/// The tensors of a pulled model directory: a list of `(file, name, dtype, shape, start,
/// end)`, byte offsets into the file (validated headers).
#[pyfunction]
fn model_tensors<'py>(py: Python<'py>, dir: &str) -> PyResult<Bound<'py, PyList>> {
    let m = strata_models::Model::open(std::path::Path::new(dir)).map_err(err)?;
    let out = PyList::empty(py);
    for (file, t) in m.tensor_infos() {
        out.append((file, &t.name, t.dtype.name(), &t.shape, t.start, t.end))?;
    }
    Ok(out)
}

/// One event of a streaming pull.
enum Event {
    /// A tensor whose bytes are on the node, the file it is in (opened when the tensor
    /// landed, so the file stays reachable when the pull renames its directory), and whether
    /// it is the last.
    Tensor(TensorRow, Arc<File>, bool),
    /// The pull ended: its report, or its error.
    End(Result<strata_models::PullReport, strata_models::ModelError>),
}

/// (descriptor of the open file, file, tensor name, dtype, shape, start, end): byte offsets
/// into the file. The descriptor stays open while the stream lives.
type TensorRow = (i32, String, String, String, Vec<u64>, u64, u64);

fn row(file_fd: &File, file: &str, t: &strata_models::safetensors::TensorInfo) -> TensorRow {
    (
        file_fd.as_raw_fd(),
        file.to_string(),
        t.name.clone(),
        t.dtype.name().to_string(),
        t.shape.clone(),
        t.start,
        t.end,
    )
}

/// Where a stream is.
enum Phase {
    /// Tensors come from the pull as they land.
    Streaming,
    /// The pull reported none (the model was already cached, or another process published
    /// it meanwhile): the published directory's tensors, in order.
    Listing(std::collections::VecDeque<TensorRow>),
    /// Every tensor was yielded.
    Done,
}

/// A pull under way, iterated for its tensors as they land: each item is `(path, file,
/// name, dtype, shape, start, end)`, in file order per file; the iteration ends after the
/// last tensor (the pull's fsync and publication then finish in the background: `wait()`
/// returns the report once they have). A model already cached yields its tensors at once.
#[pyclass(module = "strata._strata")]
struct ModelStream {
    rx: Mutex<std::sync::mpsc::Receiver<Event>>,
    /// The files of the tensors yielded, open while the stream lives.
    files: Mutex<HashMap<usize, Arc<File>>>,
    phase: Mutex<Phase>,
    report: Mutex<Option<Result<strata_models::PullReport, String>>>,
}

/// The pull's task ended without a word: its runtime is gone (a fork).
fn lost() -> PyErr {
    err("the model pull stopped (was the process forked while it ran?)")
}

#[pymethods]
impl ModelStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<TensorRow>> {
        loop {
            {
                let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
                match &mut *phase {
                    Phase::Done => return Ok(None),
                    Phase::Listing(rows) => {
                        let r = rows.pop_front();
                        if rows.is_empty() {
                            *phase = Phase::Done;
                        }
                        return Ok(r);
                    }
                    Phase::Streaming => {}
                }
            }
            let ev = py.detach(|| self.rx.lock().unwrap_or_else(|e| e.into_inner()).recv());
            match ev.map_err(|_| lost())? {
                Event::Tensor(r, file, last) => {
                    self.files
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(Arc::as_ptr(&file) as usize, file);
                    if last {
                        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = Phase::Done;
                    }
                    return Ok(Some(r));
                }
                Event::End(result) => {
                    let dir = self.keep(result)?;
                    // No tensor was streamed: list the published directory's.
                    let m = strata_models::Model::open(&dir).map_err(err)?;
                    let mut open = self.files.lock().unwrap_or_else(|e| e.into_inner());
                    let mut by_name: HashMap<String, Arc<File>> = HashMap::new();
                    let mut rows = std::collections::VecDeque::new();
                    for (file, t) in m.tensor_infos() {
                        let f = match by_name.get(file) {
                            Some(f) => f.clone(),
                            None => {
                                let p = dir.join(file);
                                let f = Arc::new(
                                    File::open(&p)
                                        .map_err(|e| err(format!("{}: {e}", p.display())))?,
                                );
                                open.insert(Arc::as_ptr(&f) as usize, f.clone());
                                by_name.insert(file.to_string(), f.clone());
                                f
                            }
                        };
                        rows.push_back(row(&f, file, t));
                    }
                    *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = if rows.is_empty() {
                        Phase::Done
                    } else {
                        Phase::Listing(rows)
                    };
                }
            }
        }
    }

    /// Waits for the pull to finish (fsync and publication) and returns its report as a
    /// dict; raises the pull's error.
    fn wait(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        loop {
            if let Some(r) = self
                .report
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
            {
                let report = r.clone().map_err(err)?;
                return json_to_py(py, &serde_json::to_value(&report).map_err(err)?);
            }
            let ev = py.detach(|| self.rx.lock().unwrap_or_else(|e| e.into_inner()).recv());
            if let Event::End(result) = ev.map_err(|_| lost())? {
                // An error is kept and raised above.
                let _ = self.keep(result);
            }
        }
    }
}

impl ModelStream {
    /// Keeps the pull's outcome; returns the published directory, or the pull's error.
    fn keep(
        &self,
        result: Result<strata_models::PullReport, strata_models::ModelError>,
    ) -> PyResult<std::path::PathBuf> {
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(r) => {
                let dir = r.dir.clone();
                *report = Some(Ok(r));
                Ok(dir)
            }
            Err(e) => {
                *report = Some(Err(e.to_string()));
                *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = Phase::Done;
                Err(pull_err(e))
            }
        }
    }
}

/// Starts pulling the model at `url` into the node cache and returns a [`ModelStream`] of
/// its tensors as they land.
#[pyfunction]
#[pyo3(signature = (url, *, cache_dir=None, tensors=Vec::new(), verify=false))]
fn models_stream(
    url: &str,
    cache_dir: Option<&str>,
    tensors: Vec<String>,
    verify: bool,
) -> PyResult<ModelStream> {
    let (store, u, repo) = open_pull(url, cache_dir)?;
    let (tx, rx) = std::sync::mpsc::channel();
    let on_tensor: strata_models::pull::TensorCallback = {
        // One open file per path, made when its first tensor lands (before the publishing
        // rename can move it).
        let state = Mutex::new((tx.clone(), HashMap::<std::path::PathBuf, Arc<File>>::new()));
        Arc::new(move |t: &strata_models::TensorReady| {
            let mut g = state.lock().unwrap_or_else(|e| e.into_inner());
            let file = match g.1.get(&t.path) {
                Some(f) => f.clone(),
                None => match File::open(&t.path) {
                    Ok(f) => {
                        let f = Arc::new(f);
                        g.1.insert(t.path.clone(), f.clone());
                        f
                    }
                    // Not reported: the pull's own end says what went wrong, if anything.
                    Err(_) => return,
                },
            };
            let _ =
                g.0.send(Event::Tensor(row(&file, &t.file, &t.tensor), file, t.last));
        })
    };
    let opts = strata_models::PullOptions {
        tensors,
        verify,
        on_tensor: Some(on_tensor),
        ..Default::default()
    };
    rt().spawn(async move {
        let r = strata_models::pull(&repo, &store, &u, &opts).await;
        let _ = tx.send(Event::End(r));
    });
    Ok(ModelStream {
        rx: Mutex::new(rx),
        files: Mutex::new(HashMap::new()),
        phase: Mutex::new(Phase::Streaming),
        report: Mutex::new(None),
    })
}
