"""Unit-level correspondence across networks: matching, universality and clustering.

All three work on the Pearson correlations between units of different networks, read from
one pass of shared moments. Constant (dead) units correlate 0 with everything (with a
:class:`~ensemble_lens.errors.DroppedUnitsWarning`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import squareform
from scipy.stats import ortho_group

from ..errors import DroppedUnitsWarning, ShapeError
from ._moments import correlation_from_cov, fit_moments
from ._validate import as_matrices

__all__ = [
    "UnitClusters",
    "UnitMatching",
    "Universality",
    "cluster_units",
    "match_units_across",
    "universality_scores",
]


def _unit_correlations(inputs: Any) -> tuple[list[str], Any, np.ndarray, np.ndarray]:
    """Validate networks and return names, moments, offsets and the (D, D) unit correlations."""
    names, arrays = as_matrices(inputs)
    moments = fit_moments(arrays)
    corr, dead = correlation_from_cov(moments.cov)
    if dead.any():
        off = moments.offsets
        where = [
            f"{names[k]!r}: {int(dead[off[k] : off[k + 1]].sum())}"
            for k in range(len(names))
            if dead[off[k] : off[k + 1]].any()
        ]
        warnings.warn(
            f"constant units treated as uncorrelated with every unit ({', '.join(where)})",
            DroppedUnitsWarning,
            stacklevel=3,
        )
    return names, moments, np.asarray(moments.offsets), corr


@dataclass(frozen=True)
class UnitMatching:
    """One-to-one matching of every network's units to a reference network's units.

    Attributes
    ----------
    names : tuple of str
        Network names.
    reference : str
        Name of the reference network.
    assignment : tuple of ndarray (d_ref,) int
        ``assignment[k][i]``: unit of network ``k`` matched to reference unit ``i``; ``-1``
        when network ``k`` has fewer units and ``i`` stays unmatched.
    correlation : tuple of ndarray (d_ref,)
        Correlation of each matched pair (0 for unmatched units).
    mean_correlation : ndarray (K,)
        Mean matched correlation per network, over the matched reference units.
    """

    names: tuple[str, ...]
    reference: str
    assignment: tuple[np.ndarray, ...]
    correlation: tuple[np.ndarray, ...]
    mean_correlation: np.ndarray


def match_units_across(
    inputs: Sequence[Any] | Mapping[str, Any],
    *,
    reference: int | str = 0,
    absolute: bool = False,
) -> UnitMatching:
    """Hungarian one-to-one matching of every network's units to a reference network.

    Each network's units are matched to the reference's units maximising the summed
    correlation (Li et al. 2015, "Convergent learning"); with ``absolute=True`` the summed
    absolute correlation, so sign-flipped copies match too.

    Parameters
    ----------
    inputs : sequence or dict of array-like, each (n, d_k)
    reference : int or str
        Index or name of the reference network.
    absolute : bool
        Match on ``|corr|`` instead of ``corr``.

    Returns
    -------
    UnitMatching
    """
    names, _, off, corr = _unit_correlations(inputs)
    ref = _model_index(reference, names)
    assignment, matched = [], []
    for k in range(len(names)):
        block = corr[off[ref] : off[ref + 1], off[k] : off[k + 1]]
        rows, cols = linear_sum_assignment(np.abs(block) if absolute else block, maximize=True)
        a = np.full(block.shape[0], -1, dtype=np.intp)
        r = np.zeros(block.shape[0])
        a[rows], r[rows] = cols, block[rows, cols]
        assignment.append(a)
        matched.append(r)
    mean = np.array([r[a >= 0].mean() for a, r in zip(assignment, matched, strict=True)])
    return UnitMatching(tuple(names), names[ref], tuple(assignment), tuple(matched), mean)


def _model_index(model: int | str, names: Sequence[str]) -> int:
    """Resolve a network given by index or name."""
    if isinstance(model, str):
        if model not in names:
            raise ShapeError(
                f"reference: expected one of the networks {list(names)}, got {model!r}"
            )
        return list(names).index(model)
    if not -len(names) <= model < len(names):
        raise ShapeError(f"reference: expected an index below {len(names)}, got {model}")
    return int(model) % len(names)


@dataclass(frozen=True)
class Universality:
    """Per-unit universality (Gurnee et al. 2024).

    Attributes
    ----------
    names : tuple of str
    max_correlation : tuple of ndarray (d_k,)
        Best-partner ``|corr|`` in each other network, averaged over the other networks.
    baseline : tuple of ndarray (d_k,)
        The same against randomly rotated copies of the other networks.
    score : tuple of ndarray (d_k,)
        ``max_correlation - baseline``: how much more a unit has a one-unit counterpart than
        a random basis of the same subspaces would give.
    seed : int
    """

    names: tuple[str, ...]
    max_correlation: tuple[np.ndarray, ...]
    baseline: tuple[np.ndarray, ...]
    score: tuple[np.ndarray, ...]
    seed: int


def universality_scores(
    inputs: Sequence[Any] | Mapping[str, Any], *, seed: int = 0
) -> Universality:
    """Best-partner correlation of every unit, in excess of a random-rotation baseline.

    For a unit of network ``k`` and another network ``l``, take ``max_j |corr(u, l_j)|``;
    average over ``l ≠ k``. The baseline repeats this against ``X_l Q_l`` with a Haar-random
    orthogonal ``Q_l`` (one per network, from ``seed``): the same subspace in a random basis.

    Parameters
    ----------
    inputs : sequence or dict of array-like, each (n, d_k)
    seed : int
        Seed of the random rotations.

    Returns
    -------
    Universality
    """
    names, moments, off, corr = _unit_correlations(inputs)
    K = len(names)
    rng = np.random.default_rng(seed)
    rot = [_rotation(off[l + 1] - off[l], rng) for l in range(K)]
    sd = np.sqrt(np.diag(moments.cov))
    best, base = [], []
    for k in range(K):
        b_k, r_k = np.zeros(off[k + 1] - off[k]), np.zeros(off[k + 1] - off[k])
        for l in (l for l in range(K) if l != k):
            b_k += np.abs(corr[off[k] : off[k + 1], off[l] : off[l + 1]]).max(axis=1)
            r_k += _rotated_best(moments, k, l, rot[l], sd[off[k] : off[k + 1]])
        best.append(b_k / (K - 1))
        base.append(r_k / (K - 1))
    score = tuple(b - r for b, r in zip(best, base, strict=True))
    return Universality(tuple(names), tuple(best), tuple(base), score, seed)


def _rotation(d: int, rng: np.random.Generator) -> np.ndarray:
    """Haar-random orthogonal (d, d) matrix (1x1: a random sign)."""
    if d == 1:
        return np.array([[rng.choice([-1.0, 1.0])]])
    return ortho_group.rvs(d, random_state=rng)


def _rotated_best(moments: Any, k: int, l: int, Q: np.ndarray, sd_k: np.ndarray) -> np.ndarray:
    """``max_j |corr(X_k, (X_l Q)_j)|`` per unit of network ``k``, shape (d_k,)."""
    cross = moments.block(k, l) @ Q
    var_l = np.sum(Q * (moments.block(l, l) @ Q), axis=0)
    denom = np.outer(sd_k, np.sqrt(np.clip(var_l, 0.0, None)))
    ok = denom > 0
    c = np.zeros_like(cross)
    c[ok] = cross[ok] / denom[ok]
    return np.abs(c).max(axis=1)


@dataclass(frozen=True)
class UnitClusters:
    """Clusters of units across networks; cluster ids order shared clusters first.

    Attributes
    ----------
    names : tuple of str
    labels : tuple of ndarray (d_k,) int
        Cluster id of every unit of every network.
    n_models : ndarray (n_clusters,) int
        Number of distinct networks among a cluster's units.
    size : ndarray (n_clusters,) int
        Number of units in a cluster.
    shared : ndarray (n_clusters,) bool
        ``n_models >= min_fraction * K``: the cluster is a shared feature.
    """

    names: tuple[str, ...]
    labels: tuple[np.ndarray, ...]
    n_models: np.ndarray
    size: np.ndarray
    shared: np.ndarray

    def members(self, cluster: int) -> list[tuple[str, int]]:
        """``(network name, unit index)`` of every unit in ``cluster``."""
        return [
            (name, int(u))
            for name, lab in zip(self.names, self.labels, strict=True)
            for u in np.flatnonzero(lab == cluster)
        ]


def cluster_units(
    inputs: Sequence[Any] | Mapping[str, Any],
    *,
    threshold: float = 0.5,
    min_fraction: float = 0.5,
    method: Literal["average", "complete", "single"] = "average",
) -> UnitClusters:
    """Agglomerative clustering of all units of all networks on ``1 - |corr|``.

    The dendrogram is cut at distance ``1 - threshold`` (with average linkage: units whose
    mean ``|corr|`` with the cluster is at least ``threshold``). A cluster is a shared
    feature when its units come from at least ``min_fraction`` of the networks.

    Parameters
    ----------
    inputs : sequence or dict of array-like, each (n, d_k)
    threshold : float in (0, 1]
        Least ``|corr|`` linking units.
    min_fraction : float in (0, 1]
        Fraction of networks a shared cluster must span.
    method : {"average", "complete", "single"}
        Linkage rule.

    Returns
    -------
    UnitClusters
    """
    if not 0.0 < threshold <= 1.0 or not 0.0 < min_fraction <= 1.0:
        raise ValueError(
            "threshold and min_fraction: expected numbers in (0, 1], "
            f"got {threshold} and {min_fraction}"
        )
    names, _, off, corr = _unit_correlations(inputs)
    dist = 1.0 - np.abs(corr)
    np.fill_diagonal(dist, 0.0)
    Z = linkage(squareform(np.clip(dist, 0.0, None), checks=False), method=method)
    raw = fcluster(Z, t=1.0 - threshold, criterion="distance") - 1
    model_of = np.repeat(np.arange(len(names)), np.diff(off))
    n_models = np.array([np.unique(model_of[raw == c]).size for c in range(raw.max() + 1)])
    size = np.bincount(raw)
    order = np.lexsort((-size, -n_models))
    relabel = np.empty_like(order)
    relabel[order] = np.arange(order.size)
    labels = relabel[raw]
    shared = n_models[order] >= min_fraction * len(names) - 1e-12
    return UnitClusters(
        tuple(names),
        tuple(labels[off[k] : off[k + 1]] for k in range(len(names))),
        n_models[order],
        size[order],
        shared,
    )
