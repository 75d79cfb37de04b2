"""Numbers (issue 14): scale robustness, low-precision and complex inputs, exact zero diagonals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ensemble_lens.errors import ShapeError
from ensemble_lens.similarity import (
    compute_moments,
    linear_cka,
    mean_cca,
    pairwise,
    procrustes_similarity,
    rsa,
    shape_distance,
    svcca,
)


def _xy(seed=0, n=120):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    return x, x @ rng.normal(size=(6, 5)) + rng.normal(size=(n, 5))


@pytest.mark.parametrize(
    "fn", [linear_cka, mean_cca, svcca, procrustes_similarity, shape_distance, rsa]
)
@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e-300])
def test_scale_robust_single_pair(fn, scale):
    x, y = _xy()
    assert fn(x * scale, y) == pytest.approx(fn(x, y), abs=1e-13)
    assert fn(x, y * scale) == pytest.approx(fn(x, y), abs=1e-13)


@pytest.mark.parametrize(
    "metric", ["linear_cka", "shape_distance", "mean_cca", "procrustes_similarity"]
)
def test_scale_robust_pairwise(metric):
    x, y = _xy(1)
    da = pairwise({"a": x, "b": y, "big": x * 1e200, "tiny": y * 1e-200}, metric)
    ref = pairwise({"a": x, "b": y}, metric).values
    v = da.values
    assert np.isfinite(v).all()
    assert v[2, 1] == pytest.approx(ref[0, 1], abs=1e-12)
    assert v[0, 3] == pytest.approx(ref[0, 1], abs=1e-12)
    assert v[2, 3] == pytest.approx(ref[0, 1], abs=1e-12)
    m = compute_moments({"big": x * 1e200, "a": x})
    assert m.scales is not None and m.scales[0] != 1 and m.scales[-1] == 1


def test_low_precision_tensors_and_complex():
    x, y = _xy(2)
    tx, ty = torch.tensor(x, dtype=torch.bfloat16), torch.tensor(y, dtype=torch.float16)
    ref = linear_cka(tx.float().numpy(), ty.float().numpy())
    assert linear_cka(tx, ty) == pytest.approx(ref, abs=1e-12)
    assert pairwise({"a": tx, "b": ty}, "linear_cka").values[0, 1] == pytest.approx(ref, abs=1e-12)
    with pytest.raises(ShapeError, match="X: expected real activations, got complex"):
        linear_cka(x + 1j, y)
    with pytest.raises(ShapeError, match="network 'b': expected real activations"):
        pairwise({"a": x, "b": y.astype(complex)}, "linear_cka")
    with pytest.raises(ShapeError, match="expected real activations"):
        pairwise(
            {"a": x, "b": torch.tensor(y, dtype=torch.complex64)},
            "rsa-rdm=correlation-compare=pearson",
        )


@pytest.mark.parametrize(
    "metric",
    [
        "shape_distance",
        "permutation_distance",
        "procrustes-distance=angular",
        "shape_metric-alpha=0.5-distance=angular",
        "cka-kernel=linear-hsic=gretton-distance=angular",
    ],
)
def test_distance_diagonal_is_exactly_zero(metric):
    x, y = _xy(3)
    da = pairwise({"a": x, "b": y, "c": x + 0.1 * y[:, :1]}, metric)
    assert (np.diag(da.values) == 0.0).all()
    assert shape_distance(x, x) == 0.0


@pytest.mark.parametrize(
    "name", ["cka-kernel=linear-hsic=song-score", "cka-kernel=rbf-hsic=lange-score",
             "rsa-rdm=correlation-compare=spearman", "mutual_knn-topk=5", "cknna-topk=5",
             "linear_regression-r2-cv=3folds", "distance_correlation", "gulp", "ensd"],
)  # fmt: skip
def test_scale_robust_prepared_measures(name):
    x, y = _xy(4, n=60)
    ref = pairwise({"a": x, "b": y}, name).values
    got = pairwise({"a": x * 1e200, "b": y * 1e-200}, name).values
    np.testing.assert_allclose(got, ref, atol=1e-10)
