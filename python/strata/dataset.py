"""``strata.Dataset``: a sharded dataset read in a planned shuffled order, split across
DDP ranks and DataLoader workers, with exact, elastic mid-epoch resume."""

import contextlib
import json
import os
import shutil
import tempfile
import time
import warnings
import weakref
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from . import _strata
from . import daemon as _daemon
from . import decode as _decode

try:  # A torch IterableDataset when torch is there, a plain iterable otherwise.
    import torch.utils.data as _tud

    _Base: Any = _tud.IterableDataset
except Exception:  # pragma: no cover - depends on the environment
    _tud = None
    _Base = object


def _rank_world() -> Tuple[int, int]:
    """(rank, world size): torch.distributed when initialised, else RANK / WORLD_SIZE."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except Exception:
        pass
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _worker() -> Tuple[int, int]:
    """(worker, workers) of the DataLoader worker running this, or (0, 1)."""
    if _tud is not None:
        info = _tud.get_worker_info()
        if info is not None:
            return info.id, info.num_workers
    return 0, 1


#: The scratch tier of a read without a cache directory: at most this many bytes of blocks.
SCRATCH_BYTES = 1 << 30
#: ... and at most this many bytes of blocks in each reading process's memory.
SCRATCH_DRAM_BYTES = 256 << 20
_SCRATCH_PREFIX = "strata-scratch-"


class _Scratch:
    """Where a dataset read without ``cache_dir`` keeps the blocks it fetched, so that shards
    are still read in large aligned ranges (a request per block, not per sample) and the
    DataLoader's workers, which share every block (their samples interleave), fetch each one
    once: a directory in ``/dev/shm`` (else the temporary directory) of at most
    :data:`SCRATCH_BYTES` (a quarter of what ``/dev/shm`` has free, if less), made by the
    process that creates the dataset, inherited by its workers, and removed when that
    process drops the dataset or exits. Directories that processes killed before their
    cleanup left behind are removed by the next one."""

    def __init__(self) -> None:
        base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
        if base == "/dev/shm" and _free(base) // 4 < (256 << 20):
            base = tempfile.gettempdir()  # a container's small /dev/shm (64 MiB)
        _sweep(base)
        self.dir = tempfile.mkdtemp(prefix=f"{_SCRATCH_PREFIX}{os.getpid()}-", dir=base)
        self.bytes = int(max(min(SCRATCH_BYTES, _free(base) // 4), 64 << 20))
        self._finalizer = weakref.finalize(self, _remove_scratch, self.dir, os.getpid())

    def __getstate__(self) -> Dict[str, Any]:
        # Workers started by spawn or forkserver get the place, not the cleanup.
        return {"dir": self.dir, "bytes": self.bytes}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.dir, self.bytes = state["dir"], state["bytes"]


#: What ``Dataset.stats()`` counts, summed over the processes reading the dataset.
_STATS = ("samples", "bytes", "requests", "bytes_read")


def _shared_counts() -> Any:
    """Counters shared with the DataLoader's workers (fork or spawn: they travel with the
    dataset when the workers start), or a plain list if this platform has no shared memory
    (then only this process's reads are counted)."""
    try:
        import multiprocessing

        return multiprocessing.Array("Q", len(_STATS))
    except (ImportError, OSError):
        return [0] * len(_STATS)


def _free(base: str) -> int:
    """Bytes free for an unprivileged writer on the file system of ``base`` (0 if unknown)."""
    try:
        st = os.statvfs(base)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


def _remove_scratch(path: str, owner: int) -> None:
    """Removes a scratch directory, in the process that made it only (forked workers inherit
    the finalizer)."""
    if os.getpid() == owner:
        shutil.rmtree(path, ignore_errors=True)


def _sweep(base: str) -> None:
    """Removes scratch directories whose process is gone (killed before its cleanup)."""
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        if not name.startswith(_SCRATCH_PREFIX):
            continue
        pid = name[len(_SCRATCH_PREFIX):].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
        except OSError:
            pass  # alive, another user's


class Dataset(_Base):
    """Samples of a dataset written by ``strata pack`` / ``strata.pack`` or indexed by
    ``strata index`` (WebDataset tar shards, TFRecord), as dicts of member name -> bytes plus
    ``__key__``, like WebDataset.

    Every rank reads the same number of samples per epoch (the last ones are padded from the
    start of the order, or dropped with ``drop_last=True``). Under a DataLoader, each worker
    reads its own share; the DataLoader's round-robin order over workers is the plan's
    order, so ``state_dict(samples_seen)`` is exact.

    Args:
        url: the dataset root (``s3://bucket/train/``, a path, ...).
        shuffle: shuffle in a window of ``window`` samples over shuffled shards (False: the
            canonical order; ``"global"``: a full permutation, read without the cache).
        seed: the shuffle seed; the order is a pure function of (seed, epoch, manifest).
        epoch: the epoch (also ``set_epoch``).
        decode: True to decode ``.npy``, ``.json``, ``.txt`` and ``.cls`` members, or a
            function applied to each sample dict.
        cache_dir: read shards through Strata's block cache in this directory (the node's
            NVMe), kept across epochs and runs. None: blocks go through a bounded scratch
            tier in memory shared by the DataLoader's workers (see ``_Scratch``) and are
            not kept; a global shuffle reads (coalesced) ranges directly.
        daemon: read shards through the node's daemon at this address (``strata serve``);
            default: the one ``strata.connect()`` or ``$STRATA_DAEMON`` names. While
            connected, the dataset reports its wait and compute time as job ``job``
            (default: ``HOST-PID``) to the daemon's dashboard.
        rank, world_size: override the DDP place (default: torch.distributed, else the
            ``RANK`` / ``WORLD_SIZE`` environment variables).
        worker, num_workers: override the DataLoader worker (default: from torch).
        index: where the manifest and shard indexes are, when not beside the shards
            (``strata index URL --out INDEX``, ``strata.index(url, out=...)``): a dataset in a
            bucket the job may only read. Without it, and without a manifest beside the
            shards, the shards are indexed on first use into the node's cache directory
            (``cache_dir``, else the configured one), writing nothing to their bucket.
        layout: ``"raw"`` reads every object under ``url`` as one sample (members named by
            extension, grouped by key), from the raw manifest at ``index`` (``strata index
            --raw``) or else from one listing made here; either way no worker HEADs or lists
            the objects. Default: the manifest's.

    The dataset is found (its manifest read, or the shards indexed, or the raw objects
    listed) when it is made, in the process that builds the DataLoader, so the workers do
    not repeat it.
    """

    def __init__(
        self,
        url: str,
        shuffle: Any = True,
        seed: int = 0,
        epoch: int = 0,
        window: int = 1024,
        drop_last: bool = False,
        decode: Any = False,
        cache_dir: Optional[str] = None,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        worker: Optional[int] = None,
        num_workers: Optional[int] = None,
        daemon: Optional[str] = None,
        job: Optional[str] = None,
        index: Optional[str] = None,
        layout: Optional[str] = None,
    ):
        self.url = url
        if shuffle is True:
            self.shuffle = "window"
        elif shuffle is False:
            self.shuffle = "sequential"
        elif shuffle in ("window", "global", "sequential"):
            self.shuffle = shuffle
        else:
            raise ValueError(f"shuffle={shuffle!r}: use True, False, 'window' or 'global'")
        self.seed = int(seed)
        self.epoch = int(epoch)
        self.window = int(window)
        self.drop_last = bool(drop_last)
        self.cache_dir = cache_dir
        self.daemon = daemon
        self.job = job
        self._decode: Optional[Callable[[Dict[str, Any]], Any]] = (
            _decode.sample if decode is True else (decode or None)
        )
        self._place = (rank, world_size, worker, num_workers)
        self._consumed = 0  # plan positions done before this run (from load_state_dict)
        self._yielded = 0  # samples yielded by this process in the current run
        at, self.layout, n = _strata.open_dataset(url, index=index, layout=layout, cache_dir=cache_dir)
        self._n = int(n)
        # Where the workers find the manifest (None: beside the shards).
        self.index: Optional[str] = at or None
        self._counts = _shared_counts()
        # Made here, in the process that builds the DataLoader, so its workers share it.
        remote = "://" in url and not url.startswith("file://")  # local files: the page cache
        self._scratch: Optional[_Scratch] = None
        # (A raw dataset's objects are each read once, by one worker: nothing to share.)
        if remote and cache_dir is None and daemon is None and self.shuffle != "global" and self.layout != "raw":
            try:
                self._scratch = _Scratch()
            except OSError as e:  # no room, no permission: direct (coalesced) reads
                warnings.warn(f"strata.Dataset({url!r}): no scratch directory for blocks ({e}); reading ranges directly")

    # -- placement -------------------------------------------------------------------------

    def place(self) -> Tuple[int, int, int, int]:
        """(rank, world size, worker, workers) this process reads as."""
        rank, world, worker, workers = self._place
        r, w = _rank_world()
        wk, wks = _worker()
        return (
            r if rank is None else rank,
            w if world is None else world,
            wk if worker is None else worker,
            wks if workers is None else workers,
        )

    def samples(self) -> int:
        """Samples in the dataset (its manifest)."""
        return self._n

    def __len__(self) -> int:
        """Samples this rank reads in this epoch (from where a loaded state resumes)."""
        rank, world, _, _ = self.place()
        _, per_rank = _strata.partition_len(
            self.samples(), self._consumed, world, rank, 1, 0, self.drop_last
        )
        return per_rank

    # -- epochs and resume -----------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        """Starts epoch ``epoch`` from its beginning (a new order for the same seed)."""
        if int(epoch) != self.epoch:
            self.epoch = int(epoch)
            self._consumed = 0
            self._add_counts([-c for c in self._counts])

    def stats(self) -> Dict[str, int]:
        """What this epoch's reads have cost so far, over this process and its DataLoader
        workers: ``samples`` and ``bytes`` delivered, and what crossed to the store:
        ``requests`` (GETs of blocks or ranges; never one per sample over shards) and
        ``bytes_read``. Workers add theirs every 64 samples and when their share ends.
        ``set_epoch`` starts the count again."""
        return dict(zip(_STATS, (int(c) for c in self._counts)), epoch=self.epoch)

    def _add_counts(self, delta: List[int]) -> None:
        lock = getattr(self._counts, "get_lock", None)
        with lock() if lock else contextlib.nullcontext():
            for i, d in enumerate(delta):
                self._counts[i] += d

    def state_dict(self, samples_seen: Optional[int] = None) -> Dict[str, int]:
        """Where to resume: ``samples_seen`` is how many samples each rank has consumed in
        this run (steps × batch size); without it, the samples this process yielded (right
        without DataLoader workers). The state is valid for any world size."""
        rank, world, _, _ = self.place()
        done = self._yielded if samples_seen is None else int(samples_seen)
        seed, epoch, consumed = _strata.partition_state(
            self.samples(), self._consumed, world, self.seed, self.epoch, done, self.drop_last
        )
        return {"seed": seed, "epoch": epoch, "consumed": consumed, "samples": self.samples()}

    def load_state_dict(self, state: Dict[str, int]) -> None:
        """Resumes from ``state_dict()``: the same seed and epoch, positions already consumed
        skipped, the rest shared among the current world (which may differ in size)."""
        if int(state["seed"]) != self.seed:
            raise ValueError(
                f"the state was saved with seed {state['seed']}, this dataset has seed {self.seed}"
            )
        if "samples" in state and int(state["samples"]) != self.samples():
            raise ValueError(
                f"the state was saved for {state['samples']} samples, {self.url} has {self.samples()}"
            )
        self.epoch = int(state["epoch"])
        self._consumed = int(state["consumed"])

    # -- iteration -------------------------------------------------------------------------

    def _cache_args(self, daemon: Optional[str]) -> Dict[str, Any]:
        if daemon:
            return {}
        if self.cache_dir is not None:
            return {"cache_dir": self.cache_dir}
        if self._scratch is not None:
            # The blocks being cut into samples stay in this process's DRAM tier: a block
            # read again from the scratch file for each of its samples would cost a whole
            # block's copy and checksum per sample.
            return {"cache_dir": self._scratch.dir, "cache_bytes": self._scratch.bytes, "dram_bytes": SCRATCH_DRAM_BYTES}
        return {}

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        rank, world, worker, workers = self.place()
        daemon = self.daemon or _daemon.current()
        reader = _strata.open_reader(
            self.url,
            seed=self.seed,
            epoch=self.epoch,
            shuffle=self.shuffle,
            window=self.window,
            ranks=world,
            rank=rank,
            workers=workers,
            worker=worker,
            consumed=self._consumed,
            drop_last=self.drop_last,
            daemon=daemon,
            index=self.index,
            raw=self.layout == "raw",
            **self._cache_args(daemon),
        )
        self._yielded = 0
        it = iter(reader)
        report = _Reporter(daemon, self.job, reader) if daemon else None
        counted = [0] * len(_STATS)

        def count() -> None:
            now = reader.stats()
            cur = [now[k] for k in _STATS]
            self._add_counts([c - p for c, p in zip(cur, counted)])
            counted[:] = cur

        try:
            while True:
                t0 = time.perf_counter()
                try:
                    s = next(it)
                except StopIteration:
                    break
                if report:
                    report.waited(time.perf_counter() - t0, s)
                del s["__position__"]
                self._yielded += 1
                if self._yielded % 64 == 0:
                    count()
                yield self._decode(s) if self._decode else s
        finally:
            count()
        if report:
            report.send(force=True)


class _Reporter:
    """Wait versus compute of one iteration, sent to the daemon about once a second. Time
    inside ``next`` is waiting for data; time between calls is the consumer's compute."""

    def __init__(self, address: str, job: Optional[str], reader: Any = None):
        self.address = address
        self.reader = reader  # its stats(): the reads that went below this process's memory
        self.name = _daemon.job_name(job)
        self.wait = 0.0
        self.samples = 0
        self.bytes = 0
        self.start = time.perf_counter()
        self.last = self.start
        self.failed = False

    def waited(self, secs: float, sample: Dict[str, Any]) -> None:
        self.wait += secs
        self.samples += 1
        self.bytes += sum(len(v) for v in sample.values() if isinstance(v, (bytes, bytearray)))
        self.send()

    def send(self, force: bool = False) -> None:
        now = time.perf_counter()
        if self.failed or (not force and now - self.last < 1.0):
            return
        self.last = now
        total = now - self.start
        report = {
            "kind": "train",
            "wait_secs": self.wait,
            "compute_secs": max(0.0, total - self.wait),
            "samples": self.samples,
            "bytes": self.bytes,
        }
        if self.reader is not None:
            st = self.reader.stats()
            report.update(requests=st["requests"], bytes_read=st["bytes_read"])
        try:
            _strata.daemon_report(self.address, self.name, json.dumps(report))
        except Exception as e:  # the dashboard is not worth stopping training for
            self.failed = True
            warnings.warn(f"strata: reporting to the daemon at {self.address} failed: {e}")
