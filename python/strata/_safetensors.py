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


def layout(
    tensors: Iterable[Tuple[str, np.ndarray, str]], metadata: Dict[str, str]
) -> Tuple[bytes, List[np.ndarray]]:
    """The safetensors file of ``(name, array, st_dtype)`` triples as its header (the 8-byte
    length and the JSON, padded to 8 bytes) and the arrays whose bytes follow it, in file
    order: ``header + b"".join(arrays)`` is the file, and nothing is copied to say so.

    Arrays are made C-contiguous (copied only if they are not) and laid out by element size,
    largest first, so that every tensor starts at a multiple of its element size in the file
    (a mapped file or a page-aligned buffer then gives aligned views)."""
    triples = [(n, a if a.flags.c_contiguous else a.copy(order="C"), dt) for n, a, dt in tensors]
    # Not np.ascontiguousarray above: it turns a 0-d array into shape (1,).
    triples.sort(key=lambda t: -t[1].dtype.itemsize)
    header: Dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    at = 0
    for name, arr, dt in triples:
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [at, at + arr.nbytes]}
        at += arr.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    return struct.pack("<Q", len(text)) + text, [arr for _, arr, _ in triples]


def segments(header: bytes, arrays: List[np.ndarray]) -> List[Any]:
    """The buffers that make the file of :func:`layout`: the header, then each array's own
    memory as bytes (empty arrays left out)."""
    return [header] + [memoryview(a.reshape(-1).view(np.uint8)) for a in arrays if a.nbytes]


def write(path: str, tensors: Iterable[Tuple[str, np.ndarray, str]], metadata: Dict[str, str]) -> int:
    """Writes ``(name, array, st_dtype)`` triples to ``path`` (fsynced). Returns the bytes
    written. Arrays are made C-contiguous (copied only if they are not)."""
    import os

    header, arrays = layout(tensors, metadata)
    n = 0
    with open(path, "wb") as f:
        for seg in segments(header, arrays):
            n += f.write(seg)
        f.flush()
        os.fsync(f.fileno())
    return n


def read(buf: Any) -> Dict[str, Tuple[np.ndarray, str]]:
    """Views of every tensor in a safetensors file held in ``buf`` (bytes, mmap, a uint8
    array, anything with the buffer or array interface): name -> (array viewing ``buf``,
    safetensors dtype). Nothing is copied; the views are writable when ``buf`` is."""
    u8 = buf if isinstance(buf, np.ndarray) else np.frombuffer(buf, dtype=np.uint8)
    if len(u8) < 8:
        raise ValueError(f"not a safetensors file: {len(u8)} bytes")
    (n,) = struct.unpack("<Q", u8[:8].tobytes())
    if 8 + n > len(u8):
        raise ValueError(f"not a safetensors file: a header of {n} bytes in {len(u8)}")
    header = json.loads(u8[8 : 8 + n].tobytes())
    start = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        dt = FROM_ST[t["dtype"]]
        b, e = t["data_offsets"]
        if not 0 <= b <= e <= len(u8) - start or (e - b) % dt.itemsize:
            raise ValueError(f"tensor {name!r}: data_offsets {b}..{e} outside the file or not whole elements")
        arr = u8[start + b : start + e].view(dt).reshape(t["shape"])
        out[name] = (arr, t["dtype"])
    return out
