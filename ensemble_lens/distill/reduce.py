"""Formulas modulo one another: the simpler generator of the same invariants.

Conserved quantities and invariants are defined only up to functions of one another. Networks
that encode ``tr`` and ``tr^2 - 4 det`` hold the invariants of a 2x2 matrix as fully as networks
that encode ``tr`` and ``det``, and a search on the second component writes the longer formula.
:func:`polynomial_reduction` finds, for polynomial formulas, the products of the other formulas
whose subtraction leaves the fewest monomials; :class:`FixedFront` hands the reduced structure
to the usual canonicalisation and judgement as a one-candidate "front".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import sympy

from ._candidate import Candidate, make_candidate
from ._expr import evaluate, r2_score, symbols_for
from .canonical import rounded_form
from .distill import distill_component
from .sparse import library

__all__ = ["FixedFront", "Reduction", "Split", "polynomial_reduction", "reduce_modulo_others"]

log = logging.getLogger(__name__)

#: a monomial whose coefficient is below this share of the largest one counts as cancelled
#: (the formulas' constants come from a noisy search)
CANCEL_TOL = 0.03
#: products of other formulas subtracted, at most
MAX_STEPS = 3


@dataclass(frozen=True)
class Reduction:
    """``expr = sum(c_m * generators[m]) + sum(a_t * monomials[t]) + const``, with fewer
    monomials than ``expr`` itself; ``sources[m]`` are the indices (into ``others``) of the
    formulas generator ``m`` is made of, and ``factored[m]`` is the generator written as that
    product (for display; ``generators[m]`` is it expanded)."""

    generators: list[sympy.Expr]
    sources: list[tuple[int, ...]]
    monomials: list[sympy.Expr]
    factored: list[sympy.Expr]


def _coefficients(expr: sympy.Expr, symbols: Sequence[sympy.Symbol]) -> dict[tuple, float] | None:
    """Monomial -> coefficient of a polynomial formula (constant term dropped), else None."""
    try:
        poly = sympy.Poly(sympy.expand(expr), *symbols)
        zero = (0,) * len(symbols)
        return {m: float(c) for m, c in poly.terms() if m != zero}
    except (sympy.PolynomialError, TypeError):  # not a polynomial, or complex coefficients
        return None


def _without_constant(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` minus its constant term (products of the formula then carry no stray lower
    powers: span{g, g^2, 1} = span{g - k, (g - k)^2, 1})."""
    const, _ = sympy.expand(expr).as_coeff_Add()
    return sympy.expand(expr - const)


