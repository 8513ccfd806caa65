"""``python -m strata.bench train``: one cold and one warm epoch of resnet50-sized samples
(114,660 B) in shuffled order through a PyTorch DataLoader, as a training job reads them with
no compute: ``strata.Dataset`` (without and with a cache directory) against WebDataset
(``pipe:curl`` of presigned URLs, the same tar shards) and MosaicML Streaming (its own MDS
shards of the same samples, its local cache directory), in regimes A and B (see the package).

Per loader and epoch it prints samples/s, the fraction of the link cap (A), what crossed the
link (requests and MiB, A) and the server's CPU seconds, and the client's CPU seconds per GiB
(the loading process and its DataLoader workers). With ``--repeat N`` each loader's cold and
warm epochs run N times (cold again each time: a fresh cache) and the table shows the median
runs, the verdicts judge them, and a second line gives the slowest and fastest rates."""

import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time
from typing import Any, Callable, Dict, List

import numpy as np

import strata

from . import regimes
from .regimes import LINK_CAP, Regime, Wire

#: resnet50's mean sample in MLPerf Storage.
SAMPLE_SIZE = 114_660


def make_samples(directory: str, count: int, size: int) -> None:
    """``count`` samples as files ``NNNNNNNN.jpg`` (random bytes) and ``NNNNNNNN.cls``."""
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        with open(os.path.join(directory, f"{i:08d}.jpg"), "wb") as f:
            f.write(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        with open(os.path.join(directory, f"{i:08d}.cls"), "w") as f:
            f.write(str(i % 1000))


def make_mds(src: str, out: str, count: int, shard_size: int) -> None:
    """The same samples as MosaicML Streaming's MDS shards."""
    from streaming import MDSWriter

    with MDSWriter(out=out, columns={"jpg": "bytes", "cls": "int"}, size_limit=shard_size) as w:
        for i in range(count):
            with open(os.path.join(src, f"{i:08d}.jpg"), "rb") as f:
                jpg = f.read()
            w.write({"jpg": jpg, "cls": i % 1000})


def upload_dir(r: Regime, directory: str, prefix: str) -> None:
    s3 = r.boto3()
    for root, _, names in os.walk(directory):
        for n in names:
            p = os.path.join(root, n)
            s3.upload_file(p, r.bucket, prefix + os.path.relpath(p, directory))


def count_batch(batch: List[Any]) -> int:
    """The training step: none (``--compute 0``); a batch is counted."""
    return len(batch)


class Epoch(dict):
    """secs, samples, cpu (loading process + workers), wire (Wire)."""


def run_epoch(r: Regime, make: Callable[[], Any], workers: int, batch: int) -> Epoch:
    from torch.utils.data import DataLoader

    ds = make()
    loader = DataLoader(ds, batch_size=batch, num_workers=workers, collate_fn=count_batch)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    n = 0
    with Wire(r) as wire:
        t = time.perf_counter()
        for b in loader:
            n += b
        secs = time.perf_counter() - t
    del loader  # its workers exit and are waited for: their CPU is counted
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(getattr(b, f) - getattr(a, f) for a, b in ((r0, r1), (c0, c1)) for f in ("ru_utime", "ru_stime"))
    return Epoch(secs=secs, samples=n, cpu=cpu, wire=wire)


def median_run(epochs: List[Epoch]) -> Epoch:
    """The epoch of median rate (the lower of two middles; its CPU and wire counts with it),
    with ``spread``: the slowest and fastest rates, for the table."""
    ranked = sorted(epochs, key=lambda e: e["samples"] / e["secs"])
    mid = Epoch(ranked[(len(ranked) - 1) // 2])  # the lower median of an even count
    rates = [e["samples"] / e["secs"] for e in ranked]
    mid["spread"] = f"{rates[0]:.0f}-{rates[-1]:.0f}"
    return mid


def loaders(r: Regime, work: str, batch: int) -> Dict[str, Callable[[], Callable[[], Any]]]:
    """Per loader, a function called once per run (it may set up a cache) that returns the
    dataset maker used for both epochs."""

    def strata_plain():
        return lambda: strata.Dataset(r.url("bench/train/shards/"), shuffle=True)

    def strata_raw():
        # One object per sample member: listed once where the DataLoader is built.
        return lambda: strata.Dataset(r.url("bench/train/raw/"), shuffle=True, layout="raw")

    def strata_cache():
        cache = tempfile.mkdtemp(dir=work, prefix="strata-cache-")
        return lambda: strata.Dataset(r.url("bench/train/shards/"), shuffle=True, cache_dir=cache)

    def webdataset():
        import webdataset as wds

        s3 = r.boto3()
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=r.bucket, Prefix="bench/train/shards/")["Contents"]
                      if o["Key"].endswith(".tar"))
        urls = [f"pipe:curl -s -f '{s3.generate_presigned_url('get_object', Params={'Bucket': r.bucket, 'Key': k}, ExpiresIn=86400)}'"
                for k in keys]
        return lambda: (wds.WebDataset(urls, shardshuffle=len(urls), nodesplitter=wds.split_by_node,
                                       workersplitter=wds.split_by_worker, empty_check=False).shuffle(1000))

    def mosaic():
        from streaming import StreamingDataset
        from streaming.base.util import clean_stale_shared_memory

        os.environ["S3_ENDPOINT_URL"] = r.endpoint
        local = tempfile.mkdtemp(dir=work, prefix="mds-cache-")
        clean_stale_shared_memory()
        return lambda: StreamingDataset(remote=f"s3://{r.bucket}/bench/train/mds/", local=local, shuffle=True,
                                        batch_size=batch)

    return {"strata": strata_plain, "strata-cache": strata_cache, "strata-raw": strata_raw, "webdataset": webdataset,
            "mosaic": mosaic}


def verdicts(rows: Dict[str, List[Epoch]], regime: str, size: int) -> List[str]:
    """The issue's targets for Strata's best row, each with its figure and ✓ or ✗."""
    rate = {k: (v[0]["samples"] / v[0]["secs"], v[1]["samples"] / v[1]["secs"]) for k, v in rows.items()}
    ours = {k: v for k, v in rate.items() if k.startswith("strata")}
    others = {k: v for k, v in rate.items() if not k.startswith("strata")}
    if not ours:
        return []
    mark = lambda ok: "✓" if ok else "✗"  # noqa: E731
    out = []
    best_ours = max(ours, key=lambda k: ours[k][0])
    cold = ours[best_ours][0]
    cap = cold * SAMPLE_SIZE / LINK_CAP
    if others:
        best = max(others, key=lambda k: others[k][0])
        ratio = cold / others[best][0]
        ok = ratio >= 1.25 or (regime == "A" and cap >= 0.9)
        extra = f"; {cap:.2f} of the cap (≥ 0.9)" if regime == "A" else ""
        out.append(f"cold: {best_ours} {cold:.0f}/s, best other {best} {others[best][0]:.0f}/s: {ratio:.2f}× (≥ 1.25){extra} {mark(ok)}")
    if "mosaic" in rate:
        warm = max(v[1] for v in ours.values())
        ratio = warm / rate["mosaic"][1]
        out.append(f"warm: {warm:.0f}/s, MosaicML {rate['mosaic'][1]:.0f}/s: {ratio:.2f}× (≥ 1.25) {mark(ratio >= 1.25)}")
    if "strata-raw" in ours and "strata" in ours:
        ratio = ours["strata-raw"][0] / ours["strata"][0]
        out.append(f"raw layout, cold: {ours['strata-raw'][0]:.0f}/s, {ratio:.2f} of the shards' (≥ 0.8) {mark(ratio >= 0.8)}")
    # Requests are the shards' target, for both (the raw layout reads an object, so a request, a sample).
    shards = [k for k in ("strata", "strata-cache") if k in rows]
    wire = rows[max(shards, key=lambda k: rows[k][0]["wire"].counts.get("requests", 0))][0]["wire"].counts if shards else {}
    if "requests" in wire:
        blocks = -(-size // (8 << 20))
        out.append(f"requests, cold, shards: {wire['requests']} for {blocks} blocks of 8 MiB (≤ 2×) {mark(wire['requests'] <= 2 * blocks)}")
    cpu = {k: (v[0]["cpu"] + v[1]["cpu"]) / (2 * size / 2**30) for k, v in rows.items()}
    if others:
        theirs = min(cpu[k] for k in others)
        out.append(f"CPU: {cpu[best_ours]:.2f} s/GiB, best other {theirs:.2f} (≤) {mark(cpu[best_ours] <= theirs)}")
    return out


def available(name: str) -> bool:
    mod = {"webdataset": "webdataset", "mosaic": "streaming"}.get(name)
    if mod is None:
        return True
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m strata.bench train", description=__doc__.splitlines()[0])
    p.add_argument("--size", default="1GiB", help="dataset bytes (default 1GiB: 9,364 samples)")
    p.add_argument("--regimes", default="A,B")
    p.add_argument("--loaders", default="strata,strata-cache,strata-raw,webdataset,mosaic")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers (default 2)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--shard-size", default="64MiB", help="tar and MDS shard size (default 64MiB, MDS's own)")
    p.add_argument("--repeat", type=int, default=1,
                   help="runs of each loader's cold and warm epoch (default 1); the table shows each one's median "
                        "run, and the spread")
    a = p.parse_args(argv)
    count = max(regimes.parse_size(a.size) // SAMPLE_SIZE, 1)
    work = tempfile.mkdtemp(prefix="strata-bench-train-", dir=os.environ.get("STRATA_BENCH_DIR"))
    failed = False
    try:
        src = os.path.join(work, "samples")
        make_samples(src, count, SAMPLE_SIZE)
        size = count * SAMPLE_SIZE
        names = [n.strip() for n in a.loaders.split(",") if n.strip()]
        shard_size = regimes.parse_size(a.shard_size)
        mds = None
        if "mosaic" in names and available("mosaic"):
            mds = os.path.join(work, "mds")
            make_mds(src, mds, count, shard_size)
        print(f"dataset: {count} samples of {SAMPLE_SIZE} B ({size / 2**30:.2f} GiB); DataLoader with {a.workers} workers, "
              f"batch {a.batch}, no compute ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
        for name in a.regimes.split(","):
            name = name.strip()
            with regimes.regime(name) as r:
                strata.pack(src, r.url("bench/train/shards/"), shard_size=shard_size)
                if "strata-raw" in names:
                    # One object per sample: the images alone (a .cls object beside each would
                    # make it two samples of the raw layout).
                    raw = os.path.join(work, "raw")
                    if not os.path.isdir(raw):
                        os.makedirs(raw)
                        for f in os.listdir(src):
                            if f.endswith(".jpg"):
                                os.link(os.path.join(src, f), os.path.join(raw, f))
                    subprocess.run([regimes.strata_bin(), "cp", "-r", raw + "/", r.url("bench/train/raw/")],
                                   env={**os.environ, **r.env}, check=True, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
                if mds:
                    upload_dir(r, mds, "bench/train/mds/")
                rows: Dict[str, List[Epoch]] = {}
                for loader, setup in loaders(r, work, a.batch).items():
                    if loader not in names:
                        continue
                    if not available(loader):
                        print(f"  {loader}: not installed, skipped")
                        continue
                    runs = []
                    for _ in range(max(a.repeat, 1)):
                        make = setup()  # a fresh cache (or local directory) each run: cold again
                        runs.append([run_epoch(r, make, a.workers, a.batch) for _ in range(2)])
                    rows[loader] = [median_run([run[i] for run in runs]) for i in (0, 1)]
                print(f"\nregime {name} ({'s3 link profile, 160 MiB/s' if name == 'A' else 'Garage, no emulator'})")
                print(f"  {'loader':<14} {'cold samples/s':>14} {'warm samples/s':>14} {'CPU s/GiB':>10}  on the wire (cold epoch)")
                for loader, (cold, warm) in rows.items():
                    cpu = (cold["cpu"] + warm["cpu"]) / (2 * size / 2**30)
                    extra = f" ({cold['samples'] * SAMPLE_SIZE / cold['secs'] / LINK_CAP:.2f} of the cap)" if name == "A" else ""
                    print(f"  {loader:<14} {cold['samples'] / cold['secs']:>14.0f} {warm['samples'] / warm['secs']:>14.0f} {cpu:>10.2f}  "
                          f"{cold['wire'].text()}{extra}")
                    if a.repeat > 1:
                        print(f"  {'':<14} {cold['spread']:>14} {warm['spread']:>14}  (min-max of {a.repeat} runs)")
                    if cold["samples"] < count:
                        print(f"    ({loader} yielded {cold['samples']} of {count} samples)")
                for line in verdicts(rows, name, size):
                    print("  " + line)
                    failed |= line.endswith("✗")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed and os.environ.get("STRATA_BENCH_STRICT") == "1" else 0
