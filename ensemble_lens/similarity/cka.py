"""Centered kernel alignment (Kornblith et al. 2019), biased and debiased.

``CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` on sample-by-sample Gram matrices.
The biased estimator uses ``HSIC = tr(H K H L)``; it is strongly biased upwards when the
number of units is large compared with the number of samples (independent 512-unit inputs at
n = 20 give CKA near 1). The debiased estimator replaces HSIC by the unbiased U-statistic of
Song et al. (2012), as in Nguyen et al. (2021) and Kornblith's ``hsic_unbiased`` (needs n >= 4).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ShapeError
from ._input import center, prepare_pair
from .kernels import kernel_cka

__all__ = ["linear_cka", "rbf_cka"]


def linear_cka(X: Any, Y: Any, debiased: bool = False) -> float:
    """Linear CKA between two representations of the same samples.

    Parameters
    ----------
    X : array-like, shape (n, d1)
        Activations, dims ("sample", "unit"); numpy, torch, xarray or dask.
    Y : array-like, shape (n, d2)
        Activations on the same samples; widths may differ.
    debiased : bool
        Use the unbiased HSIC estimator (Song et al. 2012); needs n >= 4 and may be negative.

    Returns
    -------
    float
        In [0, 1] when biased. Invariant to orthogonal transforms and isotropic scaling of
        either input and to adding constants; not a metric (``1 - CKA`` fails the triangle
        inequality).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(50, 4))
    >>> round(linear_cka(X, 2 * X), 12)
    1.0
    """
    x, y = prepare_pair(X, Y, min_samples=4 if debiased else 2)
    return _linear_cka(center(x), center(y), debiased)


def _linear_cka(xc: np.ndarray, yc: np.ndarray, debiased: bool) -> float:
    """Feature-space linear CKA on centered inputs (no n x n Gram matrix)."""
    xy = float(np.linalg.norm(xc.T @ yc) ** 2)
    xx = float(np.linalg.norm(xc.T @ xc) ** 2)
    yy = float(np.linalg.norm(yc.T @ yc) ** 2)
    if debiased:
        n = xc.shape[0]
        rx, ry = np.einsum("ij,ij->i", xc, xc), np.einsum("ij,ij->i", yc, yc)
        xy = _debias(xy, rx, ry, n)
        xx, yy = _debias(xx, rx, rx, n), _debias(yy, ry, ry, n)
    return _ratio(xy, xx, yy)


def _debias(xty: float, rx: np.ndarray, ry: np.ndarray, n: int) -> float:
    """Unbiased HSIC (times n(n-3)) for linear kernels of centered features."""
    return float(xty - n / (n - 2.0) * rx @ ry + rx.sum() * ry.sum() / ((n - 1) * (n - 2)))


def _ratio(xy: float, xx: float, yy: float) -> float:
    if xx <= 0 or yy <= 0:
        raise ShapeError(
            "debiased CKA: the unbiased HSIC of an input with itself is not positive "
            f"({xx:.3g}, {yy:.3g}); use more samples or debiased=False"
        )
    return float(xy / np.sqrt(xx * yy))


def rbf_cka(
    X: Any,
    Y: Any,
    sigma: float | None = None,
    debiased: bool = False,
    *,
    sigma_fraction: float = 0.8,
) -> float:
    """CKA with Gaussian (RBF) kernels ``exp(-|x_i - x_j|^2 / (2 sigma^2))``.

    Parameters
    ----------
    X, Y : array-like, shapes (n, d1), (n, d2)
        Activations on the same samples, dims ("sample", "unit").
    sigma : float, optional
        Kernel width used for both inputs. Default: ``sigma_fraction`` times the median
        Euclidean distance between distinct samples (the square root of the median squared
        distance), separately for X and for Y (Kornblith et al. 2019 report fractions 0.2,
        0.4, 0.8; their code also counts the n zero self-distances, which lowers the median
        slightly; see docs/guides/similarity.md, "RBF kernels").
    debiased : bool
        Use the unbiased HSIC estimator (needs n >= 4).
    sigma_fraction : float
        Fraction of the median distance used when ``sigma`` is None.

    Returns
    -------
    float
        Invariant to orthogonal transforms and translation; to isotropic scaling only when
        ``sigma`` is None (median heuristic). Cost O(n^2 (d1 + d2)) time, O(n^2) memory.

    Notes
    -----
    The same as ``kernel_cka(X, Y, "rbf", "song" if debiased else "gretton", sigma,
    frac=sigma_fraction)`` (it calls it): the median heuristic there is the same
    ``frac * sqrt(median |x_i - x_j|^2)``; only the default fraction differs (0.8 here, the
    value Kornblith et al. report, against 1.0 for ``kernel_cka``).
    """
    hsic = "song" if debiased else "gretton"
    return kernel_cka(X, Y, kernel="rbf", hsic=hsic, sigma=sigma, frac=sigma_fraction)
