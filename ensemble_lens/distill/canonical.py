"""Canonical form of a candidate formula: tidy, prune, refit scale and offset, round.

The order matters and is fixed (see :func:`canonicalize`):

0. :func:`fold_phases` -- a phase within :data:`PHASE_TOL` of a quarter turn is folded
   (``cos(u - 1.5708)`` is ``sin(u)``).
1. :func:`tidy` -- cheap algebra (``together``/``cancel``/``factor_terms``, and full
   ``sympy.simplify`` only for small expressions). sympy's ``simplify`` can run for minutes on a
   large expression and a wall-clock alarm does not work in executor threads, so the guard is
   the expression size (:func:`~ensemble_lens.distill._expr.complexity`), not a timer.
2. :func:`prune_terms` -- drop additive terms (at any level of the tree) whose removal changes
   the predictions, after the best affine compensation, by less than ``rel_tol`` of the
   target's standard deviation.
3. :func:`refit_affine` -- least squares ``y ~ a * f(x) + b``, then every constant refitted
   together (:func:`~ensemble_lens.distill.constants.polish_constants`); a term that refit
   leaves negligible is pruned (step 2) and the formula refitted once more.
4. The unrounded result is what exact-recovery checks see ("simplify before rounding").
5. :func:`round_constants` -- constants near a small-denominator rational become that
   rational; the others are rounded to ``digits`` significant digits.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy

from ._expr import affine_fit, complexity, evaluate

logger = logging.getLogger(__name__)

#: expressions larger than this (nodes) only get the cheapest normalisation
MAX_ALGEBRA_NODES = 120
#: full ``sympy.simplify`` is attempted only below this size (nodes)
MAX_SIMPLIFY_NODES = 20


#: a constant phase within this many radians (of a 2 pi period, scaled with the period) of a
#: quarter turn is that quarter turn (:func:`fold_phases`): 0.02 rad moves a wave by 2 % of its
#: amplitude, the tolerance that prunes a formula's terms
PHASE_TOL = 0.02
#: a factor within this of 1 is dropped before forms are compared (:func:`unit_free`): the
#: constants' precision (``judge.CONST_TOL``)
UNIT_TOL = 0.02


@functools.lru_cache(maxsize=64)
def _period(func: type) -> sympy.Expr | None:
    """The period of a one-argument function (sympy), or None."""
    x = sympy.Dummy("x")
    try:
        period = sympy.periodicity(func(x), x)
    except NotImplementedError:
        return None
    return period if period is not None and period.is_number and period.is_positive else None


def _fold(node: sympy.Expr, tol: float) -> sympy.Expr:
    period = _period(node.func)
    shift = [t for t in sympy.Add.make_args(node.args[0]) if t.is_Number]
    if period is None or not shift:
        return node
    phase, quarter = float(sum(shift)), float(period) / 4
    k = round(phase / quarter)
    if abs(phase - k * quarter) > tol * float(period) / (2 * math.pi):
        return node
    return node.func(node.args[0] - sum(shift) + (k % 4) * period / 4)


def fold_phases(expr: sympy.Expr, *, tol: float = PHASE_TOL) -> sympy.Expr:
    """Constant phases of periodic functions near a quarter turn folded into the function:
    ``cos(u - 1.5708) -> sin(u)``, ``sin(u + 3.1416) -> -sin(u)`` (the sign then sits in the
    amplitude), ``cos(u + 6.2832) -> cos(u)``.

    Examples
    --------
    >>> import sympy
    >>> x = sympy.Symbol("x")
    >>> fold_phases(2.0 * sympy.cos(1.5 * x - 1.5708) + 1)
    2.0*sin(1.5*x) + 1
    >>> fold_phases(2.0 * sympy.sin(1.5 * x + 3.1416))
    -2.0*sin(1.5*x)
    """
    return expr.replace(
        lambda n: isinstance(n, sympy.Function) and len(n.args) == 1 and n.args[0].is_Add,
        lambda n: _fold(n, tol),
    )


def unit_free(expr: sympy.Expr, *, tol: float = UNIT_TOL) -> sympy.Expr:
    """``expr`` with every numeric factor within ``tol`` of 1 (or -1) of a product replaced
    by 1 (or -1): ``1.002*dy*(...)`` is the form ``dy*(...)`` (used before forms are compared,
    never for values)."""

    def unit(node: sympy.Expr) -> sympy.Expr:
        out = []
        for f in node.args:
            if f.is_Float and abs(abs(float(f)) - 1.0) <= tol:
                out.append(sympy.Integer(1 if f > 0 else -1))
            else:
                out.append(f)
        return sympy.Mul(*out)

    return expr.replace(lambda n: n.is_Mul, unit)


@dataclass(frozen=True)
class CanonicalForm:
    """A formula after canonicalisation.

    Attributes
    ----------
    exact : sympy.Expr
        Tidied, pruned and affinely refitted expression with unrounded constants; used for
        exact-recovery checks and scoring.
    display : sympy.Expr
        ``exact`` with constants snapped/rounded; what people read.
    n_pruned : int
        Number of additive terms removed by :func:`prune_terms`.
    """

    exact: sympy.Expr
    display: sympy.Expr
    n_pruned: int


def tidy(expr: sympy.Expr, *, simplify_max_nodes: int = MAX_SIMPLIFY_NODES) -> sympy.Expr:
    """Cheap algebraic normalisation; returns the smallest of a few equivalent forms.

    Parameters
    ----------
    expr : sympy.Expr
        Any expression.
    simplify_max_nodes : int
        ``sympy.simplify`` is tried only when ``expr`` has at most this many nodes.

    Returns
    -------
    sympy.Expr
        An equivalent expression with no more nodes than ``expr``.

    Examples
    --------
    >>> import sympy
    >>> x = sympy.Symbol("x")
    >>> tidy((2 * x**2 + 2 * x) / (x + 1))
    2*x
    """
    size = complexity(expr)
    if size > MAX_ALGEBRA_NODES:
        return expr
    forms = [expr]
    steps = [sympy.factor_terms, lambda e: sympy.cancel(sympy.together(e))]
    if size <= simplify_max_nodes and not _simplify_is_costly(expr):
        steps.append(sympy.simplify)
    for step in steps:
        try:
            forms.append(step(expr))
        except (sympy.PolynomialError, sympy.CoercionFailed, ValueError, TypeError) as err:
            logger.debug("tidy: %s failed on %s: %s", step, expr, err)
    return min(forms, key=complexity)


#: a trigonometric function whose argument expands into more terms than this is not handed to
#: ``sympy.simplify``: its trig rules (``fu``'s TR10/TR10i) try every split of the argument's
#: sum, so the time grows about 2-3x per term (0.7 s at 4 terms, 11 s at 7 on this machine)
MAX_TRIG_ARGUMENT_TERMS = 4


def _simplify_is_costly(expr: sympy.Expr) -> bool:
    """Whether ``sympy.simplify`` can take minutes on ``expr`` although it is small.

    Two shapes do, both found in formula-task searches:

    - a sum holding a function (``sin``, ``exp`` ...) raised to an integer power of 3 or
      more: simplify expands and factors it (trigsimp), e.g.
      ``(0.05*t + sin((0.2*t - 1.3)**2) - 0.2)**4``;
    - a trigonometric function whose argument expands into more than
      :data:`MAX_TRIG_ARGUMENT_TERMS` terms, e.g. ``sin(((0.69*s - 0.67*t + 0.62)*exp(-s) +
      0.26)**2)`` (ten terms, over 15 minutes in ``futrig``).

    The terms are counted without expanding (:func:`_expanded_terms`), so the check costs a
    walk of the tree.
    """
    for node in sympy.preorder_traversal(expr):
        if (
            isinstance(node, sympy.Pow)
            and node.exp.is_Integer
            and abs(int(node.exp)) >= 3
            and isinstance(node.base, sympy.Add)
            and node.base.atoms(sympy.Function)
        ):
            return True
        if isinstance(node, sympy.sin | sympy.cos | sympy.tan) and (
            _expanded_terms(node.args[0]) > MAX_TRIG_ARGUMENT_TERMS
        ):
            return True
    return False


def _expanded_terms(expr: sympy.Expr) -> int:
    """An upper bound on the number of terms ``sympy.expand(expr)`` has: a sum adds its
    arguments' counts, a product multiplies them, a positive integer power of a sum raises its
    count to that power; anything else is one term."""
    if isinstance(expr, sympy.Add):
        return sum(_expanded_terms(a) for a in expr.args)
    if isinstance(expr, sympy.Mul):
        return math.prod(_expanded_terms(a) for a in expr.args)
    if isinstance(expr, sympy.Pow) and expr.exp.is_Integer and int(expr.exp) > 0:
        return _expanded_terms(expr.base) ** int(expr.exp)
    return 1


def _drop_candidates(expr: sympy.Expr) -> list[sympy.Expr]:
    """Every expression obtained by deleting one argument of one ``Add`` node of ``expr``."""
    out = []
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Add) and len(node.args) > 1:
            for i in range(len(node.args)):
                rest = sympy.Add(*(node.args[:i] + node.args[i + 1 :]))
                out.append(expr.xreplace({node: rest}))
    return out


def prune_terms(
    expr: sympy.Expr,
    X: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    *,
    rel_tol: float = 0.02,
) -> tuple[sympy.Expr, int]:
    """Greedily remove additive terms that barely change the formula's predictions.

    A term (an argument of any ``Add`` node: top level, inside a numerator, a denominator, a
    power base) is removed when the pruned formula, after its best affine refit, stays within
    ``rel_tol * std(y)`` (root mean square) of the *original* formula's predictions on ``X``.
    The smallest such change is taken first, then the search repeats.

    Parameters
    ----------
    expr : sympy.Expr
        Formula over ``sympy.Symbol(name)`` for ``name`` in ``names``.
    X : ndarray, shape (sample, variable)
        Data the formula is judged on.
    y : ndarray, shape (sample,)
        Target, only its spread is used.
    names : sequence of str
        Column names of ``X``.
    rel_tol : float
        Tolerance relative to ``std(y)``.

    Returns
    -------
    (sympy.Expr, int)
        The pruned formula and the number of terms removed.
    """
    f0 = evaluate(expr, X, names)
    scale = float(np.std(y))
    if not np.all(np.isfinite(f0)) or scale == 0.0:
        return expr, 0
    current, removed = expr, 0
    while complexity(current) <= MAX_ALGEBRA_NODES:
        best, best_change = None, np.inf
        for cand in _drop_candidates(current):
            g = evaluate(cand, X, names)
            if not np.all(np.isfinite(g)):
                continue
            a, b = affine_fit(g, f0)
            change = float(np.sqrt(np.mean((a * g + b - f0) ** 2)))
            if change < best_change:
                best, best_change = cand, change
        if best is None or best_change >= rel_tol * scale:
            break
        current, removed = best, removed + 1
    return current, removed


def refit_affine(
    expr: sympy.Expr,
    X: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    *,
    zero_tol: float = 0.02,
) -> sympy.Expr:
    """Refit scale and offset by least squares: returns ``a * expr + b``.

    ``a`` is distributed over the top-level terms of ``expr``; the offset ``b`` is dropped when
    ``|b| < zero_tol * std(y)`` (the same rule that prunes small additive terms). A formula
    that is constant on ``X`` becomes the constant ``mean(y)``.
    """
    f = evaluate(expr, X, names)
    if not np.all(np.isfinite(f)):
        return expr
    a, b = affine_fit(f, y)
    if a == 0.0:
        return sympy.Float(b)
    body = sympy.Add(*(sympy.Float(a) * t for t in sympy.Add.make_args(expr)))
    if abs(b) < zero_tol * float(np.std(y)):
        return body
    return body + sympy.Float(b)


def snap_number(value: float, *, digits: int = 4, max_denominator: int = 12) -> sympy.Expr:
    """A short rational within rounding error of ``value``, else a rounded Float.

    ``2.50017 -> 5/2``, ``-0.33331 -> -1/3``, ``1.23456 -> 1.235``, ``35.545 -> 35.55``
    (``digits=4``). The tolerance is half a unit in the ``digits``-th significant digit. A
    fraction is taken only when it is written with fewer digits than the rounded number
    (numerator and denominator together): within that tolerance some ``p/11`` or ``p/12``
    lies near most numbers, so ``391/11`` for 35.545 or ``69/11`` for 6.273 would be an
    accident of rounding, not a rational constant of the law.
    """
    if value == 0.0 or not np.isfinite(value):
        return sympy.Float(value)
    tol = 0.5 * 10.0 ** (math.floor(math.log10(abs(value))) + 1 - digits)
    for q in range(1, max_denominator + 1):
        p = round(value * q)
        written = len(str(abs(p))) + (len(str(q)) if q > 1 else 0)
        if p != 0 and written < digits + (q == 1) and abs(p / q - value) <= tol:
            return sympy.Rational(p, q)
    return sympy.Float(f"{value:.{digits}g}", digits)


def round_constants(expr: sympy.Expr, *, digits: int = 4) -> sympy.Expr:
    """Replace every Float in ``expr`` by :func:`snap_number` of it (exponents included)."""
    mapping = {f: snap_number(float(f), digits=digits) for f in expr.atoms(sympy.Float)}
    return expr.xreplace(mapping)


def monic_denominators(expr: sympy.Expr) -> sympy.Expr:
    """Each sum in a denominator divided by its constant term, the constant moved out front.

    A ratio leaves one scale free: ``0.5071*s/(e*(0.5062*chi + 0.509))`` and
    ``0.9963*s/(e*(0.9945*chi + 1))`` are the same function, and the search returns whichever
    its constants drifted to. Fixing the constant term of every denominator sum at 1 writes
    the law as it is usually written, and leaves every remaining constant determined by the
    data (so each member's refit of it means something). Only a fitted constant is moved,
    never one that rounds to a short exact number (``1/(x - 2.0)`` stays); sums without a constant
    term, fractional powers of sums whose constant is negative, and a form that would grow
    are left as they are. A sum with no constant term inside an integer power is divided by its
    largest fitted coefficient instead, and inside an odd power negated when that turns most of
    its signs, or half of them and the product's, positive (``-0.038*c*w/(-0.038*c + 0.038*v)``
    is ``c*w/(c - v)``).

    >>> s, x = sympy.symbols("s x")
    >>> monic_denominators(0.5 * s / (2.1 * x + 4.2))
    0.119047619047619*s/(0.5*x + 1)
    """

    def fix(node: sympy.Expr) -> sympy.Expr:
        scale, factors = sympy.Integer(1), []
        negative = node.as_coeff_Mul()[0] < 0
        for f in sympy.Mul.make_args(node):
            base, e = f.as_base_exp()
            if isinstance(base, sympy.Add) and e.is_Rational and e < 0:
                c, rest = base.as_coeff_Add()
                if _fitted(c) and (e.is_Integer or c > 0):
                    f = sympy.Add(1, *(t / c for t in sympy.Add.make_args(rest))) ** e
                    scale *= c**e
                elif c == 0 and e.is_Integer:
                    lead = _lead_coefficient(base)
                    if lead is not None:  # no constant term: the largest coefficient is 1
                        base = sympy.Add(*(_divided(t, lead) for t in sympy.Add.make_args(base)))
                        scale *= lead**e
                        negative = negative != bool(lead < 0 and e % 2)
                    if e % 2 and _mostly_negative(base, negative):
                        base, scale = -base, -scale  # -c*w/(v - c) reads c*w/(c - v)
                        negative = not negative
                    f = base**e
            factors.append(f)
        return scale * sympy.Mul(*factors) if scale != 1 else node

    fixed = expr.replace(lambda n: isinstance(n, sympy.Mul | sympy.Pow), fix)
    return fixed if complexity(fixed) <= complexity(expr) else expr


def _lead_coefficient(total: sympy.Add) -> sympy.Float | None:
    """The fitted coefficient of largest magnitude among the terms of a sum with no constant
    term, when every term has a numeric coefficient and one of them is fitted; else None."""
    coefs = [t.as_coeff_Mul()[0] for t in sympy.Add.make_args(total)]
    lead = max(coefs, key=lambda c: abs(float(c)))
    return lead if _fitted(lead) else None


def _divided(term: sympy.Expr, c: sympy.Expr) -> sympy.Expr:
    """``term / c``, exactly the rest of the term when ``c`` is its coefficient (no ``1.0*``)."""
    coef, rest = term.as_coeff_Mul()
    return rest if coef == c else term / c


def _mostly_negative(total: sympy.Add, negative: bool) -> bool:
    """Whether a sum with no constant term reads better negated inside an odd power: more
    than half its terms negative, or half and the product it divides negative."""
    terms = sympy.Add.make_args(total)
    minus = sum(1 for t in terms if t.could_extract_minus_sign())
    return 2 * minus > len(terms) or (2 * minus == len(terms) and negative)


def _fitted(c: sympy.Expr) -> bool:
    """A float constant that does not round to a short exact number (2, -3, 1/2, 12):
    ``3.0`` in ``1/(3.0 - x)`` is the law's own, 1956.2 or 0.509 are where a fit left a free
    scale."""
    if not isinstance(c, sympy.Float) or c == 0:
        return False
    snapped = snap_number(float(c))
    return not (isinstance(snapped, sympy.Rational) and len(str(snapped).lstrip("-")) <= 3)


def rounded_form(expr: sympy.Expr, *, digits: int = 4) -> sympy.Expr:
    """Write denominators monic (:func:`monic_denominators`), round, tidy, again monic and
    round again (``cancel`` can turn ``2.3/2.3`` into a new ``1.0``)."""
    # monic first on the fitted constants (rounding would turn 1956.3 into an exact-looking
    # 1956), then again on what tidying wrote
    tidied = tidy(round_constants(monic_denominators(expr), digits=digits))
    return round_constants(monic_denominators(tidied), digits=digits)


def canonicalize(
    expr: sympy.Expr,
    X: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    *,
    prune_tol: float = 0.02,
    digits: int = 4,
) -> CanonicalForm:
    """Tidy, prune, refit (scale and offset, then every constant:
    :func:`~ensemble_lens.distill.constants.polish_constants`), prune and refit again where
    the refit left a term negligible, and round one candidate formula on data ``(X, y)``.

    Parameters
    ----------
    expr : sympy.Expr
        Candidate formula over the symbols of ``names``.
    X : ndarray, shape (sample, variable)
        Fit data (the same the backend saw, or a subsample of it).
    y : ndarray, shape (sample,)
        Target values.
    names : sequence of str
        Column names of ``X``.
    prune_tol : float
        Relative tolerance of :func:`prune_terms` and of the offset drop in
        :func:`refit_affine`.
    digits : int
        Significant digits kept by :func:`round_constants`.

    Returns
    -------
    CanonicalForm
        ``exact`` (unrounded) and ``display`` (rounded) forms.
    """
    from .constants import polish_constants  # constants builds on this module

    def refit(e: sympy.Expr) -> sympy.Expr:
        e = tidy(refit_affine(tidy(e), X, y, names, zero_tol=prune_tol))
        return polish_constants(e, X, y, names)

    tidied = tidy(fold_phases(expr))
    pruned, n_pruned = prune_terms(tidied, X, y, names, rel_tol=prune_tol)
    exact = refit(pruned)
    # refitting every constant together can move a term the first pass kept (its constant was
    # making up for another constant's error) to almost nothing:
    # Y*(1.931e-5*sigma + 1.298)/(2.596*sigma + 2.595) for Y/(2*(sigma + 1)). Prune again.
    again, n_again = prune_terms(exact, X, y, names, rel_tol=prune_tol)
    if n_again:
        exact, n_pruned = refit(again), n_pruned + n_again
    display = rounded_form(exact, digits=digits)
    return CanonicalForm(exact=exact, display=display, n_pruned=n_pruned)
