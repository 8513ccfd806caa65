"""``python -m strata.bench ckpt``: checkpoints of a training state (fp32 parameters plus
AdamW's two moments, in 64 tensors) through ``strata.checkpoint`` (durable-local and
snapshot) and Strata's DCP writer, against torch DCP to a local directory plus an upload
(boto3), and s3torchconnector's DCP writer and reader: the stall (what the save cost the
training loop), the time until the checkpoint is durable in the store, the restore from the
store on a node without a local copy, and CPU seconds; in regimes A and B (see the package)."""

import argparse
import gc
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

import strata

from . import regimes
from .regimes import LINK_CAP, Measure, Regime, Wire


def make_state(param_bytes: int, tensors: int = 21):
    """{"model": {p_i}, "optim": {m_i, v_i}, "step"}: parameters of ``param_bytes`` in
    ``tensors`` fp32 tensors and AdamW's moments of the same shapes."""
    import torch

    n = max(param_bytes // 4 // tensors, 1)
    g = torch.Generator().manual_seed(0)
    model = {f"layers.{i}.weight": torch.randn(n, generator=g) for i in range(tensors)}
    optim = {f"{k}.exp_avg": torch.randn(n, generator=g) for k in model}
    optim.update({f"{k}.exp_avg_sq": torch.rand(n, generator=g) for k in model})
    return {"model": model, "optim": optim, "step": 1}


def flat(state) -> Dict[str, Any]:
    """The state as DCP takes it here: one level of names."""
    out = {f"model.{k}": v for k, v in state["model"].items()}
    out.update({f"optim.{k}": v for k, v in state["optim"].items()})
    out["step"] = state["step"]
    return out


def zeros_like(d: Dict[str, Any]) -> Dict[str, Any]:
    import torch

    return {k: (torch.empty_like(v) if torch.is_tensor(v) else 0) for k, v in d.items()}


def nbytes(state) -> int:
    return sum(t.numel() * t.element_size() for part in ("model", "optim") for t in state[part].values())


class Row(dict):
    """One tool's figures: stall, durable, restore (seconds), cpu (seconds)."""


def run_strata(r: Regime, state, mode: str, work: str) -> Row:
    """A save as a training loop makes it: in snapshot mode the staging memory of an earlier
    save is reused, so a first save (its stall reported as ``first``) comes before the one
    measured."""
    root = r.url(f"bench/strata-{mode}")
    local = os.path.join(work, f"strata-{mode}")
    first = None
    if mode == "snapshot":
        with Measure() as m:
            h0 = strata.checkpoint.save(state, 0, root=root, local=local, mode=mode, blocking=False)
        h0.wait()
        first = m.secs
    with Wire(r) as ws, Measure() as total:
        with Measure() as stall:
            h = strata.checkpoint.save(state, 1, root=root, local=local, mode=mode, blocking=False)
        h.wait()
    strata.checkpoint.close()
    with Wire(r) as wr, Measure() as restore:
        back = strata.checkpoint.load(root=root, framework="torch")
    del back
    shutil.rmtree(local, ignore_errors=True)
    return Row(stall=stall.secs, durable=total.secs, restore=restore.secs, cpu=total.cpu + restore.cpu, wire=(ws, wr), first=first)


def run_strata_dcp(r: Regime, state, work: str) -> Row:
    import torch.distributed.checkpoint as dcp

    from strata.checkpoint.dcp import StorageReader, StorageWriter

    root = r.url("bench/strata-dcp")
    d = flat(state)
    with Wire(r) as ws, Measure() as total:
        with Measure() as stall:
            dcp.save(d, storage_writer=StorageWriter(root, local=os.path.join(work, "strata-dcp")), checkpoint_id=1)
        strata.checkpoint.wait()
    strata.checkpoint.close()
    target = zeros_like(d)
    with Wire(r) as wr, Measure() as restore:
        dcp.load(target, storage_reader=StorageReader(root), checkpoint_id=1)
    shutil.rmtree(os.path.join(work, "strata-dcp"), ignore_errors=True)
    return Row(stall=stall.secs, durable=total.secs, restore=restore.secs, cpu=total.cpu + restore.cpu, wire=(ws, wr))


def run_dcp_upload(r: Regime, state, work: str) -> Row:
    """torch DCP to a local directory, then every file uploaded with boto3 (multipart,
    10 threads: boto3's defaults); restored by downloading them and loading with DCP."""
    import torch.distributed.checkpoint as dcp
    from boto3.s3.transfer import TransferConfig

    d = flat(state)
    out = os.path.join(work, "dcp")
    s3 = r.boto3()
    cfg = TransferConfig(multipart_chunksize=8 << 20)
    with Wire(r) as ws, Measure() as total:
        with Measure() as stall:
            dcp.save(d, storage_writer=dcp.FileSystemWriter(out), checkpoint_id=out)
        for name in os.listdir(out):
            s3.upload_file(os.path.join(out, name), r.bucket, f"bench/dcp/{name}", Config=cfg)
    shutil.rmtree(out)
    target = zeros_like(d)
    back = os.path.join(work, "dcp-back")
    with Wire(r) as wr, Measure() as restore:
        os.makedirs(back)
        for o in s3.list_objects_v2(Bucket=r.bucket, Prefix="bench/dcp/")["Contents"]:
            s3.download_file(r.bucket, o["Key"], os.path.join(back, os.path.basename(o["Key"])), Config=cfg)
        dcp.load(target, storage_reader=dcp.FileSystemReader(back), checkpoint_id=back)
    shutil.rmtree(back)
    return Row(stall=stall.secs, durable=total.secs, restore=restore.secs, cpu=total.cpu + restore.cpu, wire=(ws, wr))


def _s3tc_client(r: Regime):
    from s3torchconnector import S3ClientConfig
    from s3torchconnector._s3client import S3Client

    return S3Client(r.region, endpoint=r.endpoint, s3client_config=S3ClientConfig(force_path_style=True))


def run_s3tc(r: Regime, state, work: str) -> Optional[Row]:
    """s3torchconnector's DCP writer (8 threads) and reader, pointed at the endpoint."""
    try:
        from s3torchconnector.dcp import S3StorageReader, S3StorageWriter
    except ImportError:
        return None
    import torch.distributed.checkpoint as dcp

    path = r.url("bench/s3tc/")
    d = flat(state)
    w = S3StorageWriter(r.region, path, thread_count=8)
    w.fs._client = _s3tc_client(r)
    with Wire(r) as ws, Measure() as total:
        dcp.save(d, storage_writer=w)
    rd = S3StorageReader(r.region, path)
    rd.fs._client = _s3tc_client(r)
    target = zeros_like(d)
    with Wire(r) as wr, Measure() as restore:
        dcp.load(target, storage_reader=rd)
    return Row(stall=total.secs, durable=total.secs, restore=restore.secs, cpu=total.cpu + restore.cpu, wire=(ws, wr))


def verdicts(rows: Dict[str, Row], size: int, name: str, limits: Dict[str, float]) -> List[str]:
    """The issue's targets, each with its figure and ✓ or ✗."""
    out = []
    others = {k: v for k, v in rows.items() if not k.startswith("strata")}

    def mark(ok: bool) -> str:
        return "✓" if ok else "✗"

    snap, dl = rows.get("strata snapshot"), rows.get("strata durable-local")
    if snap:
        ref = limits["memcpy"]
        out.append(f"snapshot stall {snap['stall']:.2f} s = {snap['stall'] / ref:.2f} × bytes/memcpy (≤ 1.5) {mark(snap['stall'] <= 1.5 * ref)}")
    if dl:
        ref = limits["local_write"]
        out.append(f"durable-local stall {dl['stall']:.2f} s = {dl['stall'] / ref:.2f} × local write (≤ 1.2) {mark(dl['stall'] <= 1.2 * ref)}")
    for what in ("durable", "restore"):
        if not others:
            continue
        best_name, best = min(((k, v[what]) for k, v in others.items()), key=lambda kv: kv[1])
        ours_name, ours = min(((k, v[what]) for k, v in rows.items() if k.startswith("strata")), key=lambda kv: kv[1])
        line = f"{what}: {ours_name} {ours:.2f} s, best other {best_name} {best:.2f} s: {best / ours:.2f}× (≥ 1.25)"
        ok = best / ours >= 1.25
        if name == "A":
            cap = size / LINK_CAP
            line += f"; {ours / cap:.2f} × bytes/cap (≤ 1.1)"
            ok = ok or ours <= 1.1 * cap
        out.append(f"{line} {mark(ok)}")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m strata.bench ckpt", description=__doc__.splitlines()[0])
    p.add_argument("--size", default="1GiB", help="parameter bytes (the state is about 3× that); default 1GiB")
    p.add_argument("--regimes", default="A,B", help="A, B or both (default A,B)")
    p.add_argument("--tools", default="strata-durable-local,strata-snapshot,strata-dcp,dcp-upload,s3torchconnector")
    a = p.parse_args(argv)
    state = make_state(regimes.parse_size(a.size))
    size = nbytes(state)
    work = tempfile.mkdtemp(prefix="strata-bench-ckpt-", dir=os.environ.get("STRATA_BENCH_DIR"))
    tools: Dict[str, Callable[[Regime], Optional[Row]]] = {
        "strata-durable-local": lambda r: run_strata(r, state, "durable-local", work),
        "strata-snapshot": lambda r: run_strata(r, state, "snapshot", work),
        "strata-dcp": lambda r: run_strata_dcp(r, state, work),
        "dcp-upload": lambda r: run_dcp_upload(r, state, work),
        "s3torchconnector": lambda r: run_s3tc(r, state, work),
    }
    limits = {"memcpy": regimes.memcpy_secs(size), "local_write": regimes.local_write_secs(size, work)}
    print(f"state: {size / 1e9:.2f} GB in {len(state['model']) * 3} tensors; memcpy {size / limits['memcpy'] / 2**30:.1f} GiB/s, "
          f"local write+fsync {size / limits['local_write'] / 2**20:.0f} MiB/s ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    failed = False
    try:
        for name in a.regimes.split(","):
            with regimes.regime(name.strip()) as r:
                # The local device as the strata durable-local save finds it in this regime
                # (the previous regime's server may still be writing back).
                regimes.drop_caches()
                limits["local_write"] = regimes.local_write_secs(size, work)
                print(f"\nregime {name}: local write+fsync {size / limits['local_write'] / 2**20:.0f} MiB/s")
                rows: Dict[str, Row] = {}
                for tool in a.tools.split(","):
                    row = tools[tool.strip()](r)
                    gc.collect()
                    if row is None:
                        print(f"  {tool}: not installed, skipped")
                        continue
                    label = tool.replace("strata-", "strata ").replace("strata dcp", "strata DCP")
                    rows[label] = row
                print(f"\nregime {name} ({'s3 link profile, 160 MiB/s' if name == 'A' else 'Garage, no emulator'})")
                print(f"  {'tool':<22} {'stall s':>8} {'durable s':>10} {'restore s':>10} {'CPU s/GiB':>10}")
                for k, v in rows.items():
                    print(f"  {k:<22} {v['stall']:>8.2f} {v['durable']:>10.2f} {v['restore']:>10.2f} {v['cpu'] / (2 * size / 2**30):>10.2f}")
                if any(v["wire"][0].counts for v in rows.values()):
                    print("  on the wire and at the server (save · restore):")
                    for k, v in rows.items():
                        print(f"    {k:<20} {v['wire'][0].text()} · {v['wire'][1].text()}")
                snap = rows.get("strata snapshot")
                if snap and snap.get("first") is not None:
                    print(f"  (strata snapshot: the first save of a process, into new staging memory, stalled {snap['first']:.2f} s)")
                for line in verdicts(rows, size, name, limits):
                    print("  " + line)
                    failed |= line.endswith("✗")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed and os.environ.get("STRATA_BENCH_STRICT") == "1" else 0
