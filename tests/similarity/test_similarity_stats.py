"""Permutation tests, bootstrap intervals, and array types accepted at the public edge."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from ensemble_lens.errors import NonFiniteError, ShapeError
from ensemble_lens.similarity import (
    bootstrap_ci,
    cca,
    linear_cka,
    mean_cca,
    permutation_test,
    procrustes_similarity,
    rsa,
    shape_distance,
)


def _pair(seed, n=50):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    return x, x @ rng.normal(size=(4, 3)) + 0.5 * rng.normal(size=(n, 3))


def test_permutation_test_related_and_unrelated():
    x, y = _pair(0)
    res = permutation_test(x, y, "linear_cka", n_perm=99, seed=0)
    assert res.statistic == pytest.approx(linear_cka(x, y))
    assert res.p_value == pytest.approx(1 / 100) and res.null.shape == (99,)
    z = np.random.default_rng(1).normal(size=(50, 3))
    res2 = permutation_test(x, z, "linear_cka", n_perm=99, seed=0)
    assert res2.p_value > 0.05
    again = permutation_test(x, z, "linear_cka", n_perm=99, seed=0)
    np.testing.assert_array_equal(res2.null, again.null)
    dist = permutation_test(x, y, "shape_distance", n_perm=19, seed=0, alpha=0.5)
    assert dist.alternative == "less" and dist.p_value == pytest.approx(1 / 20)
    custom = permutation_test(x, y, lambda a, b: float(np.abs(a.T @ b).sum()), n_perm=9)
    assert custom.alternative == "greater"


def test_bootstrap_ci():
    x, y = _pair(2, n=80)
    res = bootstrap_ci(x, y, procrustes_similarity, n_boot=200, seed=3, level=0.9)
    assert res.low <= res.statistic <= res.high and res.samples.shape == (200,)
    again = bootstrap_ci(x, y, "procrustes_similarity", n_boot=200, seed=3, level=0.9)
    assert (again.low, again.high) == (res.low, res.high)
    assert np.quantile(res.samples, 0.05) == pytest.approx(res.low)


def test_stats_errors():
    x, y = _pair(4)
    with pytest.raises(ShapeError, match="n_perm: expected a positive"):
        permutation_test(x, y, "linear_cka", n_perm=0)
    with pytest.raises(ShapeError, match="level: expected a probability"):
        bootstrap_ci(x, y, "linear_cka", level=1.5)
    with pytest.raises(ShapeError, match="X has 50 samples but Y has 10"):
        permutation_test(x, y[:10], "linear_cka")


def test_torch_xarray_dask_inputs_give_numpy_results():
    import dask.array as da
    import torch

    x, y = _pair(5)
    ref = [linear_cka(x, y), mean_cca(x, y), shape_distance(x, y, 0.5), rsa(x, y)]
    for conv in (
        torch.from_numpy,
        lambda a: xr.DataArray(a, dims=("sample", "unit")),
        lambda a: da.from_array(a, chunks=(10, 2)),
    ):
        cx, cy = conv(x), conv(y)
        got = [linear_cka(cx, cy), mean_cca(cx, cy), shape_distance(cx, cy, 0.5), rsa(cx, cy)]
        np.testing.assert_allclose(got, ref, atol=1e-12)
    xt = torch.from_numpy(x.astype(np.float32))
    assert linear_cka(xt, y) == pytest.approx(ref[0], abs=1e-6)


def test_input_errors():
    x, y = _pair(6)
    ax = xr.DataArray(x, dims=("sample", "unit"), coords={"sample": np.arange(50)})
    ay = xr.DataArray(y, dims=("sample", "unit"), coords={"sample": np.arange(50)[::-1]})
    with pytest.raises(ShapeError, match="different sample ids"):
        linear_cka(ax, ay)
    with pytest.raises(ShapeError, match="at least 2 samples, got 1"):
        cca(x[:1], y[:1])
    with pytest.raises(ShapeError, match="2-D"):
        linear_cka(np.zeros((3, 2, 2)), y[:3])
    bad = y.copy()
    bad[0, 0] = np.nan
    with pytest.raises(NonFiniteError, match="Y: 1 non-finite values"):
        mean_cca(x, bad)
