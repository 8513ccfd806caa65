"""``strata.checkpoint``: save and load training state with Strata's checkpoint engine.

Tensors (numpy arrays, and torch tensors when torch is there) go to ``tensors.safetensors``,
a file the ``safetensors`` package reads as it is; everything else (numbers, strings, nested
dicts, lists and tuples) to ``state.json``, with each tensor replaced by
``{"__tensor__": name}``, tuples by ``{"__tuple__": [...]}`` and dicts with int keys (an
optimizer's state) by ``{"__items__": [[key, value], ...]}``, so they come back as they were.
The engine then saves the two files as checkpoint ``step``: durable-local (returns once
fsynced on the local tier) or snapshot, and drains them to the store in the background.

No file is written twice and no tensor is copied on the way: the engine reads each tensor's
own memory (a durable-local save writes it once into the local tier's file; a snapshot copies
it once into reused staging memory, on every core), and a load hands back views of the
engine's buffers (a verified local file mapped copy-on-write, or the memory the store's reads
landed in). One engine checkpointer serves a process per (root, local tier, rank, world, mode)
and is made again after a fork; :func:`close` releases them, :func:`wait` waits for every
drain the process started.
"""

import builtins
import json
import os
import threading
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .. import _safetensors, _strata

TENSORS = "tensors.safetensors"
STATE = "state.json"


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def _flatten(state: Any, prefix: str, tensors: list) -> Any:
    if isinstance(state, np.ndarray):
        tensors.append((prefix, state, _safetensors.TO_ST[state.dtype]))
        return {"__tensor__": prefix}
    if _is_torch(state):
        t = state.detach().cpu().contiguous()
        if str(t.dtype) == "torch.bfloat16":
            arr, dt = t.view(_torch().int16).numpy().view(np.uint16), "BF16"
        else:
            arr = t.numpy()
            dt = _safetensors.TO_ST[arr.dtype]
        tensors.append((prefix, arr, dt))
        return {"__tensor__": prefix, "__torch__": True}
    if isinstance(state, dict):
        for k in state:
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"state key {k!r} at {prefix or 'the top'}: keys must be strings or ints")
        if all(isinstance(k, str) for k in state):
            return {k: _flatten(v, f"{prefix}.{k}" if prefix else k, tensors) for k, v in state.items()}
        # Int keys (an optimizer's per-parameter state) survive JSON as [key, value] pairs.
        return {
            "__items__": [
                [k, _flatten(v, f"{prefix}.{k}" if prefix else str(k), tensors)] for k, v in state.items()
            ]
        }
    if isinstance(state, (builtins.list, tuple)):
        items = [_flatten(v, f"{prefix}.{i}" if prefix else str(i), tensors) for i, v in enumerate(state)]
        return {"__tuple__": items} if isinstance(state, tuple) else items
    if state is None or isinstance(state, (bool, int, float, str)):
        return state
    if isinstance(state, (np.integer, np.floating, np.bool_)):
        return state.item()
    raise TypeError(f"state at {prefix or 'the top'}: {type(state).__name__} cannot be saved")


def _torch():
    import torch

    return torch


_lock = threading.Lock()
#: (pid, root, local, rank, world, mode, read, settings) -> the engine's checkpointer.
_checkpointers: Dict[Tuple, Any] = {}
#: Saves of this process whose drain was not waited for yet.
_pending: List["Handle"] = []


def _settings_key() -> Tuple:
    """What else decides a checkpointer's settings: the STRATA_* and AWS_* variables (the
    config file is named by one of them)."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(("STRATA_", "AWS_"))))


def _checkpointer(root, local, rank, world, mode, read=False):
    """The process's checkpointer for these settings (made on first use, and again in a
    forked child: the parent's drain task does not exist there)."""
    key = (os.getpid(), root, local, rank, world, mode, read, _settings_key())
    with _lock:
        ck = _checkpointers.get(key)
        if ck is None:
            if any(k[0] != key[0] for k in _checkpointers):
                # Forked: the parent's checkpointers belong to the parent's runtime.
                _checkpointers.clear()
                _pending.clear()
            ck = _strata.ckpt_open(root, local, rank=rank, world=world, mode=mode, read=read)
            _checkpointers[key] = ck
        return ck


