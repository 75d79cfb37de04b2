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
from ._input import center, prepare_pair, safe_scale
from ._states import (
    centred_state,
    permutation_angle_combine,
    permutation_distance_combine,
    procrustes_combine,
)
from .matching import _assign

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
    kw = {"normalize": normalize}
    return procrustes_combine(centred_state(x, **kw), centred_state(y, **kw), squared)


def permutation_procrustes(X: Any, Y: Any, standardize: bool = False) -> float:
    """``min_P |X - Y P|`` over unit permutations P (ReSi: raw units, no centring).

    The assignment maximises ``tr(P^T Y^T X)`` (``scipy.optimize.linear_sum_assignment``).
    ``standardize=True`` z-scores every unit first (the common variant for permutation
    metrics). Not invariant to orthogonal maps; invariant to unit permutations.
    """
    x, y = prepare_pair(X, Y, rescale=False)
    kw = {"standardize": standardize, "centre": False}
    return permutation_distance_combine(centred_state(x, **kw), centred_state(y, **kw))


def permutation_angle(X: Any, Y: Any, standardize: bool = False) -> float:
    """Permutation shape metric (Williams et al. 2021; netrep's ``PermutationMetric``).

    ``arccos(max_P <Xc, Yc P> / (|Xc| |Yc|))`` over unit permutations P (the narrower input
    zero-padded), on centred units; ``standardize=True`` z-scores every unit first (the
    common variant, :func:`~ensemble_lens.similarity.permutation_distance`). A metric;
    invariant to unit permutations, translation and isotropic scaling.
    """
    x, y = prepare_pair(X, Y)
    kw = {"standardize": standardize}
    return permutation_angle_combine(centred_state(x, **kw), centred_state(y, **kw))


def aligned_cosine(X: Any, Y: Any) -> float:
    """Mean cosine similarity of samples after the best orthogonal alignment of X onto Y.

    ``R = argmin |X R - Y|`` (orthogonal Procrustes on the raw inputs, as ReSi), then
    ``mean_i cos(x_i R, y_i)``. Invariant to orthogonal maps and isotropic scaling.
    """
    x, y = prepare_pair(X, Y)
    return aligned_combine(aligned_state(x), aligned_state(y))


