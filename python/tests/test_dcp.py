"""torch.distributed.checkpoint through Strata: 4 gloo ranks save DTensor-sharded state
(processes, as torchrun starts them), 2 ranks and then 1 process load it (resharded), from the
store; async_save; a damaged local copy falls back to the store; metadata that would run code
is refused."""

import json
import os
import pickle
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

import strata  # noqa: E402
from strata.checkpoint.dcp import METADATA, StorageReader, StorageWriter  # noqa: E402

WORKER = r"""
import json, sys
import torch, torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.tensor import Replicate, Shard, distribute_tensor, init_device_mesh
import strata
from strata.checkpoint.dcp import StorageReader, StorageWriter

op, init, rank, world, root, local, step = sys.argv[1:8]
rank, world, step = int(rank), int(world), int(step)
dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
mesh = init_device_mesh("cpu", (world,))
full = torch.arange(64 * 8, dtype=torch.float32).reshape(64, 8)
bias = torch.arange(10).to(torch.bfloat16)
if op == "save":
    sd = {"model": {"w": distribute_tensor(full, mesh, [Shard(0)]), "b": distribute_tensor(bias, mesh, [Replicate()])},
          "extra": {"epoch": 3, "note": "hi"}}
    dcp.save(sd, storage_writer=StorageWriter(root, local=f"{local}/node{rank}"), checkpoint_id=step)
    strata.checkpoint.wait()
    print(json.dumps({"ok": True}))
else:
    sd = {"model": {"w": distribute_tensor(torch.zeros_like(full), mesh, [Shard(0)]),
                    "b": distribute_tensor(torch.zeros_like(bias), mesh, [Replicate()])},
          "extra": {"epoch": 0, "note": ""}}
    dcp.load(sd, storage_reader=StorageReader(root, local=f"{local}/node{rank}"))
    ok = (torch.equal(sd["model"]["w"].full_tensor(), full) and torch.equal(sd["model"]["b"].full_tensor(), bias)
          and sd["extra"] == {"epoch": 3, "note": "hi"})
    print(json.dumps({"ok": bool(ok), "rows": sd["model"]["w"].to_local().shape[0]}))
dist.destroy_process_group()
"""


def run_ranks(tmp_path, op, world, root, local, step):
    init = f"file://{tmp_path}/init-{op}-{world}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, op, init, str(r), str(world), root, local, str(step)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        for r in range(world)
    ]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    return outs


def test_four_ranks_save_two_ranks_and_one_process_load(tmp_path, s3):
    root = "s3://strata-test/py/dcp/run1"
    local = str(tmp_path / "nodes")
    assert all(o["ok"] for o in run_ranks(tmp_path, "save", 4, root, local, 100))
    listed = strata.checkpoint.list(root=root)
    assert listed[-1]["step"] == 100 and listed[-1]["complete"] and listed[-1]["world_size"] == 4
    # Two ranks on other nodes (no local copies): each gets half the rows, from the store.
    outs = run_ranks(tmp_path, "load", 2, root, str(tmp_path / "other"), 100)
    assert [o["ok"] for o in outs] == [True, True] and [o["rows"] for o in outs] == [32, 32]
    # One process, no process group, plain tensors.
    sd = {"model": {"w": torch.zeros(64, 8), "b": torch.zeros(10, dtype=torch.bfloat16)}, "extra": {"epoch": 0, "note": ""}}
    torch.distributed.checkpoint.load(sd, storage_reader=StorageReader(root))
    assert torch.equal(sd["model"]["w"], torch.arange(64 * 8, dtype=torch.float32).reshape(64, 8))
    assert sd["extra"] == {"epoch": 3, "note": "hi"}


def _state(seed):
    g = torch.Generator().manual_seed(seed)
    return {"w": torch.randn(256, 64, generator=g), "m": {"step": seed, "v": torch.randn(7, generator=g).to(torch.float16)}}


def _empty():
    return {"w": torch.zeros(256, 64), "m": {"step": -1, "v": torch.zeros(7, dtype=torch.float16)}}


