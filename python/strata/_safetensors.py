"""safetensors files from Python: written from numpy arrays without copying them (the
arrays' buffers go straight to the file), read as numpy views of a buffer."""

import json
import struct
from typing import Any, Dict, Iterable, List, Tuple

import numpy as np

#: numpy dtype -> safetensors dtype. bfloat16 has no numpy type; torch tensors of it are
#: written from their raw 16 bits (see ``checkpoint``).
TO_ST = {
    np.dtype("float64"): "F64",
    np.dtype("float32"): "F32",
    np.dtype("float16"): "F16",
    np.dtype("int64"): "I64",
    np.dtype("int32"): "I32",
    np.dtype("int16"): "I16",
    np.dtype("int8"): "I8",
    np.dtype("uint64"): "U64",
    np.dtype("uint32"): "U32",
    np.dtype("uint16"): "U16",
    np.dtype("uint8"): "U8",
    np.dtype("bool"): "BOOL",
}

#: safetensors dtype -> numpy dtype used for the view (BF16 and F8 as raw unsigned ints).
FROM_ST = {v: k for k, v in TO_ST.items()}
FROM_ST.update({"BF16": np.dtype("uint16"), "F8_E4M3": np.dtype("uint8"), "F8_E5M2": np.dtype("uint8")})


def write(path: str, tensors: Iterable[Tuple[str, np.ndarray, str]], metadata: Dict[str, str]) -> int:
    """Writes ``(name, array, st_dtype)`` triples to ``path`` (fsynced). Returns the bytes
    written. Arrays are made C-contiguous (copied only if they are not)."""
    items: List[Tuple[str, np.ndarray, str]] = []
    header: Dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    at = 0
    for name, arr, dt in tensors:
        # Not np.ascontiguousarray: it turns a 0-d array into shape (1,).
        arr = arr if arr.flags.c_contiguous else arr.copy(order="C")
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [at, at + arr.nbytes]}
        at += arr.nbytes
        items.append((name, arr, dt))
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    import os

    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, arr, _ in items:
            if arr.nbytes:
                f.write(memoryview(arr).cast("B"))
        f.flush()
        os.fsync(f.fileno())
    return 8 + len(text) + at


def read(buf: Any) -> Dict[str, Tuple[np.ndarray, str]]:
    """Views of every tensor in a safetensors file held in ``buf`` (bytes, mmap, ...):
    name -> (array viewing ``buf``, safetensors dtype). Nothing is copied."""
    mv = memoryview(buf)
    (n,) = struct.unpack("<Q", mv[:8])
    header = json.loads(bytes(mv[8 : 8 + n]))
    start = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        dt = FROM_ST[t["dtype"]]
        b, e = t["data_offsets"]
        count = (e - b) // dt.itemsize
        arr = np.frombuffer(buf, dtype=dt, count=count, offset=start + b).reshape(t["shape"])
        out[name] = (arr, t["dtype"])
    return out
