"""Mutual nearest-neighbour alignment (Huh et al. 2024, the Platonic Representation Hypothesis)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ..errors import ShapeError
from ._input import prepare_pair

__all__ = ["mutual_knn"]

_BLOCK = 1024


def knn_indices(x: np.ndarray, k: int, metric: Literal["cosine", "euclidean"]) -> np.ndarray:
    """(n, k) indices of each sample's k nearest other samples (self excluded), blockwise."""
    n = x.shape[0]
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        sq = np.zeros(n)
    else:
        sq = np.einsum("ij,ij->i", x, x)
    out = np.empty((n, k), dtype=np.intp)
    for a in range(0, n, _BLOCK):
        b = min(a + _BLOCK, n)
        # score = similarity (higher is nearer); for euclidean -|xi - xj|^2 up to a row constant
        score = x[a:b] @ x.T * (1.0 if metric == "cosine" else 2.0) - sq[None, :]
        score[np.arange(b - a), np.arange(a, b)] = -np.inf
        out[a:b] = np.argpartition(-score, k - 1, axis=1)[:, :k]
    return out


def mutual_knn(
    X: Any, Y: Any, k: int = 10, metric: Literal["cosine", "euclidean"] = "cosine"
) -> float:
    """Mean overlap of the k-nearest-neighbour sets of each sample in X and in Y.

    ``(1/n) sum_i |knn_X(i) ∩ knn_Y(i)| / k``, each sample excluded from its own neighbours.
    Default ``metric="cosine"``: cosine similarity of the raw (uncentered) activations, as in
    Huh et al. (2024); ``"euclidean"``: Euclidean distance. Ties at the k-th neighbour are
    broken arbitrarily (by ``numpy.argpartition``).

    Parameters
    ----------
    X, Y : array-like, shapes (n, d1), (n, d2)
        Activations on the same samples.
    k : int
        Neighbours per sample, ``1 <= k < n``.
    metric : {"cosine", "euclidean"}

    Returns
    -------
    float
        In [0, 1] (about k/(n-1) for unrelated inputs); symmetric; not a metric. Invariant to
        orthogonal maps and isotropic scaling (and translation for euclidean). Time
        O(n^2 (d1 + d2)), memory O(n * 1024).
    """
    x, y = prepare_pair(X, Y, min_samples=2)
    n = x.shape[0]
    if not 1 <= k < n:
        raise ShapeError(f"k: expected 1 <= k < n = {n} samples, got {k}")
    if metric not in ("cosine", "euclidean"):
        raise ShapeError(f"metric: expected 'cosine' or 'euclidean', got {metric!r}")
    if metric == "cosine":
        for arr, nm in ((x, "X"), (y, "Y")):
            bad = int((np.linalg.norm(arr, axis=1) == 0).sum())
            if bad:
                raise ShapeError(f"{nm}: {bad} all-zero samples have no cosine neighbours")
    nx, ny = knn_indices(x, k, metric), knn_indices(y, k, metric)
    hits = sum(np.isin(nx[i], ny[i], assume_unique=True).sum() for i in range(n))
    return float(hits / (n * k))
