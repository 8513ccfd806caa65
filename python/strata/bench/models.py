"""``python -m strata.bench models``: a two-shard bf16 safetensors model loaded from the
store into memory on a node with an empty cache: ``strata.models.load`` (and the first tensor
of ``strata.models.stream``) against the run:ai model streamer (if installed): seconds to the
whole model, seconds to the first tensor, CPU seconds; in regimes A and B (see the
package)."""

import argparse
import gc
import os
import shutil
import tempfile
import time
from typing import Dict, List, Optional

import strata

from . import regimes
from .regimes import LINK_CAP, Measure, Regime, Wire


def make_model(directory: str, size: int, shards: int = 2) -> List[str]:
    """``shards`` safetensors files of bf16 tensors, ``size`` bytes in all (tensors of
    32 MiB, a 98 MB embedding first as in a 0.5B-parameter model)."""
    import torch
    from safetensors.torch import save_file

    os.makedirs(directory, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    per_shard = size // shards
    files = []
    for s in range(shards):
        tensors, left, i = {}, per_shard, 0
        while left > 0:
            n = min(left, (98 << 20) if (s, i) == (0, 0) else (32 << 20)) // 2
            tensors[f"model.layers.{s}.{i}.weight"] = torch.randn(n, generator=g).to(torch.bfloat16)
            left -= n * 2
            i += 1
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        save_file(tensors, os.path.join(directory, name))
        files.append(name)
    return files


def upload(r: Regime, directory: str, prefix: str) -> None:
    from boto3.s3.transfer import TransferConfig

    s3 = r.boto3()
    for name in os.listdir(directory):
        s3.upload_file(os.path.join(directory, name), r.bucket, f"{prefix}{name}", Config=TransferConfig(multipart_chunksize=16 << 20))


def run_strata(r: Regime, prefix: str, work: str) -> Dict[str, float]:
    cache = tempfile.mkdtemp(dir=work, prefix="cache-")
    t0 = time.perf_counter()
    first = None
    got = {}
    with Wire(r) as w, Measure() as m:
        for name, t in strata.models.stream(r.url(prefix), cache_dir=cache, framework="torch"):
            if first is None:
                first = time.perf_counter() - t0
            got[name] = t
    strata.models.wait()
    del got
    shutil.rmtree(cache, ignore_errors=True)
    return {"load": m.secs, "first": first or m.secs, "cpu": m.cpu, "wire": w}


def run_runai(r: Regime, prefix: str, files: List[str]) -> Optional[Dict[str, float]]:
    try:
        from runai_model_streamer import SafetensorsStreamer
    except ImportError:
        return None
    t0 = time.perf_counter()
    first = None
    got = {}
    with Wire(r) as w, Measure() as m:
        with SafetensorsStreamer() as s:
            s.stream_files([r.url(prefix + f) for f in files])
            for name, t in s.get_tensors():
                if first is None:
                    first = time.perf_counter() - t0
                got[name] = t.clone()  # the streamer reuses its buffer: a user keeps a copy
    del got
    return {"load": m.secs, "first": first or m.secs, "cpu": m.cpu, "wire": w}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m strata.bench models", description=__doc__.splitlines()[0])
    p.add_argument("--size", default="1GiB", help="model bytes (default 1GiB)")
    p.add_argument("--regimes", default="A,B")
    p.add_argument("--runs", type=int, default=1, help="runs per tool; medians are printed")
    a = p.parse_args(argv)
    size = regimes.parse_size(a.size)
    work = tempfile.mkdtemp(prefix="strata-bench-models-", dir=os.environ.get("STRATA_BENCH_DIR"))
    failed = False
    try:
        src = os.path.join(work, "model")
        files = make_model(src, size)
        total = sum(os.path.getsize(os.path.join(src, f)) for f in files)
        print(f"model: {total / 1e9:.2f} GB in {len(files)} files ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
        for name in a.regimes.split(","):
            name = name.strip()
            with regimes.regime(name) as r:
                upload(r, src, "bench/model/")
                rows: Dict[str, List[Dict[str, float]]] = {"strata": [], "run:ai": []}
                for _ in range(a.runs):
                    rows["strata"].append(run_strata(r, "bench/model/", work))
                    gc.collect()
                    ra = run_runai(r, "bench/model/", files)
                    if ra:
                        rows["run:ai"].append(ra)
                    gc.collect()

                def med(tool: str, k: str) -> float:
                    v = sorted(x[k] for x in rows[tool])
                    return v[len(v) // 2]

                print(f"\nregime {name} ({'s3 link profile, 160 MiB/s' if name == 'A' else 'Garage, no emulator'}), medians of {a.runs}")
                print(f"  {'tool':<8} {'load s':>8} {'first s':>8} {'CPU s/GiB':>10}")
                for tool in rows:
                    if rows[tool]:
                        print(f"  {tool:<8} {med(tool, 'load'):>8.2f} {med(tool, 'first'):>8.2f} {med(tool, 'cpu') / (total / 2**30):>10.2f}  "
                              f"{rows[tool][-1]['wire'].text()}")
                ours, first = med("strata", "load"), med("strata", "first")
                lines = []
                if rows["run:ai"]:
                    theirs = med("run:ai", "load")
                    ok = theirs / ours >= 1.25 or (name == "A" and ours <= 1.1 * total / LINK_CAP)
                    cap = f"; {ours / (total / LINK_CAP):.2f} × bytes/cap (≤ 1.1)" if name == "A" else ""
                    lines.append(f"load: {theirs / ours:.2f}× run:ai (≥ 1.25){cap} {'✓' if ok else '✗'}")
                limit = 1.0 if name == "A" else 0.3
                lines.append(f"first tensor {first:.2f} s (≤ {limit}) {'✓' if first <= limit else '✗'}")
                for line in lines:
                    print("  " + line)
                    failed |= line.endswith("✗")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed and os.environ.get("STRATA_BENCH_STRICT") == "1" else 0