def aligned_state(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One network's per-network work for :func:`aligned_combine`: the (rescaled) data and
    its sample norms."""
    x = safe_scale(x)
    return x, np.linalg.norm(x, axis=1)


def aligned_combine(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """``mean_i cos(x_i R, y_i)``: ``R = U V^T`` from the thin SVD of ``X^T Y`` (the padded
    rotation restricted to the shared directions: where ``X^T Y`` has full rank the padded
    coordinates add nothing to ``x_i R . y_i``, and ``|x_i R| = |x_i|``)."""
    (x, nx), (y, ny) = a, b
    u, _, vt = np.linalg.svd(x.T @ y, full_matrices=False)
    num = np.einsum("ij,ij->i", (x @ u) @ vt, y)
    den = nx * ny
    return float(np.mean(np.divide(num, den, out=np.zeros_like(num), where=den > 0)))


def rsm_norm_difference(X: Any, Y: Any, metric: str = "euclidean") -> float:
    """``|D_X - D_Y|`` over all sample pairs of the two distance matrices (ReSi: Euclidean
    distances, each unordered pair counted once). A pseudo-metric; not scale-invariant."""
    x, y = prepare_pair(X, Y, rescale=False)
    return diff_norm(pdist(x, metric), pdist(y, metric))


def diff_norm(a: np.ndarray, b: np.ndarray) -> float:
    """``|a - b|`` of two per-network vectors."""
    return float(np.linalg.norm(a - b))


def stat_state(x: np.ndarray, kind: str, t: float = 2.0) -> float:
    """One network's summary statistic: ``magnitude``, ``concentricity`` or ``uniformity``."""
    if kind == "magnitude":
        return float(np.linalg.norm(x.mean(axis=0)))
    if kind == "concentricity":
        return _concentricity(safe_scale(x))
    return _uniformity(x, t)


def abs_diff(a: float, b: float) -> float:
    """``|a - b|`` of two statistics."""
    return abs(a - b)


def magnitude_difference(X: Any, Y: Any) -> float:
    """``| |mean_i x_i| - |mean_i y_i| |`` (ReSi; Wang et al. 2020 magnitude)."""
    x, y = prepare_pair(X, Y, rescale=False)
    return abs_diff(stat_state(x, "magnitude"), stat_state(y, "magnitude"))


def _concentricity(x: np.ndarray) -> float:
    m = x.mean(axis=0)
    cos = x @ m / (np.linalg.norm(x, axis=1) * np.linalg.norm(m))
    return float(cos.mean())


def concentricity_difference(X: Any, Y: Any) -> float:
    """Difference of the mean cosine of samples to their mean (ReSi; Wang et al. 2020)."""
    x, y = prepare_pair(X, Y)
    return abs_diff(stat_state(x, "concentricity"), stat_state(y, "concentricity"))


def _uniformity(x: np.ndarray, t: float) -> float:
    d2 = pdist(x, "sqeuclidean")
    n = x.shape[0]
    # mean over all ordered pairs, the diagonal included (exp(0) = 1), as ReSi
    return float(np.log((2 * np.exp(-t * d2).sum() + n) / n**2))


def uniformity_difference(X: Any, Y: Any, t: float = 2.0) -> float:
    """``|U(X) - U(Y)|`` with ``U = log mean_{i,j} exp(-t |x_i - x_j|^2)`` (Wang & Isola 2020)."""
    x, y = prepare_pair(X, Y, rescale=False)
    return abs_diff(stat_state(x, "uniformity", t), stat_state(y, "uniformity", t))


def eigenspace_overlap(X: Any, Y: Any) -> float:
    """Eigenspace overlap score (May et al. 2019): ``|U_X^T U_Y|^2 / max(d1, d2)`` with
    ``U`` orthonormal bases of the (uncentred) column spaces. In [0, 1]; invariant to
    invertible linear maps."""
    x, y = prepare_pair(X, Y)
    return overlap_combine(basis_state(x), basis_state(y))


def basis_state(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Orthonormal basis of the column space (rank-revealing SVD) and the width."""
    u, s, _ = np.linalg.svd(safe_scale(x), full_matrices=False)
    return u[:, s > s[0] * max(x.shape) * np.finfo(float).eps], x.shape[1]


def overlap_combine(a: tuple[np.ndarray, int], b: tuple[np.ndarray, int]) -> float:
    """Eigenspace overlap of two :func:`basis_state` states."""
    return float(np.linalg.norm(a[0].T @ b[0]) ** 2 / max(a[1], b[1]))


def correlation_match(X: Any, Y: Any, kind: Literal["hard", "soft"] = "hard") -> float:
    """Unit correlation matching (Li et al. 2015; ReSi).

    ``hard``: mean correlation of the optimal one-to-one matching of units (signed).
    ``soft``: mean of each unit's best correlation, averaged over both directions.
    """
    if kind not in ("hard", "soft"):
        raise ShapeError(f"kind: expected 'hard' or 'soft', got {kind!r}")
    x, y = prepare_pair(X, Y)
    return match_combine(unit_state(x), unit_state(y), kind)


def unit_state(x: np.ndarray) -> np.ndarray:
    """Centred units scaled to unit norm: their products are Pearson correlations."""
    xc = center(safe_scale(x))
    return xc / np.linalg.norm(xc, axis=0)


def match_combine(a: np.ndarray, b: np.ndarray, kind: str) -> float:
    """Correlation match of two :func:`unit_state` states."""
    r = np.clip(a.T @ b, -1.0, 1.0)
    if kind == "soft":
        return float(0.5 * (r.max(axis=1).mean() + r.max(axis=0).mean()))
    rows, cols = _assign(r, False)
    return float(r[rows, cols].mean())


def distance_correlation(X: Any, Y: Any) -> float:
    """Distance correlation (Szekely et al. 2007): ``sqrt(dCov^2(X,Y) / sqrt(dVar^2 X dVar^2 Y))``
    with double-centred Euclidean distance matrices (V-statistic). In [0, 1]; invariant to
    orthogonal maps, translation and isotropic scaling."""
    x, y = prepare_pair(X, Y)
    return dcor_combine(dcor_state(x), dcor_state(y))


def dcor_state(x: np.ndarray) -> np.ndarray:
    """Double-centred distance matrix, packed (:func:`.kernels.packed`) to unit norm."""
    from scipy.spatial.distance import squareform

    from .kernels import packed

    d = squareform(pdist(safe_scale(x)))
    m = d.mean(axis=0)
    v = packed(d - m[None, :] - m[:, None] + m.mean())
    return v / np.linalg.norm(v)


def dcor_combine(a: np.ndarray, b: np.ndarray) -> float:
    """Distance correlation of two :func:`dcor_state` states."""
    return float(np.sqrt(max(float(a @ b), 0.0)))


def ensd(X: Any, Y: Any, distance: bool = False) -> float:
    """Effective number of shared dimensions (Giaffar et al. 2024).

    ``ENSD = PR_X PR_Y <K, L> / (tr K tr L)`` with centred linear Grams ``K = Xc Xc^T`` and
    participation ratios ``PR = (tr K)^2 / tr K^2``. ``distance=True``: their normalised
    angular distance ``(2 / pi) arccos(ENSD / sqrt(PR_X PR_Y))`` = ``(2/pi) arccos(linear CKA)``.
    Computed in feature space (no n x n matrix).
    """
    x, y = prepare_pair(X, Y)
    return ensd_combine(ensd_state(x), ensd_state(y), distance)


def ensd_state(x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Centred data, ``tr K`` and ``tr K^2`` of one network."""
    xc = center(safe_scale(x))
    return xc, float(np.sum(xc * xc)), float(np.linalg.norm(xc.T @ xc) ** 2)


def ensd_combine(a: tuple[Any, ...], b: tuple[Any, ...], distance: bool = False) -> float:
    """ENSD (or its angular distance) of two :func:`ensd_state` states."""
    (xc, tx, kx), (yc, ty, ky) = a, b
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
    return gulp_combine(gulp_state(x, lam), gulp_state(y, lam), squared)


def gulp_state(x: np.ndarray, lam: float) -> tuple[np.ndarray, float, np.ndarray]:
    """Normalised centred data, ``tr((S A)^2)`` and ``A = (S + lam)^-1`` of one network."""
    n = x.shape[0]
    xc = center(safe_scale(x))
    xc *= np.sqrt(n) / np.linalg.norm(xc)
    lam_a, v = np.linalg.eigh(xc.T @ xc / n)
    lam_a = np.maximum(lam_a, 0.0)
    if lam > 0:
        g = 1.0 / (lam_a + lam)
    else:
        g = np.where(lam_a > lam_a.max() * 1e-12, 1.0 / np.where(lam_a > 0, lam_a, 1), 0.0)
    return xc, float(np.sum((lam_a * g) ** 2)), (v * g) @ v.T


def gulp_combine(a: tuple[Any, ...], b: tuple[Any, ...], squared: bool = False) -> float:
    """GULP of two :func:`gulp_state` states."""
    (xc, tx, ax), (yc, ty, ay) = a, b
    sxy = xc.T @ yc / xc.shape[0]
    d2 = max(float(tx + ty - 2 * np.trace(ax @ sxy @ ay @ sxy.T)), 0.0)
    return d2 if squared else float(np.sqrt(d2))
