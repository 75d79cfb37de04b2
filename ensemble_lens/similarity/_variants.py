"""Values of the registry's backing implementations where they are not the paper's definition.

nacloos/similarity-repository (Cloos et al. 2024) maps each standardized name to one or more
repositories' code; ``measure(name)`` returns that code's value. The functions here are the
conventions of those implementations that no other module of this package computes (written
from reading their code, see the docstrings); the paper's definitions stay in their modules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.distance import pdist, squareform

from ..errors import ShapeError
from ._input import center, prepare_pair
from ._linalg import n_keep, singular_values
from ._states import (
    centred_state,
    factor_state,
    permutation_distance_combine,
    squared_cca_combine,
)
from .geometry import aligned_combine, aligned_state

__all__ = [
    "aligned_cossim",
    "brainscore_predictivity",
    "euclidean_from_score",
    "netrep_shape_euclidean",
    "neuroai_predictivity",
    "permutation_euclidean",
    "pls_singular_mean",
    "ridge_r2_no_intercept",
    "rsm_norm_spectral",
    "svcca_squared",
]


def rsm_norm_spectral(X: Any, Y: Any) -> float:
    """ReSi's ``RSMNormDifference``: the spectral norm ``||D_X - D_Y||_2`` of the difference of
    the full (n, n) Euclidean distance matrices.

    ReSi's code calls ``np.linalg.norm(S - S', ord=2)`` on the square matrices from
    ``sklearn.metrics.pairwise_distances`` (its comment expects a condensed vector, for which
    ``ord=2`` would be the Frobenius-type norm that llm_repsim computes; see
    :func:`ensemble_lens.similarity.geometry.rsm_norm_difference`). A pseudo-metric; invariant
    to orthogonal maps and translation, not to scaling.
    """
    x, y = prepare_pair(X, Y, rescale=False)
    return spectral_diff(rdm_square(x), rdm_square(y))


def rdm_square(x: np.ndarray) -> np.ndarray:
    """One network's full Euclidean distance matrix (exact zero diagonal)."""
    return squareform(pdist(x, metric="euclidean"))


def spectral_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest singular value of ``a - b`` (symmetric: largest absolute eigenvalue)."""
    if a.shape[0] < 2:
        return 0.0
    return float(np.abs(np.linalg.eigvalsh(a - b)).max())


def svcca_squared(
    X: Any, Y: Any, keep_variance: float | None = 0.99, n_components: int | None = None
) -> float:
    """Mean squared canonical correlation between the kept principal components (the registry's
    ``svcca-...-squared_score``: PCA of each input, then google/svcca's mean of squared
    ``cca_coef1``). Without ``keep_variance`` and ``n_components`` all components are kept
    (= ``cca-squared_score``). Symmetric; in [0, 1]; invariant to orthogonal maps, isotropic
    scaling and translation.
    """
    x, y = prepare_pair(X, Y)
    return squared_cca_combine(factor_state(x), factor_state(y), keep_variance, n_components)


def neuroai_predictivity(
    X: Any,
    Y: Any,
    method: str = "ridgecv",
    n_components: int = 25,
    reverse: bool = False,
    cv: int = 5,
) -> float:
    """NeuroAIMetrics' ``LinearPredictivity`` / ``PLSreg`` (the registry's
    ``ridge-pearsonr-cv=5folds`` and ``pls-pearsonr-components=25-cv=5folds``).

    scikit-learn's ``KFold(cv, shuffle=True, random_state=42)`` (the registry: 5); in each
    fold X's training and test rows are z-scored per unit with their own fold's mean and
    standard deviation, Y is predicted by ``RidgeCV(alphas=logspace(-8, 8, 17))`` (efficient
    leave-one-out choice of the penalty) or ``PLSRegression(n_components)`` (clamped to the
    fold's rank), and the Pearson r of each unit of Y on the test rows is averaged over units
    (NaN ignored), then over folds. ``reverse`` predicts X from Y. Not symmetric.
    """
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold

    x, y = prepare_pair(X, Y, min_samples=10, rescale=False)
    if reverse:
        x, y = y, x
    if not 2 <= cv <= x.shape[0] // 2:
        raise ShapeError(f"cv: expected 2 <= cv <= n/2 = {x.shape[0] // 2}, got {cv}")
    scores = []
    for tr, te in KFold(n_splits=cv, shuffle=True, random_state=42).split(x):
        xtr, xte = _zscore(x[tr]), _zscore(x[te])
        if method == "pls":
            k = max(1, min(n_components, xtr.shape[1], len(tr) - 1))
            model: Any = PLSRegression(n_components=k)
        else:
            model = RidgeCV(alphas=np.logspace(-8, 8, 17))
        pred = np.asarray(model.fit(xtr, y[tr]).predict(xte)).reshape(len(te), -1)
        scores.append(np.nanmean(_unit_corr(pred, y[te])))
    return float(np.mean(scores))


def _zscore(a: np.ndarray) -> np.ndarray:
    sd = a.std(axis=0)
    return np.divide(a - a.mean(axis=0), sd, out=np.zeros_like(a), where=sd > 0)


def _unit_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ac, bc = a - a.mean(axis=0), b - b.mean(axis=0)
    den = np.sqrt((ac * ac).sum(axis=0) * (bc * bc).sum(axis=0))
    return np.divide((ac * bc).sum(axis=0), den, out=np.full(den.shape, np.nan), where=den > 0)


def ridge_r2_no_intercept(X: Any, Y: Any, lam: float = 1.0, reverse: bool = False) -> float:
    """brain_language_nlp's in-sample ridge (the registry's ``ridge-lambda=1-r2``):
    ``W = (X^T X + lam I)^{-1} X^T Y`` without intercept or centring, and the mean over Y's
    units of ``R^2 = 1 - mean((Y - X W)^2) / var(Y)`` (X from Y with ``reverse``). Not
    symmetric; not scale-invariant.
    """
    x, y = prepare_pair(X, Y, rescale=False)
    if reverse:
        x, y = y, x
    w = np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)
    var = y.var(axis=0)
    sse = ((y - x @ w) ** 2).mean(axis=0)
    return float(np.mean(1.0 - np.divide(sse, var, out=np.full_like(sse, np.inf), where=var > 0)))


def pls_singular_mean(X: Any, Y: Any) -> float:
    """google/svcca's ``get_pls_similarity`` "mean" (the registry's bare ``pls``): the mean of
    the singular values of the cross-covariance ``Cov(X, Y)`` (d1, d2), ``ddof=1``.
    Symmetric; invariant to orthogonal maps and translation, not to scaling.
    """
    x, y = prepare_pair(X, Y, rescale=False)
    cxy = center(x).T @ center(y) / (x.shape[0] - 1)
    return float(singular_values(cxy).mean())


def permutation_euclidean(X: Any, Y: Any, squared: bool = False) -> float:
    """netrep's ``PermutationMetric(score_method="euclidean")`` (the registry's
    ``permutation_metric-distance=euclidean``): ``min_P ||Xc - Yc P||_F`` over unit
    permutations of the centred inputs, the narrower one zero-padded. Symmetric; invariant to
    permutations and translation, not to scaling.
    """
    x, y = prepare_pair(X, Y, rescale=False)
    return permutation_distance_combine(centred_state(x), centred_state(y), squared)


def aligned_cossim(X: Any, Y: Any) -> float:
    """llm_repsim's ``aligned_cossim`` (the registry's name): ReSi's aligned cosine similarity
    (:func:`ensemble_lens.similarity.geometry.aligned_cosine`) of the column-centred inputs,
    as the registry centres columns before calling it."""
    x, y = prepare_pair(X, Y)
    return aligned_combine(centred_aligned_state(x), centred_aligned_state(y))


def centred_aligned_state(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~ensemble_lens.similarity.geometry.aligned_state` of the column-centred data."""
    return aligned_state(center(x))


