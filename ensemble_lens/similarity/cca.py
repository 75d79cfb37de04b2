"""Canonical correlation analysis and its summaries: mean CCA, SVCCA, PWCCA.

All functions center the inputs, drop constant units (DroppedUnitsWarning) and drop null
directions of rank-deficient inputs: a principal direction whose variance is at most
``RANK_RTOL = 1e-10`` times the largest is discarded (see ``_linalg``). Canonical correlations
are then the singular values of the whitened cross product ``U_x^T U_y`` (orthonormal bases of
the centered column spaces), so every function here is invariant to invertible linear maps of
either input (plain CCA) and to translation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import IllConditionedWarning, ShapeError
from ._input import center, prepare_pair, prepare_pair_masked
from ._linalg import Factor, factor_data, n_keep, singular_values, svd, whitened_cross_data
from ._meta import note_resolved
from ._states import google_pwcca_combine, google_state
from ._warn import warn

__all__ = ["CCAResult", "cca", "mean_cca", "pwcca", "svcca"]


@dataclass(frozen=True)
class CCAResult:
    """Canonical correlations and directions.

    Attributes
    ----------
    correlations : ndarray, shape (k,)
        Canonical correlations, sorted descending, in [0, 1].
    x_weights : ndarray, shape (d1, k)
        Directions in X's unit space: ``(X - mean) @ x_weights`` are the canonical variates,
        uncorrelated with unit variance (rows of dropped constant units are 0).
    y_weights : ndarray, shape (d2, k)
        The same for Y.
    """

    correlations: np.ndarray
    x_weights: np.ndarray
    y_weights: np.ndarray


def _check_k(n_components: int | None, kmax: int) -> int:
    if n_components is None:
        return kmax
    if not 1 <= n_components:
        raise ShapeError(f"n_components: expected a positive integer, got {n_components}")
    return min(n_components, kmax)


def _warn_if_d_ge_n(dx: int, dy: int, n: int, ridge: float) -> None:
    if ridge == 0 and dx + dy >= n:
        warn(
            f"CCA with {dx} + {dy} units on {n} samples: with d1 + d2 >= n some canonical "
            "correlations are 1 by construction; use ridge > 0 or svcca",
            IllConditionedWarning,
        )


def _ridge_scale(f: Factor, ridge: float) -> np.ndarray:
    """``sqrt(lam / (lam + lambda))`` with ``lambda = ridge * mean variance``."""
    if ridge == 0:
        return np.ones_like(f.lam)
    lam_r = ridge * f.lam.sum() / f.V.shape[0]
    return np.sqrt(f.lam / (f.lam + lam_r))


def cca_from_factors(fx: Factor, fy: Factor, kxy: np.ndarray, ridge: float, k: int):  # type: ignore[no-untyped-def]
    """Correlations and unit-space weights from factors and their whitened cross product."""
    gx, gy = _ridge_scale(fx, ridge), _ridge_scale(fy, ridge)
    P, rho, Qt = svd(gx[:, None] * kxy * gy[None, :])
    k = min(k, rho.size)
    # variate = Xc V lam^{-1/2} g P  has unit variance (ridge: regularised unit variance)
    wx = (fx.V / np.sqrt(fx.lam)) @ (gx[:, None] * P[:, :k])
    wy = (fy.V / np.sqrt(fy.lam)) @ (gy[:, None] * Qt[:k].T)
    return np.clip(rho[:k], 0.0, 1.0), wx, wy


def cca(X: Any, Y: Any, n_components: int | None = None, ridge: float = 0.0) -> CCAResult:
    """Canonical correlation analysis of two representations of the same samples.

    Parameters
    ----------
    X, Y : array-like, shapes (n, d1), (n, d2)
        Activations, dims ("sample", "unit").
    n_components : int, optional
        Number of canonical pairs (default: ``min(rank X, rank Y)``).
    ridge : float
        Relative regularisation: ``ridge * tr(C)/d`` is added to each covariance before
        whitening (keeps scale invariance). With 0 and ``d1 + d2 >= n`` an
        IllConditionedWarning is issued: correlations of 1 arise by construction.

    Returns
    -------
    CCAResult
        Correlations sorted descending; weights as described there. The correlations are
        invariant to invertible linear maps and translation of either input and symmetric in
        X, Y; they are biased upwards for finite n (exactly 1 when ``d1 + d2 >= n``).
    """
    (x, mx), (y, my) = prepare_pair_masked(X, Y)
    _warn_if_d_ge_n(x.shape[1], y.shape[1], x.shape[0], ridge)
    if ridge < 0:
        raise ShapeError(f"ridge: expected a non-negative value, got {ridge}")
    fx, fy = factor_data(center(x)), factor_data(center(y))
    k = _check_k(n_components, min(fx.lam.size, fy.lam.size))
    rho, wx, wy = cca_from_factors(fx, fy, whitened_cross_data(fx, fy), ridge, k)
    full_x, full_y = np.zeros((mx.size, k)), np.zeros((my.size, k))
    full_x[mx], full_y[my] = wx, wy
    return CCAResult(correlations=rho, x_weights=full_x, y_weights=full_y)


def mean_cca_from_cross(
    fx: Factor, fy: Factor, kxy: np.ndarray, ridge: float, k: int | None
) -> float:
    """Mean of the top-k canonical correlations given factors and whitened cross product."""
    gx, gy = _ridge_scale(fx, ridge), _ridge_scale(fy, ridge)
    rho = np.clip(singular_values(gx[:, None] * kxy * gy[None, :]), 0.0, 1.0)
    return float(rho[: _check_k(k, rho.size)].mean())


def mean_cca(X: Any, Y: Any, n_components: int | None = None, ridge: float = 0.0) -> float:
    """Mean canonical correlation (over the top ``n_components``; default all).

    Invariant to invertible linear maps and translation of either input; in [0, 1]; symmetric;
    ``1 - mean_cca`` is not a metric (use ``shape_distance(alpha=0)``). See :func:`cca`.
    """
    x, y = prepare_pair(X, Y)
    if ridge < 0:
        raise ShapeError(f"ridge: expected a non-negative value, got {ridge}")
    _warn_if_d_ge_n(x.shape[1], y.shape[1], x.shape[0], ridge)
    fx, fy = factor_data(center(x)), factor_data(center(y))
    return mean_cca_from_cross(fx, fy, whitened_cross_data(fx, fy), ridge, n_components)


def svcca_from_cross(fx: Factor, fy: Factor, kxy: np.ndarray, keep: float, nc: int | None) -> float:
    """SVCCA from factors (principal directions sorted by variance) and ``U_x^T U_y``."""
    kx, ky = n_keep(fx.lam, keep, nc), n_keep(fy.lam, keep, nc)
    note_resolved({"components": kx})
    note_resolved({"components": ky})
    return float(np.clip(singular_values(kxy[:kx, :ky]), 0.0, 1.0).mean())


def svcca(X: Any, Y: Any, keep_variance: float = 0.99, n_components: int | None = None) -> float:
    """SVCCA (Raghu et al. 2017): CCA between the top principal components of each input.

    Each input keeps its smallest number of leading principal components whose eigenvalues
    (variances = squared singular values of the centered data) reach ``keep_variance`` of the
    total, or exactly ``n_components`` when given; the result is the mean of the
    ``min(kx, ky)`` canonical correlations. Invariant to orthogonal maps, isotropic scaling and
    translation (not to general invertible maps, which change the PCs); symmetric; in [0, 1];
    not a metric. Biased upwards when ``kx + ky`` approaches n, like any CCA.
    """
    if not 0 < keep_variance <= 1:
        raise ShapeError(f"keep_variance: expected a fraction in (0, 1], got {keep_variance}")
    x, y = prepare_pair(X, Y)
    fx, fy = factor_data(center(x)), factor_data(center(y))
    return svcca_from_cross(fx, fy, whitened_cross_data(fx, fy), keep_variance, n_components)


def pwcca_from_cross(fx: Factor, fy: Factor, kxy: np.ndarray) -> float:
    """Projection-weighted CCA with X's units as the weighting side."""
    P, rho, _ = svd(kxy)
    m = rho.size
    # <h_i, x_j> for unit-variance variates h_i = Xc V lam^{-1/2} P_i is (n-1) (V lam^{1/2} P_i)_j
    proj = (fx.V * np.sqrt(fx.lam)) @ P[:, :m]
    alpha = np.abs(proj).sum(axis=0)
    return float(alpha @ np.clip(rho, 0.0, 1.0) / alpha.sum())


