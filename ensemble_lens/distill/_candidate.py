"""A candidate formula and the small helpers every backend shares (front, subsampling).

Kept apart from :mod:`~ensemble_lens.distill.backends` so that the backends and the sparse
library backend both import it without importing each other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy

from ._expr import complexity, evaluate

__all__ = ["Candidate", "make_candidate", "pareto_front", "subsample"]


@dataclass(frozen=True)
class Candidate:
    """One formula on a backend's Pareto front.

    Attributes
    ----------
    expr : sympy.Expr
        Formula over ``sympy.Symbol(name)`` for the input names given to ``fit``.
    complexity : int
        Number of nodes of ``expr`` (:func:`ensemble_lens.distill._expr.complexity`), the same
        measure for every backend.
    loss : float
        Mean squared error of ``expr`` on all the ``(X, y)`` given to ``fit``; ``inf`` when
        the formula is non-finite on some sample.
    """

    expr: sympy.Expr
    complexity: int
    loss: float


def make_candidate(
    expr: sympy.Expr, X: np.ndarray, y: np.ndarray, names: Sequence[str]
) -> Candidate:
    """Score one expression on ``(X, y)`` as a :class:`Candidate`."""
    pred = evaluate(expr, X, names)
    loss = float(np.mean((pred - y) ** 2)) if np.all(np.isfinite(pred)) else math.inf
    return Candidate(expr=expr, complexity=complexity(expr), loss=loss)


def pareto_front(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Non-dominated candidates (lower complexity, lower loss), sorted by complexity.

    Ties in complexity keep the lowest loss; candidates with infinite loss are dropped.
    """
    front: list[Candidate] = []
    for cand in sorted(candidates, key=lambda c: (c.complexity, c.loss)):
        if math.isfinite(cand.loss) and (not front or cand.loss < front[-1].loss):
            front.append(cand)
    return front


def subsample(
    X: np.ndarray, y: np.ndarray, max_points: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` rows drawn without replacement with ``seed`` (order kept)."""
    if len(X) <= max_points:
        return X, y
    rows = np.sort(np.random.default_rng(seed).choice(len(X), size=max_points, replace=False))
    return X[rows], y[rows]
