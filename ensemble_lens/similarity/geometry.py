"""Alignment, statistics and spectral measures of the ReSi benchmark (Klabunde et al. 2024)
and related papers, each written from its definition.

Notation: ``Xc`` is X with centred columns, ``|.|`` the Frobenius norm, ``|.|_*`` the nuclear
norm. The narrower input is implicitly zero-padded where widths differ (norms and nuclear
norms are unchanged by padding).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy.spatial.distance import pdist

from ..errors import ShapeError
from ._input import center, prepare_pair
from .matching import _assign, unit_correlations

__all__ = [
    "aligned_cosine",
    "concentricity_difference",
    "correlation_match",
    "distance_correlation",
    "eigenspace_overlap",
    "ensd",
    "gulp",
    "magnitude_difference",
    "permutation_angle",
    "permutation_procrustes",
    "procrustes_distance",
    "rsm_norm_difference",
    "uniformity_difference",
]


def _nuclear(a: np.ndarray) -> float:
    return float(np.linalg.svd(a, compute_uv=False).sum())


def procrustes_distance(X: Any, Y: Any, normalize: bool = False, squared: bool = False) -> float:
    """Orthogonal Procrustes distance ``min_R |Xc - Yc R|`` over orthogonal R.

    ``sqrt(|Xc|^2 + |Yc|^2 - 2 |Xc^T Yc|_*)``: the Procrustes size-and-shape distance
    (Williams et al. 2021; ReSi), which equals the Bures distance between the centred linear
    Gram matrices (Harvey et al. 2024). ``normalize=True`` first scales each centred input to
    unit norm (Ding et al. 2021: ``sqrt(2 - 2 procrustes_similarity)``). A metric; invariant to
    orthogonal maps and translation (and isotropic scaling when normalised). Exactly 0 for
    identical inputs.
    """
    x, y = prepare_pair(X, Y, rescale=normalize)
    if x.shape == y.shape and np.array_equal(x, y):
        return 0.0
    xc, yc = center(x), center(y)
    if normalize:
        xc, yc = xc / np.linalg.norm(xc), yc / np.linalg.norm(yc)
    sq = max(float(np.sum(xc * xc) + np.sum(yc * yc)) - 2 * _nuclear(xc.T @ yc), 0.0)
    return sq if squared else float(np.sqrt(sq))


def permutation_procrustes(X: Any, Y: Any, standardize: bool = False) -> float:
    """``min_P |X - Y P|`` over unit permutations P (ReSi: raw units, no centring).

    The assignment maximises ``tr(P^T Y^T X)`` (``scipy.optimize.linear_sum_assignment``).
    ``standardize=True`` z-scores every unit first (the common variant for permutation
    metrics). Not invariant to orthogonal maps; invariant to unit permutations.
    """
    x, y = prepare_pair(X, Y, rescale=False)
    if standardize:
        x = center(x) / x.std(axis=0)
        y = center(y) / y.std(axis=0)
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(x.T @ y, maximize=True)
    # unmatched units of the wider input are matched with zero units of the narrower one
    sq = np.sum(x * x) + np.sum(y * y) - 2 * np.sum(x[:, rows] * y[:, cols])
    return float(np.sqrt(max(sq, 0.0)))


def permutation_angle(X: Any, Y: Any, standardize: bool = False) -> float:
    """Permutation shape metric (Williams et al. 2021; netrep's ``PermutationMetric``).

    ``arccos(max_P <Xc, Yc P> / (|Xc| |Yc|))`` over unit permutations P (the narrower input
    zero-padded), on centred units; ``standardize=True`` z-scores every unit first (the
    common variant, :func:`~ensemble_lens.similarity.permutation_distance`). A metric;
    invariant to unit permutations, translation and isotropic scaling.
    """
    x, y = prepare_pair(X, Y)
    if x.shape == y.shape and np.array_equal(x, y):
        return 0.0
    xc, yc = center(x), center(y)
    if standardize:
        xc, yc = xc / xc.std(axis=0), yc / yc.std(axis=0)
    from scipy.optimize import linear_sum_assignment

    c = xc.T @ yc
    rows, cols = linear_sum_assignment(c, maximize=True)
    cos = c[rows, cols].sum() / (np.linalg.norm(xc) * np.linalg.norm(yc))
    return float(np.arccos(np.clip(cos, -1.0, 1.0)))


def aligned_cosine(X: Any, Y: Any) -> float:
    """Mean cosine similarity of samples after the best orthogonal alignment of X onto Y.

    ``R = argmin |X R - Y|`` (orthogonal Procrustes on the raw inputs, as ReSi), then
    ``mean_i cos(x_i R, y_i)``. Invariant to orthogonal maps and isotropic scaling.
    """
    x, y = prepare_pair(X, Y)
    d = max(x.shape[1], y.shape[1])
    xp, yp = np.zeros((x.shape[0], d)), np.zeros((y.shape[0], d))
    xp[:, : x.shape[1]], yp[:, : y.shape[1]] = x, y
    u, _, vt = np.linalg.svd(xp.T @ yp)
    xa = xp @ (u @ vt)
    num = np.einsum("ij,ij->i", xa, yp)
    den = np.linalg.norm(xa, axis=1) * np.linalg.norm(yp, axis=1)
    return float(np.mean(np.divide(num, den, out=np.zeros_like(num), where=den > 0)))


def rsm_norm_difference(X: Any, Y: Any, metric: str = "euclidean") -> float:
    """``|D_X - D_Y|`` over all sample pairs of the two distance matrices (ReSi: Euclidean
    distances, each unordered pair counted once). A pseudo-metric; not scale-invariant."""
    x, y = prepare_pair(X, Y, rescale=False)
    return float(np.linalg.norm(pdist(x, metric) - pdist(y, metric)))


def magnitude_difference(X: Any, Y: Any) -> float:
    """``| |mean_i x_i| - |mean_i y_i| |`` (ReSi; Wang et al. 2020 magnitude)."""
    x, y = prepare_pair(X, Y, rescale=False)
    return abs(float(np.linalg.norm(x.mean(axis=0)) - np.linalg.norm(y.mean(axis=0))))


def _concentricity(x: np.ndarray) -> float:
    m = x.mean(axis=0)
    cos = x @ m / (np.linalg.norm(x, axis=1) * np.linalg.norm(m))
    return float(cos.mean())


def concentricity_difference(X: Any, Y: Any) -> float:
    """Difference of the mean cosine of samples to their mean (ReSi; Wang et al. 2020)."""
    x, y = prepare_pair(X, Y)
    return abs(_concentricity(x) - _concentricity(y))


def _uniformity(x: np.ndarray, t: float) -> float:
    d2 = pdist(x, "sqeuclidean")
    n = x.shape[0]
    # mean over all ordered pairs, the diagonal included (exp(0) = 1), as ReSi
    return float(np.log((2 * np.exp(-t * d2).sum() + n) / n**2))


def uniformity_difference(X: Any, Y: Any, t: float = 2.0) -> float:
    """``|U(X) - U(Y)|`` with ``U = log mean_{i,j} exp(-t |x_i - x_j|^2)`` (Wang & Isola 2020)."""
    x, y = prepare_pair(X, Y, rescale=False)
    return abs(_uniformity(x, t) - _uniformity(y, t))


def eigenspace_overlap(X: Any, Y: Any) -> float:
    """Eigenspace overlap score (May et al. 2019): ``|U_X^T U_Y|^2 / max(d1, d2)`` with
    ``U`` orthonormal bases of the (uncentred) column spaces. In [0, 1]; invariant to
    invertible linear maps."""
    x, y = prepare_pair(X, Y)

    def basis(a: np.ndarray) -> np.ndarray:
        u, s, _ = np.linalg.svd(a, full_matrices=False)
        return u[:, s > s[0] * max(a.shape) * np.finfo(float).eps]

    return float(np.linalg.norm(basis(x).T @ basis(y)) ** 2 / max(x.shape[1], y.shape[1]))


def correlation_match(X: Any, Y: Any, kind: Literal["hard", "soft"] = "hard") -> float:
    """Unit correlation matching (Li et al. 2015; ReSi).

    ``hard``: mean correlation of the optimal one-to-one matching of units (signed).
    ``soft``: mean of each unit's best correlation, averaged over both directions.
    """
    x, y = prepare_pair(X, Y)
    r = unit_correlations(x, y)
    if kind == "soft":
        return float(0.5 * (r.max(axis=1).mean() + r.max(axis=0).mean()))
    if kind != "hard":
        raise ShapeError(f"kind: expected 'hard' or 'soft', got {kind!r}")
    rows, cols = _assign(r, False)
    return float(r[rows, cols].mean())


def distance_correlation(X: Any, Y: Any) -> float:
    """Distance correlation (Szekely et al. 2007): ``sqrt(dCov^2(X,Y) / sqrt(dVar^2 X dVar^2 Y))``
    with double-centred Euclidean distance matrices (V-statistic). In [0, 1]; invariant to
    orthogonal maps, translation and isotropic scaling."""
    from scipy.spatial.distance import squareform

    x, y = prepare_pair(X, Y)

    def dc(a: np.ndarray) -> np.ndarray:
        d = squareform(pdist(a))
        m = d.mean(axis=0)
        return d - m[None, :] - m[:, None] + m.mean()

    a, b = dc(x), dc(y)
    v = np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b))
    return float(np.sqrt(max(v, 0.0)))


def ensd(X: Any, Y: Any, distance: bool = False) -> float:
    """Effective number of shared dimensions (Giaffar et al. 2024).

    ``ENSD = PR_X PR_Y <K, L> / (tr K tr L)`` with centred linear Grams ``K = Xc Xc^T`` and
    participation ratios ``PR = (tr K)^2 / tr K^2``. ``distance=True``: their normalised
    angular distance ``(2 / pi) arccos(ENSD / sqrt(PR_X PR_Y))`` = ``(2/pi) arccos(linear CKA)``.
    Computed in feature space (no n x n matrix).
    """
    x, y = prepare_pair(X, Y)
    xc, yc = center(x), center(y)
    tx, ty = float(np.sum(xc * xc)), float(np.sum(yc * yc))
    kx, ky = float(np.linalg.norm(xc.T @ xc) ** 2), float(np.linalg.norm(yc.T @ yc) ** 2)
    kxy = float(np.linalg.norm(xc.T @ yc) ** 2)
    if distance:
        return float(2 / np.pi * np.arccos(np.clip(kxy / np.sqrt(kx * ky), -1.0, 1.0)))
    return (tx**2 / kx) * (ty**2 / ky) * kxy / (tx * ty)


def gulp(X: Any, Y: Any, lam: float = 0.0, squared: bool = False) -> float:
    """GULP distance (Boix-Adsera et al. 2022) between the best ridge predictors on X and Y.

    Inputs are centred and scaled to ``|Xc| = sqrt(n)`` (as ReSi); with ``S = Xc^T Xc / n``
    and ``A = (S_X + lam)^-1``:
    ``d^2 = tr((S_X A_X)^2) + tr((S_Y A_Y)^2) - 2 tr(A_X S_XY A_Y S_YX)``
    (``lam = 0``: pseudo-inverses). Returns ``d`` (the paper's distance) or ``d^2`` with
    ``squared=True`` (ReSi's value). Invariant to orthogonal maps, isotropic scaling and
    translation (and to invertible linear maps when ``lam = 0``).
    """
    if lam < 0:
        raise ShapeError(f"lam: expected a non-negative ridge penalty, got {lam}")
    x, y = prepare_pair(X, Y)
    n = x.shape[0]
    xc, yc = center(x), center(y)
    xc *= np.sqrt(n) / np.linalg.norm(xc)
    yc *= np.sqrt(n) / np.linalg.norm(yc)

    def inv_half(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lam_a, v = np.linalg.eigh(a.T @ a / n)
        lam_a = np.maximum(lam_a, 0.0)
        if lam > 0:
            g = 1.0 / (lam_a + lam)
        else:
            g = np.where(lam_a > lam_a.max() * 1e-12, 1.0 / np.where(lam_a > 0, lam_a, 1), 0.0)
        return lam_a * g, (v * g) @ v.T

    ex, ax = inv_half(xc)
    ey, ay = inv_half(yc)
    sxy = xc.T @ yc / n
    d2 = float(np.sum(ex**2) + np.sum(ey**2) - 2 * np.trace(ax @ sxy @ ay @ sxy.T))
    d2 = max(d2, 0.0)
    return d2 if squared else float(np.sqrt(d2))
