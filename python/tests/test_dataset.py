"""strata.Dataset against the webdataset package, both ways, and its split across ranks and
workers with elastic resume."""

import glob
import io
import json
import os

import numpy as np
import pytest
import webdataset as wds

import strata


def write_wds(d, shards=3, per=40):
    """A dataset written by webdataset's own ShardWriter."""
    os.makedirs(d, exist_ok=True)
    samples = []
    with wds.ShardWriter(os.path.join(d, "shard-%06d.tar"), maxcount=per) as w:
        for i in range(shards * per):
            arr = np.arange(i, i + 6, dtype=np.float32).reshape(2, 3)
            buf = io.BytesIO()
            np.save(buf, arr)
            s = {
                "__key__": f"s{i:05d}",
                "npy": buf.getvalue(),
                "json": json.dumps({"i": i}).encode(),
                "txt": f"sample {i}".encode(),
                "cls": str(i % 7).encode(),
            }
            w.write(s)
            samples.append(s)
    return samples


def test_webdataset_shards_read_by_strata_sample_for_sample(tmp_path):
    d = str(tmp_path / "wds")
    written = write_wds(d)
    strata.index(d)
    got = list(strata.Dataset(d, shuffle=False))
    assert len(got) == len(written)
    for w, g in zip(written, got):
        assert g["__key__"] == w["__key__"]
        for ext in ("npy", "json", "txt", "cls"):
            assert g[ext] == w[ext], (w["__key__"], ext)
    # Decoded like WebDataset's decoders would.
    d0 = next(iter(strata.Dataset(d, shuffle=False, decode=True)))
    assert d0["cls"] == 0 and d0["txt"] == "sample 0" and d0["json"] == {"i": 0}
    np.testing.assert_array_equal(d0["npy"], np.arange(0, 6, dtype=np.float32).reshape(2, 3))


def test_strata_shards_read_by_webdataset_sample_for_sample(tmp_path):
    src = tmp_path / "raw"
    src.mkdir()
    expect = {}
    for i in range(70):
        key = f"{i:04d}"
        (src / f"{key}.txt").write_bytes(f"text {i}".encode())
        (src / f"{key}.cls").write_bytes(str(i % 3).encode())
        expect[key] = {"txt": f"text {i}".encode(), "cls": str(i % 3).encode()}
    dst = str(tmp_path / "packed")
    m = strata.pack(str(src), dst, shard_size=4096)
    assert m["samples"] == 70
    tars = sorted(glob.glob(os.path.join(dst, "**", "*.tar"), recursive=True))
    assert len(tars) > 1
    seen = {}
    for s in wds.WebDataset(tars, shardshuffle=False):
        seen[s["__key__"]] = {"txt": s["txt"], "cls": s["cls"]}
    assert seen == expect
    # And strata reads its own shards in a shuffled order, every sample once.
    keys = [s["__key__"] for s in strata.Dataset(dst, shuffle=True, seed=3)]
    assert sorted(keys) == sorted(expect) and keys != sorted(keys)


@pytest.fixture
def packed(tmp_path):
    d = str(tmp_path / "wds")
    write_wds(d, shards=4, per=25)  # 100 samples
    strata.index(d)
    return d


def read_rank(url, world, rank, workers, state=None, take=None, seed=5):
    """One rank's samples as a DataLoader delivers them: its workers' streams round-robin."""
    streams = []
    for w in range(workers):
        ds = strata.Dataset(url, seed=seed, rank=rank, world_size=world, worker=w, num_workers=workers)
        if state:
            ds.load_state_dict(state)
        streams.append(iter(ds))
    out = []
    live = list(streams)
    while live and (take is None or len(out) < take):
        for it in list(live):
            if take is not None and len(out) >= take:
                break
            try:
                out.append(next(it)["__key__"])
            except StopIteration:
                live.remove(it)
    return out