def test_async_save_in_snapshot_mode_then_load(tmp_path, s3):
    import torch.distributed.checkpoint as dcp

    root = "s3://strata-test/py/dcp/async"
    want = _state(1)
    sd = {k: (v.clone() if torch.is_tensor(v) else dict(v)) for k, v in want.items()}
    fut = dcp.async_save(sd, storage_writer=StorageWriter(root, local=str(tmp_path / "n"), mode="snapshot"), checkpoint_id=5)
    fut.result()
    sd["w"].add_(1.0)  # training goes on
    strata.checkpoint.wait()
    got = _empty()
    dcp.load(got, storage_reader=StorageReader(root), checkpoint_id=5)
    assert torch.equal(got["w"], want["w"]) and torch.equal(got["m"]["v"], want["m"]["v"]) and got["m"]["step"] == 1


def test_a_damaged_local_copy_is_read_from_the_store(tmp_path, s3):
    import glob

    import torch.distributed.checkpoint as dcp

    root, local = "s3://strata-test/py/dcp/damaged", str(tmp_path / "n")
    want = _state(2)
    dcp.save(want, storage_writer=StorageWriter(root, local=local, blocking=True), checkpoint_id=7)
    (data,) = glob.glob(os.path.join(local, "**", "dcp-data.bin"), recursive=True)
    with open(data, "r+b") as f:
        f.seek(100)
        f.write(b"\xff\xfe")
    got = _empty()
    dcp.load(got, storage_reader=StorageReader(root, local=local))
    assert torch.equal(got["w"], want["w"])


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch " + os.environ["STRATA_PWNED"],))


def test_metadata_that_would_run_code_is_refused(tmp_path, monkeypatch):
    """Whoever can write the checkpoint root can write a valid checkpoint (Strata's own
    engine computes the checksums): its metadata must not run code in the loading process,
    as pickle.load would."""
    from strata.checkpoint import _checkpointer

    local = str(tmp_path / "n")
    pwned = tmp_path / "pwned"
    monkeypatch.setenv("STRATA_PWNED", str(pwned))
    _checkpointer(None, local, 0, 1, None).save(9, [("dcp-data.bin", []), (METADATA, [pickle.dumps(_Boom())])]).wait()
    # DCP wraps the error in a CheckpointException, a BaseException.
    with pytest.raises(BaseException, match="refuses to load .*system"):
        torch.distributed.checkpoint.load(_empty(), storage_reader=StorageReader(local=local))
    assert not pwned.exists(), "the metadata ran a command"


def test_checkpoint_ids_are_steps():
    assert StorageWriter.validate_checkpoint_id(12) and StorageWriter.validate_checkpoint_id("12")
    for bad in ("s3://x/y", "-1", "step-3", True, None):
        assert not StorageWriter.validate_checkpoint_id(bad)
    with pytest.raises(BaseException, match="give dcp.save a checkpoint_id"):
        torch.distributed.checkpoint.save(_state(1), storage_writer=StorageWriter(local="/tmp/never"))


KILLED_SAVER = r"""
import sys, torch, torch.distributed.checkpoint as dcp, strata
from strata.checkpoint.dcp import StorageWriter
local = sys.argv[1]
sd = {f"w{i}": torch.zeros(1_000_000) for i in range(16)}  # 64 MB
start = (strata.checkpoint.latest(local=local) or 0) + 1
for step in range(start, start + 1000):
    for t in sd.values():
        t.fill_(step)
    dcp.save(sd, storage_writer=StorageWriter(local=local), checkpoint_id=step)
    print(step, flush=True)
"""


def test_dcp_saves_killed_at_random_points_leave_the_last_returned_step_loadable(tmp_path):
    """kill -9 of a process saving through DCP, at random points, three times: the newest
    complete checkpoint is never older than the last save that returned, loads exact, and the
    next run saves on from it (a half-written step is replaced, not an error)."""
    import random
    import signal
    import time

    local = str(tmp_path / "nvme")
    rng = random.Random(7)
    for _ in range(3):
        p = subprocess.Popen([sys.executable, "-W", "ignore", "-c", KILLED_SAVER, local], stdout=subprocess.PIPE, text=True)
        first = p.stdout.readline()  # one save returned: the process is saving in a loop
        time.sleep(rng.uniform(0.0, 2.0))
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        returned = [int(x) for x in (first + p.stdout.read()).split()]
        assert returned, "no save returned before the kill"
        strata.checkpoint.close()
        step = strata.checkpoint.latest(local=local)
        assert step >= returned[-1], (step, returned[-1])
        sd = {f"w{i}": torch.zeros(1_000_000) for i in range(16)}
        torch.distributed.checkpoint.load(sd, storage_reader=StorageReader(local=local, step=step))
        assert all(bool((t == step).all()) for t in sd.values())
