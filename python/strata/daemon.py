"""The node daemon (``strata serve``): every process on a node reads through one cache.

    import strata
    node = strata.connect()            # $STRATA_DAEMON, else http://127.0.0.1:7420
    ds = strata.Dataset("s3://bucket/train/")   # now reads shards through the daemon

``connect`` checks that the daemon answers and sets ``STRATA_DAEMON`` for this process and
the processes it starts (DataLoader workers, spawned or forked). Setting ``STRATA_DAEMON``
in the environment has the same effect without a call. The token, when the daemon wants
one, comes from ``STRATA_TOKEN``.

While connected, a ``Dataset`` reports its wait and compute time to the daemon about once a
second (the dashboard's I/O waterfall); ``Daemon.report`` sends any job's figures.
"""

import json
import os
import re
import socket
from typing import Any, Optional

from . import _strata

DEFAULT_ADDRESS = "http://127.0.0.1:7420"


class Daemon:
    """A connection to the node's daemon at ``address``."""

    def __init__(self, address: str):
        self.address = address

    def __repr__(self) -> str:
        return f"Daemon({self.address!r})"

    def report(self, name: str, **fields: Any) -> None:
        """Sends a job's figures: ``wait_secs``, ``compute_secs``, ``samples``, ``bytes``,
        ``drain_done``, ``drain_total`` (seconds and bytes since the job started)."""
        _strata.daemon_report(self.address, job_name(name), json.dumps(fields))

    def read(self, url: str, start: Optional[int] = None, end: Optional[int] = None) -> bytes:
        """Bytes ``start:end`` of the object at ``url``, through the node's cache."""
        return _strata.daemon_read(self.address, url, start, end)


def connect(address: Optional[str] = None) -> Daemon:
    """Connects this process (and its children) to the node's daemon; raises
    ``StrataError`` when it does not answer."""
    addr = address or os.environ.get("STRATA_DAEMON") or DEFAULT_ADDRESS
    _strata.daemon_health(addr)
    os.environ["STRATA_DAEMON"] = addr
    return Daemon(addr)


def disconnect() -> None:
    """Reads go directly to the store again."""
    os.environ.pop("STRATA_DAEMON", None)


def current() -> Optional[str]:
    """The daemon this process reads through, if any."""
    return os.environ.get("STRATA_DAEMON") or None


def job_name(name: Optional[str] = None) -> str:
    """A name the daemon accepts (1-64 of letters, digits, ``-_.``): ``name`` cleaned, or
    ``HOST-PID``."""
    raw = name or f"{socket.gethostname()}-{os.getpid()}"
    return re.sub(r"[^A-Za-z0-9._-]", "-", raw)[:64] or "job"
