"""strata.models.load: tensors as views of the cached files, equal to what was written."""

import mmap

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
    again = strata.models.pull("s3://strata-test/py/models/m/", cache_dir=cache_dir)
    assert again["already_cached"] and again["fetched_bytes"] == 0
