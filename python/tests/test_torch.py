"""With torch installed: Dataset under a DataLoader with workers, torch tensors through
checkpoints and models. Skipped where torch is not installed (CI installs numpy only)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import strata  # noqa: E402
from test_dataset import write_wds  # noqa: E402


def test_a_dataloader_with_workers_reads_every_sample_once(tmp_path):
    d = str(tmp_path / "wds")
    write_wds(d, shards=4, per=25)
    strata.index(d)
    ds = strata.Dataset(d, seed=1)
    assert isinstance(ds, torch.utils.data.IterableDataset)
    dl = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    keys = [s["__key__"] for s in dl]
    assert sorted(keys) == sorted(f"s{i:05d}" for i in range(100))
    # The DataLoader's round-robin order is the plan's order, so a state taken after k
    # samples resumes exactly.
    state = ds.state_dict(samples_seen=30)
    ds2 = strata.Dataset(d, seed=1)
    ds2.load_state_dict(state)
    rest = [s["__key__"] for s in torch.utils.data.DataLoader(ds2, batch_size=None, num_workers=2)]
    assert keys[30:] == rest


def test_torch_tensors_round_trip_through_checkpoints_and_models(tmp_path, cache_dir):
    local = str(tmp_path / "nvme")
    w = torch.randn(8, 4).to(torch.bfloat16)
    strata.checkpoint.save({"w": w, "b": torch.arange(3)}, 1, local=local)
    back = strata.checkpoint.load(local=local)
    assert back["w"].dtype == torch.bfloat16 and torch.equal(back["w"], w)
    assert torch.equal(back["b"], torch.arange(3))
    from safetensors.torch import save_file

    m = tmp_path / "m"
    m.mkdir()
    save_file({"x": w, "y": torch.ones(5)}, str(m / "model.safetensors"))
    t = strata.models.load(str(m), cache_dir=cache_dir, framework="torch")
    assert t["x"].dtype == torch.bfloat16 and torch.equal(t["x"], w)
    assert torch.equal(t["y"], torch.ones(5))
    assert np.array_equal(strata.models.load(str(m), cache_dir=cache_dir)["y"], np.ones(5, np.float32))
