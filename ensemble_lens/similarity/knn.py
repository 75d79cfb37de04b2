"""Nearest-neighbour measures: which samples each representation puts next to each other.

Every measure here compares, sample by sample, the k nearest other samples in X and in Y
(``knn_X(i)``, sorted nearest first; the sample itself excluded; ties at the k-th neighbour
broken by index order of a stable sort). Neighbours by ``metric``: ``cosine`` similarity of
the raw activations (default), ``euclidean`` distance, or the raw inner product ``dot``.

- ``mutual_knn`` (Huh et al. 2024): ``mean_i |knn_X(i) & knn_Y(i)| / k``.
- ``jaccard_knn`` (ReSi, Klabunde et al. 2024): ``mean_i |A & B| / |A | B|``.
- ``rank_knn`` (rank similarity, Wang et al. 2020 as in ReSi): per sample, over the shared
  neighbours j with 1-based ranks r_X, r_Y: ``sum 2 / ((1 + |r_X - r_Y|)(r_X + r_Y))``
  divided by ``sum_{m=1}^{|A & B|} 1/m``; 0 without shared neighbours.
- ``cycle_knn`` (Huh et al. 2024): share of samples i that are among the X-neighbours of one
  of their Y-neighbours.
- ``lcs_knn`` and ``edit_distance_knn`` (Huh et al. 2024, the paper's code): per sample, the
  length of the longest common subsequence of the two sorted neighbour lists, and one minus
  their Levenshtein distance (insertions, deletions, substitutions of cost 1) divided by k.
- ``second_order_cosine`` (Hamilton et al. 2016): per sample, the cosine between its cosine
  similarities to the union of its neighbours in X and in Y (``on="distance"`` uses cosine
  distances instead, as ReSi does).

All are in [0, 1] (``lcs_knn`` in [0, k], as in the authors' code), invariant to orthogonal
maps and isotropic scaling (and translation for euclidean neighbours); ``cycle_knn`` is not
symmetric.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ..errors import ShapeError
from ._input import prepare_pair, safe_scale

__all__ = [
    "cknna",
    "cycle_knn",
    "edit_distance_knn",
    "jaccard_knn",
    "lcs_knn",
    "mutual_knn",
    "rank_knn",
    "second_order_cosine",
]

_BLOCK = 1024
Metric = Literal["cosine", "euclidean", "dot"]


def _scores(x: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray, float]:
    if metric == "cosine":
        return x / np.linalg.norm(x, axis=1, keepdims=True), np.zeros(x.shape[0]), 1.0
    if metric == "euclidean":
        return x, np.einsum("ij,ij->i", x, x), 2.0
    return x, np.zeros(x.shape[0]), 1.0


def knn_indices(x: np.ndarray, k: int, metric: str = "cosine") -> np.ndarray:
    """(n, k) indices of each sample's k nearest other samples, nearest first, blockwise."""
    n = x.shape[0]
    z, sq, f = _scores(x, metric)
    out = np.empty((n, k), dtype=np.intp)
    for a in range(0, n, _BLOCK):
        b = min(a + _BLOCK, n)
        # score = similarity (higher is nearer); for euclidean -|xi - xj|^2 up to a row constant
        score = z[a:b] @ z.T * f - sq[None, :]
        score[np.arange(b - a), np.arange(a, b)] = -np.inf
        part = np.argpartition(-score, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(score, part, axis=1), axis=1, kind="stable")
        out[a:b] = np.take_along_axis(part, order, axis=1)
    return out


def check_knn(x: np.ndarray, k: int, metric: str, name: str) -> None:
    """Raise for a bad k or metric, or zero rows under cosine."""
    n = x.shape[0]
    if not 1 <= k < n:
        raise ShapeError(f"k: expected 1 <= k < n = {n} samples, got {k}")
    if metric not in ("cosine", "euclidean", "dot"):
        raise ShapeError(f"metric: expected 'cosine', 'euclidean' or 'dot', got {metric!r}")
    if metric == "cosine":
        bad = int((np.linalg.norm(x, axis=1) == 0).sum())
        if bad:
            raise ShapeError(f"{name}: {bad} all-zero samples have no cosine neighbours")


def _shared(nx: np.ndarray, ny: np.ndarray) -> np.ndarray:
    """(n, k, k) boolean: neighbour a of X equals neighbour b of Y, per sample."""
    return nx[:, :, None] == ny[:, None, :]


