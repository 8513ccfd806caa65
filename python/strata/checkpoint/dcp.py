"""``strata.checkpoint.dcp``: torch.distributed.checkpoint (DCP) over Strata's checkpoint
engine, so ``dcp.save``, ``dcp.async_save`` and ``dcp.load`` of FSDP/DTensor sharded state
dicts get the engine's local tier, background drain, manifest-last commit and verified
restore::

    import torch.distributed.checkpoint as dcp
    from strata.checkpoint.dcp import StorageReader, StorageWriter

    dcp.save(state, storage_writer=StorageWriter("s3://bucket/ckpt/run1", local="/nvme/ckpt"),
             checkpoint_id=step)
    dcp.load(state, storage_reader=StorageReader("s3://bucket/ckpt/run1", local="/nvme/ckpt"))

A DCP checkpoint is a Strata checkpoint (step = the ``checkpoint_id``): each rank's tensors and
objects are one file, ``dcp-data.bin`` (64-byte aligned, written from the tensors' own memory),
and rank 0 adds ``dcp-metadata.pkl`` (DCP's metadata, pickled as torch's own
FileSystemWriter does) when it saves last, in ``finish``, so the commit (the manifest, written
once every rank's part is in the store) covers the metadata too. ``checkpoint.list``,
``latest``, ``strata ckpt ls|verify|gc`` see it like any other.

The metadata is unpickled through an allow-list (DCP's metadata classes, torch dtypes, sizes,
plain containers): a checkpoint root someone else can write cannot run code in the loading
process, as it could through ``pickle.load``.

A save returns once this rank's part is staged (durable-local or snapshot, by ``mode``); the
drain and commit run in the background (``blocking=True`` waits for them;
``strata.checkpoint.wait()`` waits for every drain of the process, as the process does at
exit).
"""

import io
import os
import pickle
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
from torch.futures import Future
from torch.distributed.checkpoint.metadata import Metadata, StorageMeta
from torch.distributed.checkpoint.planner import LoadItemType, LoadPlan, LoadPlanner, SavePlan, SavePlanner, WriteItemType
from torch.distributed.checkpoint.storage import StorageReader as _StorageReader
from torch.distributed.checkpoint.storage import StorageWriter as _StorageWriter
from torch.distributed.checkpoint.storage import WriteResult

from . import Handle, _checkpointer, _lock, _pending
from . import latest as _latest

DATA = "dcp-data.bin"
METADATA = "dcp-metadata.pkl"
#: Every item starts at a multiple of this many bytes in a rank's data file.
ALIGN = 64


def _step(checkpoint_id: Any) -> int:
    """A checkpoint id is the step: an int, or a string of digits."""
    if isinstance(checkpoint_id, bool):
        raise ValueError(f"checkpoint_id {checkpoint_id!r}: give the step, an integer")
    if isinstance(checkpoint_id, int):
        step = checkpoint_id
    else:
        text = os.fspath(checkpoint_id) if isinstance(checkpoint_id, os.PathLike) else str(checkpoint_id)
        if not text.isdigit():
            raise ValueError(f"checkpoint_id {checkpoint_id!r}: give the step, an integer")
        step = int(text)
    if step < 0:
        raise ValueError(f"checkpoint_id {checkpoint_id!r}: steps are >= 0")
    return step


def _place() -> Tuple[int, int]:
    """(rank, world size) from the default process group, else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _tensor_bytes(t: torch.Tensor) -> Tuple[Any, str, Tuple[int, ...]]:
    """A tensor's bytes (its own memory when it is a contiguous CPU tensor), dtype, shape."""
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    t = t.contiguous()
    shape = tuple(t.shape)
    raw = t.reshape(-1).view(torch.uint8).numpy() if t.numel() else np.zeros(0, np.uint8)
    return memoryview(raw), str(t.dtype).removeprefix("torch."), shape


