"""The moments pass on a torch device (``device=``): the same moments as the numpy path within
the documented tolerance (float64: 1e-12 relative; float32 products: 1e-5), through every
caller (compute_moments, pairwise tiles, blocks, aligners), and clear errors. Run here through
``device="torch-cpu"``; the cuda case runs where torch sees a GPU."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from ensemble_lens.align import MultisetCCA
from ensemble_lens.errors import BackendUnavailableError, ConfigError, ShapeError
from ensemble_lens.record.store import open_store
from ensemble_lens.similarity import _device, compute_moments, pairwise
from ensemble_lens.similarity.blocks import block_moments, pairwise_block

TORCH = ["torch-cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _nets(seed=0, n=3001, widths=(7, 12, 5, 9), offset=3.0):
    """Mixed networks sharing a latent, float32 like recorded activations, off-centre."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    out = {}
    for k, d in enumerate(widths):
        x = np.c_[z, rng.normal(size=(n, d - 3))] @ rng.normal(size=(d, d)) + offset * (k + 1)
        out[f"n{k}"] = x.astype(np.float32)
    return out


def _rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture
def torch_chunks(monkeypatch):
    """Counts the chunks the torch path accumulates (a spy: the real method still runs)."""
    from ensemble_lens.similarity._device import TorchSums

    seen = []
    real = TorchSums.add

    def add(self, za, zb=None):
        seen.append(len(za[0]))  # rows of the first network's part
        return real(self, za, zb)

    monkeypatch.setattr(TorchSums, "add", add)
    return seen


@pytest.mark.parametrize("device", TORCH)
@pytest.mark.parametrize("chunk", [1, 500, 8192])
def test_float64_torch_path_equals_numpy(device, chunk, torch_chunks):
    nets = _nets(n=1001 if chunk == 1 else 3001)
    ref = compute_moments(nets, chunk_size=chunk)
    assert torch_chunks == []
    got = compute_moments(nets, chunk_size=chunk, device=device)
    assert sum(torch_chunks) == ref.n  # every sample went through the torch accumulator
    assert got.names == ref.names and got.widths == ref.widths and got.n == ref.n
    assert _rel(got.cov, ref.cov) < 1e-12
    np.testing.assert_allclose(got.mean, ref.mean, rtol=1e-13, atol=0)
    np.testing.assert_array_equal(got.cov, got.cov.T)


@pytest.mark.parametrize("device", TORCH)
def test_float32_products_with_float64_accumulation(device):
    nets = _nets(seed=1, n=20_000)
    ref = compute_moments(nets)
    got = compute_moments(nets, device=device, precision="float32")
    err = _rel(got.cov, ref.cov)
    assert 0 < err < 1e-5  # float32 rounding shows, but stays at the documented level
    np.testing.assert_allclose(got.mean, ref.mean, rtol=1e-13, atol=0)


def test_large_offsets_and_power_of_two_scales_on_the_torch_path():
    rng = np.random.default_rng(3)
    nets = [1e8 + 0.1 * rng.normal(size=(4000, 4)), 1e30 * rng.normal(size=(4000, 3))]
    ref = compute_moments(nets, chunk_size=333)
    got = compute_moments(nets, chunk_size=333, device="torch-cpu")
    np.testing.assert_array_equal(got.scales, ref.scales)
    assert _rel(got.cov, ref.cov) < 1e-12


@pytest.mark.parametrize("on_host", [True, False])
def test_any_real_dtype_layout_and_source_on_the_torch_path(on_host, monkeypatch):
    # on_host=False: the parts are placed and cast by torch, as on a GPU
    monkeypatch.setattr(_device, "places_on_host", lambda device: on_host)
    rng = np.random.default_rng(8)
    x = rng.normal(size=(900, 4)) * [1, 10, 100, 1000]
    ro = x.astype(np.float32)
    ro.flags.writeable = False
    nets = {"read-only": ro, "big-endian": x.astype(">f8"), "int": (10 * x).astype(np.int32),
            "torch": torch.tensor(x), "strided": np.asfortranarray(x)[:, ::-1]}  # fmt: skip
    ref = compute_moments(nets, chunk_size=128)
    got = compute_moments(nets, chunk_size=128, device="torch-cpu")
    assert _rel(got.cov, ref.cov) < 1e-12
    bad = x.copy()
    bad[700, 2] = np.nan
    with pytest.raises(ShapeError, match=r"network 'b': non-finite values .* in samples 640:768"):
        compute_moments({"a": x, "b": bad}, chunk_size=128, device="torch-cpu")


