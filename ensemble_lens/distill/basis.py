"""Bases of a consensus subspace in which components can have simple formulas.

Chosen from the inputs alone, never from the answer: :func:`major_components` picks the
components an equivariant input-basis map is fitted on, and :func:`sparse_basis` disentangles a
subspace into components that each own a pivot monomial of the inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..align import input_basis_map
from .sparse import library, monomial_exponents

__all__ = ["major_components", "searched_basis", "sparse_basis"]


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
):
    """(labels, Y, member scores, basis name) in the basis the formulas are searched in.

    ``vec``: names of an input vector the latent turns with (equivariant map onto it), or
    None; ``Y`` (sample, c), ``M`` (member, sample, c), ``X`` (sample, variable) and
    ``weights`` (c, the components' variance shares); ``rows`` (sample,) bool: the samples
    the basis is learnt on (default all; the others, such as extrapolation samples, are
    mapped the same way). Basis names: "equivariant", "sparse" (:func:`sparse_basis`) or
    "aligned" (unchanged).
    """
    rows = np.ones(len(Y), bool) if rows is None else rows
    if vec and Y.shape[1] >= len(vec) and all(v in names for v in vec):
        top = major_components(weights, len(vec))
        m = input_basis_map(Y[rows][:, top], X[rows], vector_names=vec, input_names=names)
        mapped = np.stack([s[:, top] @ m.matrix + m.offset for s in M])
        Y = Y[:, top] @ m.matrix + m.offset
        return [f"{v}-component" for v in vec], Y, mapped, "equivariant"
    if Y.shape[1] > 1:
        R = sparse_basis(Y[rows], X[rows])
        if R is not None:
            labels = [f"c{j}" for j in range(Y.shape[1])]
            return labels, Y @ R, np.einsum("ksc,cd->ksd", M, R), "sparse"
    return [f"c{j}" for j in range(Y.shape[1])], Y, M, "aligned"
