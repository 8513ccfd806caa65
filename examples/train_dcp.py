"""Train with PyTorch DDP and checkpoint through torch.distributed.checkpoint (DCP) with
Strata as its storage: each save stalls only for the local copy, the drain to the store runs
in the background, and a restart resumes from the newest complete checkpoint, on any number
of ranks, on this node (its local copy) or another (the store).

    torchrun --nproc_per_node 2 examples/train_dcp.py --ckpt-root s3://bucket/ckpt/dcp-run \\
        --ckpt-local /nvme/ckpt --stop-after 25      # "preempted" after step 25
    python examples/train_dcp.py --ckpt-root s3://bucket/ckpt/dcp-run --ckpt-local /other/node
                                                # resumes on one process, from the store

Without --ckpt-root the checkpoints stay on the local tier (one process only).
"""

import argparse
import os

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

import strata
from strata.checkpoint.dcp import StorageReader, StorageWriter

FEATURES, CLASSES = 32, 4


def batch(step: int, rank: int, world: int, size: int = 64):
    """A deterministic batch for (step, rank): the same run gives the same data."""
    g = torch.Generator().manual_seed(step * 1009 + rank)
    centers = torch.Generator().manual_seed(7)
    c = torch.randn(CLASSES, FEATURES, generator=centers) * 2
    y = torch.randint(0, CLASSES, (size,), generator=g)
    x = c[y] + torch.randn(size, FEATURES, generator=g)
    return x, y


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt-root", default=None, help="checkpoint root in a store (needed for several ranks)")
    ap.add_argument("--ckpt-local", default=None, help="this node's local tier (NVMe directory)")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--every", type=int, default=10, help="checkpoint every N steps")
    ap.add_argument("--stop-after", type=int, default=None, help="stop (as if preempted) after this step")
    a = ap.parse_args()

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if world > 1 else 0
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(FEATURES, 64), torch.nn.ReLU(), torch.nn.Linear(64, CLASSES))
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    optim = torch.optim.AdamW(model.parameters(), lr=1e-2)

    start = 0
    last = strata.checkpoint.latest(root=a.ckpt_root, local=a.ckpt_local)
    if last is not None:
        msd, osd = get_state_dict(model, optim)
        state = {"model": msd, "optim": osd, "step": 0}
        dcp.load(state, storage_reader=StorageReader(a.ckpt_root, local=a.ckpt_local), checkpoint_id=last)
        set_state_dict(model, optim, model_state_dict=state["model"], optim_state_dict=state["optim"])
        start = state["step"]
        if rank == 0:
            print(f"resumed from step {start} on {world} rank(s)", flush=True)

    for step in range(start + 1, a.steps + 1):
        x, y = batch(step, rank, world)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optim.zero_grad()
        loss.backward()
        optim.step()
        if rank == 0 and step % 5 == 0:
            print(f"step {step} loss {loss.item():.4f}", flush=True)
        if step % a.every == 0:
            msd, osd = get_state_dict(model, optim)
            dcp.save({"model": msd, "optim": osd, "step": step},
                     storage_writer=StorageWriter(a.ckpt_root, local=a.ckpt_local), checkpoint_id=step)
        if a.stop_after is not None and step >= a.stop_after:
            strata.checkpoint.wait()
            if rank == 0:
                print(f"stopped at step {step}", flush=True)
            break
    else:
        strata.checkpoint.wait()
        if rank == 0:
            print(f"done at step {a.steps}", flush=True)
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
