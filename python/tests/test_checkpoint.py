"""strata.checkpoint: nested state with numpy arrays, files the safetensors package reads,
async saves, latest and list."""

import glob
import os

import numpy as np
import pytest
from safetensors.numpy import load_file

import strata


def state(seed):
    rng = np.random.default_rng(seed)
    return {
        "model": {"w": rng.standard_normal((4, 8)).astype(np.float32), "b": np.arange(8, dtype=np.int64)},
        "optim": [{"m": rng.standard_normal(3).astype(np.float16)}, {"lr": 0.1}],
        "step": seed,
        "name": "run-1",
        "flags": [True, None, 2.5],
    }


def test_save_load_round_trip_and_files_load_with_safetensors(tmp_path):
    local = str(tmp_path / "nvme")
    s = state(10)
    h = strata.checkpoint.save(s, 10, local=local)
    assert h.step == 10 and h.stall_secs >= 0
    files = glob.glob(os.path.join(local, "**", "tensors.safetensors"), recursive=True)
    assert len(files) == 1
    raw = load_file(files[0])
    np.testing.assert_array_equal(raw["model.w"], s["model"]["w"])
    np.testing.assert_array_equal(raw["optim.0.m"], s["optim"][0]["m"])
    back = strata.checkpoint.load(local=local)
    assert back["__step__"] == 10
    np.testing.assert_array_equal(back["model"]["w"], s["model"]["w"])
    np.testing.assert_array_equal(back["model"]["b"], s["model"]["b"])
    assert back["optim"][1] == {"lr": 0.1} and back["step"] == 10 and back["name"] == "run-1"
    assert back["flags"] == [True, None, 2.5]


def test_async_saves_latest_and_list(tmp_path):
    local = str(tmp_path / "nvme")
    handles = [strata.checkpoint.save(state(i), i, local=local, blocking=False) for i in (1, 2, 3)]
    for h in handles:
        h.wait()
    assert strata.checkpoint.latest(local=local) == 3
    steps = [c["step"] for c in strata.checkpoint.list(local=local) if c["complete"]]
    assert steps == [1, 2, 3]
    back = strata.checkpoint.load(2, local=local)
    np.testing.assert_array_equal(back["model"]["w"], state(2)["model"]["w"])


def test_bad_state_and_missing_checkpoints_fail_clearly(tmp_path):
    local = str(tmp_path / "nvme")
    with pytest.raises(TypeError, match="object cannot be saved"):
        strata.checkpoint.save({"x": object()}, 1, local=local)
    with pytest.raises(TypeError, match="keys must be strings or ints"):
        strata.checkpoint.save({(1, 2): 2}, 1, local=local)
    # Int keys (as in an optimizer's state) come back as ints.
    strata.checkpoint.save({"state": {0: np.ones(2), 1: {"k": 3}}}, 2, local=local)
    back = strata.checkpoint.load(2, local=local)
    assert sorted(back["state"]) == [0, 1] and back["state"][1] == {"k": 3}
    with pytest.raises(FileNotFoundError):
        strata.checkpoint.load(local=str(tmp_path / "empty"))
    assert strata.checkpoint.latest(local=str(tmp_path / "empty2")) is None


def test_a_checkpoint_drained_to_s3_restores_on_another_node(tmp_path, s3):
    root = "s3://strata-test/py/ckpt/run1"
    s = state(7)
    h = strata.checkpoint.save(s, 7, root=root, local=str(tmp_path / "node-a"), blocking=False)
    report = h.wait()
    assert report["step"] == 7
    # Another node: no local tier, the store alone.
    back = strata.checkpoint.load(root=root)
    np.testing.assert_array_equal(back["model"]["w"], s["model"]["w"])
    assert back["__step__"] == 7
    listed = strata.checkpoint.list(root=root)
    assert listed[-1]["step"] == 7 and "remote" in [t.lower() for t in listed[-1]["tiers"]]
