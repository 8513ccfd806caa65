"""The two regimes the benchmarks run in, as servers this process starts and stops, and what
every benchmark measures on the side: the machine's limits and the CPU a call costs."""

import contextlib
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from typing import Dict, Iterator, Optional

import numpy as np

#: Regime A's link: the emulator's s3 profile caps the total at 160 MiB/s.
LINK_CAP = 160 << 20


def strata_bin() -> str:
    """The strata binary that starts the servers ($STRATA_BIN, else PATH, else the build)."""
    for c in (os.environ.get("STRATA_BIN"), shutil.which("strata")):
        if c and os.path.exists(c):
            return c
    here = os.path.dirname(os.path.abspath(__file__))
    for build in ("release", "debug"):
        c = os.path.join(here, "..", "..", "..", "target", build, "strata")
        if os.path.exists(c):
            return os.path.abspath(c)
    raise SystemExit("no strata binary: set STRATA_BIN, or cargo build -p strata-cli")


class Regime:
    """A running server: its endpoint, bucket, keys, and the environment that points the
    clients (Strata, boto3, s3torchconnector, run:ai) at it."""

    def __init__(self, name: str, info: Dict, proc: subprocess.Popen) -> None:
        self.name, self.info, self.proc = name, info, proc
        self.endpoint: str = info["endpoint"]
        self.bucket: str = info["bucket"]
        self.region: str = info["region"]
        self.env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": info["access_key_id"],
            "AWS_SECRET_ACCESS_KEY": info["secret_access_key"],
            "AWS_REGION": info["region"],
            "AWS_DEFAULT_REGION": info["region"],
            # run:ai's S3 backend.
            "AWS_EC2_METADATA_DISABLED": "true",
            "RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING": "0",
        }

    def stats(self) -> Dict:
        """What has crossed the emulated link so far (requests, bytes_up, bytes_down,
        connections; ``peak_in_flight`` since the previous call); ``{}`` without a link."""
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def boto3(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id=self.info["access_key_id"], aws_secret_access_key=self.info["secret_access_key"],
            config=Config(s3={"addressing_style": "path"}, max_pool_connections=32),
        )


@contextlib.contextmanager
def environment(env: Dict[str, str]) -> Iterator[None]:
    """The variables of `env` set while the block runs, and put back as they were."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def regime(name: str) -> Iterator[Regime]:
    """Regime "A" (the s3 link profile over the in-process server) or "B" (Garage, no
    emulator); the environment points at it while the block runs."""
    args = [strata_bin(), "test-s3-server"] + (["--link", "s3"] if name == "A" else ["--server", "garage"])
    p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line:
        p.wait()
        raise SystemExit(f"regime {name}: the server did not start ({' '.join(args)})")
    r = Regime(name, json.loads(line), p)
    try:
        with environment(r.env):
            yield r
    finally:
        p.terminate()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class Wire:
    """What a block cost the regime's side: requests, MiB up and down, connections opened and
    the most requests in flight at once across the emulated link (A), and the CPU seconds of
    the server (and of the emulator) in both regimes."""

    def __init__(self, r: "Regime") -> None:
        self.r = r

    def __enter__(self) -> "Wire":
        self._s = self.r.stats()
        return self

    def __exit__(self, *exc) -> None:
        e, s = self.r.stats(), self._s
        self.counts = {k: e[k] - s[k] for k in ("server_cpu_secs", "link_cpu_secs") if k in e}
        if "requests" in e:
            self.counts.update({
                "requests": e["requests"] - s["requests"],
                "up_mib": (e["bytes_up"] - s["bytes_up"]) / 2**20,
                "down_mib": (e["bytes_down"] - s["bytes_down"]) / 2**20,
                "connections": e["connections"] - s["connections"],
                "peak_in_flight": e["peak_in_flight"],
            })

    def text(self) -> str:
        c = self.counts
        out = [f"server {c['server_cpu_secs']:.1f} CPU s"] if "server_cpu_secs" in c else []
        if "requests" in c:
            out[:0] = [f"{c['requests']} requests", f"{c['up_mib']:.0f} MiB up", f"{c['down_mib']:.0f} MiB down",
                       f"{c['connections']} connections", f"peak {c['peak_in_flight']} in flight"]
            out.append(f"link {c['link_cpu_secs']:.1f} CPU s")
        return ", ".join(out)


class Measure:
    """Wall seconds and CPU seconds (this process's threads, the engine's included) of a
    block."""

    def __enter__(self) -> "Measure":
        self._r = resource.getrusage(resource.RUSAGE_SELF)
        self._t = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.secs = time.perf_counter() - self._t
        r = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu = (r.ru_utime - self._r.ru_utime) + (r.ru_stime - self._r.ru_stime)


def memcpy_secs(nbytes: int) -> float:
    """Seconds to copy ``nbytes`` into memory that is already mapped (best of 3)."""
    src = np.ones(nbytes, np.uint8)
    dst = np.zeros(nbytes, np.uint8)
    dst[:] = 1  # touched: mapped
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t)
    return best


def local_write_secs(nbytes: int, directory: Optional[str] = None) -> float:
    """Seconds to write ``nbytes`` to a new file and fsync it (the local tier's device)."""
    buf = np.ones(min(nbytes, 256 << 20), np.uint8)
    fd, path = tempfile.mkstemp(dir=directory, prefix=".strata-bench-")
    try:
        t = time.perf_counter()
        left = nbytes
        with os.fdopen(fd, "wb") as f:
            while left:
                n = min(left, len(buf))
                f.write(memoryview(buf)[:n])
                left -= n
            f.flush()
            os.fsync(f.fileno())
        return time.perf_counter() - t
    finally:
        os.unlink(path)


def drop_caches() -> None:
    """Writes dirty pages back and drops the page cache where allowed (root), so a restore
    from the local tier reads the device, as it would after a node restart."""
    os.sync()
    with contextlib.suppress(OSError):
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")


def parse_size(text: str) -> int:
    """``64MiB``, ``1GiB``, ``1000000``: bytes."""
    units = {"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "kb": 10**3, "mb": 10**6, "gb": 10**9, "b": 1}
    t = text.strip().lower()
    for u, m in units.items():
        if t.endswith(u):
            return int(float(t[: -len(u)]) * m)
    return int(t)
