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