def wait() -> List[Dict[str, Any]]:
    """Waits for the drain of every save this process started and not yet waited for;
    returns their reports (raises the first failure after waiting for all)."""
    with _lock:
        todo = [h for h in _pending if h._pid == os.getpid()]
        _pending.clear()
    reports, failure = [], None
    for h in todo:
        try:
            reports.append(h.wait())
        except Exception as e:  # noqa: BLE001 - raised below, after the others
            failure = failure or e
    if failure is not None:
        raise failure
    return reports


def close() -> None:
    """Waits for every pending drain, then releases the process's checkpointers and their
    staging memory (the next save makes a new one)."""
    try:
        wait()
    finally:
        with _lock:
            _checkpointers.clear()


def _wait_at_exit() -> None:
    """A script that ends right after a non-blocking save still commits it."""
    try:
        wait()
    except Exception as e:  # noqa: BLE001 - the process is ending; say what was lost
        import sys

        print(f"strata: a checkpoint drain failed at exit: {e}", file=sys.stderr)


import atexit  # noqa: E402

atexit.register(_wait_at_exit)


class Handle:
    """A save in progress. ``stall_secs`` is what the save cost the caller; ``wait()`` blocks
    until the checkpoint is committed (in the store, or on the local tier without one) and
    returns the drain report."""

    def __init__(self, native):
        self._native = native
        self._pid = os.getpid()
        self._report: Optional[Dict[str, Any]] = None
        self._error: Optional[BaseException] = None
        self._waited = threading.Lock()
        self.step: int = native.step
        self.stall_secs: float = native.stall_secs
        self.bytes: int = native.bytes

    def wait(self) -> Dict[str, Any]:
        with self._waited:
            if self._report is None and self._error is None:
                try:
                    self._report = self._native.wait()
                except Exception as e:
                    self._error = e
        if self._error is not None:
            raise self._error
        return self._report

    def progress(self) -> Tuple[int, int]:
        """(bytes uploaded, bytes to upload) of the drain so far."""
        return self._native.progress()

    def done(self) -> bool:
        """Whether the drain has ended."""
        return self._native.done()


def _report_drain(h: "Handle", address: str, name: str) -> None:
    """Shows a drain on the daemon's dashboard until it ends (about twice a second)."""
    import time

    from .. import daemon as _daemon

    last = None
    while True:
        finished = h.done()
        done, total = h.progress()
        if finished and total:
            done = total
        if total and (done, total) != last:
            try:
                _daemon.Daemon(address).report(name, kind="checkpoint", drain_done=done,
                                              drain_total=total)
            except Exception:  # the dashboard is not worth failing a checkpoint for
                return
            last = (done, total)
        if finished:
            return
        time.sleep(0.5)


def save(
    state: Dict[str, Any],
    step: int,
    *,
    root: Optional[str] = None,
    local: Optional[str] = None,
    mode: Optional[str] = None,
    blocking: bool = True,
    rank: Optional[int] = None,
    world_size: Optional[int] = None,
    metadata: Optional[Dict[str, str]] = None,
) -> Handle:
    """Saves ``state`` as checkpoint ``step``.

    Args:
        root: the checkpoint root in a store (``s3://bucket/ckpt/run1``); None: local only.
        local: the local tier (NVMe) directory; default: ``ckpt.local`` from the config.
        mode: ``"durable-local"`` (default with a local tier) or ``"snapshot"``.
        blocking: wait for the drain and the commit (False: return at once; call
            ``wait()`` on the handle).
        rank, world_size: this rank among the ranks saving the checkpoint (default: RANK /
            WORLD_SIZE, else 0 of 1). Rank 0 commits once every rank's part is in.
    """
    rank = int(os.environ.get("RANK", "0")) if rank is None else rank
    world_size = int(os.environ.get("WORLD_SIZE", "1")) if world_size is None else world_size
    tensors: List = []
    skeleton = _flatten(state, "", tensors)
    meta = {"format": "strata", "step": str(step)}
    meta.update(metadata or {})
    header, arrays = _safetensors.layout(tensors, meta)
    items = [
        (TENSORS, _safetensors.segments(header, arrays)),
        (STATE, [json.dumps(skeleton).encode()]),
    ]
    native = _checkpointer(root, local, rank, world_size, mode).save(step, items)
    h = Handle(native)
    with _lock:
        _pending.append(h)
    from .. import daemon as _daemon

    address = _daemon.current()
    if address and root:
        import threading

        name = _daemon.job_name(f"{_daemon.job_name()}-ckpt-{step}-r{rank}")
        threading.Thread(target=_report_drain, args=(h, address, name), daemon=True).start()
    if blocking:
        h.wait()
        with _lock:
            if h in _pending:
                _pending.remove(h)
    return h


