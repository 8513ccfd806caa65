"""With torch installed: Dataset under a DataLoader with workers, torch tensors through
checkpoints and models. Skipped where torch is not installed (CI installs numpy only)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import strata  # noqa: E402
from test_dataset import write_wds  # noqa: E402


def test_a_dataloader_with_workers_reads_every_sample_once(tmp_path):
    d = str(tmp_path / "wds")
    write_wds(d, shards=4, per=25)
    strata.index(d)
    ds = strata.Dataset(d, seed=1)
    assert isinstance(ds, torch.utils.data.IterableDataset)
    dl = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    keys = [s["__key__"] for s in dl]
    assert sorted(keys) == sorted(f"s{i:05d}" for i in range(100))
    # The DataLoader's round-robin order is the plan's order, so a state taken after k
    # samples resumes exactly.
    state = ds.state_dict(samples_seen=30)
    ds2 = strata.Dataset(d, seed=1)
    ds2.load_state_dict(state)
    rest = [s["__key__"] for s in torch.utils.data.DataLoader(ds2, batch_size=None, num_workers=2)]
    assert keys[30:] == rest


def test_torch_tensors_round_trip_through_checkpoints_and_models(tmp_path, cache_dir):
    local = str(tmp_path / "nvme")
    w = torch.randn(8, 4).to(torch.bfloat16)
    strata.checkpoint.save({"w": w, "b": torch.arange(3)}, 1, local=local)
    back = strata.checkpoint.load(local=local)
    assert back["w"].dtype == torch.bfloat16 and torch.equal(back["w"], w)
    assert torch.equal(back["b"], torch.arange(3))
    from safetensors.torch import save_file

    m = tmp_path / "m"
    m.mkdir()
    save_file({"x": w, "y": torch.ones(5)}, str(m / "model.safetensors"))
    t = strata.models.load(str(m), cache_dir=cache_dir, framework="torch")
    assert t["x"].dtype == torch.bfloat16 and torch.equal(t["x"], w)
    assert torch.equal(t["y"], torch.ones(5))
    assert np.array_equal(strata.models.load(str(m), cache_dir=cache_dir)["y"], np.ones(5, np.float32))


WORKER = r"""
import json, sys
import torch.distributed as dist
import strata
url, init, rank = sys.argv[1], sys.argv[2], int(sys.argv[3])
dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
ds = strata.Dataset(url, seed=4)
print(json.dumps({"place": ds.place(), "keys": [s["__key__"] for s in ds]}))
dist.destroy_process_group()
"""


def test_ranks_come_from_torch_distributed_when_initialised(tmp_path):
    import json
    import os
    import subprocess
    import sys

    d = str(tmp_path / "wds")
    write_wds(d, shards=2, per=25)
    strata.index(d)
    init = f"file://{tmp_path / 'rendezvous'}"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, d, init, str(r)], stdout=subprocess.PIPE, text=True, env=env)
        for r in range(2)
    ]
    outs = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    assert [o["place"][:2] for o in outs] == [[0, 2], [1, 2]]
    a, b = (o["keys"] for o in outs)
    assert len(a) == len(b) == 25 and set(a).isdisjoint(b)


def test_a_module_and_its_optimizer_restore_bit_exact(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(3):
        loss = model(torch.randn(4, 8)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    local = str(tmp_path / "nvme")
    strata.checkpoint.save({"model": model.state_dict(), "optim": opt.state_dict(), "epoch": 3}, 3, local=local)
    back = strata.checkpoint.load(local=local)
    model2 = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-3)
    model2.load_state_dict(back["model"])
    opt2.load_state_dict(back["optim"])
    for (k, a), (_, b) in zip(model.state_dict().items(), model2.state_dict().items()):
        assert a.dtype == b.dtype and torch.equal(a, b), k
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for i in s1["state"]:
        for k, v in s1["state"][i].items():
            w = s2["state"][i][k]
            assert v.dtype == w.dtype and torch.equal(v, w), (i, k)
    # Training goes on identically from both.
    x = torch.randn(4, 8)
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        m(x).pow(2).mean().backward()
        o.step()
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)
    assert back["epoch"] == 3


def test_without_a_cache_dir_workers_share_block_reads(tmp_path):
    """A shuffled epoch from S3 without ``cache_dir`` under a DataLoader with two workers:
    every sample once, byte-exact, and about one request per 8 MiB block (the workers'
    samples interleave, so each would otherwise fetch every block, or a range per sample);
    the scratch directory goes with the dataset, and one a killed process left is swept."""
    import gc
    import os
    import shutil

    from conftest import environment, server_stats, start_server, stop_server

    p, info = start_server("--link", "local")
    # A scratch directory of a process that no longer exists (pid 2**22 + 1 is above
    # pid_max's default).
    stale = os.path.join("/dev/shm", f"strata-scratch-{2**22 + 1}-x")
    os.makedirs(stale, exist_ok=True)
    try:
        with environment(info["env"]):
            src = tmp_path / "samples"
            src.mkdir()
            rng = np.random.default_rng(3)
            want = {}
            for i in range(400):
                body = rng.integers(0, 256, 100_000 + i, dtype=np.uint8).tobytes()
                (src / f"{i:05d}.bin").write_bytes(body)
                want[f"{i:05d}"] = body
            url = f"s3://{info['bucket']}/scratch/"
            strata.pack(str(src), url, shard_size=8 << 20)
            ds = strata.Dataset(url, seed=5)
            scratch = ds._scratch.dir
            assert not os.path.exists(stale), "a dead process's scratch directory was swept"
            before = server_stats(p)
            dl = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
            got = {s["__key__"]: s["bin"] for s in dl}
            after = server_stats(p)
            assert got.keys() == want.keys()
            assert all(got[k] == want[k] for k in want), "a sample differs"
            blocks = -(-sum(len(b) for b in want.values()) // (8 << 20))
            requests = after["requests"] - before["requests"]
            # Blocks (each fetched once for both workers), the shards' indexes and the
            # manifest, each worker's: far from one per sample.
            assert requests <= 2 * blocks + 30, f"{requests} requests for {blocks} blocks of 400 samples"
            # The dataset's own count, over both workers: the same block reads (the server
            # also saw the manifest and the shards' indexes).
            st = ds.stats()
            total = sum(len(b) for b in want.values())
            assert st["samples"] == 400 and st["bytes"] == total, st
            assert blocks <= st["requests"] <= requests and st["bytes_read"] >= total, (st, requests)
            ds.set_epoch(1)
            assert ds.stats()["requests"] == 0 and ds.stats()["epoch"] == 1
            assert os.path.isdir(scratch)
            del dl, ds
            gc.collect()
            assert not os.path.exists(scratch), "the scratch directory went with the dataset"
    finally:
        shutil.rmtree(stale, ignore_errors=True)
        stop_server(p)
