"""Kendall's tau-b and tau-a of RDM vectors with the per-vector work done once.

``scipy.stats.kendalltau`` sorts both vectors, ranks them and computes a p-value on every
call. Here each vector is ranked and sorted once (:func:`kendall_state`); a pair then costs
one gather (or, when the first vector has ties, one ``lexsort``), scipy's own O(N log N)
count of discordant pairs and a count of joint ties. The counts are scipy's, and the
statistic is formed with scipy's arithmetic, so the values equal ``kendalltau(a, b).statistic``
exactly. A vector with itself needs no sort at all (:func:`kendall_self`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["KendallState", "kendall_combine", "kendall_self", "kendall_state"]


@dataclass(frozen=True)
class KendallState:
    """One vector's sort: its dense ranks (1-based, ties equal), the stable order of its
    values, whether it has ties, and its tied pairs (an int)."""

    dense: np.ndarray
    order: np.ndarray
    has_ties: bool
    ties: int


def kendall_state(v: np.ndarray) -> KendallState:
    """Dense ranks, sort order and tied pairs of one vector."""
    order = np.argsort(v, kind="mergesort")
    sv = v[order]
    new = np.r_[True, sv[1:] != sv[:-1]]
    dense = np.empty(v.size, dtype=np.intp)
    dense[order] = new.cumsum(dtype=np.intp)
    cnt = np.bincount(dense).astype("int64", copy=False)
    cnt = cnt[cnt > 1]
    return KendallState(dense, order, bool(cnt.size), int((cnt * (cnt - 1) // 2).sum()))


def _discordant(x: np.ndarray, y: np.ndarray) -> int:
    try:
        from scipy.stats._stats import _kendall_dis  # scipy's merge-sort count (Cython)
    except ImportError:  # pragma: no cover - a scipy without it: count through kendalltau
        return -1
    return int(_kendall_dis(x, y))


def kendall_combine(a: KendallState, b: KendallState, variant: str = "b") -> float:
    """Kendall's tau (``variant`` "b", or "a": ties stay in the denominator) of two vectors
    from their states; equal to ``scipy.stats.kendalltau(va, vb).statistic`` for "b"."""
    if a.has_ties:
        order = np.lexsort((b.dense, a.dense))
        x, y = a.dense[order], b.dense[order]
    else:
        x, y = np.arange(1, a.dense.size + 1, dtype=np.intp), b.dense[a.order]
    tot = (x.size * (x.size - 1)) // 2
    if a.ties == tot or b.ties == tot:
        return 0.0 if variant == "a" else float("nan")
    dis = _discordant(x, y)
    if dis < 0:  # pragma: no cover
        from scipy import stats

        tau_b = float(stats.kendalltau(a.dense, b.dense, variant="b").statistic)
    else:
        obs = np.r_[True, (x[1:] != x[:-1]) | (y[1:] != y[:-1]), True]
        cnt = np.diff(np.nonzero(obs)[0]).astype("int64", copy=False)
        ntie = int((cnt * (cnt - 1) // 2).sum())
        con_minus_dis = tot - a.ties - b.ties + ntie - 2 * dis
        tau = con_minus_dis / np.sqrt(tot - a.ties) / np.sqrt(tot - b.ties)
        tau_b = float(np.minimum(1.0, max(-1.0, tau)))
    return tau_b if variant == "b" else _to_tau_a(tau_b, a.dense.size, a.ties, b.ties)


def _to_tau_a(tau_b: float, size: int, ta: int, tb: int) -> float:
    """tau-a from tau-b by undoing its tie correction (see :func:`.rsa.kendall_tau_a`)."""
    n0 = size * (size - 1) / 2
    return float(tau_b * np.sqrt((n0 - float(ta)) * (n0 - float(tb))) / n0)


def kendall_self(a: KendallState, variant: str = "b") -> float:
    """Kendall's tau of a vector with itself (no discordant pairs; every tie is joint), with
    the arithmetic of :func:`kendall_combine`."""
    tot = (a.dense.size * (a.dense.size - 1)) // 2
    if a.ties == tot:
        return 0.0 if variant == "a" else float("nan")
    tau = (tot - a.ties) / np.sqrt(tot - a.ties) / np.sqrt(tot - a.ties)
    tau_b = float(np.minimum(1.0, max(-1.0, tau)))
    return tau_b if variant == "b" else _to_tau_a(tau_b, a.dense.size, a.ties, a.ties)
