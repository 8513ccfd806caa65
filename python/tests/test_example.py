"""examples/train_tiny.py: trains, stops as if preempted, and resumes from its checkpoint."""

import os
import subprocess
import sys

from conftest import ROOT

EXAMPLE = os.path.join(ROOT, "examples", "train_tiny.py")


def run(*args):
    out = subprocess.run([sys.executable, EXAMPLE, *args], capture_output=True, text=True, check=True)
    return out.stdout


def test_the_example_trains_stops_and_resumes(tmp_path, s3):
    work = str(tmp_path / "tiny")
    root = "s3://strata-test/py/example-ckpt"
    first = run("--work", work, "--stop-after", "25", "--ckpt-root", root)
    assert "stopped at step 25" in first
    second = run("--work", work, "--ckpt-root", root)
    assert "resumed from step 20" in second, second
    assert "done at step 60" in second
    losses = [float(l.split()[-1]) for l in (first + second).splitlines() if " loss " in l]
    assert losses[-1] < losses[0]


DCP_EXAMPLE = os.path.join(ROOT, "examples", "train_dcp.py")


def test_the_dcp_example_stops_on_two_ranks_and_resumes_on_one_process_elsewhere(tmp_path, s3):
    root = "s3://strata-test/py/example-dcp"
    first = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         DCP_EXAMPLE, "--ckpt-root", root, "--ckpt-local", str(tmp_path / "node-a"), "--stop-after", "25"],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert first.returncode == 0, first.stderr[-3000:]
    assert "stopped at step 25" in first.stdout
    # Another node: its own (empty) local tier, one process; the checkpoint comes from the store.
    second = subprocess.run(
        [sys.executable, DCP_EXAMPLE, "--ckpt-root", root, "--ckpt-local", str(tmp_path / "node-b")],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "resumed from step 20 on 1 rank(s)" in second, second
    assert "done at step 60" in second
    losses = [float(l.split()[-1]) for l in (first.stdout + second).splitlines() if " loss " in l]
    assert losses[-1] < losses[0]
