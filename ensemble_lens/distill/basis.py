"""Bases of a consensus subspace in which components can have simple formulas.

Chosen from the inputs alone, never from the answer: :func:`major_components` picks the
components an equivariant input-basis map is fitted on, and :func:`sparse_basis` disentangles a
subspace into components that each own a pivot monomial of the inputs. A layer whose units
every member shares (a regression output: each unit is a prediction in the target's units) is
searched in those units (:func:`units_map`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..align import input_basis_map
from .sparse import library, monomial_exponents

__all__ = [
    "SHARED_UNITS_SPREAD",
    "UNITS_R2",
    "major_components",
    "searched_basis",
    "shared_units",
    "sparse_basis",
    "units_map",
]

#: members share a layer's units when each member's raw value of every unit stays within this
#: share of the unit's spread (RMS over the samples) of the members' mean
SHARED_UNITS_SPREAD = 0.1

#: how closely (affine R^2) the consensus subspace must reproduce every shared unit before the
#: search takes the units' frame
UNITS_R2 = 0.999


def major_components(weights: np.ndarray, at_least: int, share: float = 0.95) -> np.ndarray:
    """Indices of the fewest largest-variance components holding ``share`` of the variance.

    The equivariant map is fitted on these only: small components can carry further vector
    fields ``s'(x) d`` (gauge terms of the receiver), and with several such fields in the span
    the most-parallel map is not identified.
    """
    order = np.argsort(-weights, kind="stable")
    cum = np.cumsum(weights[order]) / max(float(weights.sum()), 1e-300)
    k = max(at_least, int(np.searchsorted(cum, share - 1e-12)) + 1)
    return np.sort(order[: min(k, len(order))])


def shared_units(activations: Sequence[Any]) -> np.ndarray | None:
    """The members' mean raw activations (sample, unit) when every member shares the layer's
    units, else None.

    ``activations``: one (sample, unit) array per member, on the same samples (lazy arrays
    are read one at a time: a hidden layer is told apart by its first two members, and
    memory stays at two arrays besides the mean). Shared means equal widths and, for every
    unit, each member's raw values within :data:`SHARED_UNITS_SPREAD` of the unit's spread of
    the mean (RMS), with no alignment: true of a regression output (every member predicts the
    same target in its units) and false of a hidden layer, whose units each member orders and
    scales its own way. One member shares nothing: its hidden units' offsets are its own.
    """
    if len(activations) < 2:
        return None

    def read(a: Any) -> np.ndarray | None:
        out = np.asarray(getattr(a, "values", a), dtype=np.float64)
        return out if out.ndim == 2 and np.isfinite(out).all() else None

    first, second = read(activations[0]), read(activations[1])
    if first is None or second is None or second.shape != first.shape:
        return None
    # the cheap refusal: two members that already disagree
    if (np.sqrt(((first - second) ** 2).mean(0)) > 2 * SHARED_UNITS_SPREAD * first.std(0)).any():
        return None
    total = first.copy()
    for a in activations[1:]:
        arr = read(a)
        if arr is None or arr.shape != first.shape:
            return None
        total += arr
    mean = total / len(activations)
    limit = SHARED_UNITS_SPREAD * mean.std(0)
    if not (limit > 0).all():
        return None
    for a in activations:
        if (np.sqrt(((read(a) - mean) ** 2).mean(0)) > limit).any():
            return None
    return mean


def units_map(
    Y: np.ndarray, units: np.ndarray, rows: np.ndarray, min_r2: float = UNITS_R2
) -> tuple[np.ndarray, np.ndarray] | None:
    """The affine map ``(A, b)`` taking the consensus subspace ``Y`` (sample, c) onto the
    layer's shared ``units`` (sample, c): the members' mean raw activations, fitted on ``rows``;
    None unless there are as many units as components and the map reproduces every unit to
    ``min_r2``.

    Why: the consensus is centred and scaled, so a law ``f`` reaches the search as
    ``a*f + b``. pyoperon scores its trees after a least-squares scale and offset, but fits
    their constants (Levenberg-Marquardt) against the raw target, and an offset the tree does
    not carry bends those constants: on AI Feynman's I.6.2a at noise 0.01, six searches found
    ``exp(-theta**2/2)`` once on the centred consensus, four times on the same consensus
    mapped back onto the members' output units, and five times on the noise-free law itself.
    A regression output's units are the target's, where a law has no offset of ours.
    """
    if units.ndim != 2 or units.shape[1] != Y.shape[1] or len(units) != len(Y):
        return None
    rows = rows & np.isfinite(units).all(1)
    if rows.sum() <= Y.shape[1] + 1:
        return None
    design = np.c_[Y[rows], np.ones(int(rows.sum()))]
    coef = np.linalg.lstsq(design, units[rows], rcond=None)[0]
    resid = units[rows] - design @ coef
    spread = units[rows].var(0)
    if not (spread > 0).all() or (1 - resid.var(0) / spread).min() < min_r2:
        return None
    return coef[:-1], coef[-1]


def sparse_basis(
    Y: np.ndarray,
    X: np.ndarray,
    *,
    max_degree: int = 4,
    tol: float = 0.05,
    target: float = 0.999,
    max_corr: float = 0.95,
) -> Any:
    """A change of basis R (c, c) of the subspace Y (n, c) whose columns have simple formulas.

    The monomials of the inputs that explain the subspace are chosen by simultaneous
    orthogonal matching pursuit (greedy, jointly for all components, until every component is
    explained to R^2 >= ``target``; robust to the collinear libraries that redundant inputs
    such as ``r`` next to ``x, y`` make). Their coefficient matrix C (c, terms) is brought to
    reduced row echelon form with pivots taken greedily from the simplest monomials, and basis
    component ``j`` is the combination that contains pivot monomial ``j`` and no other pivot.
    Returns None when the library cannot explain the subspace (R^2 < 0.9), or when the new
    basis is degenerate (two of its components correlate beyond ``max_corr``: with imperfect
    members a noise monomial can become a pivot, and the general linear map then squeezes one
    quantity into a near copy of another -- Kepler members trained on 10 % of the data gave
    two angular momenta and no energy): the components are then searched as aligned.
    """
    n = min(len(Y), 3000)
    Xs, Ys = X[:n], Y[:n] - Y[:n].mean(0)
    Ys = Ys / Ys.std(0)
    exps = monomial_exponents(Xs, max_power=2, max_degree=max_degree)
    theta = library(Xs, exps)
    ok = np.isfinite(theta).all(0) & (theta.std(0) > 0)
    exps, theta = exps[ok], theta[:, ok]
    theta = (theta - theta.mean(0)) / theta.std(0)
    chosen, coef = _somp(theta, Ys, max_terms=6 * Y.shape[1], target=target)
    r2 = 1 - (Ys - theta[:, chosen] @ coef).var(0)
    if r2.min() < 0.9:
        return None
    order = sorted(range(len(chosen)), key=lambda i: (np.abs(exps[chosen[i]]).sum(), chosen[i]))
    C = coef.T  # (c, chosen terms)
    pivots: list[int] = []
    for t in order:
        if len(pivots) == C.shape[0]:
            break
        col = C[:, t]
        if pivots:
            basis = C[:, pivots]
            col = col - basis @ np.linalg.lstsq(basis, col, rcond=None)[0]
        if np.linalg.norm(col) > tol * np.linalg.norm(C[:, t]) + 1e-12:
            pivots.append(t)
    if len(pivots) < C.shape[0]:
        return None
    R = np.linalg.inv(C[:, pivots].T) / Y[:n].std(0)[:, None]
    corr = np.corrcoef((Y[:n] @ R).T)
    if np.abs(corr[~np.eye(len(corr), dtype=bool)]).max() > max_corr:
        return None
    return R


def _somp(theta: np.ndarray, Y: np.ndarray, max_terms: int, target: float):
    """Simultaneous OMP: greedy columns of ``theta`` explaining every column of ``Y``."""
    chosen: list[int] = []
    resid, coef = Y, np.zeros((0, Y.shape[1]))
    for _ in range(min(max_terms, theta.shape[1])):
        score = np.linalg.norm(theta.T @ resid, axis=1)
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
        coef = np.linalg.lstsq(theta[:, chosen], Y, rcond=None)[0]
        resid = Y - theta[:, chosen] @ coef
        if (1 - resid.var(0) / Y.var(0)).min() >= target:
            break
    return chosen, coef


def searched_basis(
    vec: tuple[str, ...] | None,
    Y: np.ndarray,
    M: np.ndarray,
    X: np.ndarray,
    names: list[str],
    weights: np.ndarray,
    rows: np.ndarray | None = None,
    units: np.ndarray | None = None,
):
    """(labels, Y, member scores, basis name) in the basis the formulas are searched in.

    ``vec``: names of an input vector the latent turns with (equivariant map onto it), or
    None; ``Y`` (sample, c), ``M`` (member, sample, c), ``X`` (sample, variable) and
    ``weights`` (c, the components' variance shares); ``rows`` (sample,) bool: the samples
    the basis is learnt on (default all; the others, such as extrapolation samples, are
    mapped the same way); ``units`` (sample, unit): the members' mean raw activations when
    every member shares the layer's units (NaN where unknown), else None. Basis names:
    "equivariant", "units" (:func:`units_map`: the layer's own units, labels ``u0``, ...),
    "sparse" (:func:`sparse_basis`) or "aligned" (unchanged).
    """
    rows = np.ones(len(Y), bool) if rows is None else rows
    if vec and Y.shape[1] >= len(vec) and all(v in names for v in vec):
        top = major_components(weights, len(vec))
        m = input_basis_map(Y[rows][:, top], X[rows], vector_names=vec, input_names=names)
        mapped = np.stack([s[:, top] @ m.matrix + m.offset for s in M])
        Y = Y[:, top] @ m.matrix + m.offset
        return [f"{v}-component" for v in vec], Y, mapped, "equivariant"
    if units is not None and (m := units_map(Y, units, rows)) is not None:
        A, b = m
        labels = [f"u{j}" for j in range(Y.shape[1])]
        return labels, Y @ A + b, np.einsum("ksc,cd->ksd", M, A) + b, "units"
    if Y.shape[1] > 1:
        R = sparse_basis(Y[rows], X[rows])
        if R is not None:
            labels = [f"c{j}" for j in range(Y.shape[1])]
            return labels, Y @ R, np.einsum("ksc,cd->ksd", M, R), "sparse"
    return [f"c{j}" for j in range(Y.shape[1])], Y, M, "aligned"
