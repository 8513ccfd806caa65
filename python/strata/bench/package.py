"""``python -m strata.bench``: what the Python package costs and saves, measured on this
machine against the naive way, in one run.

1. Dataset: the same tar shards read with ``strata.Dataset`` and with the ``webdataset``
   package (if installed): samples/s; and resnet50-sized samples (114,660 B) through the
   Python loop against the engine reading them alone (target: ≥ 0.8 of it).
2. GIL: a Python thread that wakes every millisecond records how late it wakes while the
   main thread pulls a model (``strata.models.pull``), saves a checkpoint
   (``strata.checkpoint.save``), and reads the same files naively (``numpy.fromfile``,
   ``safetensors.numpy.load_file``): the worst lateness is the longest the GIL was held.
3. Zero copy: ``strata.models.load`` of the model against ``safetensors.numpy.load_file``
   (if installed): time and resident memory added.
"""

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import threading
import time

import numpy as np

import strata
from strata import _strata


def rss() -> int:
    """Resident set size of this process, bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Ticker:
    """A Python thread that sleeps 1 ms again and again and records how late it wakes: while
    another thread holds the GIL it cannot run, so its worst lateness is the longest time the
    GIL was held against it."""

    def __init__(self):
        self.late = []
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop:
            t = time.perf_counter()
            time.sleep(0.001)
            self.late.append(time.perf_counter() - t - 0.001)

    def __enter__(self):
        self.t0 = time.perf_counter()
        self._t.start()
        return self

    def __exit__(self, *a):
        self._stop = True
        self._t.join()
        self.secs = time.perf_counter() - self.t0

    def summary(self) -> dict:
        late = sorted(self.late) or [0.0]
        return {
            "secs": self.secs,
            "max_stall_ms": late[-1] * 1e3,
            "p99_stall_ms": late[int(0.99 * (len(late) - 1))] * 1e3,
            "ticks": len(late),
        }


def ticked(fn):
    with Ticker() as t:
        fn()
    return t.summary()


def make_dataset(d: str, samples: int, size: int) -> str:
    raw = os.path.join(d, "raw")
    os.makedirs(raw)
    rng = np.random.default_rng(0)
    blob = rng.integers(0, 255, size, dtype=np.uint8).tobytes()
    for i in range(samples):
        with open(os.path.join(raw, f"{i:07d}.bin"), "wb") as f:
            f.write(blob)
        with open(os.path.join(raw, f"{i:07d}.cls"), "w") as f:
            f.write(str(i % 10))
    out = os.path.join(d, "packed")
    strata.pack(raw, out, shard_size=64 << 20)
    shutil.rmtree(raw)
    return out


def make_model(d: str, size: int) -> str:
    from strata._safetensors import write

    m = os.path.join(d, "model")
    os.makedirs(m)
    per = size // 2
    for s in range(2):
        arrs = [(f"layers.{s}.{i}.w", np.full(per // 8 // 4, s + i, np.float32), "F32") for i in range(8)]
        write(os.path.join(m, f"model-{s + 1:05d}-of-00002.safetensors"), arrs, {"format": "pt"})
    return m


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m strata.bench package", description=__doc__.splitlines()[0])
    p.add_argument("--dir", help="work directory (default: a temporary one)")
    p.add_argument("--samples", type=int, default=20000)
    p.add_argument("--sample-size", type=int, default=16 << 10)
    p.add_argument("--model-size", type=int, default=1 << 30)
    p.add_argument("--resnet-samples", type=int, default=8000, help="resnet50-sized samples (114,660 B)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    work = a.dir or tempfile.mkdtemp(prefix="strata-pybench-")
    os.makedirs(work, exist_ok=True)
    r = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count()}
    try:
        ds_url = make_dataset(work, a.samples, a.sample_size)
        # 1. Dataset.
        t = time.perf_counter()
        n = sum(1 for _ in strata.Dataset(ds_url, shuffle=False))
        r["strata_samples_per_sec"] = n / (time.perf_counter() - t)
        try:
            import glob

            import webdataset as wds

            tars = sorted(glob.glob(os.path.join(ds_url, "**", "*.tar"), recursive=True))
            t = time.perf_counter()
            n2 = sum(1 for _ in wds.WebDataset(tars, shardshuffle=False))
            r["webdataset_samples_per_sec"] = n2 / (time.perf_counter() - t)
        except ImportError:
            r["webdataset_samples_per_sec"] = None
        # 1b. The Python loop against the engine alone, on resnet50-sized samples (114,660 B,
        # the MLPerf Storage workload `strata bench train` uses).
        rn = make_dataset(os.path.join(work, "resnet50"), a.resnet_samples, 114_660)
        rust_n, _, rust_secs = _strata.drain_reader(rn, seed=1)
        t = time.perf_counter()
        n = sum(1 for _ in strata.Dataset(rn, seed=1))
        py_secs = time.perf_counter() - t
        r["resnet50"] = {
            "samples": n,
            "python_samples_per_sec": n / py_secs,
            "rust_samples_per_sec": rust_n / rust_secs,
            "python_of_rust": (n / py_secs) / (rust_n / rust_secs),
        }
        # 2. GIL.
        model = make_model(work, a.model_size)
        cache = os.path.join(work, "cache")
        r["gil"] = {}
        r["gil"]["strata.models.pull"] = ticked(lambda: strata.models.pull(model, cache_dir=cache))
        state = {"w": np.ones(a.model_size // 4 // 4, np.float32)}
        r["gil"]["strata.checkpoint.save"] = ticked(
            lambda: strata.checkpoint.save(state, 1, local=os.path.join(work, "ckpt"))
        )
        shards = [os.path.join(model, f) for f in sorted(os.listdir(model))]
        r["gil"]["numpy.fromfile (naive read)"] = ticked(lambda: [np.fromfile(f, np.uint8) for f in shards])
        try:
            from safetensors.numpy import load_file

            r["gil"]["safetensors.numpy.load_file"] = ticked(lambda: [load_file(f) for f in shards])
        except ImportError:
            pass
        # 3. Zero copy.
        before = rss()
        t = time.perf_counter()
        tensors = strata.models.load(model, cache_dir=cache)
        r["models_load"] = {"secs": time.perf_counter() - t, "rss_added": rss() - before,
                            "bytes": sum(x.nbytes for x in tensors.values())}
        del tensors
        try:
            from safetensors.numpy import load_file

            pulled = strata.models.pull(model, cache_dir=cache)["dir"]
            before = rss()
            t = time.perf_counter()
            loaded = {}
            for f in sorted(os.listdir(pulled)):
                if f.endswith(".safetensors"):
                    loaded.update(load_file(os.path.join(pulled, f)))
            r["safetensors_load"] = {"secs": time.perf_counter() - t, "rss_added": rss() - before}
            del loaded
        except ImportError:
            r["safetensors_load"] = None
    finally:
        if not a.dir:
            shutil.rmtree(work, ignore_errors=True)
    if a.json:
        print(json.dumps(r, indent=1))
        return 0
    mib = 1 << 20
    print(f"python -m strata.bench  {r['date']}  ({r['cores']} cores)")
    print(f"dataset: {a.samples} samples of {a.sample_size >> 10} KiB in tar shards on local disk")
    print(f"  strata.Dataset       {r['strata_samples_per_sec']:10.0f} samples/s")
    if r["webdataset_samples_per_sec"]:
        w = r["webdataset_samples_per_sec"]
        print(f"  webdataset           {w:10.0f} samples/s   (strata {r['strata_samples_per_sec'] / w:.2f}x)")
    rr = r["resnet50"]
    print(f"resnet50-sized samples ({rr['samples']} of 114,660 B, shuffled, local disk; target >= 0.8)")
    print(f"  engine alone (Rust)  {rr['rust_samples_per_sec']:10.0f} samples/s")
    print(f"  strata.Dataset loop  {rr['python_samples_per_sec']:10.0f} samples/s   {rr['python_of_rust']:.2f} of the engine")
    print(f"GIL: the longest another Python thread waited while the main thread ran ({a.model_size / mib:.0f} MiB)")
    for label, g in r["gil"].items():
        print(f"  {label:<32} {g['secs']:7.2f} s   max stall {g['max_stall_ms']:7.1f} ms   p99 {g['p99_stall_ms']:6.2f} ms")
    ml = r["models_load"]
    print(f"zero copy: a {ml['bytes'] / mib:.0f} MiB model")
    print(f"  strata.models.load            {ml['secs']:7.3f} s   +{ml['rss_added'] / mib:7.1f} MiB resident")
    if r["safetensors_load"]:
        sl = r["safetensors_load"]
        print(f"  safetensors.numpy.load_file   {sl['secs']:7.3f} s   +{sl['rss_added'] / mib:7.1f} MiB resident")
    return 0


if __name__ == "__main__":
    sys.exit(main())
