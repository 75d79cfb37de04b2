"""Discrete periodic inputs: the Fourier basis over Z_p, and each member's own components.

For inputs on a cyclic group (an integer ``v`` mod ``p``, declared by a task's
``periodic_inputs``), the counterpart of the equivariant input basis is the Fourier basis
``cos(2 pi k v / p), sin(2 pi k v / p)``, ``k = 1 .. p // 2``: it is fixed by the group, not
by the answer. :func:`member_components` uses it to pick each member's own directions (one per
key frequency), and :class:`FourierBackend` is a symbolic-regression backend whose grammar is
sums of ``A cos(2 pi k v / p + phi)`` over the declared periodic inputs.

Members of other tasks get their top principal components instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import sympy

from ..errors import ShapeError
from .backends import Candidate, make_candidate, pareto_front

__all__ = ["FourierBackend", "MemberComponents", "fourier_power", "member_components"]


def _group_means(values: np.ndarray, v: np.ndarray, period: int) -> np.ndarray:
    """``(period, unit)`` mean of ``values`` at each integer value of ``v`` (0 where absent)."""
    idx = np.mod(np.rint(v).astype(np.int64), period)
    sums = np.zeros((period, values.shape[1]))
    np.add.at(sums, idx, values)
    counts = np.bincount(idx, minlength=period)[:, None]
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)


def fourier_power(table: np.ndarray) -> np.ndarray:
    """Power of a ``(period, unit)`` table at each frequency ``k = 0 .. period // 2``, summed
    over units (``numpy.fft.rfft`` along the group axis)."""
    spec = np.fft.rfft(table - table.mean(0), axis=0)
    return (np.abs(spec) ** 2).sum(axis=1)


@dataclass(frozen=True)
class MemberComponents:
    """One member's own components.

    Attributes
    ----------
    values : np.ndarray, shape (sample, component)
        The member's activations projected on its component directions.
    labels : list of str
        ``"<var>:k=<k>"`` for Fourier directions, ``"pc<j>"`` for principal components.
    share : np.ndarray, shape (component,)
        Share of the member's (non-constant) variance each component carries.
    basis : {"fourier", "pca"}
    """

    values: np.ndarray
    labels: list[str]
    share: np.ndarray
    basis: str


def member_components(
    acts: np.ndarray,
    X: np.ndarray,
    names: Sequence[str],
    fit: np.ndarray,
    *,
    periodic: Mapping[str, int] | None = None,
    max_components: int = 4,
    variance_keep: float = 0.9,
) -> MemberComponents:
    """A member's own components: Fourier directions over a periodic input, else top PCs.

    Parameters
    ----------
    acts : np.ndarray, shape (sample, unit)
        The member's activations on the probe.
    X : np.ndarray, shape (sample, variable)
        Probe inputs named by ``names``.
    fit : np.ndarray of bool, shape (sample,)
        The fit split; directions are estimated on it only.
    periodic : mapping of str to int, optional
        Declared periodic inputs and periods. When the activations are (mostly, R^2 >= 0.5)
        functions of one of them, the components are the members' key frequencies over it: the
        frequencies ``k`` with the most power, until ``variance_keep`` of the power; for each,
        the top singular direction of the band ``k`` of the unit table.
    max_components : int
        At most this many components.
    variance_keep : float
        Stop adding components once they carry this share.

    Returns
    -------
    MemberComponents
    """
    if acts.ndim != 2 or len(acts) != len(X) or len(fit) != len(X):
        raise ShapeError(
            f"member_components: expected acts (sample, unit) with {len(X)} samples like the "
            f"probe and the split, got acts {acts.shape}, split {np.shape(fit)}"
        )
    centred = acts - acts[fit].mean(0)
    total = float((centred[fit] ** 2).sum()) or 1.0
    for var, period in (periodic or {}).items():
        if var not in names:
            continue
        v = X[:, list(names).index(var)]
        table = _group_means(centred[fit], v[fit], int(period))
        explained = float((table[np.mod(np.rint(v[fit]).astype(int), period)] ** 2).sum()) / total
        if explained >= 0.5:
            return _fourier(centred, v, table, var, int(period), max_components, variance_keep)
    return _pca(centred, fit, total, max_components, variance_keep)


def _fourier(centred, v, table, var, period, max_components, variance_keep) -> MemberComponents:
    power = fourier_power(table)[1:]
    order = np.argsort(-power, kind="stable")
    share = power[order] / max(float(power.sum()), 1e-300)
    n = min(max_components, int(np.searchsorted(np.cumsum(share), variance_keep - 1e-12)) + 1)
    grid = np.arange(period)
    dirs, labels = [], []
    for j in order[:n]:
        k = j + 1
        basis = np.column_stack(
            [np.cos(2 * np.pi * k * grid / period), np.sin(2 * np.pi * k * grid / period)]
        )
        band = basis @ np.linalg.lstsq(basis, table, rcond=None)[0]  # (period, unit)
        dirs.append(np.linalg.svd(band, full_matrices=False)[2][0])
        labels.append(f"{var}:k={k}")
    return MemberComponents(centred @ np.array(dirs).T, labels, share[:n], "fourier")


def _pca(centred, fit, total, max_components, variance_keep) -> MemberComponents:
    _, s, vt = np.linalg.svd(centred[fit], full_matrices=False)
    share = s**2 / total
    n = min(max_components, int(np.searchsorted(np.cumsum(share), variance_keep - 1e-12)) + 1)
    return MemberComponents(centred @ vt[:n].T, [f"pc{j}" for j in range(n)], share[:n], "pca")


class FourierBackend:
    """Symbolic regression over declared periodic inputs: sums of ``A cos(2 pi k v/p + phi)``.

    For every periodic input ``v`` (period ``p``) and frequency ``k = 1 .. p // 2`` the
    amplitude and phase are the least-squares fit of ``cos`` and ``sin`` of ``2 pi k v / p``;
    terms are added greedily (the one that lowers the error most) up to ``max_terms``, and
    every prefix is a candidate of the Pareto front.

    Parameters
    ----------
    periodic : mapping of str to int
        Periodic inputs and their periods.
    max_terms : int
        Most cosine terms in one formula.
    """

    name = "fourier"

    def __init__(self, periodic: Mapping[str, int], max_terms: int = 3) -> None:
        self.periodic = dict(periodic)
        self.max_terms = max_terms

    def _columns(self, X: np.ndarray, names: Sequence[str]) -> list[tuple[str, int, np.ndarray]]:
        cols = []
        for var, period in self.periodic.items():
            if var in names:
                v = X[:, list(names).index(var)]
                for k in range(1, int(period) // 2 + 1):
                    w = 2 * np.pi * k * v / period
                    cols.append((var, k, np.column_stack([np.cos(w), np.sin(w)])))
        return cols

    def fit(
        self, X: np.ndarray, y: np.ndarray, names: Sequence[str], *, seed: int, time_budget: float
    ) -> list[Candidate]:
        """Greedy Fourier fronts (``seed`` and ``time_budget`` are not needed: it is exact)."""
        cols = self._columns(X, names)
        if not cols:
            return []
        chosen: list[int] = []
        front = []
        for _ in range(min(self.max_terms, len(cols))):
            best = None
            for i in range(len(cols)):
                if i in chosen:
                    continue
                A = np.column_stack([*(cols[j][2] for j in [*chosen, i]), np.ones(len(y))])
                coef, *_ = np.linalg.lstsq(A, y, rcond=None)
                err = float(np.mean((A @ coef - y) ** 2))
                if best is None or err < best[0]:
                    best = (err, i, coef)
            chosen.append(best[1])
            front.append(make_candidate(self._expr(cols, chosen, best[2]), X, y, names))
        return pareto_front(front)

    def _expr(self, cols, chosen: list[int], coef: np.ndarray) -> sympy.Expr:
        out = sympy.Float(float(coef[-1]))
        for n, j in enumerate(chosen):
            var, k, _ = cols[j]
            a, b = coef[2 * n], coef[2 * n + 1]
            amp, phase = (
                math.hypot(a, b),
                math.atan2(-b, a),
            )  # a cos w + b sin w = amp cos(w + phase)
            w = sympy.Float(2 * math.pi * k / self.periodic[var]) * sympy.Symbol(var)
            out += sympy.Float(amp) * sympy.cos(w + sympy.Float(phase))
        return out
