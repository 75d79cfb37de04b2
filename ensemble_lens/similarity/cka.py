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
from scipy.spatial.distance import pdist, squareform

from ..errors import ShapeError
from ._input import center, prepare_pair

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
        Euclidean distance between distinct samples, separately for X and for Y
        (Kornblith et al. 2019 report fractions 0.2, 0.4, 0.8).
    debiased : bool
        Use the unbiased HSIC estimator (needs n >= 4).
    sigma_fraction : float
        Fraction of the median distance used when ``sigma`` is None.

    Returns
    -------
    float
        Invariant to orthogonal transforms and translation; to isotropic scaling only when
        ``sigma`` is None (median heuristic). Cost O(n^2 (d1 + d2)) time, O(n^2) memory.
    """
    x, y = prepare_pair(X, Y, min_samples=4 if debiased else 2)
    if sigma is not None and not sigma > 0:
        raise ShapeError(f"sigma: expected a positive kernel width, got {sigma}")
    return _rbf_cka(x, y, sigma, debiased, sigma_fraction)


def _rbf_gram(x: np.ndarray, sigma: float | None, fraction: float) -> np.ndarray:
    d2 = pdist(x, "sqeuclidean")
    if sigma is None:
        med = np.median(d2)
        if med <= 0:
            raise ShapeError("rbf_cka: median distance between samples is 0; set sigma")
        s2 = fraction**2 * med
    else:
        s2 = sigma**2
    k = squareform(np.exp(-d2 / (2 * s2)))
    np.fill_diagonal(k, 1.0)
    return k


def _rbf_cka(x, y, sigma, debiased, fraction) -> float:  # type: ignore[no-untyped-def]
    k, ell = _rbf_gram(x, sigma, fraction), _rbf_gram(y, sigma, fraction)
    hsic = hsic_unbiased if debiased else hsic_biased
    return _ratio(hsic(k, ell), hsic(k, k), hsic(ell, ell))


def hsic_biased(k: np.ndarray, ell: np.ndarray) -> float:
    """``tr(H K H L)`` (without the 1/(n-1)^2 factor, which cancels in CKA)."""
    kc = k - k.mean(axis=0) - k.mean(axis=1)[:, None] + k.mean()
    return float(np.sum(kc * ell))


def hsic_unbiased(k: np.ndarray, ell: np.ndarray) -> float:
    """Unbiased HSIC of Song et al. (2012), times n(n-3)."""
    n = k.shape[0]
    kt, lt = k.copy(), ell.copy()
    np.fill_diagonal(kt, 0.0)
    np.fill_diagonal(lt, 0.0)
    ks, ls = kt.sum(axis=0), lt.sum(axis=0)
    return float(
        np.sum(kt * lt) + ks.sum() * ls.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * ks @ ls
    )