def polynomial_reduction(
    expr: sympy.Expr,
    others: Sequence[sympy.Expr],
    names: Sequence[str],
    X: np.ndarray,
) -> Reduction | None:
    """The products of ``others`` (each, squares, pairwise products) whose subtraction leaves
    ``expr`` with the fewest monomials; None when nothing is cancelled or a formula is not a
    polynomial of the inputs.

    Greedy: at each step (at most ``MAX_STEPS``), every generator ``g`` and every monomial
    ``t`` of ``g`` give a multiple ``c = expr[t] / g[t]`` that cancels ``t``; the one that
    leaves the fewest monomials is taken, while it leaves fewer than before. A monomial counts
    as cancelled when its contribution on the inputs ``X`` (sample, variable), ``|coef| *
    std(monomial)``, is under ``CANCEL_TOL`` of the largest contribution in ``expr`` (the
    formulas' constants come from a noisy search; measuring on the data makes the rule
    independent of the inputs' units).

    Examples
    --------
    >>> a, b, c, d = sympy.symbols("a b c d")
    >>> X = np.random.default_rng(0).uniform(-1, 1, size=(500, 4))
    >>> red = polynomial_reduction(0.8 * (a + d) ** 2 - 3.2 * (a * d - b * c),
    ...                            [1.5 * (a + d) + 0.2], ["a", "b", "c", "d"], X)
    >>> red.monomials, red.sources
    ([b*c, a*d], [(0, 0)])
    """
    symbols = symbols_for(names)
    target = _coefficients(expr, symbols)
    usable = [i for i, g in enumerate(others) if g is not None]
    base = [(_without_constant(others[i]), (i,)) for i in usable]
    pairs = [(g * h, si + sh) for n, (g, si) in enumerate(base) for h, sh in base[n:]]
    gens = [(g, src, g) for g, src in base] + [(sympy.expand(p), src, p) for p, src in pairs]
    vecs = [_coefficients(g, symbols) for g, _, _ in gens]
    if not target or any(v is None for v in vecs):
        return None
    spread = _monomial_spread(set(target).union(*[set(v or {}) for v in vecs]), X)
    scale = max(abs(c) * spread[m] for m, c in target.items())

    def survivors(v: dict[tuple, float]) -> int:
        return sum(abs(c) * spread[m] > CANCEL_TOL * scale for m, c in v.items())

    current, used, left = dict(target), [], survivors(target)
    for _ in range(MAX_STEPS):
        best = None
        for k, v in enumerate(vecs):
            if k in used or not v:
                continue
            for t, gt in v.items():
                if t not in current or gt == 0:
                    continue
                mult = current[t] / gt
                trial = {
                    m: current.get(m, 0.0) - mult * v.get(m, 0.0) for m in set(current) | set(v)
                }
                n = survivors(trial)
                if best is None or n < best[0]:
                    best = (n, k, trial)
        if best is None or best[0] >= left:
            break
        left, current = best[0], best[2]
        used.append(best[1])
    monomials = [
        sympy.Mul(*[s**p for s, p in zip(symbols, m, strict=True)])
        for m, c in sorted(current.items())
        if abs(c) * spread[m] > CANCEL_TOL * scale
    ]
    if not used or not monomials:
        return None
    return Reduction(
        [gens[k][0] for k in used],
        [gens[k][1] for k in used],
        monomials,
        [gens[k][2] for k in used],
    )


def _monomial_spread(monomials: set[tuple], X: np.ndarray) -> dict[tuple, float]:
    """Standard deviation of each monomial (exponent tuple) over the rows of X."""
    order = sorted(monomials)
    spread = library(X, np.array(order, dtype=float).reshape(len(order), X.shape[1])).std(axis=0)
    return dict(zip(order, spread.tolist(), strict=True))


class FixedFront:
    """A "backend" whose front is given: the least-squares combination of fixed terms.

    ``fit`` fits ``y ~ sum(a_t * term_t) + b`` and returns it as a one-candidate front, so a
    structure found otherwise (here: a reduction) is canonicalised, scored and judged like any
    searched formula.
    """

    name = "reduction"

    def __init__(self, terms: Sequence[sympy.Expr]) -> None:
        self.terms = list(terms)

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        names: Sequence[str],
        *,
        seed: int,
        time_budget: float | None = None,
    ) -> list[Candidate]:
        del seed, time_budget  # deterministic and instant
        A = np.column_stack([evaluate(t, X, names) for t in self.terms] + [np.ones(len(y))])
        coef = np.linalg.lstsq(A, y, rcond=None)[0]
        expr = sum(
            (sympy.Float(a) * t for a, t in zip(coef[:-1], self.terms, strict=True)),
            sympy.Float(coef[-1]),
        )
        return [make_candidate(expr, X, y, names)]


class Split(NamedTuple):
    """Inputs, components (sample, c) and member scores (member, test sample, c) of a search."""

    X_fit: np.ndarray
    X_test: np.ndarray
    Y_fit: np.ndarray
    Y_test: np.ndarray
    M_test: np.ndarray


#: least test R^2 of a formula that other components are reduced modulo
MIN_GENERATOR_R2 = 0.9