def _to_torch(pair):
    """A torch tensor over the loaded bytes (no copy)."""
    arr, dt = pair if isinstance(pair, tuple) else (pair, None)
    torch = _torch()
    if dt == "BF16":
        return torch.from_numpy(arr.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(arr)


def load(
    step: Optional[int] = None,
    *,
    root: Optional[str] = None,
    local: Optional[str] = None,
    rank: Optional[int] = None,
    world_size: Optional[int] = None,
    framework: str = "auto",
) -> Dict[str, Any]:
    """Loads checkpoint ``step`` (None: the newest complete one) from the nearest tier,
    every chunk verified, falling back past corrupt ones with a warning. Tensors come back as
    writable numpy arrays viewing the loaded bytes, with no copy (``framework="torch"``: torch
    tensors; ``"auto"``: as they were saved): from the local tier, a private map of the
    verified file (writes never reach it); from the store, the memory its reads landed in.
    The result has ``"__step__"`` set to the step loaded."""
    rank = int(os.environ.get("RANK", "0")) if rank is None else rank
    world_size = int(os.environ.get("WORLD_SIZE", "1")) if world_size is None else world_size
    got_step, tier, files, warnings = _checkpointer(root, local, rank, world_size, None, read=True).load(step)
    for w in warnings:
        import warnings as _w

        _w.warn(w, stacklevel=2)
    pairs = _safetensors.read(np.asarray(files[TENSORS])) if TENSORS in files else {}
    skeleton = json.loads(np.asarray(files[STATE]).tobytes()) if STATE in files else {}
    if framework not in ("auto", "numpy", "torch"):
        raise ValueError(f"framework={framework!r}: use 'auto', 'numpy' or 'torch'")
    out = _unflatten_pairs(skeleton, pairs, framework)
    if isinstance(out, dict):
        out["__step__"] = got_step
    return out


def _unflatten_pairs(skeleton: Any, pairs: Dict[str, Any], framework: str) -> Any:
    if isinstance(skeleton, dict):
        if "__items__" in skeleton and len(skeleton) == 1:
            return {k: _unflatten_pairs(v, pairs, framework) for k, v in skeleton["__items__"]}
        if "__tuple__" in skeleton and len(skeleton) == 1:
            return tuple(_unflatten_pairs(v, pairs, framework) for v in skeleton["__tuple__"])
        if "__tensor__" in skeleton:
            pair = pairs[skeleton["__tensor__"]]
            if framework == "torch" or (framework == "auto" and skeleton.get("__torch__")):
                return _to_torch(pair)
            return pair[0]
        return {k: _unflatten_pairs(v, pairs, framework) for k, v in skeleton.items()}
    if isinstance(skeleton, builtins.list):
        return [_unflatten_pairs(v, pairs, framework) for v in skeleton]
    return skeleton


def list(root: Optional[str] = None, local: Optional[str] = None) -> List[Dict[str, Any]]:  # noqa: A001
    """The checkpoints under ``root`` and ``local``, oldest first: dicts with ``step``,
    ``complete``, ``tiers``, ``bytes``, ..."""
    return _checkpointer(root, local, 0, 1, None, read=True).list()


def sync(root: Optional[str] = None, local: Optional[str] = None) -> List[Dict[str, Any]]:
    """Drains the local tier's complete checkpoints that never reached the store (a save
    killed after its local copy), those newer than the store's newest, oldest first; returns
    their drain reports. The first :func:`save` of a process does this by itself before its
    own drain. Single-rank checkpoints."""
    return _checkpointer(root, local, 0, 1, None, read=True).sync()


def latest(root: Optional[str] = None, local: Optional[str] = None) -> Optional[int]:
    """The newest complete checkpoint's step, or None."""
    done = [c["step"] for c in list(root, local) if c["complete"]]
    return max(done) if done else None
