"""compute_moments: streaming == in-memory numpy, inputs, executors, stores, errors."""

from __future__ import annotations

import sys
import types
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import xarray as xr

from ensemble_lens.errors import ShapeError
from ensemble_lens.similarity import Moments, compute_moments


def _nets(seed=0, n=257, widths=(3, 5, 2), offset=0.0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + offset for d in widths]


@pytest.mark.parametrize("chunk", [1, 7, 64, 256, 257, 10_000])
def test_streaming_equals_numpy(chunk):
    xs = _nets()
    z = np.hstack(xs)
    m = compute_moments(xs, chunk_size=chunk)
    np.testing.assert_allclose(m.cov, np.cov(z, rowvar=False), rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.mean, z.mean(axis=0), rtol=0, atol=1e-12)
    assert m.n == 257 and m.widths == (3, 5, 2) and m.names == ("0", "1", "2")
    assert np.array_equal(m.offsets, [0, 3, 8, 10])
    np.testing.assert_array_equal(m.block(1, 2), m.cov[3:8, 8:10])
    np.testing.assert_array_equal(m.cov, m.cov.T)


def test_large_offset_keeps_precision():
    # naive sum-of-squares loses every digit here (1e8^2 * eps >> variance 1e-2)
    xs = _nets(seed=1, n=5000, widths=(4,), offset=1e8)
    rng = np.random.default_rng(3)
    xs = [1e8 + 0.1 * rng.normal(size=(5000, 4))]
    ref = np.cov(xs[0] - 1e8, rowvar=False)
    m = compute_moments(xs, chunk_size=333)
    np.testing.assert_allclose(m.cov, ref, rtol=1e-6, atol=1e-12)


def test_executor_and_dict_names():
    xs = _nets(seed=2, n=1000)
    ref = compute_moments(xs, chunk_size=1000)
    with ThreadPoolExecutor(2) as ex:
        m = compute_moments(dict(zip("abc", xs, strict=True)), chunk_size=37, executor=ex)
    assert m.names == ("a", "b", "c")
    np.testing.assert_allclose(m.cov, ref.cov, atol=1e-12, rtol=0)


def test_torch_xarray_dask_inputs():
    import dask.array as da
    import torch

    xs = _nets(seed=4, n=300)
    ref = compute_moments(xs)
    inputs = {
        "t": torch.tensor(xs[0], dtype=torch.float64),
        "x": xr.DataArray(xs[1].T, dims=("unit", "sample")),  # transposed on purpose
        "d": da.from_array(xs[2], chunks=(50, 2)),
    }
    m = compute_moments(inputs, chunk_size=64)
    np.testing.assert_allclose(m.cov, ref.cov, atol=1e-12, rtol=0)


class _FakeStore:
    """The slice of the StudyStore API that compute_moments uses."""

    def __init__(self, arrays, path="mem://store"):
        self._arrays, self.path = arrays, path
        self.models = sorted(arrays)

    def activations(self, model_id, layer):
        arr = self._arrays[model_id]
        return xr.DataArray(arr, dims=("sample", "unit"), coords={"sample": np.arange(len(arr))})


def test_store_pair_inline_and_by_path(monkeypatch):
    xs = _nets(seed=5, n=400)
    store = _FakeStore({f"m{i}": x for i, x in enumerate(xs)})
    ref = compute_moments(xs)
    m = compute_moments((store, "edge"), chunk_size=50)
    assert m.names == ("m0", "m1", "m2")
    np.testing.assert_allclose(m.cov, ref.cov, atol=1e-12, rtol=0)
    # executor tasks re-open the store by path: emulate with a registry of paths
    opened = []

    def open_store(path, mode="r"):
        opened.append((path, mode))
        return store

    fake = types.ModuleType("ensemble_lens.record.store")
    fake.open_store = open_store
    monkeypatch.setitem(sys.modules, "ensemble_lens.record.store", fake)
    import pickle

    from ensemble_lens.similarity import _sources as mod

    spec = pickle.loads(pickle.dumps(mod._StoreSpec(store.path, "edge", ("m0",), store)))
    assert spec.store is None
    np.testing.assert_array_equal(spec.open()[0].values, xs[0])
    assert opened == [("mem://store", "r")]


