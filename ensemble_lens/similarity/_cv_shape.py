"""NeuroAIMetrics' cross-validated shape metric (the registry's
``shape_metric-alpha=a-distance=angular-cv=5folds``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ShapeError
from ._input import prepare_pair

__all__ = ["cv_shape_metric"]

_EIG_TOL = 1e-7


def _whitener(xc: np.ndarray, alpha: float) -> np.ndarray:
    """Partial whitening ``Z`` of centred data with the variance preserved (as netrep)."""
    if alpha > 1 - _EIG_TOL:
        return np.eye(xc.shape[1])
    lam, V = np.linalg.eigh(xc.T @ xc)
    lam = np.maximum(lam, _EIG_TOL)
    d = alpha + (1 - alpha) * lam ** (-0.5)
    new_var = np.sum(alpha**2 * lam + 2 * alpha * (1 - alpha) * lam**0.5 + (1 - alpha) ** 2)
    d *= np.sqrt(np.sum(lam) / new_var)
    return (V * d[None, :]) @ V.T


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    corr = float(np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.arccos(np.clip(corr, -1.0, 1.0)))


def _pca(x: np.ndarray, k: int) -> np.ndarray:
    xc = x - x.mean(axis=0)
    U, s, _ = np.linalg.svd(xc, full_matrices=False)
    return U[:, :k] * s[:k]


def cv_shape_metric(X: Any, Y: Any, alpha: float = 1.0, cv: int = 5) -> float:
    """Held-out angular shape distance, the mean over folds (NeuroAIMetrics'
    ``linearshapemetric``): the wider input is reduced by PCA to ``k = min(d1, d2, n)``
    components; scikit-learn's ``KFold(cv, shuffle=True, random_state=42)``; on each fold the
    alignment (centring, partial whitening with ``alpha``, orthogonal Procrustes) is fit on the
    training rows and the angle between the aligned test rows is the fold's distance.
    Symmetric; invariant to orthogonal maps, isotropic scaling and translation.
    """
    from sklearn.model_selection import KFold

    if not 0.0 <= alpha <= 1.0:
        raise ShapeError(f"alpha: expected a value in [0, 1], got {alpha}")
    x, y = prepare_pair(X, Y, min_samples=2 * cv)
    k = min(x.shape[1], y.shape[1], x.shape[0])
    x = _pca(x, k) if x.shape[1] != k else x
    y = _pca(y, k) if y.shape[1] != k else y
    out = []
    for tr, te in KFold(n_splits=cv, shuffle=True, random_state=42).split(x):
        mx, my = x[tr].mean(axis=0), y[tr].mean(axis=0)
        zx, zy = _whitener(x[tr] - mx, alpha), _whitener(y[tr] - my, alpha)
        U, _, Vt = np.linalg.svd(((x[tr] - mx) @ zx).T @ ((y[tr] - my) @ zy))
        out.append(_angle((x[te] - mx) @ zx @ U, (y[te] - my) @ zy @ Vt.T))
    return float(np.mean(out))