def pwcca(X: Any, Y: Any, symmetric: bool = False, variant: str = "paper") -> float:
    """Projection-weighted CCA (Morcos et al. 2018) on centered activations.

    With canonical correlations ``rho_i`` and X's unit-variance canonical variates
    ``h_i = Xc w_i`` (i = 1..min(rank X, rank Y)), the weight of pair i is
    ``alpha_i = sum_j |<h_i, x_j>|`` over X's centered units ``x_j`` (how much of X the
    variate accounts for), normalised to sum 1; PWCCA = ``sum_i alpha_i rho_i``.
    Unlike google/svcca, means are not added back to the variates and the canonical
    variates are not re-orthogonalised by QR (they are already orthogonal).

    Parameters
    ----------
    X, Y : array-like, shapes (n, d1), (n, d2)
        Any widths (d1 > d2, d1 < d2, rank-deficient).
    symmetric : bool
        Average the X-weighted and Y-weighted values (then symmetric in X, Y).
    variant : {"paper", "google"}
        ``"google"`` reproduces google/svcca's ``compute_pwcca`` (the registry's
        ``pwcca-score`` values): covariances scaled by their largest entry, canonical
        directions of the whitened problem applied to the unwhitened centred activations with
        each unit's mean added back, re-orthogonalised by QR, weights from the uncentred
        activations; the side with fewer units is the weighting side (google/svcca indexes X
        there when Y is narrower, a bug; here Y's own activations are used).

    Returns
    -------
    float
        In [0, 1]. Not symmetric unless ``symmetric=True``; invariant to orthogonal maps,
        isotropic scaling and translation; not a metric.
    """
    if variant not in ("paper", "google"):
        raise ShapeError(f"variant: expected 'paper' or 'google', got {variant!r}")
    x, y = prepare_pair(X, Y)
    _warn_if_d_ge_n(x.shape[1], y.shape[1], x.shape[0], 0.0)
    if variant == "google":
        if max(x.shape[1], y.shape[1]) >= x.shape[0]:
            raise ShapeError(
                f"pwcca variant='google' (google/svcca's code) needs fewer units than samples, "
                f"got {x.shape[1]} and {y.shape[1]} units on {x.shape[0]} samples; "
                "use variant='paper'"
            )
        return _pwcca_google(x, y)
    fx, fy = factor_data(center(x)), factor_data(center(y))
    kxy = whitened_cross_data(fx, fy)
    value = pwcca_from_cross(fx, fy, kxy)
    if symmetric:
        value = 0.5 * (value + pwcca_from_cross(fy, fx, kxy.T))
    return value


def _pwcca_google(x: np.ndarray, y: np.ndarray) -> float:
    """google/svcca's projection weighting (see :func:`pwcca`), written from its description."""
    return google_pwcca_combine(google_state(x), google_state(y))
