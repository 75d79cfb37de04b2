"""Representational similarity analysis (Kriegeskorte et al. 2008)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy.spatial.distance import pdist

from ..errors import ShapeError
from ._input import prepare_pair

__all__ = ["kendall_tau_a", "rdm", "rsa"]

RDMKind = Literal["correlation", "euclidean", "cosine"]
Compare = Literal["spearman", "pearson", "kendall_tau_a", "cosine"]


def rdm(x: np.ndarray, kind: RDMKind, name: str = "X") -> np.ndarray:
    """Condensed upper triangle (length n(n-1)/2) of a representational dissimilarity matrix.

    ``correlation``: 1 - Pearson correlation between samples across units; ``cosine``:
    1 - cosine similarity; ``euclidean``: Euclidean distance.
    """
    if kind not in ("correlation", "euclidean", "cosine"):
        raise ShapeError(f"rdm: expected 'correlation', 'euclidean' or 'cosine', got {kind!r}")
    if kind != "euclidean":
        rows = x - x.mean(axis=1, keepdims=True) if kind == "correlation" else x
        bad = int((np.linalg.norm(rows, axis=1) == 0).sum())
        if bad:
            what = "constant across units" if kind == "correlation" else "all zero"
            raise ShapeError(f"{name}: {bad} samples are {what}; the {kind} RDM is undefined")
    return pdist(x, kind)


_rdm_kind = rdm  # ``rsa`` has a parameter named ``rdm`` that shadows the function


def kendall_tau_a(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-a ``(concordant - discordant) / (N (N - 1) / 2)``, O(N log N).

    Ties count as neither concordant nor discordant and stay in the denominator (unlike tau-b,
    which scipy implements). Computed from scipy's O(N log N) tau-b by undoing its tie
    correction: ``tau_a = tau_b sqrt((N0 - T_a)(N0 - T_b)) / N0``.
    """
    n0 = a.size * (a.size - 1) / 2
    ta, tb = _tied_pairs(a), _tied_pairs(b)
    if ta == n0 or tb == n0:
        return 0.0
    from scipy import stats  # lazy: scipy.stats is slow to import

    tau_b = stats.kendalltau(a, b, variant="b").statistic
    return float(tau_b * np.sqrt((n0 - ta) * (n0 - tb)) / n0)


def _tied_pairs(v: np.ndarray) -> float:
    _, counts = np.unique(v, return_counts=True)
    return float((counts * (counts - 1) / 2).sum())


def _compare(a: np.ndarray, b: np.ndarray, how: Compare) -> float:
    if how == "kendall_tau_a":
        return kendall_tau_a(a, b)
    if how == "cosine":
        return float(a @ b / np.sqrt((a @ a) * (b @ b)))
    if how == "spearman":
        from scipy.stats import rankdata

        a, b = rankdata(a), rankdata(b)
    elif how != "pearson":
        raise ShapeError(
            f"compare: expected 'spearman', 'pearson', 'kendall_tau_a' or 'cosine', got {how!r}"
        )
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def rsa(X: Any, Y: Any, rdm: RDMKind = "correlation", compare: Compare = "spearman") -> float:
    """Compare the RDMs of two representations on their condensed upper triangles.

    Parameters
    ----------
    X, Y : array-like, shapes (n, d1), (n, d2)
        Activations on the same samples.
    rdm : {"correlation", "euclidean", "cosine"}
        Dissimilarity between samples.
    compare : {"spearman", "pearson", "kendall_tau_a", "cosine"}
        How the two vectors of n(n-1)/2 dissimilarities are compared.

    Returns
    -------
    float
        In [-1, 1]; symmetric; not a metric. Invariant to orthogonal maps and isotropic
        scaling of either input (all RDMs), and to translation for ``euclidean``. Memory and
        time O(n^2 (d1 + d2)) (plus a sort of n^2/2 values for rank comparisons).

    Raises
    ------
    ShapeError
        When an RDM is constant (correlation undefined) or a sample row is degenerate.
    """
    x, y = prepare_pair(X, Y, min_samples=3)
    rx, ry = _rdm_kind(x, rdm, "X"), _rdm_kind(y, rdm, "Y")
    for r, nm in ((rx, "X"), (ry, "Y")):
        if compare != "cosine" and np.ptp(r) == 0:
            raise ShapeError(f"{nm}: all dissimilarities are equal; the {compare} RSA is undefined")
    return _compare(rx, ry, compare)
