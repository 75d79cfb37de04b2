"""IMD and the neighbour-list measures of Huh et al. (2024) (LCS, edit distance) against
independent definitions written here from the papers: plain loops, dense eigenvalues."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

from ensemble_lens.errors import ShapeError
from ensemble_lens.similarity import edit_distance_knn, imd, lcs_knn, measure
from ensemble_lens.similarity.imd import imd_state


def _pair(seed=0, n=40, d1=5, d2=4):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    x = np.tanh(z @ rng.normal(size=(3, d1))) + 0.4 * rng.normal(size=(n, d1))
    y = z @ rng.normal(size=(3, d2)) + 0.6 * rng.normal(size=(n, d2))
    return x, y


def _knn_lists(a, k):
    """Sorted cosine neighbour lists, nearest first, by a double loop."""
    n = a.shape[0]
    out = []
    for i in range(n):
        sims = []
        for j in range(n):
            if j != i:
                cos = a[i] @ a[j] / np.linalg.norm(a[i]) / np.linalg.norm(a[j])
                sims.append((-cos, j))
        out.append([j for _, j in sorted(sims)[:k]])
    return out


def _lcs(p, q):
    t = [[0] * (len(q) + 1) for _ in range(len(p) + 1)]
    for i in range(1, len(p) + 1):
        for j in range(1, len(q) + 1):
            same = p[i - 1] == q[j - 1]
            t[i][j] = t[i - 1][j - 1] + 1 if same else max(t[i - 1][j], t[i][j - 1])
    return t[-1][-1]


def _levenshtein(p, q):
    t = [[i + j if i * j == 0 else 0 for j in range(len(q) + 1)] for i in range(len(p) + 1)]
    for i in range(1, len(p) + 1):
        for j in range(1, len(q) + 1):
            sub = t[i - 1][j - 1] + (p[i - 1] != q[j - 1])
            t[i][j] = min(t[i - 1][j] + 1, t[i][j - 1] + 1, sub)
    return t[-1][-1]


@pytest.mark.parametrize("k", [1, 4, 9])
def test_lcs_and_edit_distance_knn_match_definitions(k):
    x, y = _pair(3, n=45)
    nx, ny = _knn_lists(x, k), _knn_lists(y, k)
    lcs = np.mean([_lcs(a, b) for a, b in zip(nx, ny, strict=True)])
    edit = 1.0 - np.mean([_levenshtein(a, b) for a, b in zip(nx, ny, strict=True)]) / k
    assert measure(f"lcs_knn-topk={k}-metric=cosine")(x, y) == pytest.approx(lcs, abs=1e-14)
    edit_name = f"edit_distance_knn-topk={k}-metric=cosine"
    assert measure(edit_name)(x, y) == pytest.approx(edit, abs=1e-14)
    # the registry's bare names rank raw inner products, as platonic's code does
    assert measure(f"lcs_knn-topk={k}")(x, y) == lcs_knn(x, y, k=k, metric="dot")
    assert lcs_knn(y, x, k=k) == pytest.approx(lcs, abs=1e-14)  # symmetric
    assert edit_distance_knn(y, x, k=k) == pytest.approx(edit, abs=1e-14)


def test_sequence_knn_invariances_and_order():
    x, y = _pair(5, n=50)
    q = ortho_group.rvs(5, random_state=1)
    assert lcs_knn(x, 3.0 * x @ q, k=6) == 6.0
    assert edit_distance_knn(x, 0.5 * x @ q, k=6) == 1.0
    assert lcs_knn(x, y, k=6) == pytest.approx(lcs_knn(x @ q, 7.0 * y, k=6), abs=1e-14)
    # the same neighbour sets in another order: mutual kNN cannot tell, LCS and edit can
    rev = [[3, 2, 1], [0, 2, 3], [0, 1, 3], [0, 1, 2]]
    assert _lcs(rev[0], rev[0][::-1]) == 1 and _levenshtein(rev[0], rev[0][::-1]) == 2
    with pytest.raises(ShapeError, match="1 <= k < n"):
        lcs_knn(x, y, k=50)


# -------------------------------------------------------------------------------------- IMD
TS = np.logspace(-1, 1, 256)


def _laplacian(a, k):
    """Normalised Laplacian of the Euclidean k-NN graph made undirected, by loops."""
    n = a.shape[0]
    adj = np.zeros((n, n))
    for i in range(n):
        dist = sorted((np.sum((a[i] - a[j]) ** 2), j) for j in range(n) if j != i)
        for _, j in dist[:k]:
            adj[i, j] = adj[j, i] = 1.0
    deg = adj.sum(axis=1)
    return np.eye(n) - adj / np.sqrt(np.outer(deg, deg))


def _imd_exact(a, b, k):
    h = [np.exp(-np.outer(TS, np.linalg.eigvalsh(_laplacian(z, k)))).mean(axis=1) for z in (a, b)]
    return np.max(np.exp(-2 * (TS + 1 / TS)) * np.abs(h[0] - h[1]))


def test_imd_exact_matches_the_paper_definition():
    x, y = _pair(11, n=50)
    for k in (3, 5):
        assert imd(x, y, k=k, method="exact") == pytest.approx(_imd_exact(x, y, k), rel=1e-10)


def test_imd_quadrature_matches_hutchinson_with_the_same_probes():
    """SLQ with m Lanczos steps against the exact Hutchinson estimate on the documented probes,
    with the control variate of the authors' code; and its mean against the exact traces."""
    x, y = _pair(12, n=60)
    n, niters, seed = 60, 40, 3
    q = np.random.default_rng(seed).standard_normal((niters, n)).T
    q /= np.linalg.norm(q, axis=0)

    def descriptor(a):
        lam, vec = np.linalg.eigh(_laplacian(a, 5))
        w = (vec.T @ q) ** 2  # (eigen, probe)
        f_exp = n * np.mean(np.exp(-np.outer(TS, lam)) @ w, axis=1)
        f_lin = n * np.mean(-np.outer(TS, lam) @ w, axis=1)
        return (f_exp - (f_lin + TS * n) / np.exp(TS)) / n

    dx, dy = descriptor(x), descriptor(y)
    ref = np.max(np.exp(-2 * (TS + 1 / TS)) * np.abs(dx - dy))
    assert imd(x, y, niters=niters, seed=seed) == pytest.approx(ref, rel=1e-6)
    assert imd(x, y, niters=niters, seed=seed, scale=1e6) == pytest.approx(1e6 * ref, rel=1e-6)
    # unbiased: many probes approach the exact per-node traces (which lie in (0, 1])
    exact = np.exp(-np.outer(TS, np.linalg.eigvalsh(_laplacian(x, 5)))).mean(axis=1)
    np.testing.assert_allclose(imd_state(x, 5, niters=4000, seed=1), exact, atol=0.003)


