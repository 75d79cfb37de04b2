"""Groups of networks: who shares a representation with whom, with a null that says when
there is more than one group.

Members trained on one task can split into sub-populations that learn different algorithms
(Zhong et al. 2023, "The Clock and the Pizza"); averaging them is wrong. :func:`find_groups`
clusters the members from their K x K representational similarity (average-linkage
hierarchical clustering of ``1 - similarity``, or of a distance) and tests whether the best
two-group split is more than noise.

Statistic: the separation of the two-group cut, ``(mean between-group distance - mean
within-group distance) / sd(all pair distances)``.

Null, and why this one: a homogeneous ensemble still has *member effects* -- a member that
trained less well is less similar to every other member -- and a statistic that permutes all
pair values freely would call such a member a group of its own. The distances are therefore
split into an additive member model ``d_ij = m + a_i + a_j`` (least squares over the pairs)
and residuals; under "one group" the residuals carry no block structure and are exchangeable
across pairs. The null permutes the residuals over the pairs, rebuilds ``m + a_i + a_j +
e_perm``, re-clusters and recomputes the statistic (the clustering is part of the null, so the
test accounts for the split being chosen to look separated). More than one group when
``p = (1 + #{null >= observed}) / (1 + n_perm) <= alpha`` and the smaller side of the split
has at least ``min_size`` members; the number of groups is then the cut (2 .. ``max_groups``,
every group at least ``min_size``) with the best silhouette.

Clusters, not a continuum: members whose constants spread smoothly (each its own frequency
along a range) are not groups, yet a continuum cut in two beats the null (its two ends are
far apart). Groups are therefore claimed only when they are *separated*: the Dunn index of
the cut, the smallest distance between members of different groups over the largest distance
within a group, must exceed :data:`MIN_DUNN` = 1 (every member nearer to every member of its
own group than to any other group's) for some cut into 2 .. ``max_groups`` groups; the
separated cut with the best silhouette is the answer. A continuum cut in two has index below
1 (the two members beside the cut are nearer to each other than to their own group's far end).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..errors import ShapeError

log = logging.getLogger(__name__)

__all__ = ["Groups", "dunn_index", "find_groups", "groups_from_labels"]

#: the Dunn index a cut needs before its groups are claimed (see the module docstring)
MIN_DUNN = 1.0


@dataclass
class Groups:
    """Groups of members.

    Attributes
    ----------
    members : list of str
    labels : np.ndarray of int, shape (member,)
        Group of each member, ``0 .. n_groups - 1`` (group 0 holds the first member).
    statistic : float or None
        Separation of the best two-group cut (None when not tested).
    p_value : float or None
        Permutation p-value of the statistic.
    null : np.ndarray
        The null statistics.
    method : str
        What the groups come from (e.g. ``"linear_cka"``, ``"template"``).
    reason : str
        Why one group or several, in words.
    """

    members: list[str]
    labels: np.ndarray
    statistic: float | None
    p_value: float | None
    null: np.ndarray
    method: str
    reason: str
    dunn: float | None = None

    @property
    def n_groups(self) -> int:
        return int(self.labels.max()) + 1 if len(self.labels) else 0

    def group_members(self) -> list[list[str]]:
        """Member ids of each group."""
        return [
            [m for m, g in zip(self.members, self.labels, strict=True) if g == k]
            for k in range(self.n_groups)
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable record."""
        return {
            "method": self.method,
            "n_groups": self.n_groups,
            "groups": self.group_members(),
            "sizes": [len(g) for g in self.group_members()],
            "statistic": self.statistic,
            "p_value": self.p_value,
            "n_null": len(self.null),
            "dunn": self.dunn,
            "reason": self.reason,
        }


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Groups numbered by first appearance."""
    order: dict[int, int] = {}
    return np.array([order.setdefault(int(v), len(order)) for v in labels])


def groups_from_labels(members: Sequence[str], labels: Sequence[Any], method: str) -> Groups:
    """:class:`Groups` from given labels (e.g. each member's template); no test."""
    uniq: dict[Any, int] = {}
    lab = np.array([uniq.setdefault(v, len(uniq)) for v in labels])
    return Groups(list(members), lab, None, None, np.empty(0), method, f"one group per {method}")


def _distance(matrix: Any, kind: str) -> tuple[list[str], np.ndarray]:
    if hasattr(matrix, "dims") and "model" in matrix.dims:
        members = [str(m) for m in matrix["model"].values]
    else:
        members = [f"member{i}" for i in range(len(matrix))]
    S = np.asarray(matrix, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ShapeError(f"find_groups: expected a square (model, model) matrix, got {S.shape}")
    if not np.isfinite(S).all():
        raise ShapeError("find_groups: the similarity matrix has non-finite entries")
    D = (S + S.T) / 2
    D = 1.0 - D if kind == "similarity" else D
    np.fill_diagonal(D, 0.0)
    return members, D


def _additive(D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ``m + a_i + a_j`` over the off-diagonal pairs, and the residual matrix."""
    K = len(D)
    iu = np.triu_indices(K, 1)
    r = D.sum(1) / (K - 1)
    m = D[iu].mean()
    a = (K - 1) / (K - 2) * (r - m)
    fitted = m + a[:, None] + a[None, :]
    return fitted, D - fitted


def _cut(D: np.ndarray, k: int) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    Z = linkage(squareform(D, checks=False), method="average")
    return fcluster(Z, k, criterion="maxclust") - 1


def _separation(D: np.ndarray, labels: np.ndarray) -> float:
    iu = np.triu_indices(len(D), 1)
    same = (labels[:, None] == labels[None, :])[iu]
    d = D[iu]
    if same.all() or not same.any():
        return 0.0
    return float((d[~same].mean() - d[same].mean()) / max(d.std(), 1e-12))


def find_groups(
    matrix: Any,
    *,
    kind: Literal["similarity", "distance"] = "similarity",
    max_groups: int = 4,
    n_perm: int = 499,
    alpha: float = 0.05,
    min_size: int = 2,
    seed: int = 0,
    method: str = "similarity",
) -> Groups:
    """Groups of members from a K x K similarity (or distance) matrix, with a permutation null.

    Parameters
    ----------
    matrix : array-like or xarray.DataArray, shape (model, model)
        E.g. the study's linear CKA matrix (``model`` coordinate gives the member ids).
    kind : {"similarity", "distance"}
        Similarities (1 = identical; distance ``1 - s``) or distances (0 = identical).
    max_groups : int
        Most groups considered.
    n_perm : int
        Permutations of the null (see the module docstring).
    alpha : float
        Level of the test for more than one group.
    min_size : int
        Least members a group needs (a single odd member is not a group).
    seed : int
        Seed of the permutations.
    method : str
        Label recorded in the result.

    Returns
    -------
    Groups

    Examples
    --------
    >>> import numpy as np
    >>> S = np.full((6, 6), 0.3); S[:3, :3] = S[3:, 3:] = 0.9; np.fill_diagonal(S, 1.0)
    >>> find_groups(S, n_perm=199).group_members()
    [['member0', 'member1', 'member2'], ['member3', 'member4', 'member5']]
    """
    members, D = _distance(matrix, kind)
    K = len(D)
    one = np.zeros(K, dtype=int)
    if K < 2 * min_size or K < 4:
        reason = f"{K} members: too few to test for groups of at least {min_size}"
        return Groups(members, one, None, None, np.empty(0), method, reason)
    labels = _cut(D, 2)
    stat = _separation(D, labels)
    fitted, resid = _additive(D)
    iu = np.triu_indices(K, 1)
    rng = np.random.default_rng(seed)
    null = np.empty(n_perm)
    for i in range(n_perm):
        P = np.zeros_like(D)
        P[iu] = rng.permutation(resid[iu])
        P = fitted + P + P.T
        P -= min(0.0, float(P[iu].min()))  # a shift changes neither the tree nor the statistic
        np.fill_diagonal(P, 0.0)
        null[i] = _separation(P, _cut(P, 2))
    p = float((1 + np.sum(null >= stat)) / (1 + n_perm))
    smallest = int(np.bincount(labels).min())
    if p > alpha or smallest < min_size:
        why = f"p = {p:.3g} > alpha = {alpha}" if p > alpha else f"a side of {smallest} member(s)"
        reason = f"one group: the best two-group split (separation {stat:.3g}) is not real ({why})"
        return Groups(members, one, stat, p, null, method, reason)
    best = _best_cut(D, max_groups, min_size)
    if best is None:
        dunn = dunn_index(D, labels)
        reason = (
            f"one group: the best two-group split beats the null (p = {p:.3g}) but is a "
            f"continuum, not separated clusters (Dunn index {dunn:.3g} <= {MIN_DUNN:g}, and no "
            f"cut into up to {max_groups} groups is separated: members across a cut are as "
            "near as members within a group)"
        )
        return Groups(members, one, stat, p, null, method, reason, dunn)
    dunn = dunn_index(D, best)
    reason = (
        f"{int(best.max()) + 1} groups: separation {stat:.3g}, permutation p = {p:.3g}, "
        f"Dunn index {dunn:.3g}"
    )
    log.info("groups (%s): %s", method, reason)
    return Groups(members, _relabel(best), stat, p, null, method, reason, dunn)


def dunn_index(D: np.ndarray, labels: np.ndarray) -> float:
    """Smallest distance between members of different groups over the largest distance
    between two members of one group (``inf`` when every group is a single member).

    Examples
    --------
    >>> import numpy as np
    >>> pos = np.array([0.0, 0.1, 0.2, 1.0, 1.1])  # two clusters on a line
    >>> float(dunn_index(np.abs(pos[:, None] - pos[None, :]), np.array([0, 0, 0, 1, 1])))
    4.0
    """
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(len(D), dtype=bool)
    within = D[same & off]
    widest = float(within.max()) if within.size else 0.0
    nearest = float(D[~same].min())
    return nearest / widest if widest > 0 else float("inf")


def _best_cut(D: np.ndarray, max_groups: int, min_size: int) -> np.ndarray | None:
    """The separated cut (Dunn index above :data:`MIN_DUNN`) into 2 .. max_groups groups
    (each >= min_size) with the best silhouette; None when no cut is separated."""
    from sklearn.metrics import silhouette_score

    best, best_score = None, -np.inf
    for k in range(2, min(max_groups, len(D) - 1) + 1):
        labels = _cut(D, k)
        if len(np.unique(labels)) < 2 or np.bincount(labels).min() < min_size:
            continue
        if dunn_index(D, labels) <= MIN_DUNN:
            continue
        score = silhouette_score(D, labels, metric="precomputed")
        if score > best_score:
            best, best_score = labels, score
    return best
