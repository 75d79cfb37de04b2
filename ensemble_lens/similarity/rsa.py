"""Representational similarity analysis (Kriegeskorte et al. 2008) with rsatoolbox's RDMs and
comparators.

An RDM holds the dissimilarities between every pair of samples (conditions); two
representations are compared through their RDMs' upper triangles. RDMs (as rsatoolbox's
``calc_rdm`` unless said): ``correlation`` (1 - Pearson r across units), ``cosine``,
``euclidean`` (plain Euclidean distance, as thingsvision and ReSi), ``squared_euclidean``
(rsatoolbox's "euclidean": squared distance / units), ``mahalanobis`` (squared, / units, with
a ``noise`` precision matrix; identity by default, then equal to ``squared_euclidean``),
``poisson`` (symmetrised KL divergence of Poisson rates with rsatoolbox's prior: rates
``(x + 0.1) / 1.1``, needs x > -0.1) and ``crossnobis`` (cross-validated squared distance
over repeated measurements: ``conditions`` and ``runs`` give each row's condition and
partition; the RDM is over conditions, averaged over leave-one-run-out folds); ``gaussian``
is thingsvision's ``1 - exp(-d^2 / m)`` with ``m`` the mean squared distance over all (i, j),
the diagonal included.

Comparators: ``pearson`` (``corr``), ``spearman``, ``kendall``/``tau_b``, ``tau_a``, ``rho_a``
(Spearman's rho under random tie breaking, Nili et al. 2014), ``cosine``, ``cosine_cov`` and
``corr_cov`` (whitened cosine/correlation under i.i.d. noise, Diedrichsen et al. 2021: the
cosine of the double-centred second-moment matrices ``-H D H / 2``), ``bures`` (normalised
Bures similarity of those matrices), ``bures_metric`` (squared Bures metric, a distance) and
``euclidean`` (Euclidean distance between RDM vectors, a distance). Bures values of RDMs whose
second-moment matrix is not positive semi-definite (poisson, mahalanobis with some noise
models) follow rsatoolbox: the first matrix's negative eigenvalues are clipped, which makes
them slightly asymmetric; Euclidean-type RDMs (correlation, cosine, squared_euclidean) are
exact and symmetric.

Dead units: the standard RDM uses all units, and a constant unit changes correlation and
cosine RDMs (not Euclidean ones), so RSA keeps them by default (``dead_units="keep"``);
``"drop"`` removes them first, as the other measures do.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy.spatial.distance import pdist

from .._arrays import check_same_samples
from ..errors import ShapeError
from ._input import checked_matrix, drop_dead, safe_scale
from ._kendall import kendall_combine, kendall_self, kendall_state

__all__ = ["COMPARATORS", "RDMS", "kendall_tau_a", "rdm", "rsa"]

RDMS = (
    "correlation", "cosine", "euclidean", "squared_euclidean", "mahalanobis", "poisson",
    "crossnobis", "gaussian",
)  # fmt: skip
COMPARATORS = (
    "pearson", "corr", "spearman", "kendall", "tau_b", "tau_a", "kendall_tau_a", "rho_a",
    "cosine", "cosine_cov", "corr_cov", "bures", "bures_metric", "euclidean",
)  # fmt: skip
#: Comparators that give a distance (smaller = more similar).
DISTANCE_COMPARATORS = frozenset({"bures_metric", "euclidean"})
#: Kendall comparators and their variant (tau-b or tau-a), from per-network sorts.
_KENDALL = {"kendall": "b", "tau_b": "b", "tau_a": "a", "kendall_tau_a": "a"}
KENDALL_COMPARATORS = frozenset(_KENDALL)
#: Comparators computed as one dot product of per-network vectors.
DOT_COMPARATORS = _DOT = frozenset(
    {"pearson", "corr", "spearman", "rho_a", "cosine", "cosine_cov", "corr_cov"}
)
RDMKind = Literal[
    "correlation", "cosine", "euclidean", "squared_euclidean", "mahalanobis", "poisson",
    "crossnobis", "gaussian",
]  # fmt: skip
Compare = str


def _poisson(x: np.ndarray) -> np.ndarray:
    if x.min() <= -0.1:
        raise ShapeError(
            f"poisson RDM: needs rates above -0.1 (prior 0.1 at rate 1), got minimum {x.min():.3g}"
        )
    m = (x + 0.1) / 1.1
    k = m @ np.log(m).T
    d = np.diag(k)
    full = d[:, None] + d[None, :] - k - k.T
    return full[np.triu_indices(x.shape[0], 1)] / x.shape[1]


def _crossnobis(x: np.ndarray, conditions: Any, runs: Any, noise: Any) -> np.ndarray:
    if conditions is None:
        raise ShapeError(
            "crossnobis RDM: needs repeated measurements; pass conditions= (and runs=)"
        )
    cond = np.asarray(conditions)
    if cond.shape != (x.shape[0],):
        raise ShapeError(f"conditions: expected {x.shape[0]} labels, got shape {cond.shape}")
    labels = np.unique(cond)
    if runs is None:  # the k-th repetition of each condition is run k (rsatoolbox's default)
        runs = np.zeros(cond.size, dtype=int)
        for c in labels:
            runs[cond == c] = np.arange(int((cond == c).sum()))
    runs = np.asarray(runs)
    folds = np.unique(runs)
    if folds.size < 2:
        raise ShapeError("crossnobis RDM: needs at least 2 runs (repeated measurements)")
    prec = np.eye(x.shape[1]) if noise is None else np.asarray(noise, dtype=float)
    iu = np.triu_indices(labels.size, 1)
    out = np.zeros(iu[0].size)
    for f in folds:
        test, train = (
            _cond_means(x, cond, runs == f, labels),
            _cond_means(x, cond, runs != f, labels),
        )
        k = train @ prec @ test.T
        d = np.diag(k)
        out += (d[:, None] + d[None, :] - k - k.T)[iu] / x.shape[1]
    return out / folds.size


def _cond_means(
    x: np.ndarray, cond: np.ndarray, rows: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    out = np.empty((labels.size, x.shape[1]))
    for i, c in enumerate(labels):
        sel = rows & (cond == c)
        if not sel.any():
            raise ShapeError(f"crossnobis RDM: condition {c!r} is missing from a run")
        out[i] = x[sel].mean(axis=0)
    return out


def rdm(x: np.ndarray, kind: str = "correlation", name: str = "X", **opts: Any) -> np.ndarray:
    """Condensed upper triangle (length n(n-1)/2) of a representational dissimilarity matrix.

    ``opts``: ``noise`` (mahalanobis, crossnobis: a (d, d) precision matrix), ``conditions``
    and ``runs`` (crossnobis).
    """
    if kind not in RDMS:
        raise ShapeError(f"rdm: expected one of {RDMS}, got {kind!r}")
    if kind in ("correlation", "cosine"):
        rows = x - x.mean(axis=1, keepdims=True) if kind == "correlation" else x
        bad = int((np.linalg.norm(rows, axis=1) == 0).sum())
        if bad:
            what = "constant across units" if kind == "correlation" else "all zero"
            raise ShapeError(f"{name}: {bad} samples are {what}; the {kind} RDM is undefined")
        return pdist(x, kind)
    if kind == "euclidean":
        return pdist(x, "euclidean")
    if kind == "gaussian":  # thingsvision: 1 - exp(-d^2 / mean of the full d^2 matrix)
        d2 = pdist(x, "sqeuclidean")
        mean = 2.0 * d2.sum() / x.shape[0] ** 2
        return 1.0 - np.exp(-d2 / mean) if mean > 0 else np.zeros_like(d2)
    if kind == "poisson":
        return _poisson(x)
    if kind == "crossnobis":
        return _crossnobis(x, opts.get("conditions"), opts.get("runs"), opts.get("noise"))
    noise = opts.get("noise") if kind == "mahalanobis" else None
    if noise is None:
        return pdist(x, "sqeuclidean") / x.shape[1]
    return pdist(x, "mahalanobis", VI=np.asarray(noise, dtype=float)) ** 2 / x.shape[1]


_rdm_kind = rdm  # ``rsa`` has a parameter named ``rdm`` that shadows the function


def kendall_tau_a(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-a ``(concordant - discordant) / (N (N - 1) / 2)``, O(N log N).

    Ties count as neither concordant nor discordant and stay in the denominator (unlike tau-b,
    which scipy implements). Computed from tau-b (scipy's O(N log N) count of discordant
    pairs on each vector's sort, :mod:`._kendall`) by undoing its tie correction:
    ``tau_a = tau_b sqrt((N0 - T_a)(N0 - T_b)) / N0``.
    """
    return kendall_combine(kendall_state(np.asarray(a)), kendall_state(np.asarray(b)), "a")