def brainscore_predictivity(
    X: Any,
    Y: Any,
    method: str = "pls",
    cv: int = 0,
    n_components: int = 25,
    lam: float = 1.0,
    reverse: bool = False,
) -> float:
    """Brain-Score's ``CrossRegressedCorrelation`` (the registry's ``pls-pearsonr`` and
    ``pls-pearsonr-cv=5folds``; its linear and ridge names run PLS too, through a loop
    variable bound late, so only the PLS names are its values).

    Splits: without ``cv``, scikit-learn's ``StratifiedShuffleSplit(10, train_size=0.9,
    random_state=1)`` over one stratum; with ``cv``, ``KFold(cv, shuffle=True,
    random_state=1)``. In each split ``PLSRegression(n_components, scale=False)`` (clamped to
    the split's rank), ``Ridge(lam)`` or ``LinearRegression()`` predicts Y from X (X from Y
    with ``reverse``); the score is the median over Y's units of the
    Pearson r on the test rows; the value is the mean over splits. Not symmetric.
    """
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.model_selection import KFold, StratifiedShuffleSplit

    x, y = prepare_pair(X, Y, min_samples=10, rescale=False)
    if reverse:
        x, y = y, x
    n = x.shape[0]
    if cv and not 2 <= cv <= n // 2:
        raise ShapeError(f"cv: expected 0 (shuffle splits) or 2 <= cv <= n/2 = {n // 2}, got {cv}")
    if cv:
        splits = KFold(n_splits=cv, shuffle=True, random_state=1).split(x)
    else:
        sss = StratifiedShuffleSplit(n_splits=10, train_size=0.9, random_state=1)
        splits = sss.split(np.zeros(n), np.zeros(n))
    scores = []
    for tr, te in splits:
        k = max(1, min(n_components, x.shape[1], len(tr) - 1))
        model: Any = (
            PLSRegression(n_components=k, scale=False)
            if method == "pls"
            else Ridge(alpha=lam)
            if method == "ridge"
            else LinearRegression()
        )
        pred = np.asarray(model.fit(x[tr], y[tr]).predict(x[te])).reshape(len(te), -1)
        scores.append(np.median(_unit_corr(pred, y[te])))
    return float(np.mean(scores))


