"""strata.models.load: tensors as views of the cached files, equal to what was written."""

import mmap
import os

import numpy as np
from safetensors.numpy import save_file

import strata


def test_load_returns_zero_copy_views_equal_to_the_source(tmp_path, cache_dir):
    src = tmp_path / "store" / "tiny"
    src.mkdir(parents=True)
    rng = np.random.default_rng(0)
    a = {"layers.0.w": rng.standard_normal((16, 8)).astype(np.float32), "layers.0.b": np.arange(8, dtype=np.int32)}
    b = {"layers.1.w": rng.standard_normal((4, 4)).astype(np.float16), "head": np.ones(3, dtype=np.float64)}
    save_file(a, str(src / "model-00001-of-00002.safetensors"))
    save_file(b, str(src / "model-00002-of-00002.safetensors"))
    (src / "config.json").write_text('{"layers": 2}')
    got = strata.models.load(str(src), cache_dir=cache_dir)
    assert sorted(got) == sorted(list(a) + list(b))
    for k, v in {**a, **b}.items():
        np.testing.assert_array_equal(got[k], v)
        assert got[k].dtype == v.dtype
    # No copy: the array's memory is the cached file's map.
    base = got["layers.0.w"]
    while isinstance(getattr(base, "base", None), np.ndarray):
        base = base.base
    mv = base.base
    assert isinstance(mv, memoryview) and isinstance(mv.obj, mmap.mmap), type(mv)
    # A subset (one rank's slice) pulls only the selected tensors.
    part = strata.models.load(str(src), cache_dir=cache_dir, tensors=["layers.1."])
    assert sorted(part) == ["layers.1.w"]
    strata.models.wait()  # load returns at the last tensor; publication goes on behind it
    report = strata.models.pull(str(src), cache_dir=cache_dir)
    assert report["already_cached"] is True


def test_a_model_on_s3_pulled_once_and_viewed(tmp_path, cache_dir, s3):
    from conftest import cp

    src = tmp_path / "m"
    src.mkdir()
    w = {"layers.0.w": np.arange(64, dtype=np.float32).reshape(8, 8), "layers.1.w": np.ones((2, 2), np.float16)}
    save_file(w, str(src / "model.safetensors"))
    (src / "config.json").write_text("{}")
    cp(s3, str(src) + "/", "s3://strata-test/py/models/m/")
    got = strata.models.load("s3://strata-test/py/models/m/", cache_dir=cache_dir)
    for k, v in w.items():
        np.testing.assert_array_equal(got[k], v)
    strata.models.wait()
    again = strata.models.pull("s3://strata-test/py/models/m/", cache_dir=cache_dir)
    assert again["already_cached"] and again["fetched_bytes"] == 0


def test_stream_yields_each_tensor_before_the_pull_ends(tmp_path, cache_dir, s3_link):
    """Behind the link emulator, the first tensor arrives while later ones are still on
    their way; every tensor equals the source, and the model is published after."""
    from conftest import cp

    src = tmp_path / "big"
    src.mkdir()
    rng = np.random.default_rng(1)
    w = {f"layers.{i}.w": rng.standard_normal((2048, 1024)).astype(np.float32) for i in range(12)}  # 96 MiB
    save_file(w, str(src / "model.safetensors"))
    cp(s3_link, str(src) + "/", "s3://strata-test/py/models/big/")
    import os
    import time

    env = os.environ.copy()
    os.environ.update(s3_link["env"])
    try:
        t0 = time.monotonic()
        seen = []
        for name, t in strata.models.stream("s3://strata-test/py/models/big/", cache_dir=cache_dir):
            seen.append((name, time.monotonic() - t0))
            np.testing.assert_array_equal(t, w[name])
        reports = strata.models.wait()
        # Cached now: the same call yields every tensor at once, from the published directory.
        again = dict(strata.models.stream("s3://strata-test/py/models/big/", cache_dir=cache_dir))
    finally:
        os.environ.clear()
        os.environ.update(env)
    assert sorted(n for n, _ in seen) == sorted(w)
    assert reports and reports[0]["tensors"] == len(w)
    first, last = seen[0][1], seen[-1][1]
    assert first < 0.7 * last, (first, last)
    assert sorted(again) == sorted(w)
    np.testing.assert_array_equal(again["layers.3.w"], w["layers.3.w"])


def test_a_damaged_cached_model_is_pulled_again(tmp_path, cache_dir):
    """Issue #21, fault 2, from Python: a truncated cached file is caught by its size; a
    flipped byte of the same size is caught by verify=True; both are pulled again."""
    import glob

    src = tmp_path / "store" / "m"
    src.mkdir(parents=True)
    w = {"layers.0.w": np.arange(4096, dtype=np.float32)}
    save_file(w, str(src / "model.safetensors"))
    strata.models.load(str(src), cache_dir=cache_dir)
    strata.models.wait()
    (cached,) = [p for p in glob.glob(f"{cache_dir}/**/model.safetensors", recursive=True) if ".partial" not in p]
    size = os.path.getsize(cached)
    os.truncate(cached, size - 100)
    assert strata.models.pull(str(src), cache_dir=cache_dir)["already_cached"] is False
    got = strata.models.load(str(src), cache_dir=cache_dir)
    np.testing.assert_array_equal(got["layers.0.w"], w["layers.0.w"])
    del got
    (cached,) = [p for p in glob.glob(f"{cache_dir}/**/model.safetensors", recursive=True) if ".partial" not in p]
    with open(cached, "r+b") as f:
        f.seek(size - 8)
        b = f.read(1)
        f.seek(size - 8)
        f.write(bytes([b[0] ^ 1]))
    assert strata.models.pull(str(src), cache_dir=cache_dir)["already_cached"] is True
    assert strata.models.pull(str(src), cache_dir=cache_dir, verify=True)["already_cached"] is False
    got = strata.models.load(str(src), cache_dir=cache_dir, verify=True)
    np.testing.assert_array_equal(got["layers.0.w"], w["layers.0.w"])
