"""Shared factorisations: every linear measure reduces to a whitened cross product.

A centered representation ``Xc`` (n, d) is factored once, either from the data
(``Xc = U diag(s) V^T``, thin SVD) or from its covariance (``C = V diag(lam) V^T``,
``lam = s^2 / (n - 1)``). Directions whose variance is below ``RANK_RTOL`` times the largest
are dropped (rank deficiency, duplicated units). The whitened cross product of two networks,
``K = U_x^T U_y = lam_x^{-1/2} V_x^T C_xy V_y lam_y^{-1/2}``, then gives CCA, SVCCA, PWCCA and
shape metrics; both routes give the same numbers up to round-off.

numpy.linalg is used (LAPACK ``gesdd``/``syevd``) because it releases the GIL, so many small
factorisations can run side by side in threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Relative variance tolerance: eigen-directions with variance <= RANK_RTOL * max are null.
RANK_RTOL = 1e-10


@dataclass(frozen=True)
class Factor:
    """One network's principal factorisation (directions sorted by variance, descending).

    lam : (k,) variances; V : (d, k) unit-space directions; U : (n, k) orthonormal scores or None.
    """

    lam: np.ndarray
    V: np.ndarray
    U: np.ndarray | None = None


def factor_data(xc: np.ndarray) -> Factor:
    """Thin SVD of centered data, null directions dropped."""
    U, s, Vt = np.linalg.svd(xc, full_matrices=False)
    lam = s**2 / (xc.shape[0] - 1)
    keep = lam > RANK_RTOL * lam[0]
    return Factor(lam=lam[keep], V=Vt[keep].T, U=U[:, keep])


def factor_cov(c: np.ndarray) -> Factor:
    """Eigendecomposition of a covariance block, null directions dropped, descending."""
    lam, V = np.linalg.eigh(c)
    lam, V = lam[::-1], V[:, ::-1]
    keep = lam > RANK_RTOL * max(lam[0], 0.0)
    return Factor(lam=lam[keep], V=np.ascontiguousarray(V[:, keep]))


def whitened_cross_data(fx: Factor, fy: Factor) -> np.ndarray:
    """``U_x^T U_y`` (k_x, k_y) from data factors."""
    return fx.U.T @ fy.U  # type: ignore[union-attr]


def whitened_cross_cov(fx: Factor, fy: Factor, cxy: np.ndarray) -> np.ndarray:
    """``lam_x^{-1/2} V_x^T C_xy V_y lam_y^{-1/2}`` (k_x, k_y) from covariance factors."""
    wx = fx.V / np.sqrt(fx.lam)
    wy = fy.V / np.sqrt(fy.lam)
    return wx.T @ cxy @ wy


def singular_values(m: np.ndarray) -> np.ndarray:
    """Singular values, descending (divide-and-conquer driver)."""
    if m.size == 0:
        return np.zeros(0)
    return np.linalg.svd(m, compute_uv=False)


def svd(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD ``m = P diag(s) Q^T`` returned as ``(P, s, Q^T)``."""
    return np.linalg.svd(m, full_matrices=False)


def n_keep(lam: np.ndarray, keep_variance: float, n_components: int | None) -> int:
    """Number of leading principal directions kept by SVCCA."""
    if n_components is not None:
        return max(1, min(n_components, lam.size))
    frac = np.cumsum(lam) / lam.sum()
    return min(int(np.searchsorted(frac, keep_variance * (1 - 1e-12))) + 1, lam.size)