def knn_combine(nx: np.ndarray, ny: np.ndarray, kind: str) -> float:
    """A neighbour measure from two (n, k) sorted neighbour lists."""
    k = nx.shape[1]
    if kind == "cycle":
        # sample i is recovered if i is an X-neighbour of one of its Y-neighbours
        back = nx[ny]  # (n, k, k)
        return float((back == np.arange(nx.shape[0])[:, None, None]).any(axis=(1, 2)).mean())
    if kind in ("lcs", "edit"):
        return _sequence_score(nx, ny, kind)
    eq = _shared(nx, ny)
    hits = eq.sum(axis=(1, 2))
    if kind == "mutual":
        return float(hits.mean() / k)
    if kind == "jaccard":
        return float((hits / (2 * k - hits)).mean())
    ranks = np.arange(1, k + 1)
    ia, ib = np.nonzero(eq.reshape(eq.shape[0], -1))[0], np.nonzero(eq.reshape(eq.shape[0], -1))[1]
    rx, ry = ranks[ib // k], ranks[ib % k]
    per = np.zeros(nx.shape[0])
    np.add.at(per, ia, 2.0 / ((1 + np.abs(rx - ry)) * (rx + ry)))
    harmonic = np.concatenate([[1.0], np.cumsum(1.0 / ranks)])  # harmonic[m] = H_m (H_0 = 1)
    return float((per / harmonic[hits]).mean())


def _sequence_score(nx: np.ndarray, ny: np.ndarray, kind: str) -> float:
    """Mean LCS length, or 1 - mean Levenshtein distance / k, of the rows of two neighbour lists.

    The textbook dynamic programmes over the (k + 1) x (k + 1) table, one table row at a time
    and vectorised over the n samples (no library computes many short integer-sequence
    alignments at once; the authors loop over samples in Python).
    """
    n, k = nx.shape
    lcs = kind == "lcs"
    prev = np.zeros((n, k + 1), np.intp) if lcs else np.tile(np.arange(k + 1), (n, 1))
    cur = np.empty_like(prev)
    for a in range(k):
        eq = nx[:, a : a + 1] == ny  # (n, k): X's a-th neighbour against each of Y's
        cur[:, 0] = 0 if lcs else a + 1
        for b in range(k):
            if lcs:
                best = np.maximum(prev[:, b + 1], cur[:, b])
                cur[:, b + 1] = np.where(eq[:, b], prev[:, b] + 1, best)
            else:
                step = np.minimum(prev[:, b + 1], cur[:, b]) + 1
                cur[:, b + 1] = np.minimum(step, prev[:, b] + ~eq[:, b])
        prev, cur = cur, prev
    if lcs:
        return float(prev[:, k].mean())
    return float(1.0 - prev[:, k].mean() / k)


def _pair(X: Any, Y: Any, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = prepare_pair(X, Y, min_samples=2)
    check_knn(x, k, metric, "X")
    check_knn(y, k, metric, "Y")
    return knn_indices(x, k, metric), knn_indices(y, k, metric)


def mutual_knn(X: Any, Y: Any, k: int = 10, metric: Metric = "cosine") -> float:
    """Mean overlap of the k-nearest-neighbour sets, ``mean_i |knn_X(i) & knn_Y(i)| / k``.

    Parameters
    ----------
    X, Y : array-like, shapes (n, d1), (n, d2)
        Activations on the same samples.
    k : int
        Neighbours per sample, ``1 <= k < n``.
    metric : {"cosine", "euclidean", "dot"}
        cosine (default) as in Huh et al. (2024), whose features are L2-normalised; ``dot``
        reproduces their code on unnormalised features.

    Returns
    -------
    float
        In [0, 1] (about k/(n-1) for unrelated inputs); symmetric; not a metric. Time
        O(n^2 (d1 + d2)), memory O(n * 1024).
    """
    return knn_combine(*_pair(X, Y, k, metric), "mutual")


def jaccard_knn(X: Any, Y: Any, k: int = 10, metric: Metric = "cosine") -> float:
    """Mean Jaccard index of the k-nearest-neighbour sets (see the module docstring)."""
    return knn_combine(*_pair(X, Y, k, metric), "jaccard")


def rank_knn(X: Any, Y: Any, k: int = 10, metric: Metric = "cosine") -> float:
    """Rank similarity of the k-nearest-neighbour lists (see the module docstring)."""
    return knn_combine(*_pair(X, Y, k, metric), "rank")


def cycle_knn(X: Any, Y: Any, k: int = 10, metric: Metric = "cosine") -> float:
    """Cycle kNN of Huh et al. (2024): not symmetric (see the module docstring)."""
    return knn_combine(*_pair(X, Y, k, metric), "cycle")


def lcs_knn(X: Any, Y: Any, k: int = 10, metric: Metric = "cosine") -> float:
    """Mean longest common subsequence of the sorted k-nearest-neighbour lists (Huh et al. 2024).

    Returns
    -------
    float
        In [0, k]: the mean length itself, as in the authors' code (``lcs_knn``) and the
        registry's ``lcs_knn-topk=10``; divide by k for [0, 1]. Symmetric; unlike
        ``mutual_knn`` it rewards neighbours in the same order. Per pair O(n k^2).
    """
    return knn_combine(*_pair(X, Y, k, metric), "lcs")


def edit_distance_knn(X: Any, Y: Any, k: int = 10, metric: Metric = "cosine") -> float:
    """One minus the mean Levenshtein distance of the sorted neighbour lists, divided by k.

    Huh et al. (2024) (``edit_distance_knn`` of their code, torchaudio's edit distance:
    insertions, deletions and substitutions of cost 1). In [0, 1], 1 for the same ordered
    lists; symmetric. Per pair O(n k^2).
    """
    return knn_combine(*_pair(X, Y, k, metric), "edit")


def second_order_cosine(
    X: Any, Y: Any, k: int = 10, on: Literal["similarity", "distance"] = "similarity"
) -> float:
    """Second-order cosine similarity (Hamilton et al. 2016), cosine neighbours.

    For each sample i with U = knn_X(i) | knn_Y(i): the cosine between the vectors
    ``(s_X(i, j))_{j in U}`` and ``(s_Y(i, j))_{j in U}`` of cosine similarities (the paper),
    or of cosine distances with ``on="distance"`` (ReSi), averaged over samples.
    """
    if on not in ("similarity", "distance"):
        raise ShapeError(f"on: expected 'similarity' or 'distance', got {on!r}")
    x, y = prepare_pair(X, Y, min_samples=2)
    return soc_combine(soc_state(x, k, "X"), soc_state(y, k, "Y"), on)


def soc_state(x: np.ndarray, k: int, name: str = "X") -> tuple[np.ndarray, np.ndarray]:
    """Per-network work of the second-order cosine: unit-norm samples, cosine neighbours."""
    x = safe_scale(x)
    check_knn(x, k, "cosine", name)
    return x / np.linalg.norm(x, axis=1, keepdims=True), knn_indices(x, k)


def soc_combine(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], on: str
) -> float:
    """Second-order cosine of two states (see :func:`second_order_cosine`)."""
    (ux, nx), (uy, ny) = a, b
    k = nx.shape[1]
    union = np.concatenate([nx, ny], axis=1)  # duplicates weigh twice: remove them below
    dup = np.zeros(union.shape, dtype=bool)
    dup[:, k:] = (ny[:, :, None] == nx[:, None, :]).any(axis=2)
    sx = np.einsum("id,ijd->ij", ux, ux[union])
    sy = np.einsum("id,ijd->ij", uy, uy[union])
    if on == "distance":
        sx, sy = 1.0 - sx, 1.0 - sy
    sx[dup], sy[dup] = 0.0, 0.0
    num = np.einsum("ij,ij->i", sx, sy)
    den = np.linalg.norm(sx, axis=1) * np.linalg.norm(sy, axis=1)
    return float(np.mean(np.divide(num, den, out=np.zeros_like(num), where=den > 0)))


def _hsic_u(k: np.ndarray, ell: np.ndarray) -> float:
    """Song et al.'s unbiased HSIC for possibly non-symmetric (masked) kernels, O(n^2)."""
    n = k.shape[0]
    kt, lt = k.copy(), ell.copy()
    np.fill_diagonal(kt, 0.0)
    np.fill_diagonal(lt, 0.0)
    trace = float(np.sum(kt * lt.T))
    ones = float(kt.sum() * lt.sum()) / ((n - 1) * (n - 2))
    cross = float(kt.sum(axis=0) @ lt.sum(axis=1)) * 2.0 / (n - 2)
    return (trace + ones - cross) / (n * (n - 3))


def cknna_state(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-network work of CKNNA: the inner-product kernel, its k-NN mask, its self-HSIC."""
    x = safe_scale(x)
    gram = x @ x.T
    mask = np.zeros(gram.shape, dtype=bool)
    mask[np.arange(x.shape[0])[:, None], knn_indices(x, k, "dot")] = True
    masked = np.where(mask, gram, 0.0)
    return gram, mask, _hsic_u(masked, masked)


def cknna_combine(a: tuple[Any, ...], b: tuple[Any, ...]) -> float:
    """CKNNA of two states from :func:`cknna_state`."""
    mask = a[1] & b[1]
    num = _hsic_u(np.where(mask, a[0], 0.0), np.where(mask, b[0], 0.0))
    den = np.sqrt(a[2] * b[2])
    if not den > 0:
        raise ShapeError("cknna: the masked self-HSIC is not positive; use a larger k")
    return float(num / den)


def cknna(X: Any, Y: Any, k: int = 10) -> float:
    """Centered kernel nearest-neighbour alignment (Huh et al. 2024).

    CKA (unbiased HSIC of Song et al. 2012) of the inner-product kernels ``K = X X^T`` and
    ``L = Y Y^T`` restricted to the pairs (i, j), j != i, where j is among the k nearest
    neighbours of i (by the kernel) in both X and Y; the self terms use each kernel's own
    neighbour mask. As in the authors' code the kernels are raw inner products (their
    features are L2-normalised beforehand; normalise rows first to reproduce that), and no
    1e-6 is added to the denominator. Not exactly symmetric (the neighbour masks are not, so
    ``1^T K L 1`` differs from ``1^T L K 1``); invariant to orthogonal maps and isotropic
    scaling. Time and memory O(n^2 (d1 + d2)).
    """
    x, y = prepare_pair(X, Y, min_samples=4)
    check_knn(x, k, "dot", "X")
    check_knn(y, k, "dot", "Y")
    if k < 2:
        raise ShapeError(f"k: CKNNA needs k >= 2, got {k}")
    return cknna_combine(cknna_state(x, k), cknna_state(y, k))
