"""Parity: each registry measure against an independent definition written here from its paper
(plain loops and formulas), and against peer packages where they are installed."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.distance import pdist, squareform

from ensemble_lens.similarity import measure


def _pair(seed=0, n=40, d1=5, d2=4, positive=False):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    x = np.tanh(z @ rng.normal(size=(3, d1))) + 0.4 * rng.normal(size=(n, d1))
    y = z @ rng.normal(size=(3, d2)) + 0.6 * rng.normal(size=(n, d2))
    if positive:
        x, y = np.abs(x), np.abs(y)
    return x, y


# ------------------------------------------------------------------------------- kernel CKA
def _kernel(x, kind, sigma):
    n = x.shape[0]
    k = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            diff = x[i] - x[j]
            if kind == "linear":
                k[i, j] = x[i] @ x[j]
            elif kind == "rbf":
                k[i, j] = np.exp(-(diff @ diff) / (2 * sigma**2))
            else:
                k[i, j] = np.exp(-np.sqrt(diff @ diff) / sigma)
    return k


def _hsic(k, ell, estimator):
    n = k.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    if estimator == "gretton":  # Gretton et al. 2005: tr(K H L H)
        return np.trace(k @ h @ ell @ h)
    if estimator == "lange":  # centred, then zero diagonal, then Frobenius inner product
        a, b = h @ k @ h, h @ ell @ h
        return np.sum(a * b) - np.sum(np.diag(a) * np.diag(b))
    kt, lt = k - np.diag(np.diag(k)), ell - np.diag(np.diag(ell))  # Song et al. 2012, eq. 5
    one = np.ones(n)
    return (
        np.trace(kt @ lt)
        + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
        - 2 / (n - 2) * one @ kt @ lt @ one
    ) / (n * (n - 3))


@pytest.mark.parametrize("kernel", ["linear", "(rbf-sigma=1.5)", "(laplace-sigma=2.0)"])
@pytest.mark.parametrize("est", ["gretton", "lange", "song"])
def test_kernel_cka_matches_definition(kernel, est):
    x, y = _pair(1, n=25)
    kind = kernel.strip("()").split("-")[0]
    sigma = float(kernel.split("=")[-1].rstrip(")")) if "sigma" in kernel else None
    if kind == "laplace":  # the registry's laplace-sigma=s is exp(-|x-y| / (sqrt(2) s)) (repsim)
        sigma *= np.sqrt(2)
    k, ell = _kernel(x, kind, sigma), _kernel(y, kind, sigma)
    ref = _hsic(k, ell, est) / np.sqrt(_hsic(k, k, est) * _hsic(ell, ell, est))
    m = measure(f"cka-kernel={kernel}-hsic={est}-score")
    assert m(x, y) == pytest.approx(ref, abs=1e-12)
    ang = measure(f"cka-kernel={kernel}-hsic={est}-distance=angular")(x, y)
    assert ang == pytest.approx(np.arccos(ref), abs=1e-10)


def test_kernel_cka_hsic_matches_repsim():
    repsim = pytest.importorskip("repsim")
    from ensemble_lens.similarity.kernels import gram, transform

    x, y = _pair(2, n=30)
    n = x.shape[0]
    for est in ("gretton", "song", "lange"):
        ours = np.sum(
            transform(gram(x, "linear", None), est) * transform(gram(y, "linear", None), est)
        )
        theirs = repsim.hsic([x, y], kernel_type="linear", estimator=est)[0, 1]
        scale = (n - 1) ** 2 if est == "gretton" else n * (n - 3)
        assert ours / scale == pytest.approx(theirs, rel=1e-9)
    # repsim's CKA agrees for the biased estimator (its unbiased CKA normalises differently)
    assert measure("cka-kernel=linear-hsic=gretton-score")(x, y) == pytest.approx(
        repsim.cka([x, y], kernel_type="linear", estimator="gretton")[0, 1], abs=1e-12
    )


def test_cka_invariances():
    x, y = _pair(3)
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(5, 5)))
    for name in (
        "cka-kernel=linear-hsic=lange-score",
        "cka-kernel=linear-hsic=song-score",
        "cka-kernel=rbf-hsic=gretton-score",
    ):
        m = measure(name)
        assert m(3.0 * x @ q + 7.0, y) == pytest.approx(m(x, y), abs=1e-12)


# ------------------------------------------------------------------------------------- RSA
def _rsatoolbox_value(x, y, rdm_kind, compare):
    rsd = pytest.importorskip("rsatoolbox.data")
    rsr = pytest.importorskip("rsatoolbox.rdm")
    method = {"squared_euclidean": "euclidean"}.get(rdm_kind, rdm_kind)
    ra = rsr.calc_rdm(rsd.Dataset(x), method=method)
    rb = rsr.calc_rdm(rsd.Dataset(y), method=method)
    cmp_ = {"pearson": "corr", "tau_a": "tau-a", "tau_b": "tau-b", "rho_a": "rho-a"}.get(
        compare, compare
    )
    return float(rsr.compare(ra, rb, method=cmp_)[0, 0])


@pytest.mark.parametrize("rdm_kind", ["correlation", "squared_euclidean", "poisson"])
@pytest.mark.parametrize(
    "compare",
    [
        "pearson",
        "spearman",
        "tau_a",
        "tau_b",
        "rho_a",
        "cosine",
        "cosine_cov",
        "corr_cov",
        "bures",
        "bures_metric",
    ],
)
def test_rsa_matches_rsatoolbox(rdm_kind, compare):
    x, y = _pair(4, n=18, positive=True)
    ours = measure(f"rsa-rdm={rdm_kind}-compare={compare}")(x, y)
    # rsatoolbox's Bures takes square roots of the eigenvalues of A^1/2 B A^1/2, which loses
    # about 1e-8 on near-null directions; ours takes the singular values of the factors' product
    tol = 1e-7 if compare.startswith("bures") else 1e-9
    assert ours == pytest.approx(_rsatoolbox_value(x, y, rdm_kind, compare), abs=tol)


def test_rsa_rdms_match_definitions():
    x, y = _pair(5, n=12, positive=True)
    n, d = x.shape
    ref = {
        k: np.zeros((n, n)) for k in ("correlation", "euclidean", "squared_euclidean", "poisson")
    }
    m = (x + 0.1) / 1.1
    for i, j in itertools.product(range(n), range(n)):
        ref["correlation"][i, j] = 1 - np.corrcoef(x[i], x[j])[0, 1]
        ref["euclidean"][i, j] = np.linalg.norm(x[i] - x[j])
        ref["squared_euclidean"][i, j] = np.sum((x[i] - x[j]) ** 2) / d
        ref["poisson"][i, j] = np.sum((m[i] - m[j]) * (np.log(m[i]) - np.log(m[j]))) / d
    from ensemble_lens.similarity import rdm

    for kind, full in ref.items():
        np.testing.assert_allclose(rdm(x, kind), squareform(full, checks=False), atol=1e-12)
    # mahalanobis with a noise precision; crossnobis from two runs equals the cross product
    prec = np.diag(np.arange(1.0, d + 1))
    maha = [(x[i] - x[j]) @ prec @ (x[i] - x[j]) / d for i in range(n) for j in range(i + 1, n)]
    np.testing.assert_allclose(rdm(x, "mahalanobis", noise=prec), maha, atol=1e-12)
    runs = np.repeat([0, 1], n // 2)
    cond = np.tile(np.arange(n // 2), 2)
    a, b = x[: n // 2], x[n // 2 :]
    c = n // 2
    cross = [(a[i] - a[j]) @ (b[i] - b[j]) / d for i in range(c) for j in range(i + 1, c)]
    np.testing.assert_allclose(rdm(x, "crossnobis", conditions=cond, runs=runs), cross, atol=1e-12)
    rsd = pytest.importorskip("rsatoolbox.data")
    rsr = pytest.importorskip("rsatoolbox.rdm")
    ds = rsd.Dataset(x, obs_descriptors={"cond": cond, "run": runs})
    theirs = rsr.calc_rdm(ds, method="crossnobis", descriptor="cond", cv_descriptor="run")
    np.testing.assert_allclose(
        rdm(x, "crossnobis", conditions=cond, runs=runs), theirs.get_vectors()[0], atol=1e-12
    )
    val = measure("rsa-rdm=crossnobis-compare=pearson", conditions=cond, runs=runs)(x, y)
    assert -1 <= val <= 1


def test_rsa_dead_units_are_kept_by_default():
    x, y = _pair(6, n=20)
    x0 = np.hstack([x, np.full((20, 1), 3.0)])
    from ensemble_lens.similarity import rsa

    # a constant unit changes the correlation RDM (the standard RDM uses all units)
    assert rsa(x0, y) != pytest.approx(rsa(x, y))
    with pytest.warns(match="1 of 6"):
        assert rsa(x0, y, dead_units="drop") == pytest.approx(rsa(x, y), abs=1e-14)


# ---------------------------------------------------------------------------- neighbours
def _knn_sets(a, k):
    u = a / np.linalg.norm(a, axis=1, keepdims=True)
    s = u @ u.T
    np.fill_diagonal(s, -np.inf)
    return [list(np.argsort(-s[i], kind="stable")[:k]) for i in range(a.shape[0])]


def test_neighbour_measures_match_definitions():
    x, y = _pair(7, n=50)
    k = 6
    nx, ny = _knn_sets(x, k), _knn_sets(y, k)
    n = len(nx)
    mutual = np.mean([len(set(nx[i]) & set(ny[i])) / k for i in range(n)])
    jac = np.mean([len(set(nx[i]) & set(ny[i])) / len(set(nx[i]) | set(ny[i])) for i in range(n)])
    cycle = np.mean([any(i in nx[j] for j in ny[i]) for i in range(n)])
    rank = []
    for i in range(n):
        shared = set(nx[i]) & set(ny[i])
        if not shared:
            rank.append(0.0)
            continue
        s = sum(
            2 / ((1 + abs(nx[i].index(j) - ny[i].index(j))) * (nx[i].index(j) + ny[i].index(j) + 2))
            for j in shared
        )
        rank.append(s / sum(1 / m for m in range(1, len(shared) + 1)))
    ux, uy = (
        x / np.linalg.norm(x, axis=1, keepdims=True),
        y / np.linalg.norm(y, axis=1, keepdims=True),
    )
    soc = []
    for i in range(n):
        u = sorted(set(nx[i]) | set(ny[i]))
        a, b = ux[u] @ ux[i], uy[u] @ uy[i]
        soc.append(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert measure(f"mutual_knn-topk={k}-metric=cosine")(x, y) == pytest.approx(mutual, abs=1e-14)
    assert measure(f"jaccard_similarity-k={k}")(x, y) == pytest.approx(jac, abs=1e-14)
    assert measure(f"cycle_knn-topk={k}-metric=cosine")(x, y) == pytest.approx(cycle, abs=1e-14)
    assert measure(f"rank_similarity-k={k}")(x, y) == pytest.approx(np.mean(rank), abs=1e-14)
    assert measure(f"second_order_cosine_similarity-k={k}-on_similarity")(x, y) == pytest.approx(
        np.mean(soc), abs=1e-12
    )


# ------------------------------------------------------------------------- shape, statistics
def _pad(a, d):
    return np.hstack([a, np.zeros((a.shape[0], d - a.shape[1]))])


def test_alignment_measures_match_definitions():
    x, y = _pair(8, n=30)
    xc, yc = x - x.mean(0), y - y.mean(0)
    r, _ = orthogonal_procrustes(_pad(yc, 5), xc)
    size_shape = np.linalg.norm(xc - _pad(yc, 5) @ r)
    assert measure("procrustes-distance=euclidean")(x, y) == pytest.approx(size_shape, abs=1e-10)
    assert measure("bures_distance")(x, y) == pytest.approx(size_shape, abs=1e-10)
    xn, yn = xc / np.linalg.norm(xc), yc / np.linalg.norm(yc)
    r, _ = orthogonal_procrustes(_pad(yn, 5), xn)
    norm_dist = np.linalg.norm(xn - _pad(yn, 5) @ r)
    assert measure("orthogonal_procrustes_centered_and_normalized")(x, y) == pytest.approx(
        norm_dist, abs=1e-10
    )
    r, _ = orthogonal_procrustes(x, _pad(y, 5))
    xa = x @ r
    cos = np.mean(
        [xa[i] @ _pad(y, 5)[i] / np.linalg.norm(xa[i]) / np.linalg.norm(y[i]) for i in range(30)]
    )
    assert measure("aligned_cosine_similarity")(x, y) == pytest.approx(cos, abs=1e-10)
    best = min(np.linalg.norm(x - _pad(y, 5)[:, list(p)]) for p in itertools.permutations(range(5)))
    assert measure("permutation_procrustes")(x, y) == pytest.approx(best, abs=1e-10)
    assert measure("procrustes-distance=euclidean")(x, x) == 0.0


def test_statistics_and_spectral_match_definitions():
    x, y = _pair(9, n=30)
    n = 30
    assert measure("magnitude_difference")(x, y) == pytest.approx(
        abs(np.linalg.norm(x.mean(0)) - np.linalg.norm(y.mean(0))), abs=1e-14
    )

    def conc(a):
        m = a.mean(0)
        return np.mean([a[i] @ m / np.linalg.norm(a[i]) / np.linalg.norm(m) for i in range(n)])

    def unif(a):
        return np.log(
            np.mean([[np.exp(-2 * np.sum((a[i] - a[j]) ** 2)) for j in range(n)] for i in range(n)])
        )

    assert measure("concentricity_difference")(x, y) == pytest.approx(
        abs(conc(x) - conc(y)), abs=1e-14
    )
    assert measure("uniformity_difference")(x, y) == pytest.approx(
        abs(unif(x) - unif(y)), abs=1e-12
    )
    assert measure("rsm_norm_difference-variant=llm_repsim")(x, y) == pytest.approx(
        np.linalg.norm(pdist(x) - pdist(y)), abs=1e-12
    )
    assert measure("rsm_norm_difference")(x, y) == pytest.approx(
        np.linalg.norm(squareform(pdist(x)) - squareform(pdist(y)), ord=2), abs=1e-10
    )
    ux, uy = np.linalg.qr(x)[0], np.linalg.qr(y)[0]
    assert measure("eigenspace_overlap_score")(x, y) == pytest.approx(
        np.linalg.norm(ux.T @ uy) ** 2 / 5, abs=1e-12
    )

    def dcent(a):
        d = squareform(pdist(a))
        return d - d.mean(0) - d.mean(1)[:, None] + d.mean()

    a, b = dcent(x), dcent(y)
    dcor = np.sqrt(np.mean(a * b) / np.sqrt(np.mean(a * a) * np.mean(b * b)))
    assert measure("distance_correlation")(x, y) == pytest.approx(dcor, abs=1e-12)
    xc, yc = x - x.mean(0), y - y.mean(0)
    kx, ky = xc @ xc.T, yc @ yc.T
    prx, pry = np.trace(kx) ** 2 / np.trace(kx @ kx), np.trace(ky) ** 2 / np.trace(ky @ ky)
    ref = prx * pry * np.trace(kx / np.trace(kx) @ (ky / np.trace(ky)))
    assert measure("ensd")(x, y) == pytest.approx(ref, rel=1e-12)
    assert measure("ensd-distance=angular_normalized")(x, y) == pytest.approx(
        2 / np.pi * np.arccos(ref / np.sqrt(prx * pry)), abs=1e-12
    )


def test_gulp_matches_definition():
    x, y = _pair(10, n=40)
    n = 40
    for lam in (0.0, 0.3):
        a = (x - x.mean(0)) * np.sqrt(n) / np.linalg.norm(x - x.mean(0))
        b = (y - y.mean(0)) * np.sqrt(n) / np.linalg.norm(y - y.mean(0))
        sa, sb, sab = a.T @ a / n, b.T @ b / n, a.T @ b / n
        ia = np.linalg.pinv(sa) if lam == 0 else np.linalg.inv(sa + lam * np.eye(5))
        ib = np.linalg.pinv(sb) if lam == 0 else np.linalg.inv(sb + lam * np.eye(4))
        d2 = (
            np.trace(sa @ ia @ sa @ ia)
            + np.trace(sb @ ib @ sb @ ib)
            - 2 * np.trace(ia @ sab @ ib @ sab.T)
        )
        name = "gulp" if lam == 0 else f"gulp-lambda={lam}"
        assert measure(name)(x, y) == pytest.approx(d2, abs=1e-10)
        assert measure(name + "-root")(x, y) == pytest.approx(np.sqrt(max(d2, 0)), abs=1e-7)


def test_correlation_matches():
    x, y = _pair(11, n=40, d1=4, d2=4)
    r = np.corrcoef(x.T, y.T)[:4, 4:]
    hard = max(np.mean([r[i, p[i]] for i in range(4)]) for p in itertools.permutations(range(4)))
    soft = 0.5 * (r.max(1).mean() + r.max(0).mean())
    assert measure("hard_correlation_match")(x, y) == pytest.approx(hard, abs=1e-12)
    assert measure("soft_correlation_match")(x, y) == pytest.approx(soft, abs=1e-12)


# ------------------------------------------------------------------------------- regression
def test_regression_matches_sklearn():
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.linear_model import LinearRegression, Ridge

    from ensemble_lens.similarity.regression import folds

    x, y = _pair(12, n=60)
    models = {
        "linear_regression": LinearRegression(),
        "ridge-lambda=2.5": Ridge(alpha=2.5),
        "pls-components=2": PLSRegression(n_components=2, scale=False),
    }
    for prefix, model in models.items():  # seeded folds, scores averaged over folds
        per_r, per_r2 = [], []
        for tr, te in folds(60, 5, 0):
            pred = model.fit(x[tr], y[tr]).predict(x[te])
            per_r.append([stats.pearsonr(pred[:, j], y[te, j])[0] for j in range(4)])
            res = ((y[te] - pred) ** 2).sum(0)
            per_r2.append(1 - res / ((y[te] - y[te].mean(0)) ** 2).sum(0))
        r_units, r2_units = np.mean(per_r, axis=0), np.mean(per_r2, axis=0)
        assert measure(f"{prefix}-pearsonr-cv=5folds-variant=shuffled")(x, y) == pytest.approx(
            r_units.mean(), abs=1e-9
        )
        assert measure(f"{prefix}-r2-cv=5folds-variant=shuffled")(x, y) == pytest.approx(
            r2_units.mean(), abs=1e-9
        )
        assert measure(f"{prefix}-pearsonr-cv=5folds-variant=shuffled-median")(
            x, y
        ) == pytest.approx(np.median(r_units), abs=1e-9)
    # in-sample least squares: the first argument predicts the second (share of Y's variance
    # explained from X); ReSi's LinearRegression reads the other way: linear_regression-reverse
    xc, yc = x - x.mean(0), y - y.mean(0)
    fit_y = xc @ np.linalg.lstsq(xc, yc, rcond=None)[0]
    fit_x = yc @ np.linalg.lstsq(yc, xc, rcond=None)[0]
    assert measure("linear_regression")(x, y) == pytest.approx(
        np.sum(fit_y**2) / np.sum(yc**2), abs=1e-12
    )
    assert measure("linear_regression-reverse")(x, y) == pytest.approx(
        np.sum(fit_x**2) / np.sum(xc**2), abs=1e-12
    )
    fwd, rev = measure("ridge-pearsonr-cv=5folds"), measure("ridge-pearsonr-cv=5folds-reverse")
    assert not fwd.symmetric and rev(x, y) == pytest.approx(fwd(y, x), abs=1e-14)


def test_cca_matches_cca_zoo():
    pytest.importorskip("cca_zoo")
    import warnings

    from cca_zoo.linear import CCA

    x, y = _pair(13, n=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z = CCA(n_components=4).fit([x, y]).transform([x, y])
    rho = np.array([abs(np.corrcoef(z[0][:, i], z[1][:, i])[0, 1]) for i in range(4)])
    assert measure("cca-score")(x, y) == pytest.approx(rho.mean(), abs=1e-8)
    assert measure("cca-squared_score")(x, y) == pytest.approx((rho**2).mean(), abs=1e-8)


# ------------------------------------------------------------ variants that peers use
def test_pwcca_google_variant_values():
    # values of google/svcca's compute_pwcca(X.T, Y.T)[0] on this data (run once, by hand)
    rng = np.random.default_rng(0)
    want = {(5, 8): 0.7939392143458692, (6, 6): 0.6728634705161685}
    for dx, dy in [(5, 8), (6, 6), (4, 3)]:
        x = rng.normal(size=(300, dx))
        y = np.tanh(x @ rng.normal(size=(dx, dy))) + 0.5 * rng.normal(size=(300, dy)) + 2
        x = x + 1.5
        got = measure("pwcca-variant=google-score")(x, y)
        if (dx, dy) in want:
            assert got == pytest.approx(want[(dx, dy)], abs=1e-12)
        assert 0 <= got <= 1
    assert not measure("pwcca-score").symmetric


def test_shape_metric_raw_scale_matches_definition():
    x, y = _pair(14, n=60, d1=4, d2=4)
    xc, yc = x - x.mean(0), y - y.mean(0)
    for alpha in (0.0, 0.3, 1.0):

        def whiten(a, alpha=alpha):
            lam, v = np.linalg.eigh(a.T @ a)
            return a @ v @ np.diag(alpha + (1 - alpha) * lam**-0.5) @ v.T

        xw, yw = whiten(xc), whiten(yc)
        u, _, vt = np.linalg.svd(xw.T @ yw)
        ref = np.arccos(np.sum((xw @ u) * (yw @ vt.T)) / np.linalg.norm(xw) / np.linalg.norm(yw))
        got = measure(f"shape_metric-alpha={alpha}-scale=raw-distance=angular")(x, y)
        assert got == pytest.approx(ref, abs=1e-10)


def test_permutation_metric_and_cknna_match_definitions():
    x, y = _pair(15, n=40, d1=4, d2=4)
    xc, yc = x - x.mean(0), y - y.mean(0)
    best = max(np.sum(xc * yc[:, list(p)]) for p in itertools.permutations(range(4)))
    ref = np.arccos(best / np.linalg.norm(xc) / np.linalg.norm(yc))
    assert measure("permutation_metric-distance=angular")(x, y) == pytest.approx(ref, abs=1e-12)
    n, k = 40, 5

    def knn_mask(a):
        g = a @ a.T
        m = np.zeros((n, n))
        for i in range(n):
            order = [j for j in np.argsort(-g[i], kind="stable") if j != i][:k]
            m[i, order] = 1
        return g, m

    def hsic(kk, ll):
        kt, lt = kk - np.diag(np.diag(kk)), ll - np.diag(np.diag(ll))
        one = np.ones(n)
        return (np.trace(kt @ lt) + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
                - 2 / (n - 2) * one @ kt @ lt @ one) / (n * (n - 3))  # fmt: skip

    (gx, mx), (gy, my) = knn_mask(x), knn_mask(y)
    both = mx * my
    ref = hsic(both * gx, both * gy) / np.sqrt(hsic(mx * gx, mx * gx) * hsic(my * gy, my * gy))
    assert measure(f"cknna-topk={k}")(x, y) == pytest.approx(ref, abs=1e-12)
