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

__all__ = [
    "FourierBackend",
    "MemberComponents",
    "Wave",
    "fourier_power",
    "member_components",
    "wave_terms",
    "waves",
]


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
class Wave:
    """One wave of the Fourier basis over declared periodic inputs.

    Attributes
    ----------
    terms : tuple of (str, int)
        ``(variable, k)`` of each input in the wave's phase ``2 pi sum_v k_v v / p_v``.
    columns : np.ndarray, shape (sample, 2)
        Its cosine and sine on the samples.
    """

    terms: tuple[tuple[str, int], ...]
    columns: np.ndarray

    @property
    def label(self) -> str:
        if len(self.terms) == 1:
            return f"{self.terms[0][0]}:k={self.terms[0][1]}"
        return f"{','.join(v for v, _ in self.terms)}:k=({','.join(str(k) for _, k in self.terms)})"


def wave_terms(
    names: Sequence[str], periodic: Mapping[str, int], *, joint: bool = True
) -> list[tuple[tuple[str, int], ...]]:
    """The ``terms`` of every wave of :func:`waves`, without their columns."""
    present = [(v, int(p)) for v, p in periodic.items() if v in names]
    specs: list[tuple[tuple[str, int], ...]] = [
        ((v, k),) for v, p in present for k in range(1, p // 2 + 1)
    ]
    if joint:
        for i, (v, p) in enumerate(present):
            for u, q in present[i + 1 :]:
                k2s = [k for k in range(-(q // 2), q // 2 + 1) if k]
                specs += [((v, k1), (u, k2)) for k1 in range(1, p // 2 + 1) for k2 in k2s]
    return specs


def _wave(
    terms: tuple[tuple[str, int], ...], X: np.ndarray, names: Sequence[str], periodic
) -> Wave:
    w = sum(2 * np.pi * k * X[:, list(names).index(v)] / periodic[v] for v, k in terms)
    return Wave(terms, np.column_stack([np.cos(w), np.sin(w)]))


def waves(
    X: np.ndarray, names: Sequence[str], periodic: Mapping[str, int], *, joint: bool = True
) -> list[Wave]:
    """The Fourier basis over the declared periodic inputs among ``names``: for each input
    ``v`` (period ``p``) the waves ``k = 1 .. p // 2``, and with ``joint`` for each pair
    ``(v, u)`` the waves ``(k1, k2)``, ``k1 = 1 .. p // 2``, ``k2 = +-1 .. +-(q // 2)`` (a
    function of ``v + u`` or ``v - u`` on Z_p is one of these; ``(k1, k2)`` and
    ``(-k1, -k2)`` are one wave)."""
    return [_wave(t, X, names, periodic) for t in wave_terms(names, periodic, joint=joint)]


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
    if sum(v in names for v in periodic or {}) >= 2:
        joint = _joint(centred, X, names, fit, periodic, total, max_components, variance_keep)
        if joint is not None:
            return joint
    return _pca(centred, fit, total, max_components, variance_keep)


#: the top waves must carry this share of a member's variance for the joint Fourier basis
JOINT_MIN_SHARE = 0.5
#: ... counting this many waves
JOINT_TOP = 10
#: waves whose least-squares parts are computed at once
WAVE_CHUNK = 256


def _joint(centred, X, names, fit, periodic, total, max_components, variance_keep):
    """Components over several periodic inputs at once: each wave's least-squares part of the
    units on the fit split (the probe need not cover Z_p x Z_q), the waves with the most
    power first; None when the top ``JOINT_TOP`` waves carry less than ``JOINT_MIN_SHARE``."""
    terms = wave_terms(names, periodic)
    Y, parts = centred[fit], []
    for start in range(0, len(terms), WAVE_CHUNK):  # chunks: p x q waves need not fit in memory
        basis = [_wave(t, X[fit], names, periodic) for t in terms[start : start + WAVE_CHUNK]]
        B = np.stack([w.columns for w in basis])  # (wave, sample, 2)
        gram = np.einsum("wsi,wsj->wij", B, B)  # one 2 x 2 normal equation per wave
        coefs = np.linalg.solve(gram + 1e-12 * np.eye(2), np.einsum("wsi,su->wiu", B, Y))
        power = np.einsum("wiu,wij,wju->w", coefs, gram, coefs) / total
        parts += [(float(pw), w, c) for pw, w, c in zip(power, basis, coefs, strict=True)]
    parts.sort(key=lambda t: -t[0])
    share = np.array([t[0] for t in parts])
    if share[:JOINT_TOP].sum() < JOINT_MIN_SHARE:
        return None
    n = min(max_components, int(np.searchsorted(np.cumsum(share), variance_keep - 1e-12)) + 1)
    dirs = [np.linalg.svd(coef, full_matrices=False)[2][0] for _, _, coef in parts[:n]]
    labels = [w.label for _, w, _ in parts[:n]]
    return MemberComponents(centred @ np.array(dirs).T, labels, share[:n], "fourier")


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
    joint : bool
        Also the joint waves ``cos(2 pi (k1 v / p + k2 u / q) + phi)`` of every pair of
        periodic inputs (:func:`waves`): a function of ``a + b`` is one such term.
    """

    name = "fourier"

    def __init__(self, periodic: Mapping[str, int], max_terms: int = 3, joint: bool = True) -> None:
        self.periodic = dict(periodic)
        self.max_terms = max_terms
        self.joint = joint

    def _columns(self, X: np.ndarray, names: Sequence[str]) -> list[Wave]:
        return waves(X, names, self.periodic, joint=self.joint)

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        names: Sequence[str],
        *,
        seed: int,
        time_budget: float | None = None,
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
                A = np.column_stack([*(cols[j].columns for j in [*chosen, i]), np.ones(len(y))])
                coef, *_ = np.linalg.lstsq(A, y, rcond=None)
                err = float(np.mean((A @ coef - y) ** 2))
                if best is None or err < best[0]:
                    best = (err, i, coef)
            chosen.append(best[1])
            front.append(make_candidate(self._expr(cols, chosen, best[2]), X, y, names))
        return pareto_front(front)

    def _expr(self, cols: list[Wave], chosen: list[int], coef: np.ndarray) -> sympy.Expr:
        out = sympy.Float(float(coef[-1]))
        for n, j in enumerate(chosen):
            a, b = coef[2 * n], coef[2 * n + 1]
            amp, phase = (
                math.hypot(a, b),
                math.atan2(-b, a),
            )  # a cos w + b sin w = amp cos(w + phase)
            w = sympy.Add(
                *(
                    sympy.Float(2 * math.pi * k / self.periodic[var]) * sympy.Symbol(var)
                    for var, k in cols[j].terms
                )
            )
            out += sympy.Float(amp) * sympy.cos(w + sympy.Float(phase))
        return out
