"""CCA, mean CCA, SVCCA, PWCCA against the generalized eigenproblem written from the papers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import linalg
from scipy.stats import ortho_group

from ensemble_lens.errors import DroppedUnitsWarning, IllConditionedWarning, ShapeError
from ensemble_lens.similarity import cca, mean_cca, pwcca, svcca


def _cca_ref(x, y):
    """Canonical correlations and X-directions from [0 Cxy; Cyx 0] v = rho [Cxx 0; 0 Cyy] v."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    d1, d2 = x.shape[1], y.shape[1]
    cxx, cyy, cxy = xc.T @ xc, yc.T @ yc, xc.T @ yc
    a = np.block([[np.zeros((d1, d1)), cxy], [cxy.T, np.zeros((d2, d2))]])
    b = linalg.block_diag(cxx, cyy)
    rho, v = linalg.eigh(a, b)
    order = np.argsort(rho)[::-1][: min(d1, d2)]
    return rho[order], v[:d1, order]


def _pair(seed, n=120, d1=6, d2=4):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d1)) @ rng.normal(size=(d1, d1)) + 5
    y = x[:, :3] @ rng.normal(size=(3, d2)) + rng.normal(size=(n, d2))
    return x, y


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5)])
def test_cca_matches_generalized_eigenproblem(shape):
    x, y = _pair(0, d1=shape[0], d2=shape[1])
    rho_ref, _ = _cca_ref(x, y)
    res = cca(x, y)
    np.testing.assert_allclose(res.correlations, rho_ref, atol=1e-10)
    assert mean_cca(x, y) == pytest.approx(rho_ref.mean(), abs=1e-10)
    u, v = (x - x.mean(0)) @ res.x_weights, (y - y.mean(0)) @ res.y_weights
    n = x.shape[0]
    np.testing.assert_allclose(u.T @ u / (n - 1), np.eye(min(shape)), atol=1e-10)
    np.testing.assert_allclose(v.T @ v / (n - 1), np.eye(min(shape)), atol=1e-10)
    np.testing.assert_allclose(u.T @ v / (n - 1), np.diag(res.correlations), atol=1e-10)
    assert res.x_weights.shape == (shape[0], min(shape))


def test_cca_invariant_to_invertible_maps():
    x, y = _pair(1)
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(4, 4))
    r1 = cca(x, y).correlations
    r2 = cca(x @ a + 3, y @ b - 1).correlations
    np.testing.assert_allclose(r1, r2, atol=1e-9)
    assert mean_cca(x, x @ a) == pytest.approx(1.0, abs=1e-10)


def test_n_components_and_ridge():
    x, y = _pair(3)
    rho = cca(x, y).correlations
    assert mean_cca(x, y, n_components=2) == pytest.approx(rho[:2].mean(), abs=1e-12)
    assert cca(x, y, n_components=2).x_weights.shape == (6, 2)
    # ridge: whitening with C + lambda I, lambda = ridge * tr(C) / d
    ridge = 0.3
    xc, yc = x - x.mean(0), y - y.mean(0)
    n = len(x)
    cxx, cyy, cxy = xc.T @ xc / (n - 1), yc.T @ yc / (n - 1), xc.T @ yc / (n - 1)
    cxx += ridge * np.trace(cxx) / 6 * np.eye(6)
    cyy += ridge * np.trace(cyy) / 4 * np.eye(4)
    m = linalg.inv(linalg.sqrtm(cxx)) @ cxy @ linalg.inv(linalg.sqrtm(cyy))
    ref = linalg.svdvals(np.real(m))
    np.testing.assert_allclose(cca(x, y, ridge=ridge).correlations, ref, atol=1e-10)
    assert mean_cca(x, y, ridge=ridge) < mean_cca(x, y)


def test_rank_deficient_inputs():
    x, y = _pair(4)
    x_dup = np.hstack([x, x[:, :2] + x[:, 2:4]])  # two redundant units
    np.testing.assert_allclose(cca(x_dup, y).correlations, cca(x, y).correlations, atol=1e-9)
    res = cca(x_dup, y)
    u = (x_dup - x_dup.mean(0)) @ res.x_weights
    np.testing.assert_allclose(u.T @ u / (len(x) - 1), np.eye(4), atol=1e-9)
    assert 0 <= pwcca(x_dup, y) <= 1
    assert 0 <= pwcca(y, x_dup) <= 1


