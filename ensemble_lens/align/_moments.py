"""Fit-time second moments of several networks side by side.

Everything in :mod:`ensemble_lens.align` depends on the fit data only through the centred
covariance of all networks stacked side by side (``Xc^T Xc / (n - 1)``), computed once by
:func:`ensemble_lens.similarity.moments.compute_moments`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..similarity._device import Device
from ..similarity.moments import Moments, compute_moments

__all__ = ["correlation_from_cov", "fit_moments"]


def fit_moments(arrays: Sequence[np.ndarray], device: Device = "cpu") -> Moments:
    """Shared moments (mean, covariance and per-network blocks) of validated networks.

    Parameters
    ----------
    arrays : sequence of ndarray, each (n, d_k)
    device : {"cpu", "cuda", "auto", "torch-cpu"}
        Where the moments pass runs (float64; see
        :func:`ensemble_lens.similarity.compute_moments`).

    Returns
    -------
    ensemble_lens.similarity.moments.Moments
    """
    return compute_moments(list(arrays), device=device)


def correlation_from_cov(cov: np.ndarray, tol: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation matrix from a covariance; constant units correlate 0 with everything.

    Parameters
    ----------
    cov : ndarray (D, D)

    Returns
    -------
    corr : ndarray (D, D)
    dead : ndarray (D,) bool
        Units whose variance is below ``tol`` times the largest variance.
    """
    var = np.diag(cov).copy()
    dead = var <= tol * max(float(var.max()), np.finfo(float).tiny)
    scale = np.where(dead, 0.0, 1.0 / np.sqrt(np.where(dead, 1.0, var)))
    corr = cov * scale[:, None] * scale[None, :]
    return np.clip(corr, -1.0, 1.0), dead