def test_memory_buffer_does_not_grow_with_n():
    import tracemalloc

    peaks = []
    for n in (4000, 16000):
        xs = _nets(seed=6, n=n, widths=(8, 8))
        tracemalloc.start()
        compute_moments(xs, chunk_size=500)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.5 * peaks[0]


def test_errors():
    xs = _nets(seed=7, n=50)
    with pytest.raises(ShapeError, match=r"network '1': expected 50 samples like '0', got 49"):
        compute_moments([xs[0], xs[1][:49]])
    bad = xs[1].copy()
    bad[10, 0] = np.nan
    with pytest.raises(ShapeError, match=r"network '1': non-finite values .* samples 0:50"):
        compute_moments([xs[0], bad])
    with pytest.raises(ShapeError, match="at least 2 samples, got 1"):
        compute_moments([xs[0][:1]])
    with pytest.raises(ShapeError, match="expected a list/dict"):
        compute_moments(xs[0].tolist().__iter__())
    with pytest.raises(ShapeError, match="2-D"):
        compute_moments([np.zeros((3, 2, 2))])
    a = xr.DataArray(xs[0], dims=("sample", "unit"), coords={"sample": np.arange(50)})
    b = xr.DataArray(xs[1], dims=("sample", "unit"), coords={"sample": np.arange(50) + 1})
    with pytest.raises(ShapeError, match="different sample ids"):
        compute_moments([a, b])
    with pytest.raises(ShapeError, match="at least one network"):
        compute_moments([])
    with pytest.raises(ShapeError, match="chunk_size"):
        compute_moments(xs, chunk_size=0)


def test_moments_is_frozen():
    m = compute_moments(_nets(n=20))
    assert isinstance(m, Moments)
    with pytest.raises(AttributeError):
        m.n = 3


def test_real_study_store(tmp_path):
    from ensemble_lens.record.store import open_store

    xs = _nets(seed=8, n=500, widths=(4, 3))
    store = open_store(tmp_path / "s.zarr", mode="w")
    store.write_probe(np.zeros((500, 1), np.float32), names=["x"])
    for i, x in enumerate(xs):
        store.write_activations(f"m{i}", "h", x.astype(np.float32))
    ref = np.cov(np.hstack([x.astype(np.float32).astype(np.float64) for x in xs]), rowvar=False)
    m = compute_moments((store, "h"), chunk_size=64)
    np.testing.assert_allclose(m.cov, ref, atol=1e-10, rtol=0)
    with ThreadPoolExecutor(2) as ex:
        m2 = compute_moments((open_store(tmp_path / "s.zarr"), "h"), chunk_size=64, executor=ex)
    np.testing.assert_allclose(m2.cov, ref, atol=1e-10, rtol=0)
    # what a task in another process gets: coordinates only, re-opened by path
    import pickle

    from ensemble_lens.similarity import _sources as mod

    spec = pickle.loads(pickle.dumps(mod._StoreSpec(str(store.path), "h", ("m1",), store)))
    np.testing.assert_array_equal(spec.open()[0].values, xs[1].astype(np.float32))


@pytest.mark.parametrize("chunk", [300, 8192])
def test_float32_products_on_the_numpy_path(chunk):
    """precision="float32" on the CPU: float32 BLAS products over at most 1024 rows, float64
    sums; the documented error, shown (not float64), and the same on the cross tiles."""
    from ensemble_lens.similarity import pairwise

    xs = _nets(seed=4, n=5000, widths=(6, 9, 4), offset=3.0)
    ref = compute_moments(xs, chunk_size=chunk)
    got = compute_moments(xs, chunk_size=chunk, precision="float32")
    err = float(np.abs(got.cov - ref.cov).max() / np.abs(ref.cov).max())
    assert 1e-12 < err < 1e-5
    np.testing.assert_array_equal(got.cov, got.cov.T)
    np.testing.assert_allclose(got.mean, ref.mean, rtol=1e-13, atol=0)
    for name in ("procrustes-distance=angular", "cca-score", "cka"):
        a = pairwise(xs, name).values
        b = pairwise(xs, name, precision="float32").values
        tiled = pairwise(xs, name, precision="float32", max_bytes=8 * 10**2).values  # cross tiles
        assert 0 < np.abs(a - b).max() < 1e-5 and np.abs(a - tiled).max() < 1e-5, name
