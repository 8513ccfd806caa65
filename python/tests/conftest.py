import os

import pytest

# Tests never ask a cloud metadata service for credentials.
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.pop("STRATA_CONFIG", None)


@pytest.fixture
def cache_dir(tmp_path):
    d = tmp_path / "cache"
    os.environ["STRATA_CACHE_MIN_FREE_FRACTION"] = "0"
    return str(d)
