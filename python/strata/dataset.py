"""``strata.Dataset``: a sharded dataset read in a planned shuffled order, split across
DDP ranks and DataLoader workers, with exact, elastic mid-epoch resume."""

import json
import os
import time
import warnings
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

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
            NVMe); None reads ranges directly.
        daemon: read shards through the node's daemon at this address (``strata serve``);
            default: the one ``strata.connect()`` or ``$STRATA_DAEMON`` names. While
            connected, the dataset reports its wait and compute time as job ``job``
            (default: ``HOST-PID``) to the daemon's dashboard.
        rank, world_size: override the DDP place (default: torch.distributed, else the
            ``RANK`` / ``WORLD_SIZE`` environment variables).
        worker, num_workers: override the DataLoader worker (default: from torch).
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
        self._n: Optional[int] = None

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
        if self._n is None:
            self._n = _strata.dataset_samples(self.url)
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
            cache_dir=None if daemon else self.cache_dir,
            daemon=daemon,
        )
        self._yielded = 0
        it = iter(reader)
        report = _Reporter(daemon, self.job) if daemon else None
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
            yield self._decode(s) if self._decode else s
        if report:
            report.send(force=True)


class _Reporter:
    """Wait versus compute of one iteration, sent to the daemon about once a second. Time
    inside ``next`` is waiting for data; time between calls is the consumer's compute."""

    def __init__(self, address: str, job: Optional[str]):
        self.address = address
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
        try:
            _strata.daemon_report(self.address, self.name, json.dumps(report))
        except Exception as e:  # the dashboard is not worth stopping training for
            self.failed = True
            warnings.warn(f"strata: reporting to the daemon at {self.address} failed: {e}")
