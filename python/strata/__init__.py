"""Strata for Python: datasets, checkpoints and models from object storage at link speed.

    import strata
    ds = strata.Dataset("s3://bucket/train/", shuffle=True, seed=0)      # WebDataset-style dicts
    strata.checkpoint.save({"model": weights, "step": 10}, step=10, root="s3://bucket/ckpt/run1",
                           local="/nvme/ckpt")
    weights = strata.models.load("s3://bucket/models/llama/")            # name -> numpy array
    strata.connect()   # read through the node's daemon (`strata serve`) from now on

The engine is Rust (``strata._strata``); I/O releases the GIL. Settings come from the same
places as the ``strata`` CLI: ``AWS_*`` variables, ``STRATA_*`` variables, and the config file
(``$STRATA_CONFIG`` or ``~/.config/strata/config.toml``).
"""

from typing import Optional

from ._strata import StrataError
from . import checkpoint, daemon, decode, models
from .daemon import connect
from .dataset import Dataset

__all__ = [
    "Dataset",
    "StrataError",
    "checkpoint",
    "connect",
    "daemon",
    "decode",
    "models",
    "pack",
    "index",
    "warm",
]
__version__ = "0.1.0"


def pack(src: str, dst: str, *, shard_size: int = 256 << 20) -> dict:
    """Packs raw files under ``src`` (a directory or a URL; samples grouped by key, e.g.
    ``0001.jpg`` + ``0001.cls``) into WebDataset tar shards with an index and a manifest under
    ``dst``. Returns the manifest."""
    import json

    from . import _strata

    return json.loads(_strata.pack(src, dst, shard_size=shard_size))


def warm(url: str, *, tier: str = "nvme", cache_dir: Optional[str] = None) -> dict:
    """Hydrates the cache with everything under ``url`` (a prefix) or the object it names,
    so that later reads on this node are local, the way ``strata warm`` does. Connected to the
    node's daemon (``strata.connect()`` or ``STRATA_DAEMON``), it fills the daemon's cache,
    which every process on the node shares; otherwise the local cache directory
    (``cache_dir``, else ``STRATA_CACHE_DIR`` or the configured one).

    ``tier="dram"`` also holds the data in memory: the daemon's DRAM tier (an error unless it
    holds all of it), or without a daemon the node's page cache over the block files. Returns
    the report: bytes, ``fetched_bytes`` (the rest was cached already), elapsed seconds."""
    import json

    from . import _strata
    from .daemon import current

    if tier not in ("nvme", "dram"):
        raise ValueError(f"tier={tier!r}: use 'nvme' or 'dram'")
    return json.loads(
        _strata.warm(url, dram=tier == "dram", cache_dir=cache_dir, daemon=current())
    )


def index(url: str, out: Optional[str] = None, raw: bool = False) -> dict:
    """Builds the sample index and manifest of existing ``.tar`` / ``.tfrecord`` shards under
    ``url`` (for datasets written by other tools, such as ``webdataset.ShardWriter``), and
    returns the manifest.

    Args:
        out: write the indexes and manifest here (another prefix, a local directory) instead
            of beside the shards, for a bucket the job may only read; read the dataset with
            ``strata.Dataset(url, index=out)``.
        raw: a raw dataset (one object per sample): write the manifest of every object with
            an extension, with sizes and ETags, so readers neither list nor HEAD them
            (``strata.Dataset(url, layout="raw", index=out)``).
    """
    import json

    from . import _strata

    return json.loads(_strata.index(url, out=out, raw=raw))