def ranks(v: np.ndarray) -> np.ndarray:
    """1-based ranks, ties averaged (as ``scipy.stats.rankdata``; one sort, less overhead)."""
    order = np.argsort(v, kind="stable")
    sv = v[order]
    new = np.concatenate([[True], sv[1:] != sv[:-1]])
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, v.size))
    out = np.empty(v.size)
    out[order] = (starts + (counts + 1) / 2.0)[np.cumsum(new) - 1]
    return out


def _second_moment(r: np.ndarray) -> np.ndarray:
    """``G = -H D H / 2`` from a condensed RDM (the matrix whose cosine is cosine_cov)."""
    from scipy.spatial.distance import squareform

    g = -0.5 * squareform(r)
    m = g.mean(axis=0)
    return g - m[None, :] - m[:, None] + m.mean()


def rdm_state(r: np.ndarray, compare: str, name: str = "X") -> Any:
    """Per-network work of RSA: the RDM transformed for its comparator.

    Dot comparators give a unit vector (their value is one dot product); ``bures*`` give the
    square-root factor of ``G``; the others keep the RDM.
    """
    if compare not in COMPARATORS:
        raise ShapeError(f"compare: expected one of {COMPARATORS}, got {compare!r}")
    if compare in _DOT:
        if compare in ("cosine_cov", "corr_cov"):
            from .kernels import packed

            v = packed(_second_moment(r - r.mean() if compare == "corr_cov" else r))
        elif compare in ("spearman", "rho_a"):
            v = ranks(r)
            v = v - v.mean()
            if compare == "rho_a":
                return v * np.sqrt(12.0 / (r.size**3 - r.size))
        else:
            v = r - r.mean() if compare in ("pearson", "corr") else r
        norm = float(np.sqrt(v @ v))
        if norm == 0 or (compare not in ("cosine",) and np.ptp(r) == 0):
            raise ShapeError(
                f"{name}: all dissimilarities are equal; the {compare} RSA is undefined"
            )
        return v / norm
    if compare in ("bures", "bures_metric"):
        g = _second_moment(r)
        lam, u = np.linalg.eigh(g)
        psd = bool(lam[0] >= -1e-12 * max(abs(lam[-1]), 1e-300))
        return (np.sqrt(np.maximum(lam, 0.0))[:, None] * u.T, float(lam.sum()), psd, g)
    if compare != "euclidean" and np.ptp(r) == 0:
        raise ShapeError(f"{name}: all dissimilarities are equal; the {compare} RSA is undefined")
    return kendall_state(r) if compare in _KENDALL else r


