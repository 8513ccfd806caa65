"""strata.Dataset against the webdataset package, both ways, and its split across ranks and
workers with elastic resume."""

import glob
import io
import json
import os
import subprocess

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
    ds = strata.Dataset(url, seed=2, cache_dir=cache)
    # The manifest and shard indexes are copied into the node's cache once, where the
    # DataLoader is built: its workers read them from there, not from the bucket.
    assert ds.index and cache in ds.index, ds.index
    kept = os.listdir(os.path.join(cache, "indexes", os.listdir(os.path.join(cache, "indexes"))[0]))
    assert "manifest.json" in kept and sum(k.endswith(".idx") for k in kept) == len(m["shards"]), kept
    # A copy damaged on the node's disk is made again, not served or left in the way.
    idx = next(os.path.join(cache, "indexes", d, k) for d in os.listdir(os.path.join(cache, "indexes"))
               for k in kept if k.endswith(".idx"))
    with open(idx, "r+b") as f:
        f.truncate(20)
    ds = strata.Dataset(url, seed=2, cache_dir=cache)
    a = [(s["__key__"], s["txt"]) for s in ds]
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
    # No server here: the dataset is "found" without one.
    monkeypatch.setattr(sd._strata, "open_dataset", lambda url, **kw: ("", "shards", 0))
    with pytest.warns(UserWarning, match="No space left on device"):
        ds = strata.Dataset("s3://bucket/train/")
    assert ds._scratch is None
    # A local dataset and a global shuffle never make one.
    monkeypatch.undo()
    monkeypatch.setattr(sd._strata, "open_dataset", lambda url, **kw: ("", "shards", 0))
    assert strata.Dataset("/tmp/some/dir")._scratch is None
    assert strata.Dataset("s3://bucket/train/", shuffle="global")._scratch is None


def _keys(s3, prefix):
    import boto3

    c = boto3.client("s3", endpoint_url=s3["endpoint"], aws_access_key_id=s3["access_key_id"],
                     aws_secret_access_key=s3["secret_access_key"], region_name=s3["region"])
    out = []
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=s3["bucket"], Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", [])]
    return sorted(out), c


def test_a_dataset_in_a_bucket_the_job_may_only_read(tmp_path, s3, monkeypatch):
    """WebDataset shards with no manifest, in a prefix the job must not write: read with an
    index written elsewhere (strata.index(out=...), the CLI's --index), or indexed on first
    use into the node's cache; the bucket gets nothing, and shards that change are indexed
    again."""
    from conftest import cp

    want = {s["__key__"]: s for s in write_wds(str(tmp_path / "wds"))}
    prefix = "py/readonly"
    url = f"s3://{s3['bucket']}/{prefix}/"
    cp(s3, str(tmp_path / "wds") + "/", url)
    before, client = _keys(s3, prefix)
    assert len(before) == 3

    def check(ds, n=120):
        got = {s["__key__"]: s for s in ds}
        assert len(got) == n
        assert all(got[k]["npy"] == want[k]["npy"] and got[k]["txt"] == want[k]["txt"] for k in got)

    # An index written elsewhere.
    ix = str(tmp_path / "index")
    m = strata.index(url, out=ix)
    assert m["samples"] == 120 and all(sh.get("etag") for sh in m["shards"])
    check(strata.Dataset(url, index=ix, seed=1))
    out = subprocess.run([s3["bin"], "dataset", "info", url, "--index", ix], capture_output=True,
                         text=True, env={**os.environ, **s3["env"]})
    assert out.returncode == 0 and "120 samples" in out.stdout, out.stderr
    # Neither: indexed on first use into the node's cache, once.
    node = tmp_path / "node"
    monkeypatch.setenv("STRATA_CACHE_DIR", str(node))
    ds = strata.Dataset(url, seed=2)
    assert ds.index and str(node) in ds.index, ds.index
    check(ds)
    manifests = glob.glob(str(node / "indexes" / "*" / "manifest.json"))
    assert len(manifests) == 1
    first = os.stat(manifests[0]).st_mtime_ns
    check(strata.Dataset(url, seed=3))
    assert os.stat(manifests[0]).st_mtime_ns == first, "indexed again although nothing changed"
    assert _keys(s3, prefix)[0] == before, "something was written to the dataset's prefix"
    # A shard gone: the cached index no longer matches the listing, and is built again.
    client.delete_object(Bucket=s3["bucket"], Key=f"{prefix}/shard-000002.tar")
    check(strata.Dataset(url, seed=4), n=80)
    assert os.stat(manifests[0]).st_mtime_ns != first


