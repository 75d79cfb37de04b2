"""Procrustes similarity, shape metrics (metric axioms) and unit matching."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import linalg
from scipy.optimize import linear_sum_assignment
from scipy.stats import ortho_group

from ensemble_lens.errors import DroppedUnitsWarning, NonFiniteError, ShapeError
from ensemble_lens.similarity import (
    match_units,
    mean_cca,
    permutation_distance,
    procrustes_similarity,
    shape_distance,
)


def _pair(seed, n=80, d1=5, d2=5):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d1)) @ rng.normal(size=(d1, d1))
    y = np.tanh(x[:, : min(d1, d2)]) @ rng.normal(size=(min(d1, d2), d2))
    return x, y + 0.5 * rng.normal(size=(n, d2))


def _shape_ref(x, y, alpha):
    """Williams et al. 2021 from the definition: partial whitening, zero-pad, orthogonal fit."""

    def phi(a):
        ac = a - a.mean(0)
        c = ac.T @ ac / (len(a) - 1)
        c = c / (np.trace(c) / c.shape[0])
        w = alpha * np.eye(c.shape[0]) + (1 - alpha) * np.real(linalg.inv(linalg.sqrtm(c)))
        return ac @ w

    px, py = phi(x), phi(y)
    d = max(px.shape[1], py.shape[1])
    px = np.pad(px, ((0, 0), (0, d - px.shape[1])))
    py = np.pad(py, ((0, 0), (0, d - py.shape[1])))
    r, _ = linalg.orthogonal_procrustes(px, py)
    cos = np.sum((px @ r) * py) / (np.linalg.norm(px) * np.linalg.norm(py))
    return np.arccos(np.clip(cos, -1, 1))


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("widths", [(5, 5), (6, 3), (3, 6)])
def test_shape_distance_matches_definition(alpha, widths):
    x, y = _pair(0, d1=widths[0], d2=widths[1])
    assert shape_distance(x, y, alpha) == pytest.approx(_shape_ref(x, y, alpha), abs=1e-9)


def test_special_cases():
    x, y = _pair(1)
    assert np.cos(shape_distance(x, y, 1.0)) == pytest.approx(
        procrustes_similarity(x, y), abs=1e-12
    )
    assert np.cos(shape_distance(x, y, 0.0)) == pytest.approx(mean_cca(x, y), abs=1e-10)
    xc, yc = x - x.mean(0), y - y.mean(0)
    r, _ = linalg.orthogonal_procrustes(xc, yc)
    ref = np.sum((xc @ r) * yc) / (np.linalg.norm(xc) * np.linalg.norm(yc))
    assert procrustes_similarity(x, y) == pytest.approx(ref, abs=1e-12)


def test_rotated_copy_has_distance_zero():
    x, _ = _pair(2)
    q = ortho_group.rvs(5, random_state=3)
    y = 2.5 * x @ q + 4.0
    assert procrustes_similarity(x, y) == pytest.approx(1.0, abs=1e-12)
    for alpha in (0.0, 0.5, 1.0):
        assert shape_distance(x, y, alpha) == pytest.approx(0.0, abs=1e-6)
    a = np.random.default_rng(0).normal(size=(5, 5))
    assert shape_distance(x, x @ a, 0.0) == pytest.approx(0.0, abs=1e-6)
    assert shape_distance(x, x @ a, 1.0) > 0.05


@settings(deadline=None, max_examples=30)
@given(
    seed=st.integers(0, 2**31),
    widths=st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5)),
    alpha=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_triangle_inequality_and_symmetry(seed, widths, alpha):
    rng = np.random.default_rng(seed)
    a, b, c = (rng.normal(size=(20, d)) for d in widths)
    dab, dbc, dac = (
        shape_distance(a, b, alpha),
        shape_distance(b, c, alpha),
        shape_distance(a, c, alpha),
    )
    assert dac <= dab + dbc + 1e-7
    assert dab == pytest.approx(shape_distance(b, a, alpha), abs=1e-9)
    assert 0 <= dab <= np.pi / 2 + 1e-12
    pab, pbc, pac = (permutation_distance(*p) for p in ((a, b), (b, c), (a, c)))
    assert pac <= pab + pbc + 1e-7


def test_match_units_recovers_permutation_and_signs():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 6))
    perm = rng.permutation(6)
    y = x[:, perm] * rng.uniform(0.5, 2, 6) + 0.05 * rng.normal(size=(200, 6))
    m = match_units(x, y)
    np.testing.assert_array_equal(m.x_units, np.arange(6))
    np.testing.assert_array_equal(perm[m.y_units], np.arange(6))
    assert np.all(m.correlations > 0.99) and m.mean_correlation > 0.99
    y_flip = y.copy()
    y_flip[:, 0] *= -1
    m_abs = match_units(x, y_flip, absolute=True)
    np.testing.assert_array_equal(perm[m_abs.y_units], np.arange(6))
    assert m_abs.correlations.min() < -0.99  # reported signed
    assert permutation_distance(x, x[:, perm]) == pytest.approx(0.0, abs=1e-6)


def test_match_units_matches_brute_force_and_dead_units():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(50, 4)), rng.normal(size=(50, 3))
    y = y + x[:, :3]
    r = np.corrcoef(x.T, y.T)[:4, 4:]
    rows, cols = linear_sum_assignment(-r)
    m = match_units(x, y)
    np.testing.assert_allclose(m.correlations, r[rows, cols], atol=1e-12)
    cos = r[rows, cols].sum() / np.sqrt(12)
    assert permutation_distance(x, y) == pytest.approx(np.arccos(cos), abs=1e-12)
    x_dead = np.hstack([np.zeros((50, 1)), x])
    with pytest.warns(DroppedUnitsWarning, match="dropped constant \\(dead\\) units: 'X' 1 of 5"):
        m2 = match_units(x_dead, y)
    np.testing.assert_array_equal(m2.x_units, m.x_units + 1)


def test_errors():
    x, y = _pair(6)
    with pytest.raises(ShapeError, match=r"alpha: expected a value in \[0, 1\], got 2"):
        shape_distance(x, y, alpha=2)
    with pytest.raises(NonFiniteError, match="non-finite"):
        procrustes_similarity(x, np.full_like(y, np.inf))
