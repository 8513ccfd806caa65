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


def _owner(arr):
    """The object at the end of an array's chain of bases."""
    base = arr
    while getattr(base, "base", None) is not None:
        base = base.base
    return base


def test_a_load_views_the_engines_buffers_without_copies_and_writes_stay_private(tmp_path):
    local = str(tmp_path / "nvme")
    s = state(3)
    strata.checkpoint.save(s, 3, local=local)
    back = strata.checkpoint.load(local=local)
    w = back["model"]["w"]
    # The array views the restored file (a private map of the verified local file): no copy.
    owner = _owner(w)
    assert type(owner).__name__ == "LoadedFile" and owner.mapped, type(owner)
    assert w.flags.writeable
    # Writing to it (an optimizer step after a restore) never reaches the checkpoint.
    w += 1.0
    again = strata.checkpoint.load(local=local)
    np.testing.assert_array_equal(again["model"]["w"], s["model"]["w"])
    # Every tensor starts at a multiple of its element size: views are aligned.
    for arr in (again["model"]["w"], again["model"]["b"], again["optim"][0]["m"]):
        assert arr.ctypes.data % arr.dtype.itemsize == 0


def test_one_checkpointer_per_process_and_settings(tmp_path):
    local = str(tmp_path / "nvme")
    strata.checkpoint.close()
    for step in (1, 2, 3):
        strata.checkpoint.save(state(step), step, local=local)
    savers = [k for k in strata.checkpoint._checkpointers if not k[6]]
    assert len(savers) == 1, savers
    strata.checkpoint.close()
    assert not strata.checkpoint._checkpointers


