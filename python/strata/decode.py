"""Decoders for sample members, by extension, following WebDataset's conventions."""

import io
import json as _json
from typing import Any, Callable, Dict

import numpy as np


def npy(data: bytes) -> np.ndarray:
    """A ``.npy`` member as an array."""
    return np.load(io.BytesIO(data), allow_pickle=False)


def json(data: bytes) -> Any:
    """A ``.json`` member, parsed."""
    return _json.loads(data)


def txt(data: bytes) -> str:
    """A ``.txt`` member as text (UTF-8)."""
    return data.decode("utf-8")


def cls(data: bytes) -> int:
    """A ``.cls`` member (a class label written as text) as an int."""
    return int(data.decode("ascii").strip())


#: Extension (the last dot-separated part of the member name) -> decoder.
DECODERS: Dict[str, Callable[[bytes], Any]] = {
    "npy": npy,
    "json": json,
    "txt": txt,
    "cls": cls,
}


def sample(s: Dict[str, Any]) -> Dict[str, Any]:
    """Decodes every member of a sample dict whose extension has a decoder; keys starting
    with ``__`` and unknown extensions are left as they are."""
    out = {}
    for k, v in s.items():
        if k.startswith("__") or not isinstance(v, (bytes, bytearray, memoryview)):
            out[k] = v
            continue
        f = DECODERS.get(k.rsplit(".", 1)[-1])
        out[k] = f(bytes(v)) if f else v
    return out
