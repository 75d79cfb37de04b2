"""Procrustes similarity and the angular shape metrics of Williams et al. (2021).

Both are computed without zero-padding when widths differ: the nuclear norm of the cross
product ``Xc^T Yc`` (d1 x d2) equals the best orthogonal alignment score after padding the
narrower input with zero units, and the Frobenius norms are unchanged by padding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ShapeError
from ._input import center, prepare_pair
from ._linalg import Factor, factor_data, singular_values, whitened_cross_data

__all__ = ["procrustes_similarity", "shape_distance"]


def procrustes_similarity(X: Any, Y: Any) -> float:
    """Normalised Procrustes similarity ``||Xc^T Yc||_* / (||Xc||_F ||Yc||_F)``.

    Parameters
    ----------
    X, Y : array-like, shapes (n, d1), (n, d2)
        Activations on the same samples, dims ("sample", "unit").

    Returns
    -------
    float
        In [0, 1]: the cosine of the angle between the centered representations after the best
        orthogonal alignment (1 for a rotated, scaled, shifted copy). Symmetric; invariant to
        orthogonal maps, isotropic scaling and translation. ``arccos`` of it is a metric
        (:func:`shape_distance` with ``alpha=1``).
    """
    x, y = prepare_pair(X, Y)
    xc, yc = center(x), center(y)
    return procrustes_from_cov(xc.T @ yc, np.sum(xc * xc), np.sum(yc * yc))


def procrustes_from_cov(cxy: np.ndarray, trx: float, try_: float) -> float:
    """From a cross product and the two traces (any common scale)."""
    return float(min(singular_values(cxy).sum() / np.sqrt(trx * try_), 1.0))


def shape_gains(f: Factor, alpha: float, raw_n: int | None = None) -> np.ndarray:
    """Per principal direction, ``sqrt(lam) * (alpha + (1 - alpha) (lam / m)^{-1/2})``.

    ``m = tr(C) / d`` is the mean unit variance, so partial whitening is scale-free. With
    ``raw_n`` (netrep's convention) ``alpha sqrt(L) + (1 - alpha)`` with ``L`` the eigenvalues
    of the unnormalised ``Xc^T Xc = (n - 1) C``.
    """
    if raw_n is not None:
        return alpha * np.sqrt(f.lam * (raw_n - 1)) + (1.0 - alpha)
    m = f.lam.sum() / f.V.shape[0]
    return alpha * np.sqrt(f.lam) + (1.0 - alpha) * np.sqrt(m)


def shape_from_cross(
    fx: Factor, fy: Factor, kxy: np.ndarray, alpha: float, raw_n: int | None = None
) -> float:
    """Angular shape distance from factors and the whitened cross product ``U_x^T U_y``."""
    gx, gy = shape_gains(fx, alpha, raw_n), shape_gains(fy, alpha, raw_n)
    nuc = singular_values(gx[:, None] * kxy * gy[None, :]).sum()
    cos = nuc / (np.linalg.norm(gx) * np.linalg.norm(gy))
    return float(np.arccos(np.clip(cos, -1.0, 1.0)))


def shape_distance(X: Any, Y: Any, alpha: float = 1.0, scale: str = "mean") -> float:
    """Angular shape metric of Williams et al. (2021) with partial whitening.

    Each centered input is transformed by ``Phi = alpha I + (1 - alpha) (C / m)^{-1/2}`` with
    its own covariance ``C = Xc^T Xc / (n - 1)`` normalised by its mean unit variance
    ``m = tr(C) / d`` (pseudo-inverse square root; null directions with variance <= 1e-10 of the
    largest are dropped), and the distance is
    ``arccos(||Xphi^T Yphi||_* / (||Xphi||_F ||Yphi||_F))``, clipped to [-1, 1] first.

    Parameters
    ----------
    X, Y : array-like, shapes (n, d1), (n, d2)
        Activations on the same samples; widths may differ (no padding).
    alpha : float in [0, 1]
        1: Procrustes angle ``arccos(procrustes_similarity)``. 0: CCA angle
        ``arccos(sum_i rho_i / sqrt(k_x k_y))`` = ``arccos(mean CCA)`` for equal ranks.
    scale : {"mean", "raw"}
        ``"mean"`` (default): covariance normalised by its mean unit variance, so every alpha
        is invariant to isotropic scaling. ``"raw"``: netrep's convention,
        ``Phi = alpha I + (1 - alpha) (Xc^T Xc)^{-1/2}`` on the unnormalised scatter matrix;
        values for 0 < alpha < 1 then depend on the scale of the data and on n.

    Returns
    -------
    float
        In [0, pi/2]. A metric (symmetric, triangle inequality) on representations modulo
        orthogonal maps, isotropic scaling and translation (for alpha = 0, modulo invertible
        linear maps); 0 for a rotated copy. The normalisation by ``m`` (not in netrep, which
        uses the raw ``X^T X``) makes every alpha invariant to isotropic scaling.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ShapeError(f"alpha: expected a value in [0, 1], got {alpha}")
    if scale not in ("mean", "raw"):
        raise ShapeError(f"scale: expected 'mean' or 'raw', got {scale!r}")
    raw = scale == "raw" and 0.0 < alpha < 1.0
    x, y = prepare_pair(X, Y, rescale=not raw)
    if x.shape == y.shape and np.array_equal(x, y):
        return 0.0  # exact: arccos near 1 would give round-off of order 1e-8
    fx, fy = factor_data(center(x)), factor_data(center(y))
    kxy = whitened_cross_data(fx, fy)
    return shape_from_cross(fx, fy, kxy, alpha, x.shape[0] if raw else None)