def test_four_ranks_two_workers_read_every_sample_once_with_equal_counts(packed):
    per_rank = [read_rank(packed, 4, r, 2) for r in range(4)]
    assert len({len(p) for p in per_rank}) == 1, [len(p) for p in per_rank]
    everything = [k for p in per_rank for k in p]
    assert len(everything) == 100 and len(set(everything)) == 100
    assert len(strata.Dataset(packed, rank=0, world_size=4)) == 25


def test_stop_and_resume_with_another_world_size_completes_the_epoch(packed):
    k = 9
    first = [read_rank(packed, 4, r, 2, take=k) for r in range(4)]
    ds = strata.Dataset(packed, seed=5, rank=0, world_size=4)
    state = ds.state_dict(samples_seen=k)
    assert state["consumed"] == 4 * k
    rest = [read_rank(packed, 3, r, 1, state=state) for r in range(3)]
    counts = {len(p) for p in rest}
    assert len(counts) == 1, counts  # equal counts per rank after the resize
    done = [x for p in first for x in p]
    more = [x for p in rest for x in p]
    assert len(set(done)) == len(done) == 36
    # Every sample of the epoch, nothing lost; repeats only as the documented padding (the
    # last ranks' shortfall, filled from the start of the order).
    pad = len(more) - (100 - 36)
    assert 0 <= pad < 3
    assert set(done) | set(more) == {f"s{i:05d}" for i in range(100)}
    assert len(set(done) & set(more)) + (len(more) - len(set(more))) <= pad


def test_set_epoch_changes_the_order_and_bad_input_is_clear(packed):
    ds = strata.Dataset(packed, seed=1)
    e0 = [s["__key__"] for s in ds]
    ds.set_epoch(1)
    e1 = [s["__key__"] for s in ds]
    assert sorted(e0) == sorted(e1) and e0 != e1
    with pytest.raises(ValueError, match="shuffle"):
        strata.Dataset(packed, shuffle="sideways")
    with pytest.raises(Exception, match="manifest|not found|No such"):
        list(strata.Dataset(packed + "-missing"))
    with pytest.raises(ValueError, match="seed"):
        strata.Dataset(packed, seed=2).load_state_dict({"seed": 1, "epoch": 0, "consumed": 0})


def test_a_dataset_on_s3_read_through_the_block_cache(tmp_path, s3):
    src = tmp_path / "raw"
    src.mkdir()
    for i in range(40):
        (src / f"{i:04d}.txt").write_bytes(f"sample {i}".encode() * 50)
    url = "s3://strata-test/py/packed/"
    m = strata.pack(str(src), url, shard_size=8192)
    assert m["samples"] == 40
    cache = str(tmp_path / "cache")
    a = [(s["__key__"], s["txt"]) for s in strata.Dataset(url, seed=2, cache_dir=cache)]
    b = [(s["__key__"], s["txt"]) for s in strata.Dataset(url, seed=2)]
    assert a == b and len(a) == 40
    assert sorted(k for k, _ in a) == [f"{i:04d}" for i in range(40)]
    assert all(v == f"sample {int(k)}".encode() * 50 for k, v in a)


def test_the_scratch_tier_falls_back_when_dev_shm_is_small_or_unusable(monkeypatch):
    """A container's 64 MiB /dev/shm: the scratch tier goes to the temporary directory. No
    room anywhere: the dataset warns and reads ranges directly instead of failing."""
    import tempfile

    import strata.dataset as sd

    monkeypatch.setattr(sd, "_free", lambda base: (64 << 20) if base == "/dev/shm" else (8 << 30))
    s = sd._Scratch()
    try:
        assert os.path.dirname(s.dir) == tempfile.gettempdir()
        assert s.bytes == sd.SCRATCH_BYTES
    finally:
        s._finalizer()
    assert not os.path.exists(s.dir)

    def no_room():
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sd, "_Scratch", no_room)
    with pytest.warns(UserWarning, match="No space left on device"):
        ds = strata.Dataset("s3://bucket/train/")
    assert ds._scratch is None
    # A local dataset and a global shuffle never make one.
    monkeypatch.undo()
    assert strata.Dataset("/tmp/some/dir")._scratch is None
    assert strata.Dataset("s3://bucket/train/", shuffle="global")._scratch is None