def test_d_ge_n_warns():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(10, 12)), rng.normal(size=(10, 3))
    with pytest.warns(IllConditionedWarning, match="use ridge > 0 or svcca"):
        v = mean_cca(x, y)
    assert v == pytest.approx(1.0, abs=1e-8)  # meaningless: correlations of 1 by construction
    with pytest.warns(IllConditionedWarning, match="ridge"):
        cca(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mean_cca(x, y, ridge=1.0) < 0.99


def _pwcca_ref(x, y):
    """Morcos et al. 2018 on centered data, X-side weights, written from the definition."""
    rho, a = _cca_ref(x, y)
    xc = x - x.mean(0)
    h = xc @ a
    h /= h.std(axis=0, ddof=1)
    alpha = np.abs(h.T @ xc).sum(axis=1)
    alpha /= alpha.sum()
    return float(alpha @ rho)


@pytest.mark.parametrize("shape", [(7, 3), (3, 7)])
def test_pwcca_matches_definition_both_ways(shape):
    x, y = _pair(6, d1=shape[0], d2=shape[1])
    assert pwcca(x, y) == pytest.approx(_pwcca_ref(x, y), abs=1e-10)
    assert pwcca(y, x) == pytest.approx(_pwcca_ref(y, x), abs=1e-10)
    sym = 0.5 * (_pwcca_ref(x, y) + _pwcca_ref(y, x))
    assert pwcca(x, y, symmetric=True) == pytest.approx(sym, abs=1e-10)
    assert pwcca(x, y, symmetric=True) == pytest.approx(pwcca(y, x, symmetric=True), abs=1e-12)


def _pcs(a, keep=None, k=None):
    """Top principal-component scores, k chosen by the share of variance (eigenvalues)."""
    ac = a - a.mean(0)
    lam, v = np.linalg.eigh(ac.T @ ac)
    lam, v = lam[::-1], v[:, ::-1]
    if k is None:
        k = int(np.searchsorted(np.cumsum(lam) / lam.sum(), keep) + 1)
    return ac @ v[:, :k]


def test_svcca_keeps_variance_not_singular_values():
    rng = np.random.default_rng(7)
    n = 400
    q, _ = np.linalg.qr(rng.normal(size=(n, 11)))
    q, _ = np.linalg.qr(q - q.mean(0))
    s = np.array([10.0] + [3.0] * 10)  # variance share of PC1: 100/190 = 0.53; s-share: 0.25
    x = (q * s) @ ortho_group.rvs(11, random_state=0)
    y = x[:, :5] + 0.5 * rng.normal(size=(n, 5))
    assert _pcs(x, 0.5).shape[1] == 1
    py = _pcs(y, 0.5)
    v = svcca(x, y, keep_variance=0.5)
    assert v == pytest.approx(_cca_ref(_pcs(x, 0.5), py)[0].mean(), abs=1e-10)
    by_singular_values = _cca_ref(_pcs(x, k=5), py)[0].mean()  # 10+3*4 >= 0.5 * 40
    assert abs(v - by_singular_values) > 1e-3


def test_svcca_matches_pca_then_cca():
    x, y = _pair(8, d1=8, d2=6)
    x = x + 0.01 * np.random.default_rng(0).normal(size=x.shape)
    rho, _ = _cca_ref(_pcs(x, 0.9), _pcs(y, 0.9))
    assert svcca(x, y, keep_variance=0.9) == pytest.approx(rho.mean(), abs=1e-10)
    rho3, _ = _cca_ref(_pcs(x, k=3), _pcs(y, k=3))
    assert svcca(x, y, n_components=3) == pytest.approx(rho3.mean(), abs=1e-10)


def test_dead_units_dropped_with_warning():
    x, y = _pair(9)
    x_dead = np.hstack([x, np.full((len(x), 2), 4.2)])
    with pytest.warns(DroppedUnitsWarning, match=r"dropped constant \(dead\) units: 'X' 2 of 8"):
        res = cca(x_dead, y)
    np.testing.assert_allclose(res.correlations, cca(x, y).correlations, atol=1e-12)
    assert np.all(res.x_weights[6:] == 0)
    with pytest.raises(ShapeError, match="Y: all 4 units are constant"):
        mean_cca(x, np.ones((len(x), 4)))


def test_option_errors():
    x, y = _pair(10)
    with pytest.raises(ShapeError, match="keep_variance"):
        svcca(x, y, keep_variance=1.5)
    with pytest.raises(ShapeError, match="ridge"):
        mean_cca(x, y, ridge=-1.0)
    with pytest.raises(ShapeError, match="n_components"):
        cca(x, y, n_components=0)


@settings(deadline=None, max_examples=25)
@given(seed=st.integers(0, 2**31), d1=st.integers(1, 5), d2=st.integers(1, 5))
def test_property_cca_invariance_and_range(seed, d1, d2):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(30, d1)), rng.normal(size=(30, d2))
    a = rng.normal(size=(d1, d1)) + 3 * np.eye(d1)
    r = cca(x, y).correlations
    assert np.all((r >= 0) & (r <= 1)) and np.all(np.diff(r) <= 1e-12)
    np.testing.assert_allclose(cca(x @ a, y).correlations, r, atol=1e-8)
    for f in (mean_cca, svcca, pwcca):
        assert 0 <= f(x, y) <= 1