def test_kill_9_while_indexing_on_first_use_leaves_the_node_cache_usable(tmp_path, s3_link):
    """A process killed (SIGKILL) at random points while it indexes a read-only dataset into
    the node's cache on first use: the next process opens the same dataset from the same
    cache and reads every sample, byte-exact (a half-written index set is never taken as
    whole: the manifest goes last, and copies are checked against it)."""
    import random
    import signal
    import sys
    import time

    from conftest import cp, environment

    want = {s["__key__"]: s for s in write_wds(str(tmp_path / "wds"), shards=12, per=20)}
    url = f"s3://{s3_link['bucket']}/py/kill-index/"
    cp(s3_link, str(tmp_path / "wds") + "/", url)
    node = tmp_path / "node"
    env = {**os.environ, **s3_link["env"], "STRATA_CACHE_DIR": str(node)}
    child = ("import sys, strata; print('go', flush=True); "
             "ds = strata.Dataset(sys.argv[1], seed=1); print('indexed', flush=True)")
    rng = random.Random(7)
    killed_midway = 0
    for round in range(6):
        if round % 2 == 0:  # from nothing now and then, so most kills land in a first indexing
            subprocess.run(["rm", "-rf", str(node)], check=True)
        p = subprocess.Popen([sys.executable, "-c", child, url], env=env, stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "go"
        time.sleep(rng.uniform(0.0, 0.4))
        p.send_signal(signal.SIGKILL)
        out = p.stdout.read()
        p.wait()
        killed_midway += "indexed" not in out
    assert killed_midway >= 2, f"only {killed_midway} kills landed before the index was whole"
    with environment({**s3_link["env"], "STRATA_CACHE_DIR": str(node)}):
        got = {s["__key__"]: s for s in strata.Dataset(url, seed=2)}
    assert len(got) == len(want)
    assert all(got[k]["npy"] == want[k]["npy"] and got[k]["txt"] == want[k]["txt"] for k in want)


def test_the_raw_layout_under_a_dataloader_heads_nothing(tmp_path):
    """One object per sample member: `layout="raw"` lists once where the DataLoader is
    built, and its two workers read every sample once, byte-exact, with one GET per object
    (no HEAD each, no listing each); a raw manifest (`strata.index(raw=True)`) spares the
    listing too."""
    import torch

    from conftest import cp, environment, server_stats, start_server, stop_server

    src = tmp_path / "raw"
    src.mkdir()
    rng = np.random.default_rng(4)
    want = {}
    for i in range(150):
        body = rng.integers(0, 256, 2000 + 13 * i, dtype=np.uint8).tobytes()
        (src / f"{i:05d}.bin").write_bytes(body)
        (src / f"{i:05d}.cls").write_bytes(str(i % 10).encode())
        want[f"{i:05d}"] = body
    p, info = start_server("--link", "local")
    try:
        with environment(info["env"]):
            url = f"s3://{info['bucket']}/rawset/"
            cp(info, str(src) + "/", url)
            for index_first in (False, True):
                if index_first:
                    m = strata.index(url, raw=True)
                    assert m["layout"] == "raw" and m["samples"] == 300
                before = server_stats(p)
                ds = strata.Dataset(url, layout="raw", seed=5, cache_dir=str(tmp_path / "node"))
                got = {}
                for s in torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2):
                    got.setdefault(s["__key__"], {}).update({k: v for k, v in s.items() if not k.startswith("__")})
                after = server_stats(p)
                assert sorted(got) == sorted(want)
                assert all(got[k]["bin"] == want[k] and got[k]["cls"] == str(int(k) % 10).encode() for k in want)
                requests = after["requests"] - before["requests"]
                # 300 GETs, a listing (or the manifest) here, nothing per object beyond.
                assert requests <= 300 + 4, f"{requests} requests for 300 objects"
    finally:
        stop_server(p)
