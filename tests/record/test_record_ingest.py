import sys
import textwrap

import numpy as np
import pytest
import torch
import xarray as xr

from ensemble_lens import ingest_activations, load_model, record_activations
from ensemble_lens.errors import IngestError, ShapeError


@pytest.fixture
def factory_module(tmp_path, monkeypatch):
    (tmp_path / "user_nets.py").write_text(
        textwrap.dedent("""
        import torch
        def make(width=8):
            lin = torch.nn.Linear
            return torch.nn.Sequential(lin(3, width), torch.nn.ReLU(), lin(width, 1))
        NOT_A_MODEL = 3
        def bad():
            return NOT_A_MODEL
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "user_nets"
    sys.modules.pop("user_nets", None)


def test_state_dict_with_factory(tmp_path, factory_module, probe_store):
    net = load_model(None, factory=f"{factory_module}:make", factory_kwargs={"width": 8})
    torch.save(net.state_dict(), tmp_path / "w.pt")
    loaded = load_model(
        tmp_path / "w.pt", factory=f"{factory_module}:make", factory_kwargs={"width": 8}
    )
    x = torch.randn(5, 3)
    assert torch.equal(loaded(x), net(x))
    with pytest.raises(IngestError, match="does not fit the factory's architecture"):
        load_model(tmp_path / "w.pt", factory=f"{factory_module}:make", factory_kwargs={"width": 9})
    with pytest.raises(IngestError, match="returned int"):
        load_model(None, factory=f"{factory_module}:bad")
    with pytest.raises(IngestError, match="has no attribute 'nope'"):
        load_model(None, factory=f"{factory_module}:nope")


def test_torchscript_round_trip(tmp_path, probe_store):
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh())
    torch.jit.script(net).save(str(tmp_path / "net.ts"))
    loaded = load_model(tmp_path / "net.ts")
    record_activations(loaded, probe_store, "ts", [""])
    x = torch.from_numpy(probe_store.probe()["inputs"].values)
    with torch.no_grad():
        assert np.array_equal(probe_store.activations("ts", "output").values, net(x).numpy())
    with pytest.raises(ShapeError, match="TorchScript modules do not support forward hooks"):
        record_activations(loaded, probe_store, "ts1", ["1"])
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(IngestError, match="not a TorchScript file"):
        load_model(tmp_path / "junk.pt")


def test_npz_requires_explicit_sample_ids(tmp_path, probe_store):
    a = np.random.default_rng(0).normal(size=(1000, 5)).astype(np.float32)
    np.savez(tmp_path / "acts.npz", layer1=a)
    with pytest.raises(IngestError, match="carries no sample ids"):
        ingest_activations(probe_store, "ext", tmp_path / "acts.npz")
    assert ingest_activations(
        probe_store, "ext", tmp_path / "acts.npz", sample_ids="probe_order"
    ) == ["layer1"]
    np.testing.assert_array_equal(probe_store.activations("ext", "layer1").values, a)
    np.savez(tmp_path / "ids.npz", layer1=a, sample_ids=np.arange(1000)[::-1])
    with pytest.raises(ShapeError, match="model 'ext2': sample ids of the source differ"):
        ingest_activations(probe_store, "ext2", tmp_path / "ids.npz")


def test_npy_per_layer_and_netcdf(tmp_path, probe_store):
    a = np.ones((1000, 2), np.float32)
    np.save(tmp_path / "l1.npy", a)
    ingest_activations(
        probe_store, "npy", {"l1": tmp_path / "l1.npy"}, sample_ids=probe_store.sample_ids
    )
    assert probe_store.layers("npy") == ["l1"]
    ds = xr.Dataset(
        {"h": (("sample", "unit"), np.arange(3000, dtype=np.float32).reshape(1000, 3))},
        coords={"sample": probe_store.sample_ids},
    )
    ds.to_netcdf(tmp_path / "acts.nc")
    assert ingest_activations(probe_store, "nc", tmp_path / "acts.nc") == ["h"]
    np.testing.assert_array_equal(probe_store.activations("nc", "h").values, ds["h"].values)
    ds.to_zarr(tmp_path / "acts.zarr", mode="w")
    assert ingest_activations(probe_store, "zr", tmp_path / "acts.zarr") == ["h"]
    with pytest.raises(IngestError, match="already has layers"):
        ingest_activations(probe_store, "zr", ds)


def test_missing_source(tmp_path, probe_store):
    with pytest.raises(IngestError, match="does not exist"):
        ingest_activations(probe_store, "x", tmp_path / "none.npz")


def test_a_training_checkpoint_holding_the_state_dict(tmp_path):
    import torch

    from ensemble_lens.record.ingest import _load_state

    net = torch.nn.Linear(3, 2)
    torch.save(
        {"epoch": 3, "model_state_dict": net.state_dict(), "optimizer_state_dict": {}},
        tmp_path / "ckpt.pt",
    )
    other = torch.nn.Linear(3, 2)
    _load_state(other, tmp_path / "ckpt.pt", "m")
    assert torch.equal(other.weight, net.weight)