def test_a_snapshot_is_the_state_at_save_even_if_it_changes_right_after(tmp_path, s3):
    root = "s3://strata-test/py/ckpt/snap"
    s = state(5)
    want = s["model"]["w"].copy()
    h = strata.checkpoint.save(s, 5, root=root, local=str(tmp_path / "node-a"), mode="snapshot", blocking=False)
    s["model"]["w"][:] = -7.0  # the training loop goes on at once
    h.wait()
    # From the store (another node): the memory the reads landed in, verified.
    back = strata.checkpoint.load(root=root)
    np.testing.assert_array_equal(back["model"]["w"], want)
    assert not _owner(back["model"]["w"]).mapped
    # From the local copy written beside the upload.
    local = strata.checkpoint.load(root=root, local=str(tmp_path / "node-a"))
    np.testing.assert_array_equal(local["model"]["w"], want)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_local_copy_is_never_served_the_store_is(tmp_path, s3, damage):
    root = f"s3://strata-test/py/ckpt/damaged-{damage}"
    local = str(tmp_path / "nvme")
    s = state(9)
    strata.checkpoint.save(s, 9, root=root, local=local)
    (path,) = glob.glob(os.path.join(local, "**", "tensors.safetensors"), recursive=True)
    if damage == "flip":
        with open(path, "r+b") as f:
            f.seek(os.path.getsize(path) - 3)
            b = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([b[0] ^ 0xFF]))
    else:
        os.truncate(path, os.path.getsize(path) // 2)
    back = strata.checkpoint.load(root=root, local=local)
    for k in ("w", "b"):
        np.testing.assert_array_equal(back["model"][k], s["model"][k])
    assert not _owner(back["model"]["w"]).mapped  # it came from the store


def test_saves_from_a_forked_child_use_a_checkpointer_of_their_own(tmp_path):
    local = str(tmp_path / "nvme")
    strata.checkpoint.save(state(1), 1, local=local)
    pid = os.fork()
    if pid == 0:  # the child: the parent's drain task does not exist here
        code = 1
        try:
            strata.checkpoint.save(state(2), 2, local=local)
            code = 0 if strata.checkpoint.latest(local=local) == 2 else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    np.testing.assert_array_equal(strata.checkpoint.load(2, local=local)["model"]["w"], state(2)["model"]["w"])


def test_hostile_state_keys_stay_inside_the_files(tmp_path):
    """Keys are names inside the safetensors header and the JSON state, never paths: unicode,
    newlines, quotes, `../`, NUL and 255+ bytes come back as they were, and the local tier
    holds only the engine's own names."""
    local = str(tmp_path / "nvme")
    name = 'é中\n../../x"}' + "a" * 255
    s = {name: np.arange(5, dtype=np.float32), "n": {"\x00k": np.ones(2), "t": (1, "two\n")}}
    strata.checkpoint.save(s, 1, local=local)
    back = strata.checkpoint.load(local=local)
    np.testing.assert_array_equal(back[name], s[name])
    np.testing.assert_array_equal(back["n"]["\x00k"], s["n"]["\x00k"])
    assert back["n"]["t"] == (1, "two\n")
    names = {f for _, _, files in os.walk(local) for f in files}
    assert names <= {"tensors.safetensors", "state.json", "rank-00000.json", "MANIFEST.json"}, names


def test_a_server_that_dies_during_a_restore_is_an_error_not_no_checkpoint(tmp_path):
    """The store dies while the newest checkpoint is being read: the load fails naming the
    store. It used to fall back past it and then say there was no checkpoint at all
    (FileNotFoundError), which a training script takes as "start from step 0"."""
    import signal
    import threading

    from conftest import environment, start_server

    p, info = start_server("--link", "s3")
    try:
        with environment(info["env"]):
            root = "s3://strata-test/py/ckpt/dies"
            big = {"w": np.ones(48 << 20, np.float32)}  # 192 MiB: over a second behind the link
            strata.checkpoint.save(big, 1, root=root, mode="snapshot")
            strata.checkpoint.close()
            threading.Timer(0.5, lambda: os.kill(p.pid, signal.SIGKILL)).start()
            with pytest.raises(strata._strata.StrataError, match="127.0.0.1"):
                strata.checkpoint.load(root=root)
    finally:
        p.kill()
        p.wait()
        strata.checkpoint.close()


def test_a_damaged_manifest_hides_only_its_step_from_load_list_and_latest(tmp_path):
    """Issue #21, fault 1, from Python: a truncated MANIFEST.json of the newest step on a
    store root hides that step only, with a warning naming it."""
    root = "file://" + str(tmp_path / "store" / "job")
    for step in (28, 29, 30):
        strata.checkpoint.save(state(step), step, root=root).wait()
    manifest = tmp_path / "store" / "job" / "step-000000000030" / "MANIFEST.json"
    with open(manifest, "r+b") as f:
        f.truncate(100)
    assert strata.checkpoint.latest(root=root) == 29
    listed = {c["step"]: c["complete"] for c in strata.checkpoint.list(root=root)}
    assert listed == {28: True, 29: True, 30: False}
    with pytest.warns(UserWarning, match="step-000000000030/MANIFEST.json: bad manifest"):
        back = strata.checkpoint.load(root=root)
    assert back["__step__"] == 29
    np.testing.assert_array_equal(back["model"]["w"], state(29)["model"]["w"])


def test_sync_drains_a_save_that_stopped_after_its_local_copy(tmp_path):
    """Issue #21, fault 6, from Python: a save killed once its local copy was durable (a
    child process, SIGKILL) is drained by strata.checkpoint.sync."""
    import signal
    import subprocess
    import sys
    import time

    root = "file://" + str(tmp_path / "store" / "job")
    local = str(tmp_path / "nvme")
    code = (
        "import numpy as np, strata, time;"
        f"strata.checkpoint.save({{'w': np.arange(1000.0)}}, 5, root={root!r}, local={local!r}, blocking=False);"
        "time.sleep(600)"
    )
    # The drain waits out a jitter of up to an hour: the kill lands before it starts.
    config = tmp_path / "strata.toml"
    config.write_text('[ckpt]\njitter = "1h"\n')
    env = dict(os.environ, STRATA_CONFIG=str(config))
    child = subprocess.Popen([sys.executable, "-c", code], env=env)
    manifest = os.path.join(local, "step-000000000005", "MANIFEST.json")
    deadline = time.time() + 60
    while not os.path.exists(manifest):
        assert time.time() < deadline and child.poll() is None, "no local copy"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    tiers = {c["step"]: c["tiers"] for c in strata.checkpoint.list(root=root, local=local)}
    assert tiers == {5: ["local"]}, tiers
    drained = strata.checkpoint.sync(root=root, local=local)
    assert [d["step"] for d in drained] == [5]
    back = strata.checkpoint.load(5, root=root)
    np.testing.assert_array_equal(back["w"], np.arange(1000.0))
