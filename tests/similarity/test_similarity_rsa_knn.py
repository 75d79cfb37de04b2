"""RSA (incl. Kendall tau-a), mutual k-NN and linear predictivity."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import pdist

from ensemble_lens.errors import ShapeError
from ensemble_lens.similarity import kendall_tau_a, linear_predictivity, mutual_knn, rsa


def _pair(seed, n=40):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    return x, np.tanh(x @ rng.normal(size=(6, 5))) + 0.3 * rng.normal(size=(n, 5))


def _tau_a_brute(a, b):
    n = len(a)
    s = sum(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]) for i in range(n) for j in range(i + 1, n))
    return s / (n * (n - 1) / 2)


def test_kendall_tau_a_with_ties_matches_brute_force():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, 60).astype(float), rng.integers(0, 5, 60).astype(float)
    assert kendall_tau_a(a, b) == pytest.approx(_tau_a_brute(a, b), abs=1e-12)
    c = rng.normal(size=60)
    assert kendall_tau_a(c, -c) == pytest.approx(-1.0)
    assert kendall_tau_a(np.ones(5), c[:5]) == 0.0


@pytest.mark.parametrize("kind", ["correlation", "euclidean", "cosine"])
def test_rsa_matches_scipy(kind):
    x, y = _pair(1)
    rx, ry = pdist(x, kind), pdist(y, kind)
    assert rsa(x, y, kind, "spearman") == pytest.approx(stats.spearmanr(rx, ry)[0], abs=1e-12)
    assert rsa(x, y, kind, "pearson") == pytest.approx(stats.pearsonr(rx, ry)[0], abs=1e-12)
    assert rsa(x, y, kind, "kendall_tau_a") == pytest.approx(_tau_a_brute(rx, ry), abs=1e-12)
    cos = rx @ ry / np.linalg.norm(rx) / np.linalg.norm(ry)
    assert rsa(x, y, kind, "cosine") == pytest.approx(cos, abs=1e-12)


def test_rsa_invariance_and_errors():
    x, y = _pair(2)
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(6, 6)))
    assert rsa(x, 3 * x @ q, "euclidean") == pytest.approx(1.0)
    with pytest.raises(ShapeError, match="rdm: expected one of"):
        rsa(x, y, rdm="manhattan")
    with pytest.raises(ShapeError, match="compare: expected"):
        rsa(x, y, compare="kendal")
    x0 = x.copy()
    x0[3] = 1.0
    with pytest.raises(ShapeError, match="X: 1 samples are constant across units"):
        rsa(x0, y)


def _knn_brute(a, k, metric):
    if metric == "cosine":
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        d = -(a @ a.T)
    else:
        d = ((a[:, None] - a[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return [set(np.argsort(row)[:k]) for row in d]


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_mutual_knn_matches_brute_force(metric):
    x, y = _pair(3, n=60)
    nx, ny = _knn_brute(x, 5, metric), _knn_brute(y, 5, metric)
    ref = np.mean([len(a & b) / 5 for a, b in zip(nx, ny, strict=True)])
    assert mutual_knn(x, y, k=5, metric=metric) == pytest.approx(ref, abs=1e-12)
    assert mutual_knn(x, 2 * x, k=5, metric=metric) == 1.0


def test_mutual_knn_errors():
    x, y = _pair(4, n=10)
    with pytest.raises(ShapeError, match="k: expected 1 <= k < n = 10 samples, got 10"):
        mutual_knn(x, y, k=10)
    with pytest.raises(ShapeError, match="metric"):
        mutual_knn(x, y, k=3, metric="l1")


def test_linear_predictivity_matches_sklearn_ridge():
    from sklearn.linear_model import Ridge

    x, y = _pair(5, n=100)
    ridge = 0.5
    folds = np.array_split(np.random.default_rng(0).permutation(100), 5)
    pred = np.empty_like(y)
    for test in folds:
        train = np.setdiff1d(np.arange(100), test)
        xc = x[train] - x[train].mean(0)
        alpha = ridge * np.mean(np.linalg.svd(xc, compute_uv=False) ** 2)
        pred[test] = Ridge(alpha=alpha).fit(x[train], y[train]).predict(x[test])
    ref = 1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean(0)) ** 2)
    assert linear_predictivity(x, y, ridge=ridge, cv=5, seed=0) == pytest.approx(ref, abs=1e-10)


def test_linear_predictivity_known_answers():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(200, 5))
    assert linear_predictivity(x, x @ rng.normal(size=(5, 3))) > 0.999
    assert linear_predictivity(x, rng.normal(size=(200, 3))) < 0.05
    assert linear_predictivity(x, x[:, :2], ridge=[1e-3, 1.0], seed=1) > 0.999
    with pytest.raises(ShapeError, match="cv: expected"):
        linear_predictivity(x, x, cv=1)
    with pytest.raises(ShapeError, match="ridge: expected non-negative"):
        linear_predictivity(x, x, ridge=-1.0)


@pytest.mark.parametrize("ties", [False, True])
def test_kendall_states_give_scipys_tau_b_exactly(ties):
    """Each vector sorted once, a pair from the two sorts: scipy's counts and arithmetic, so
    the same float as ``scipy.stats.kendalltau``; a vector with itself needs no sort."""
    from ensemble_lens.similarity._kendall import kendall_combine, kendall_self, kendall_state

    rng = np.random.default_rng(7)
    for m in (5, 31, 400):
        a = rng.normal(size=m)
        b = 0.5 * a + rng.normal(size=m)
        if ties:
            a, b = np.round(a), np.round(b, 1)
        sa, sb = kendall_state(a), kendall_state(b)
        assert sa.has_ties == ties
        assert kendall_combine(sa, sb) == stats.kendalltau(a, b).statistic
        assert kendall_combine(sb, sa) == stats.kendalltau(b, a).statistic
        assert kendall_self(sa) == kendall_combine(sa, sa) == stats.kendalltau(a, a).statistic
        assert kendall_self(sa, "a") == kendall_combine(sa, sa, "a")
        if m < 100:
            assert kendall_combine(sa, sb, "a") == pytest.approx(_tau_a_brute(a, b), abs=1e-12)
            assert kendall_self(sa, "a") == pytest.approx(_tau_a_brute(a, a), abs=1e-12)
