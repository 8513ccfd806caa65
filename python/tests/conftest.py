import json
import os
import subprocess

import pytest

# `environment(env)`: the variables of `env` set while a block runs (the benches' helper).
from strata.bench.regimes import environment  # noqa: F401

# Tests never ask a cloud metadata service for credentials, and ignore the user's config.
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.pop("STRATA_CONFIG", None)
os.environ["STRATA_CACHE_MIN_FREE_FRACTION"] = "0"

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def strata_bin():
    """The `strata` binary: $STRATA_BIN, else the workspace's debug or release build."""
    for p in (
        os.environ.get("STRATA_BIN"),
        os.path.join(ROOT, "target", "debug", "strata"),
        os.path.join(ROOT, "target", "release", "strata"),
    ):
        if p and os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def start_server(*args):
    """`strata test-s3-server ARGS` as a process: (process, info), the info holding the client
    settings under "env" and the binary under "bin". Skipped without the binary, unless
    STRATA_REQUIRE_S3=1 (scripts/test sets it). Stop it with `stop_server`."""
    exe = strata_bin()
    if exe is None:
        if os.environ.get("STRATA_REQUIRE_S3") == "1":
            pytest.fail("no strata binary for the S3 server (set STRATA_BIN or cargo build)")
        pytest.skip("no strata binary for the S3 server (cargo build -p strata-cli)")
    p = subprocess.Popen([exe, "test-s3-server", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    info = json.loads(p.stdout.readline())
    info["bin"] = exe
    info["env"] = {
        "AWS_ENDPOINT_URL": info["endpoint"],
        "AWS_ACCESS_KEY_ID": info["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": info["secret_access_key"],
        "AWS_REGION": info["region"],
    }
    return p, info


def server_stats(p):
    """What has crossed a `--link` server's emulated link so far (its `stats` line)."""
    p.stdin.write("stats\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())


@pytest.fixture(scope="session")
def s3():
    """A real S3 server on 127.0.0.1 (`strata test-s3-server`: s3s with files in a temporary
    directory), stopped by its process id at the end. The client settings go to the
    environment, where Strata reads them."""
    p, info = start_server()
    with environment(info["env"]):
        yield info
    stop_server(p)


def stop_server(p):
    """Stops a `strata test-s3-server` by its process id: SIGTERM, so that it removes its
    temporary directory; SIGKILL if it has not exited within 10 s."""
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def cp(s3, src, dst):
    """`strata cp -r SRC DST` against the test server."""
    subprocess.run([s3["bin"], "cp", "-r", src, dst], check=True, env={**os.environ, **s3["env"]},
                   stdout=subprocess.DEVNULL)


@pytest.fixture
def cache_dir(tmp_path):
    return str(tmp_path / "cache")


def start_daemon(s3, cache, *, link_env=None, token=None, buckets=("train=s3://strata-test/data",)):
    """`strata serve` on a free loopback port with its cache in `cache`; returns
    (process, base URL). Stop it with `stop(process)`."""
    env = {**os.environ, **s3["env"], **(link_env or {})}
    env.pop("STRATA_DAEMON", None)
    if token:
        env["STRATA_TOKEN"] = token
    args = [s3["bin"], "--json", "--cache", str(cache), "serve", "--listen", "127.0.0.1:0"]
    for b in buckets:
        args += ["--bucket", b]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
    line = p.stdout.readline()
    if not line:
        p.wait(10)
        raise RuntimeError(f"strata serve exited with {p.returncode}")
    info = json.loads(line)
    return p, "http://" + info["listen"]


def stop(p):
    p.kill()
    p.wait()


@pytest.fixture(scope="session")
def s3_link():
    """A second S3 server behind the link emulator's s3 profile (30 ms to first byte,
    160 MiB/s), for tests that watch rates."""
    p, info = start_server("--link", "s3")
    yield info
    stop_server(p)
