"""``strata.models``: a model's tensors from object storage, pulled once per node into the
node cache and handed over as views of the cached files (memory maps), without copies."""

import mmap
import os
from typing import Any, Dict, Iterable, Optional

import numpy as np

from . import _safetensors, _strata


def pull(url: str, *, cache_dir: Optional[str] = None, tensors: Optional[Iterable[str]] = None) -> Dict[str, Any]:
    """Pulls the model at ``url`` (every file under it) into the node cache, once per node
    however many processes ask; returns the report (``dir``, ``bytes``,
    ``first_tensor_secs``, ...). ``tensors``: names or prefixes (``"layers.0."``) to pull
    only."""
    return _strata.models_pull(url, cache_dir=cache_dir, tensors=list(tensors or []))


def load(
    url: str,
    *,
    cache_dir: Optional[str] = None,
    tensors: Optional[Iterable[str]] = None,
    framework: str = "numpy",
) -> Dict[str, Any]:
    """Pulls the model (see ``pull``) and returns tensor name -> array viewing the cached
    file (a private copy-on-write map: nothing is copied unless you write to it).

    numpy has no bfloat16 or float8: those come back as their raw bits (uint16, uint8);
    ``framework="torch"`` returns torch tensors of the right dtype, sharing the same memory.
    """
    if framework not in ("numpy", "torch"):
        raise ValueError(f"framework={framework!r}: use 'numpy' or 'torch'")
    report = pull(url, cache_dir=cache_dir, tensors=tensors)
    d = report["dir"]
    maps: Dict[str, mmap.mmap] = {}
    out: Dict[str, Any] = {}
    for file, name, dtype, shape, start, end in _strata.model_tensors(d):
        mm = maps.get(file)
        if mm is None:
            with open(os.path.join(d, file), "rb") as f:
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
            maps[file] = mm
        dt = _safetensors.FROM_ST[dtype]
        arr = np.frombuffer(mm, dtype=dt, count=(end - start) // dt.itemsize, offset=start).reshape(shape)
        out[name] = _torch_view(arr, dtype) if framework == "torch" else arr
    return out


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
