"""input_basis_map: recovering s·dx, s·dy from an unknown linear mix, using inputs alone."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from ensemble_lens.align import input_basis_map
from ensemble_lens.errors import ShapeError


def _force_like(n: int = 2000, seed: int = 0, extra: int = 1, noise: float = 0.01):
    """Inputs (n, 4) named a, dx, dy, b; the force scale s; a mixed message m (n, 2 + extra)."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(n, 2))
    other = rng.normal(size=(n, 2))
    s = 1.0 / (np.sum(d**2, axis=1) + 0.2) + 0.5 * other[:, 0]  # depends on a non-vector input
    f = s[:, None] * d
    A = rng.normal(size=(2 + extra, 2 + extra))
    m = np.c_[f, rng.normal(size=(n, extra))] @ A + 3.0 + noise * rng.normal(size=(n, 2 + extra))
    inputs = np.c_[other[:, 0], d, other[:, 1]]
    return inputs, s, f, m


def _slope(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.dot(x, y) / np.dot(x, x))


def test_recovers_force_components_from_a_random_mix():
    inputs, _, f, m = _force_like()
    out = input_basis_map(m, inputs, input_names=["a", "dx", "dy", "b"])
    y = out.components
    assert y.dims == ("sample", "component")
    assert list(y.component.values) == ["dx", "dy"]
    for j, name in enumerate(["dx", "dy"]):
        assert np.corrcoef(y.sel(component=name), f[:, j])[0, 1] > 0.999
    # one common factor: the output is lambda * s * d, not a per-axis rescaling or rotation
    kx, ky = _slope(y.values[:, 0], f[:, 0]), _slope(y.values[:, 1], f[:, 1])
    assert kx > 0 and abs(kx / ky - 1) < 0.01
    assert out.misalignment < 1e-3
    assert out.eigenvalues[1] > 100 * out.eigenvalues[0]  # identified: one small eigenvalue
    np.testing.assert_allclose(m @ out.matrix + out.offset, y.values, atol=1e-8)


def test_result_does_not_depend_on_the_basis_of_the_scores():
    inputs, _, _, m = _force_like(seed=1)
    R = np.random.default_rng(9).normal(size=(3, 3))
    a = input_basis_map(m, inputs, input_names=["a", "dx", "dy", "b"])
    b = input_basis_map(m @ R - 7.0, inputs, input_names=["a", "dx", "dy", "b"])
    np.testing.assert_allclose(a.components.values, b.components.values, atol=1e-6)


def test_three_dimensional_vectors_and_xarray_inputs():
    rng = np.random.default_rng(2)
    d = rng.normal(size=(1500, 3))
    s = np.exp(-np.sum(d**2, axis=1) / 4)
    m = (s[:, None] * d) @ rng.normal(size=(3, 4))
    inputs = xr.DataArray(d, dims=("sample", "variable"), coords={"variable": ["x", "y", "z"]})
    scores = xr.DataArray(m, dims=("sample", "component"), coords={"sample": np.arange(1500) + 100})
    out = input_basis_map(scores, inputs, vector_names=("x", "y", "z"))
    assert list(out.components.sample.values[:2]) == [100, 101]
    for j in range(3):
        assert np.corrcoef(out.components.values[:, j], s * d[:, j])[0, 1] > 0.9999


def test_scores_without_an_equivariant_vector_are_flagged():
    inputs, _, _, _ = _force_like(seed=3)
    unrelated = np.random.default_rng(0).normal(size=(len(inputs), 3))
    out = input_basis_map(unrelated, inputs, input_names=["a", "dx", "dy", "b"])
    assert out.misalignment > 0.1


def test_errors():
    inputs, _, _, m = _force_like(n=50)
    with pytest.raises(ShapeError, match=r"vector components \['dz'\] not among the input names"):
        input_basis_map(m, inputs, vector_names=("dx", "dz"), input_names=["a", "dx", "dy", "b"])
    with pytest.raises(ShapeError, match=r"expected input_names for 4 columns"):
        input_basis_map(m, inputs)
    with pytest.raises(ShapeError, match=r"input_names: expected 4 names like the inputs, got 2"):
        input_basis_map(m, inputs, input_names=["dx", "dy"])
    with pytest.raises(ShapeError, match=r"scores: expected at least 2 components"):
        input_basis_map(m[:, :1], inputs[:, 1:3])
    with pytest.raises(ShapeError, match=r"inputs: expected 50 samples like the scores, got 49"):
        input_basis_map(m, inputs[:49, 1:3])