def reduce_modulo_others(
    results: list[Any],
    split: Split,
    names: list[str],
    *,
    extrapolate: Callable[[np.ndarray, np.ndarray], tuple[Any, Any]] | None = None,
    r2_tolerance: float = 0.01,
    **options: Any,
) -> list[Any]:
    """Each component's formula modulo the other components' formulas, where that is simpler.

    Conserved quantities and invariants are known only up to functions of one another
    (:mod:`ensemble_lens.distill.reduce`). For each component ``j`` whose formula is a
    polynomial of the inputs, :func:`~ensemble_lens.distill.reduce.polynomial_reduction`
    finds the products of the other components' formulas (those with test R^2 >=
    ``MIN_GENERATOR_R2``) whose subtraction cancels the most monomials. Their multiples and
    the surviving monomials are refitted together on the component (fit split); the surviving
    monomials, as the formula of the remainder ``y_j - sum(c_m g_m)``, are canonicalised and
    judged like any formula (members' scores reduced the same way; extrapolation target
    ``extrapolate(X_test, remainder)``; exact recovery). The reduction replaces the component's
    formula when it is simpler (lower complexity) and the rebuilt component
    ``formula + sum(c_m g_m)`` explains the component on the test split as well (R^2 within
    ``r2_tolerance``), and when none of the components it is reduced modulo has itself been
    replaced (no two components reduced modulo each other). ``options``: those of
    :func:`~ensemble_lens.distill.distill_component` (the backend's are not used).
    """
    search_only = ("executor", "backend", "backend_options", "seed", "dimensions")
    judge = {k: v for k, v in options.items() if k not in search_only}
    exprs = [
        r.expr if r.expr is not None and r.r2_test >= MIN_GENERATOR_R2 else None for r in results
    ]
    out = list(results)
    locked: set[int] = set()  # components others are reduced modulo
    for j, before in enumerate(results):
        others = [e if i != j else None for i, e in enumerate(exprs)]
        if before.expr is None or j in locked:
            continue
        red = polynomial_reduction(before.expr, others, names, split.X_fit)
        if red is None:
            continue
        used = sorted({i for src in red.sources for i in src})
        if any(out[i].reduced_modulo is not None for i in used):
            continue
        G_fit, G_test = (
            np.column_stack([evaluate(g, x, names) for g in red.generators])
            for x in (split.X_fit, split.X_test)
        )
        T_fit = np.column_stack([evaluate(t, split.X_fit, names) for t in red.monomials])
        A = np.column_stack([T_fit, G_fit, np.ones(len(T_fit))])
        if not (np.isfinite(A).all() and np.isfinite(G_test).all()):
            continue
        c = np.linalg.lstsq(A, split.Y_fit[:, j], rcond=None)[0][T_fit.shape[1] : -1]
        g_test = G_test @ c
        r_test = split.Y_test[:, j] - g_test
        Xe, Ye = extrapolate(split.X_test, r_test[:, None]) if extrapolate else (None, None)
        res = distill_component(
            split.X_fit,
            split.Y_fit[:, j] - G_fit @ c,
            names,
            X_test=split.X_test,
            y_test=r_test,
            backend=FixedFront(red.monomials),
            seed=before.seed,
            X_extrap=Xe,
            y_extrap=None if Ye is None else Ye[:, 0],
            member_scores=split.M_test[:, :, j] - g_test[None],
            component=before.component,
            **judge,
        )
        if res.expr is None or res.complexity >= before.complexity:
            continue
        rebuilt = r2_score(evaluate(res.expr, split.X_test, names) + g_test, split.Y_test[:, j])
        if rebuilt < before.r2_test - r2_tolerance:
            continue
        modulo = sum(
            (sympy.Float(cm) * g for cm, g in zip(c, red.factored, strict=True)), sympy.Integer(0)
        )
        res.r2_test = rebuilt
        res.reduced_modulo = [str(results[i].component) for i in used]
        res.modulo_expr = rounded_form(modulo, digits=4)
        res.unreduced_expr = before.expr
        res.unreduced_exact_recovery = before.exact_recovery
        res.unreduced_truth_name = before.truth_name
        res.backend, res.front = before.backend, before.front
        res.seconds += before.seconds
        log.info(
            "component %s: %s modulo %s (component = formula + %s; was %s)",
            res.component,
            res.expr,
            res.reduced_modulo,
            res.modulo_expr,
            before.expr,
        )
        out[j] = res
        locked.update(used)
    return out