@pytest.mark.slow
def test_imd_invariances_seed_and_registry_name():
    x, y = _pair(13, n=48)
    rng = np.random.default_rng(0)
    moved = 2.5 * x[rng.permutation(48)] @ ortho_group.rvs(5, random_state=2) + 4.0
    assert imd(x, moved, method="exact") == pytest.approx(0.0, abs=1e-12)
    assert imd(x, 3.0 * x @ ortho_group.rvs(5, random_state=3) - 1.0) == pytest.approx(
        0.0, abs=1e-9
    )
    assert imd(x, y, seed=4) == imd(x, y, seed=4) != imd(x, y, seed=5)
    assert imd(x, y) == pytest.approx(imd(y, x), abs=1e-15)
    m = measure("imd_score")
    assert (m.kind, m.symmetric, m.shares) == ("distance", True, "spectrum")
    ref = imd(x, y, niters=8000, scale=1e6)
    assert m(x, y) == pytest.approx(ref, rel=1e-12)
    assert measure("imd_score-k=3-niters=50-seed=1")(x, y) == pytest.approx(
        imd(x, y, k=3, niters=50, seed=1, scale=1e6), rel=1e-12
    )
    with pytest.raises(ShapeError, match="method"):
        imd(x, y, method="dense")
    with pytest.raises(ShapeError, match="1 <= k < n"):
        imd(x, y, k=48)