class StorageWriter(_StorageWriter):
    """Writes DCP checkpoints through Strata (see the module's documentation).

    Args:
        root: the checkpoint root in a store (``s3://bucket/ckpt/run1``, ``file:///shared``);
            several ranks need one (they commit through it). None: local only (one rank).
        local: this node's local tier (NVMe directory); default: ``ckpt.local`` from the
            config.
        mode: ``"durable-local"`` or ``"snapshot"`` (see ``strata.checkpoint.save``).
        step: the step, when ``dcp.save`` is not given a ``checkpoint_id``.
        blocking: wait for the drain and the commit before ``dcp.save`` returns.
    """

    def __init__(
        self,
        root: Optional[str] = None,
        *,
        local: Optional[str] = None,
        mode: Optional[str] = None,
        step: Optional[int] = None,
        blocking: bool = False,
    ) -> None:
        super().__init__()
        self.root, self.local, self.mode, self.blocking = root, local, mode, blocking
        self.step = None if step is None else _step(step)
        self.rank, self.world, self.is_coordinator = 0, 1, True
        self._held: Optional[List[Any]] = None
        self.handle: Optional[Handle] = None

    def reset(self, checkpoint_id: Any = None) -> None:
        if checkpoint_id is not None:
            self.step = _step(checkpoint_id)
        self._held = None
        self.handle = None

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id: Any) -> bool:
        try:
            _step(checkpoint_id)
            return True
        except ValueError:
            return False

    def set_up_storage_writer(self, is_coordinator: bool, *args: Any, **kwargs: Any) -> None:
        self.is_coordinator = is_coordinator
        self.rank, self.world = _place()
        self.rank = kwargs.get("rank", self.rank)

    def prepare_local_plan(self, plan: SavePlan) -> SavePlan:
        return plan

    def prepare_global_plan(self, plans: List[SavePlan]) -> List[SavePlan]:
        return plans

    def storage_meta(self) -> Optional[StorageMeta]:
        return StorageMeta(checkpoint_id=None if self.step is None else str(self.step))

    def write_data(self, plan: SavePlan, planner: SavePlanner) -> "Future[List[WriteResult]]":
        if self.step is None:
            raise ValueError("strata's DCP writer: give dcp.save a checkpoint_id (the step) or StorageWriter(step=N)")
        segments: List[Any] = []
        results: List[WriteResult] = []
        at = 0
        for item in plan.items:
            data = planner.resolve_data(item)
            if item.type == WriteItemType.BYTE_IO:
                seg, dtype, shape = memoryview(data.getvalue()), None, None
            else:
                seg, dtype, shape = _tensor_bytes(data)
            pad = -at % ALIGN
            if pad:
                segments.append(bytes(pad))
                at += pad
            n = seg.nbytes
            if n:
                segments.append(seg)
            results.append(WriteResult(index=item.index, size_in_bytes=n, storage_data=(self.rank, at, n, dtype, shape)))
            at += n
        if self.is_coordinator:
            # Rank 0 saves last, with the metadata, in finish().
            self._held = segments
        else:
            self._save([(DATA, segments)])
        fut: Future = Future()
        fut.set_result(results)
        return fut

    def finish(self, metadata: Metadata, results: List[List[WriteResult]]) -> None:
        storage: Dict[Any, Any] = {}
        for rank_results in results:
            storage.update({r.index: r.storage_data for r in rank_results})
        metadata.storage_data = storage
        blob = pickle.dumps(metadata, protocol=pickle.HIGHEST_PROTOCOL)
        self._save([(DATA, self._held or []), (METADATA, [blob])])
        self._held = None

    def _save(self, items: List[Tuple[str, List[Any]]]) -> None:
        ck = _checkpointer(self.root, self.local, self.rank, self.world, self.mode)
        h = Handle(ck.save(self.step, items))
        self.handle = h
        with _lock:
            _pending.append(h)
        if self.blocking:
            h.wait()


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles DCP metadata and nothing else: any other global is refused."""

    MODULES = ("torch.distributed.checkpoint.metadata",)
    GLOBALS = {
        ("collections", "OrderedDict"),
        ("torch", "Size"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "slice"),
        ("torch.distributed.checkpoint.planner", "WriteItemType"),
        ("torch.distributed.checkpoint.planner", "LoadItemType"),
        ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
        # Looks a layout up by name in torch's own table (a KeyError for anything else).
        ("torch.serialization", "_get_layout"),
    }

    def __init__(self, data: bytes, where: str) -> None:
        super().__init__(io.BytesIO(data))
        self.where = where

    def find_class(self, module: str, name: str) -> Any:
        if module in self.MODULES or (module, name) in self.GLOBALS:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), (torch.dtype, torch.layout, torch.memory_format)):
            return getattr(torch, name)
        raise pickle.UnpicklingError(f"{self.where}: refuses to load {module}.{name} (not DCP metadata)")


class StorageReader(_StorageReader):
    """Reads DCP checkpoints written by :class:`StorageWriter`: each rank's file verified
    chunk by chunk from the nearest tier (the local tier's file mapped; the store's ranged
    reads in parallel), the parts of the ranks the load needs (another world size reshards).

    Args:
        root: the checkpoint root in a store; None: the local tier only.
        local: this node's local tier.
        step: the step to load when ``dcp.load`` is not given a ``checkpoint_id``; None: the
            newest complete checkpoint.
    """

    def __init__(self, root: Optional[str] = None, *, local: Optional[str] = None, step: Optional[int] = None) -> None:
        super().__init__()
        self.root, self.local = root, local
        self.step = None if step is None else _step(step)
        self.storage_data: Dict[Any, Any] = {}
        self._files: Dict[int, Dict[str, Any]] = {}

    def reset(self, checkpoint_id: Any = None) -> None:
        if checkpoint_id is not None:
            self.step = _step(checkpoint_id)
        self._files = {}

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id: Any) -> bool:
        return StorageWriter.validate_checkpoint_id(checkpoint_id)

    def _where(self) -> str:
        return f"checkpoint step {self.step} under {self.root or self.local}"

    def _rank_files(self, rank: int) -> Dict[str, Any]:
        """Rank ``rank``'s files of the step, verified (read once per load)."""
        files = self._files.get(rank)
        if files is None:
            ck = _checkpointer(self.root, self.local, 0, 1, None, read=True)
            files = ck.load(self.step, rank=rank)[2]
            self._files[rank] = files
        return files

    def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
        if self.step is None:
            self.step = _latest(root=self.root, local=self.local)
            if self.step is None:
                raise FileNotFoundError(f"no complete checkpoint under {self.root or self.local}")
        files = self._rank_files(0)
        if METADATA not in files:
            raise ValueError(f"{self._where()}: not a DCP checkpoint (rank 0 has no {METADATA})")
        metadata = _SafeUnpickler(np.asarray(files[METADATA]).tobytes(), f"{self._where()}, {METADATA}").load()
        if not isinstance(metadata, Metadata):
            raise ValueError(f"{self._where()}: {METADATA} holds a {type(metadata).__name__}, not DCP metadata")
        if getattr(metadata, "storage_meta", None) is None:
            metadata.storage_meta = StorageMeta()
        self.storage_data = metadata.storage_data
        return metadata

    def set_up_storage_reader(self, metadata: Metadata, is_coordinator: bool, *args: Any, **kwargs: Any) -> None:
        self.storage_data = metadata.storage_data

    def prepare_local_plan(self, plan: LoadPlan) -> LoadPlan:
        return plan

    def prepare_global_plan(self, plans: List[LoadPlan]) -> List[LoadPlan]:
        return plans

    def read_data(self, plan: LoadPlan, planner: LoadPlanner) -> "Future[None]":
        from torch.distributed._shard._utils import narrow_tensor_by_index

        by_rank: Dict[int, List[Any]] = {}
        for req in plan.items:
            by_rank.setdefault(self.storage_data[req.storage_index][0], []).append(req)
        for rank, reqs in sorted(by_rank.items()):
            data = np.asarray(self._rank_files(rank)[DATA])
            for req in reqs:
                _, at, n, dtype, shape = self.storage_data[req.storage_index]
                if at + n > len(data):
                    raise ValueError(f"{self._where()}: rank {rank}'s {DATA} ends before {req.storage_index.fqn}")
                raw = data[at : at + n]
                if req.type == LoadItemType.BYTE_IO:
                    planner.load_bytes(req, io.BytesIO(raw.tobytes()))
                    continue
                stored = torch.from_numpy(raw).view(getattr(torch, dtype)).reshape(shape)
                stored = narrow_tensor_by_index(stored, req.storage_offsets, req.lengths)
                target = planner.resolve_tensor(req).detach()
                if target.size() != stored.size():
                    raise ValueError(
                        f"{self._where()}: {req.storage_index.fqn} is {tuple(stored.size())} in the checkpoint, "
                        f"{tuple(target.size())} in the state dict"
                    )
                target.copy_(stored)
                planner.commit_tensor(req, target)
        fut: Future = Future()
        fut.set_result(None)
        return fut
