"""Per-member scores of aligned components: agreement with the others, and variance carried."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["member_agreement", "variance_carried"]


def _column_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of matching columns of ``a`` and ``b`` (n, c); 0 for constant ones."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    den = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    num = (a * b).sum(axis=0)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def member_agreement(scores: Sequence[np.ndarray]) -> np.ndarray:
    """Leave-one-network-out agreement of every member on every component.

    ``agreement[k, j] = corr(s_kj, mean_{l != k} s_lj)``: how well member ``k``'s projection
    on component ``j`` is predicted by the other members' average projection.

    Parameters
    ----------
    scores : sequence of ndarray, each (n, c)
        Member scores of ``K >= 2`` networks on the same samples.

    Returns
    -------
    ndarray (K, c)
    """
    S = np.stack(scores)  # (K, n, c)
    K = S.shape[0]
    total = S.sum(axis=0)
    return np.stack([_column_corr(S[k], (total - S[k]) / (K - 1)) for k in range(K)])


def variance_carried(arrays: Sequence[np.ndarray], maps: Sequence[np.ndarray]) -> np.ndarray:
    """Fraction of each member's total variance that each component carries.

    For member ``k`` with centred activations ``Xc`` (n, d_k) and component score
    ``s = Xc w`` the carried fraction is the R² of reconstructing all units from ``s``:
    ``||Xc^T s||² / (||s||² ||Xc||_F²)``, in ``[0, 1]`` (1 when all variance lies along ``s``).

    Parameters
    ----------
    arrays : sequence of ndarray, each (n, d_k)
    maps : sequence of ndarray, each (d_k, c)

    Returns
    -------
    ndarray (K, c)
    """
    out = []
    for X, W in zip(arrays, maps, strict=True):
        Xc = X - X.mean(axis=0)
        S = Xc @ W
        num = np.sum((Xc.T @ S) ** 2, axis=0)
        den = np.sum(S * S, axis=0) * np.sum(Xc * Xc)
        out.append(np.divide(num, den, out=np.zeros_like(num), where=den > 0))
    return np.stack(out)