def test_executor_blocks_and_a_store_on_the_torch_path(tmp_path):
    store = open_store(tmp_path / "s.zarr", mode="w")
    nets = _nets(seed=2, n=2500)
    store.write_probe(np.zeros((2500, 1), np.float32), ["x"])
    for k, x in nets.items():
        store.write_activations(k, "h", x)
    ref = compute_moments((store, "h"), chunk_size=300)
    with ThreadPoolExecutor(2) as ex:
        got = compute_moments((store, "h"), chunk_size=300, executor=ex, device="torch-cpu")
    assert _rel(got.cov, ref.cov) < 1e-12


@pytest.mark.parametrize("metric", ["linear_cka", "mean_cca", "procrustes_similarity"])
def test_pairwise_tiles_and_blocks_on_the_torch_path(metric):
    nets = _nets(seed=4, n=2000, widths=(6, 9, 4, 8, 5))
    ref = pairwise(nets, metric, max_bytes=8 * 15**2)  # groups of <= 15 units: cross tiles
    got = pairwise(nets, metric, max_bytes=8 * 15**2, device="torch-cpu")
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-10, atol=1e-12)
    rows, cols = {k: nets[k] for k in ("n0", "n1")}, {k: nets[k] for k in ("n2", "n3", "n4")}
    fwd, _, method = pairwise_block(rows, cols, metric, device="torch-cpu")
    assert method == "moments"
    np.testing.assert_allclose(fwd, ref.values[:2, 2:], rtol=1e-10, atol=1e-12)
    mom = block_moments(rows, cols, device="torch-cpu")
    fwd, _, _ = pairwise_block(rows, cols, metric, moments=mom)
    np.testing.assert_allclose(fwd, ref.values[:2, 2:], rtol=1e-10, atol=1e-12)


def test_consensus_aligner_fit_on_the_torch_path():
    nets = list(_nets(seed=5, n=1500).values())
    ref = MultisetCCA(n_components=3).fit(nets)
    got = MultisetCCA(n_components=3, device="torch-cpu").fit(nets)
    np.testing.assert_allclose(got.maxvar_eigenvalues_, ref.maxvar_eigenvalues_, rtol=1e-9)
    for a, b in zip(got.transform(nets), ref.transform(nets), strict=True):
        np.testing.assert_allclose(np.abs(a), np.abs(b), rtol=1e-7, atol=1e-8)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_auto_without_cuda_is_the_numpy_path_and_cuda_is_an_error():
    nets = _nets(seed=6, n=500)
    ref = compute_moments(nets)
    np.testing.assert_array_equal(compute_moments(nets, device="auto").cov, ref.cov)
    with pytest.raises(BackendUnavailableError, match=r"^device: 'cuda' asked for, but torch"):
        compute_moments(nets, device="cuda")
    with pytest.raises(BackendUnavailableError, match="sees no CUDA device; use 'auto'"):
        pairwise(nets, "linear_cka", device="cuda")


def test_bad_device_and_precision_names():
    nets = _nets(seed=7, n=100)
    with pytest.raises(ConfigError, match=r"device: expected one of 'cpu', 'cuda', 'auto', 'tor"):
        compute_moments(nets, device="gpu")
    with pytest.raises(ConfigError, match=r"precision: expected 'float64' or 'float32', got 'h"):
        pairwise(nets, "linear_cka", device="torch-cpu", precision="half")


def test_the_numpy_path_does_not_import_torch():
    code = (
        "import sys, numpy as np; from ensemble_lens.similarity import compute_moments, pairwise;"
        "x = [np.random.default_rng(0).normal(size=(50, 3)) for _ in range(3)];"
        "compute_moments(x); pairwise(x, 'linear_cka', device='cpu');"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