def rdm_combine(a: Any, b: Any, compare: str) -> float:
    """RSA value of two states from :func:`rdm_state`."""
    if compare in _DOT:
        return float(a @ b)
    if compare in ("bures", "bures_metric"):
        if a[2] and b[2]:  # both PSD: singular values of the factors' product (accurate)
            nuc = float(np.linalg.svd(a[0] @ b[0].T, compute_uv=False).sum())
        else:  # an RDM that is not Euclidean: rsatoolbox's sqrt(eig(A^1/2 B A^1/2)), A clipped
            nuc = float(np.sqrt(np.maximum(np.linalg.eigvalsh(a[0] @ b[3] @ a[0].T), 0.0)).sum())
        if compare == "bures":
            return nuc / np.sqrt(a[1] * b[1])
        return a[1] + b[1] - 2 * nuc
    if compare == "euclidean":
        return float(np.linalg.norm(a - b))
    return kendall_combine(a, b, _KENDALL[compare])


def rdm_self(a: Any, compare: str) -> float:
    """RSA value of a network with itself from its state, for the comparators where that is
    cheaper than :func:`rdm_combine` (Kendall's: no sort); the same value."""
    return kendall_self(a, _KENDALL[compare])


def rsa_inputs(
    X: Any, Y: Any, dead_units: str = "keep", rescale: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs converted and checked, with the dead-unit policy of RSA applied."""
    if dead_units not in ("keep", "drop"):
        raise ShapeError(f"dead_units: expected 'keep' or 'drop', got {dead_units!r}")
    x, y = checked_matrix(X, "X", min_samples=3), checked_matrix(Y, "Y", min_samples=3)
    check_same_samples(X, Y, x, y, ("X", "Y"))
    if rescale:
        x, y = safe_scale(x), safe_scale(y)
    if dead_units == "drop":
        x, y = drop_dead(x, "X")[0], drop_dead(y, "Y")[0]
    return x, y


def rsa(
    X: Any,
    Y: Any,
    rdm: RDMKind = "correlation",
    compare: Compare = "spearman",
    *,
    dead_units: str = "keep",
    **rdm_opts: Any,
) -> float:
    """Compare the RDMs of two representations on their condensed upper triangles.

    Parameters
    ----------
    X, Y : array-like, shapes (n, d1), (n, d2)
        Activations on the same samples (observations for ``crossnobis``).
    rdm : str
        One of :data:`RDMS` (see the module docstring).
    compare : str
        One of :data:`COMPARATORS`.
    dead_units : {"keep", "drop"}
        Constant units: kept (standard RDM) or dropped with a warning.
    **rdm_opts
        ``noise``, ``conditions``, ``runs`` for the mahalanobis and crossnobis RDMs.

    Returns
    -------
    float
        Similarities in [-1, 1] (``bures`` in [0, 1]); ``bures_metric`` and ``euclidean``
        are distances. Symmetric. Invariant to orthogonal maps and isotropic scaling for the
        correlation and cosine RDMs and any scale-free comparator, and to translation for the
        Euclidean-type RDMs. Time O(n^2 (d1 + d2)) plus a sort for rank comparators.
    """
    scale_free = compare not in DISTANCE_COMPARATORS and rdm != "poisson"
    x, y = rsa_inputs(X, Y, dead_units, rescale=scale_free)
    sx = rdm_state(_rdm_kind(x, rdm, "X", **rdm_opts), compare, "X")
    sy = rdm_state(_rdm_kind(y, rdm, "Y", **rdm_opts), compare, "Y")
    return rdm_combine(sx, sy, compare)
