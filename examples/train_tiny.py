"""Train a tiny model on a packed dataset with Strata: shuffled reading, asynchronous
checkpoints, and exact resume after a stop.

    python examples/train_tiny.py --work /tmp/tiny                 # makes and packs a dataset
    python examples/train_tiny.py --work /tmp/tiny --stop-after 25 # "preempted" at step 25
    python examples/train_tiny.py --work /tmp/tiny                 # resumes from the last checkpoint

The model is a softmax classifier in numpy (so the example runs anywhere); with PyTorch the
same Dataset is a torch IterableDataset and the same checkpoint calls take torch tensors.
"""

import argparse
import io
import os
import sys

import numpy as np

import strata

FEATURES, CLASSES = 16, 4


def make_dataset(work: str, samples: int = 1200) -> str:
    """Raw samples (a feature vector as .npy, a label as .cls) packed into tar shards."""
    url = os.path.join(work, "packed")
    if os.path.exists(os.path.join(url, "manifest.json")):
        return url
    raw = os.path.join(work, "raw")
    os.makedirs(raw, exist_ok=True)
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((CLASSES, FEATURES)) * 2
    for i in range(samples):
        label = i % CLASSES
        x = (centers[label] + rng.standard_normal(FEATURES)).astype(np.float32)
        buf = io.BytesIO()
        np.save(buf, x)
        with open(os.path.join(raw, f"{i:06d}.npy"), "wb") as f:
            f.write(buf.getvalue())
        with open(os.path.join(raw, f"{i:06d}.cls"), "w") as f:
            f.write(str(label))
    strata.pack(raw, url, shard_size=64 << 10)
    return url


def batches(ds, size):
    xs, ys = [], []
    for s in ds:
        xs.append(s["npy"])
        ys.append(s["cls"])
        if len(xs) == size:
            yield np.stack(xs), np.array(ys)
            xs, ys = [], []


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True, help="directory for the dataset and checkpoints")
    p.add_argument("--data", help="a packed dataset URL (default: make one under --work)")
    p.add_argument("--ckpt-root", help="a store URL to drain checkpoints to (default: local only)")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--every", type=int, default=10, help="checkpoint every N steps")
    p.add_argument("--stop-after", type=int, help="stop (as if preempted) after this step")
    a = p.parse_args(argv)
    url = a.data or make_dataset(a.work)
    local = os.path.join(a.work, "ckpt")
    ds = strata.Dataset(url, shuffle=True, seed=0, decode=True)
    w = np.zeros((FEATURES, CLASSES), np.float32)
    b = np.zeros(CLASSES, np.float32)
    step = 0
    latest = strata.checkpoint.latest(root=a.ckpt_root, local=local)
    if latest is not None:
        st = strata.checkpoint.load(latest, root=a.ckpt_root, local=local)
        w, b, step = np.array(st["w"]), np.array(st["b"]), st["step"]
        ds.load_state_dict(st["data"])
        print(f"resumed from step {step} (epoch {st['data']['epoch']}, sample {st['data']['consumed']})")
    pending = None
    seen_this_run = 0
    while step < a.steps:
        for x, y in batches(ds, a.batch):
            logits = x @ w + b
            logits -= logits.max(axis=1, keepdims=True)
            p_ = np.exp(logits)
            p_ /= p_.sum(axis=1, keepdims=True)
            loss = float(-np.log(p_[np.arange(len(y)), y] + 1e-9).mean())
            p_[np.arange(len(y)), y] -= 1
            w -= 0.1 * x.T @ p_ / len(y)
            b -= 0.1 * p_.mean(axis=0)
            step += 1
            seen_this_run += len(y)
            if step % 10 == 0:
                print(f"step {step} loss {loss:.4f}")
            if step % a.every == 0:
                if pending is not None:
                    pending.wait()  # at most one checkpoint draining at a time
                state = {"w": w, "b": b, "step": step, "data": ds.state_dict(samples_seen=seen_this_run)}
                pending = strata.checkpoint.save(state, step, root=a.ckpt_root, local=local, blocking=False)
            if a.stop_after is not None and step >= a.stop_after:
                if pending is not None:
                    pending.wait()
                print(f"stopped at step {step}")
                return 0
            if step >= a.steps:
                break
        else:
            # The epoch is over: the next one starts from its beginning, in a new order.
            ds.set_epoch(ds.epoch + 1)
            seen_this_run = 0
    if pending is not None:
        pending.wait()
    print(f"done at step {step} loss {loss:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
