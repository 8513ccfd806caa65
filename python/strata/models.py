"""``strata.models``: a model's tensors from object storage, pulled once per node into the
node cache and handed over as views of the cached files (memory maps), without copies.

:func:`stream` yields each tensor as soon as its bytes are on the node (the safetensors
headers first, then the files in order), so a server can start copying to its devices while
the rest arrives; :func:`load` is ``dict(stream(...))``."""

import mmap
import threading
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from . import _safetensors, _strata

_lock = threading.Lock()
#: Streams whose pull may still be publishing (see :func:`wait`).
_streams: List[Any] = []


def pull(
    url: str,
    *,
    cache_dir: Optional[str] = None,
    tensors: Optional[Iterable[str]] = None,
    verify: bool = False,
) -> Dict[str, Any]:
    """Pulls the model at ``url`` (every file under it) into the node cache, once per node
    however many processes ask; returns the report (``dir``, ``bytes``,
    ``first_tensor_secs``, ...). ``tensors``: names or prefixes (``"layers.0."``) to pull
    only. A cached copy is served when every file has its recorded size; with
    ``verify=True`` every file's CRC32C is checked first. A damaged copy is pulled again."""
    return _strata.models_pull(url, cache_dir=cache_dir, tensors=list(tensors or []), verify=verify)


def _check_framework(framework: str) -> None:
    if framework not in ("numpy", "torch"):
        raise ValueError(f"framework={framework!r}: use 'numpy' or 'torch'")


def _view(fd: int, dtype: str, shape: List[int], start: int, end: int, framework: str):
    """The tensor at bytes ``start..end`` of the open file ``fd`` as an array over its own
    private map of the file (copy-on-write: nothing is copied unless written). One map per
    tensor: a write to one tensor copies only its own pages, never a neighbour's page before
    the neighbour's bytes have landed."""
    dt = _safetensors.FROM_ST[dtype]
    if end == start:
        arr = np.zeros(shape, dtype=dt)
    else:
        at = start - start % mmap.ALLOCATIONGRANULARITY
        mm = mmap.mmap(fd, end - at, offset=at, access=mmap.ACCESS_COPY)
        arr = np.frombuffer(mm, dtype=dt, count=(end - start) // dt.itemsize, offset=start - at).reshape(shape)
    return _torch_view(arr, dtype) if framework == "torch" else arr


def stream(
    url: str,
    *,
    cache_dir: Optional[str] = None,
    tensors: Optional[Iterable[str]] = None,
    framework: str = "numpy",
    verify: bool = False,
) -> Iterator[Tuple[str, Any]]:
    """Pulls the model (see :func:`pull`) and yields ``(name, tensor)`` as soon as each
    tensor's bytes are on the node, in file order per file. The iteration ends with the last
    tensor; the pull's fsync and publication finish in the background (:func:`wait` waits for
    them; a model already cached is yielded at once). Tensors are views of the cached files
    as in :func:`load`. ``verify``: as for :func:`pull`."""
    _check_framework(framework)
    native = _strata.models_stream(url, cache_dir=cache_dir, tensors=list(tensors or []), verify=verify)
    with _lock:
        _streams.append(native)
    for fd, _file, name, dtype, shape, start, end in native:
        yield name, _view(fd, dtype, shape, start, end, framework)


def wait() -> List[Dict[str, Any]]:
    """Waits until every pull that :func:`stream` or :func:`load` started has published the
    model in the node cache; returns their reports (raises a pull's error)."""
    with _lock:
        todo = list(_streams)
        _streams.clear()
    return [s.wait() for s in todo]


def load(
    url: str,
    *,
    cache_dir: Optional[str] = None,
    tensors: Optional[Iterable[str]] = None,
    framework: str = "numpy",
    verify: bool = False,
) -> Dict[str, Any]:
    """Pulls the model (see :func:`pull`) and returns tensor name -> array viewing the
    cached file (a private copy-on-write map: nothing is copied unless you write to it).
    Returns once every tensor is on the node (``dict(stream(...))``).

    numpy has no bfloat16 or float8: those come back as their raw bits (uint16, uint8);
    ``framework="torch"`` returns torch tensors of the right dtype, sharing the same memory.
    """
    return dict(stream(url, cache_dir=cache_dir, tensors=tensors, framework=framework, verify=verify))


def _wait_at_exit() -> None:
    try:
        wait()
    except Exception:  # noqa: BLE001 - the error was raised to the caller already, or the
        pass  # pull resumes next time


import atexit  # noqa: E402

atexit.register(_wait_at_exit)


def _torch_view(arr: np.ndarray, dtype: str):
    import torch

    t = torch.from_numpy(arr)
    if dtype == "BF16":
        return t.view(torch.bfloat16)
    if dtype == "F8_E4M3" and hasattr(torch, "float8_e4m3fn"):
        return t.view(torch.float8_e4m3fn)
    if dtype == "F8_E5M2" and hasattr(torch, "float8_e5m2"):
        return t.view(torch.float8_e5m2)
    return t
