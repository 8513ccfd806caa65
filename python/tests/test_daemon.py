"""The node daemon from Python: boto3 through its S3-compatible endpoint, and strata.Dataset
reading through it (`strata.connect()` / $STRATA_DAEMON)."""

import json
import os
import re
import urllib.request

import pytest

import strata
from conftest import cp, start_daemon, stop

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402


def stats(base):
    with urllib.request.urlopen(base + "/api/stats") as r:
        return json.load(r)


def s3_client(base, key="any", secret="any"):
    return boto3.client(
        "s3",
        endpoint_url=base,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


@pytest.fixture
def objects(s3, tmp_path):
    """A few objects of known content under s3://strata-test/data/boto/."""
    src = tmp_path / "src"
    (src / "deep" / "er").mkdir(parents=True)
    files = {
        "big.bin": os.urandom(21 * (1 << 20) + 333),
        "small.txt": b"hello, daemon\n",
        "deep/er/x.bin": os.urandom(70_000),
        "deep/y.bin": os.urandom(5),
    }
    for k, v in files.items():
        (src / k).write_bytes(v)
    cp(s3, str(src) + "/", "s3://strata-test/data/boto/")
    return files


def test_boto3_reads_byte_exact(s3, objects, tmp_path):
    p, base = start_daemon(s3, tmp_path / "cache")
    try:
        c = s3_client(base)
        for k, v in objects.items():
            got = c.get_object(Bucket="train", Key="boto/" + k)["Body"].read()
            assert got == v, k
        big = objects["big.bin"]
        r = c.get_object(Bucket="train", Key="boto/big.bin", Range="bytes=1000000-1999999")
        assert r["Body"].read() == big[1000000:2000000]
        assert r["ContentRange"] == f"bytes 1000000-1999999/{len(big)}"
        h = c.head_object(Bucket="train", Key="boto/big.bin")
        assert h["ContentLength"] == len(big)
        # download_file: boto3's own parallel ranged GETs.
        dest = tmp_path / "big.out"
        c.download_file("train", "boto/big.bin", str(dest))
        assert dest.read_bytes() == big
        # ListObjectsV2 in pages of 2, and with a delimiter.
        keys = []
        for page in c.get_paginator("list_objects_v2").paginate(
            Bucket="train", Prefix="boto/", PaginationConfig={"PageSize": 2}
        ):
            keys += [o["Key"] for o in page.get("Contents", [])]
        assert sorted(keys) == sorted("boto/" + k for k in objects)
        r = c.list_objects_v2(Bucket="train", Prefix="boto/", Delimiter="/")
        assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["boto/deep/"]
        assert {o["Key"] for o in r["Contents"]} == {"boto/big.bin", "boto/small.txt"}
        with pytest.raises(ClientError) as e:
            c.get_object(Bucket="train", Key="boto/missing")
        assert e.value.response["Error"]["Code"] == "NoSuchKey"
        with pytest.raises(ClientError) as e:
            c.put_object(Bucket="train", Key="boto/new", Body=b"x")
        assert e.value.response["Error"]["Code"] == "AccessDenied"
        # Read twice, fetched once: the store moved each object once.
        fetched = stats(base)["upstream"]["bytes"]
        assert fetched <= sum(len(v) for v in objects.values()) + (8 << 20), fetched
    finally:
        stop(p)


def test_boto3_with_a_token(s3, objects, tmp_path):
    token = "t0ken-for-the-test-0123456789"
    p, base = start_daemon(s3, tmp_path / "cache", token=token)
    try:
        got = s3_client(base, key=token).get_object(Bucket="train", Key="boto/small.txt")
        assert got["Body"].read() == objects["small.txt"]
        with pytest.raises(ClientError) as e:
            s3_client(base, key="someone-else").get_object(Bucket="train", Key="boto/small.txt")
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    finally:
        stop(p)


def test_dataset_through_the_daemon(s3, tmp_path):
    src = tmp_path / "raw"
    src.mkdir()
    for i in range(300):
        (src / f"{i:05d}.bin").write_bytes(os.urandom(20_000 + i))
        (src / f"{i:05d}.cls").write_bytes(str(i % 10).encode())
    url = "s3://strata-test/data/ds-daemon/"
    strata.pack(str(src), url, shard_size=1 << 20)
    direct = {s["__key__"]: s["bin"] for s in strata.Dataset(url, seed=3)}
    p, base = start_daemon(s3, tmp_path / "cache")
    try:
        node = strata.connect(base)
        assert os.environ["STRATA_DAEMON"] == base
        ds = strata.Dataset(url, seed=3, job="pytest-ds")
        via = [(s["__key__"], s["bin"]) for s in ds]
        assert dict(via) == direct
        assert [k for k, _ in via] == list(direct), "the same order as direct reads"
        st = stats(base)
        shards = st["upstream"]["bytes"]
        assert 0 < shards <= 2 * sum(len(v) for v in direct.values()), st
        job = [j for j in st["jobs"] if j["name"] == "pytest-ds"]
        assert job and job[0]["report"]["samples"] == len(direct), st["jobs"]
        # A second process-worth of reads is served by the node's cache.
        list(strata.Dataset(url, seed=4))
        assert stats(base)["upstream"]["bytes"] == shards
        node.report("pytest-drain", drain_done=5, drain_total=10)
        assert any(j["name"] == "pytest-drain" for j in stats(base)["jobs"])
        assert node.read(url + "manifest.json")[:1] == b"{"
    finally:
        strata.daemon.disconnect()
        stop(p)
    with pytest.raises(strata.StrataError):
        strata.connect(base)


def test_warm_fills_the_local_cache_and_the_daemons(s3, objects, tmp_path):
    total = sum(len(v) for v in objects.values())
    url = "s3://strata-test/data/boto/"
    # Without a daemon: the local cache directory, then the page cache over it.
    local = tmp_path / "local-cache"
    r = strata.warm(url, cache_dir=str(local))
    assert (r["objects"], r["bytes"], r["fetched_bytes"]) == (len(objects), total, total), r
    r = strata.warm(url, cache_dir=str(local), tier="dram")
    assert r["fetched_bytes"] == 0, r
    assert r["page_cache"]["loaded_bytes"] >= total, r
    with pytest.raises(ValueError, match="tier"):
        strata.warm(url, tier="gpu")
    with pytest.raises(FileNotFoundError, match="data/none"):
        strata.warm("s3://strata-test/data/none/", cache_dir=str(local))
    # Connected: the daemon's cache, which every process on the node shares.
    p, base = start_daemon(s3, tmp_path / "cache")
    try:
        strata.connect(base)
        r = strata.warm(url, tier="dram")
        assert (r["total_bytes"], r["fetched_bytes"], r["dram_bytes"]) == (total, total, total), r
        before = stats(base)["upstream"]["bytes"]
        assert strata.connect(base).read(url + "big.bin") == objects["big.bin"]
        assert stats(base)["upstream"]["bytes"] == before, "read from the daemon's cache"
        assert strata.warm(url)["fetched_bytes"] == 0
    finally:
        strata.daemon.disconnect()
        stop(p)


def test_kubernetes_manifests_parse_and_their_config_is_valid(s3, tmp_path):
    import subprocess

    yaml = pytest.importorskip("yaml")
    from conftest import ROOT

    d = os.path.join(ROOT, "deploy", "kubernetes")
    docs = {}
    for name in ("namespace.yaml", "configmap.yaml", "daemonset.yaml", "training-job.yaml"):
        with open(os.path.join(d, name)) as f:
            for doc in yaml.safe_load_all(f):
                docs[(doc["kind"], doc["metadata"]["name"])] = doc
    ds = docs[("DaemonSet", "strata")]
    c = ds["spec"]["template"]["spec"]["containers"][0]
    assert c["args"][-1] == "serve"
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"
    job = docs[("Job", "resnet50-train")]
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["STRATA_DAEMON"].startswith("unix:/run/strata/")
    cfg = tmp_path / "config.toml"
    cfg.write_text(docs[("ConfigMap", "strata-config")]["data"]["config.toml"])
    out = subprocess.run([s3["bin"], "--config", str(cfg), "serve", "--print-config"],
                         capture_output=True, text=True, check=True).stdout
    assert 'socket = "/run/strata/strata.sock"' in out
    assert "train = \"s3://my-training-bucket/datasets/imagenet\"" in out
    assert "memory budget" in out
    # The image the DaemonSet runs: built by deploy/Dockerfile with the workspace's toolchain,
    # as the user the DaemonSet runs as, with `strata` as the entry point its args follow.
    with open(os.path.join(ROOT, "deploy", "Dockerfile")) as f:
        docker = f.read()
    with open(os.path.join(ROOT, "Cargo.toml")) as f:
        rust = re.search(r'rust-version = "([0-9.]+)"', f.read()).group(1)
    assert f"FROM rust:{rust}-" in docker
    assert "cargo build --release --locked -p strata-cli --no-default-features" in docker
    uid = ds["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert f"USER {uid}:" in docker
    assert 'ENTRYPOINT ["strata"]' in docker


def test_a_checkpoint_drain_shows_on_the_daemon(s3, tmp_path):
    import time

    import numpy as np

    p, base = start_daemon(s3, tmp_path / "cache")
    try:
        strata.connect(base)
        state = {"w": np.arange(3 << 20, dtype=np.float32), "step": 7}
        h = strata.checkpoint.save(state, 7, root="s3://strata-test/data/ckpt-daemon",
                                   local=str(tmp_path / "local"))
        done, total = h.progress()
        assert total > 12 << 20 and done == total, (done, total)
        deadline = time.time() + 10
        drains = []
        while time.time() < deadline:
            drains = [j for j in stats(base)["jobs"] if "-ckpt-7-r0" in j["name"]]
            if drains and drains[0]["report"]["drain_done"] == drains[0]["report"]["drain_total"]:
                break
            time.sleep(0.2)
        assert drains, stats(base)["jobs"]
        r = drains[0]["report"]
        assert r["kind"] == "checkpoint" and r["drain_done"] == r["drain_total"] == total, r
    finally:
        strata.daemon.disconnect()
        stop(p)


def test_s3torchconnector_reads_through_the_daemon(s3, objects, tmp_path):
    """s3torchconnector (AWS's PyTorch connector, on Mountpoint's CRT client) with its
    endpoint at the daemon: byte-exact, path style."""
    s3tc = pytest.importorskip("s3torchconnector")
    p, base = start_daemon(s3, tmp_path / "cache")
    try:
        cfg = s3tc.S3ClientConfig(force_path_style=True)
        ds = s3tc.S3IterableDataset.from_prefix("s3://train/boto/", region="us-east-1",
                                                endpoint=base, s3client_config=cfg)
        got = {item.key: item.read() for item in ds}
        assert got == {"boto/" + k: v for k, v in objects.items()}
        m = s3tc.S3MapDataset.from_prefix("s3://train/boto/", region="us-east-1",
                                          endpoint=base, s3client_config=cfg)
        assert len(m) == len(objects)
        f = m[0]
        f.seek(1000)
        assert f.read(10) == got[f.key][1000:1010]
    finally:
        stop(p)