def euclidean_from_score(
    X: Any,
    Y: Any,
    score_fn: Callable[..., float],
    squared: bool = False,
    pca: bool = False,
    **options: Any,
) -> float:
    """The registry's derived ``...-distance=euclidean`` of a score ``s`` in [-1, 1] (its
    ``angular_to_euclidean_shape_metric`` applied to ``arccos(s)``):
    ``sqrt(|Xc|_F^2 + |Yc|_F^2 - 2 |Xc|_F |Yc|_F s)`` on the column-centred inputs (with
    ``pca``, on their kept principal-component scores, as the registry derives SVCCA's from
    CCA's), squared without the root. Not scale-invariant.
    """
    s = float(score_fn(X, Y, **options))
    x, y = prepare_pair(X, Y, rescale=False)
    xc, yc = center(x), center(y)
    if pca:
        keep, nc = options.get("keep_variance") or 1.0, options.get("n_components")
        nx2, ny2 = (_kept_scatter(a, keep, nc) for a in (xc, yc))
    else:
        nx2, ny2 = float(np.sum(xc * xc)), float(np.sum(yc * yc))
    d2 = max(nx2 + ny2 - 2.0 * np.sqrt(nx2 * ny2) * min(max(s, -1.0), 1.0), 0.0)
    return d2 if squared else float(np.sqrt(d2))


def _kept_scatter(ac: np.ndarray, keep: float, nc: int | None) -> float:
    """Squared norm of the kept principal-component scores of centred data."""
    lam = np.linalg.svd(ac, compute_uv=False) ** 2
    return float(lam[: n_keep(lam, keep, nc)].sum())


def netrep_shape_euclidean(X: Any, Y: Any, alpha: float = 1.0, squared: bool = False) -> float:
    """netrep's ``LinearMetric(alpha, score_method="euclidean")`` (the registry's
    ``shape_metric-alpha=a-distance=euclidean``): both inputs centred and zero-padded to the
    larger width, partially whitened by ``alpha I + (1 - alpha) (X^T X)^{-1/2}`` (eigenvalues
    clipped at 1e-7) rescaled to keep the total variance, rotated into alignment; the Frobenius
    distance. For alpha = 1 the Procrustes size-and-shape distance. Not scale-invariant.
    """
    x, y = prepare_pair(X, Y, rescale=False)
    return netrep_combine(netrep_state(x, alpha), netrep_state(y, alpha), alpha, squared)


_WHITEN_TOL = 1e-7


@dataclass(frozen=True)
class NetrepState:
    """One network's netrep whitening before the pair's rescaling: the centred data times
    ``V diag(g) V^T``, its squared norm, and the eigenvalue sum and new variance of its own
    units (the zero-padded units of a pair add ``tol`` and a constant to each)."""

    w: np.ndarray
    ss: float
    lam_sum: float
    new_var: float


def netrep_state(x: np.ndarray, alpha: float) -> NetrepState:
    """Per-network work of :func:`netrep_shape_euclidean` (one eigendecomposition)."""
    a = center(x)
    if alpha > 1 - _WHITEN_TOL:
        return NetrepState(a, float(np.sum(a * a)), 1.0, 1.0)
    lam, v = np.linalg.eigh(a.T @ a)
    lam = np.maximum(lam, _WHITEN_TOL)
    g = alpha + (1 - alpha) * lam**-0.5
    new_var = np.sum(alpha**2 * lam + 2 * alpha * (1 - alpha) * lam**0.5 + (1 - alpha) ** 2)
    w = a @ (v * g) @ v.T
    return NetrepState(w, float(np.sum(w * w)), float(lam.sum()), float(new_var))


def _netrep_scale(s: NetrepState, pad: int, alpha: float) -> float:
    """netrep's variance-keeping factor of one input zero-padded by ``pad`` units (a padded
    unit has eigenvalue ``tol`` after clipping)."""
    if alpha > 1 - _WHITEN_TOL:
        return 1.0
    t = _WHITEN_TOL
    extra = alpha**2 * t + 2 * alpha * (1 - alpha) * t**0.5 + (1 - alpha) ** 2
    return float(np.sqrt((s.lam_sum + pad * t) / (s.new_var + pad * extra)))


def netrep_combine(a: NetrepState, b: NetrepState, alpha: float, squared: bool) -> float:
    """``|Xw|^2 + |Yw|^2 - 2 |Xw^T Yw|_*`` with each input's pair-dependent rescaling (zero
    padding changes the whitened units only through that factor)."""
    d = max(a.w.shape[1], b.w.shape[1])
    ca = _netrep_scale(a, d - a.w.shape[1], alpha)
    cb = _netrep_scale(b, d - b.w.shape[1], alpha)
    nuc = ca * cb * float(singular_values(a.w.T @ b.w).sum())
    d2 = max(ca * ca * a.ss + cb * cb * b.ss - 2.0 * nuc, 0.0)
    return d2 if squared else float(np.sqrt(d2))
