"""Canonical constants of a template: one representative of each set of equivalent constants.

A template such as ``c2*cos(c0*a + c1) + c3`` gives the same function for many constant
vectors: ``cos(x + pi) = -cos(x)`` (an amplitude's sign trades against a half-period shift of
the phase), phases are defined modulo the period, ``cos`` is even (the argument's sign is
free), a frequency over an integer input is defined modulo the period (``omega`` and
``omega + 2 pi`` agree on integers, so ``k`` and ``p - k`` are one wave on Z_p), and the terms
of a sum with the same form can be listed in any order. Fitted constants land anywhere in
these sets, so their spread across members is meaningless until each is mapped to one
representative. :func:`symmetries` reads the symmetries off the template's tree, with the
properties of each one-argument function found by sympy (not a table of functions):

* its period ``T`` (``sympy.periodicity``); the argument's offset slot is wrapped into
  ``(-T/2, T/2]``;
* antiperiodicity, ``f(x + T/2) = -f(x)``: a negative amplitude slot is made positive and the
  phase shifted by ``T/2`` (the amplitude slot of ``c2*x2*cos(c0*x1 + c1)`` too: a wave
  multiplied by slot-free factors keeps its amplitude slot);
* parity, ``f(-x) = f(x)`` (or ``-f(x)`` with an amplitude slot to absorb it): the
  argument's slots are negated so that its first coefficient is non-negative;
* a coefficient slot of a declared periodic (integer) input inside a periodic function is
  reduced modulo ``T`` first, so with parity it ends in ``[0, T/2]`` (``k`` in ``[0, p/2]``);
* terms of one sum with equal form are ordered by the absolute value of their coefficient
  slot, largest first.

:func:`canonical_constants` applies them; the fitted function does not change.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import sympy

__all__ = [
    "FunctionSymmetry",
    "TermOrder",
    "canonical_constants",
    "canonical_values",
    "oriented_constants",
    "sign_slots",
    "symmetries",
]

_X = sympy.Dummy("x")


@dataclass(frozen=True)
class FunctionSymmetry:
    """The symmetries of one periodic function node ``amp * f(sum_i coef_i * u_i + phase)``.

    Attributes
    ----------
    period : float
        ``T`` of ``f``.
    amp, phase : str or None
        The amplitude slot multiplying the node in its sum, and the argument's offset slot.
    coefs : tuple of str
        The argument's coefficient slots, in the template's canonical order.
    integer_coefs : tuple of str
        Those multiplying a declared periodic (integer) input: defined modulo ``T``.
    even, odd, antiperiodic : bool
        ``f(-x) = f(x)``, ``f(-x) = -f(x)``, ``f(x + T/2) = -f(x)``.
    """

    period: float
    amp: str | None
    phase: str | None
    coefs: tuple[str, ...]
    integer_coefs: tuple[str, ...]
    even: bool
    odd: bool
    antiperiodic: bool


@dataclass(frozen=True)
class TermOrder:
    """Interchangeable terms of one sum: each term's slots in corresponding order, the first
    being the term's coefficient slot."""

    terms: tuple[tuple[str, ...], ...]


@functools.lru_cache(maxsize=64)
def _properties(func: type) -> tuple[float, bool, bool, bool] | None:
    """``(T, even, odd, antiperiodic)`` of a one-argument function, found by sympy; None when
    it is not periodic."""
    f = func(_X)
    try:
        period = sympy.periodicity(f, _X)
    except NotImplementedError:
        return None
    if period is None or not period.is_number or not period.is_positive:
        return None

    def zero(e: sympy.Expr) -> bool:
        return sympy.simplify(sympy.expand_trig(e)) == 0

    return (
        float(period),
        zero(func(-_X) - f),
        zero(func(-_X) + f),
        zero(func(_X + period / 2) + f),
    )


def _order(expr: sympy.Expr, slots: set[sympy.Symbol]) -> list[str]:
    """Slots of ``expr`` in the order of the template key (sums and products sorted by the key
    of their arguments), so that two subtrees with equal keys list corresponding slots in the
    same order whatever the slots are named."""
    from .template import _key

    if expr in slots:
        return [expr.name]
    args = list(expr.args)
    if expr.is_Add or expr.is_Mul:
        args.sort(key=lambda a: _key(a, slots))
    return [s for a in args for s in _order(a, slots)]


def _split_term(term: sympy.Expr, slots: set[sympy.Symbol]) -> tuple[str | None, sympy.Expr]:
    """``(coefficient slot, the rest)`` of ``slot * rest``; ``(None, term)`` otherwise."""
    factors = sympy.Mul.make_args(term)
    own = [f for f in factors if f in slots]
    if len(own) != 1 or len(factors) < 2:
        return None, term
    return own[0].name, sympy.Mul(*(f for f in factors if f is not own[0]))


def _single_function(rest: sympy.Expr, slots: set[sympy.Symbol]) -> sympy.Expr | None:
    """The one-argument function node that ``rest`` (a term without its amplitude slot) is,
    or that it multiplies by slot-free factors (``x2*cos(c0*x1 + c1)``: the amplitude slot is
    the wave's, scaled by ``x2``); None otherwise."""
    factors = sympy.Mul.make_args(rest)
    funcs = [f for f in factors if isinstance(f, sympy.Function) and len(f.args) == 1]
    if len(funcs) != 1:
        return None
    others = [f for f in factors if f is not funcs[0]]
    return None if any(f.free_symbols & slots for f in others) else funcs[0]


def _function_symmetry(
    node: sympy.Expr, amp: str | None, slots: set[sympy.Symbol], integer: Collection[str]
) -> FunctionSymmetry | None:
    props = _properties(node.func)
    if props is None:
        return None
    period, even, odd, anti = props
    phase, coefs, ints = None, [], []
    for term in sympy.Add.make_args(node.args[0]):
        if term in slots:
            phase = term.name
            continue
        coef, rest = _split_term(term, slots)
        if coef is None:
            return None  # a term with no slot of its own: the argument's sign is not free
        coefs.append(coef)
        if rest.is_Symbol and rest.name in integer:
            ints.append(coef)
    order = _order(node.args[0], slots)
    coefs.sort(key=order.index)
    ints.sort(key=order.index)
    return FunctionSymmetry(period, amp, phase, tuple(coefs), tuple(ints), even, odd, anti)


def symmetries(
    expr: sympy.Expr, slots: tuple[sympy.Symbol, ...], integer: Collection[str]
) -> tuple[tuple[FunctionSymmetry, ...], tuple[TermOrder, ...]]:
    """The symmetries of a template (see the module docstring).

    Parameters
    ----------
    expr : sympy.Expr
        The template.
    slots : tuple of sympy.Symbol
        Its slots.
    integer : collection of str
        Names of the declared periodic (integer-valued) inputs.

    Returns
    -------
    (tuple of FunctionSymmetry, tuple of TermOrder)
    """
    from .template import _key

    own = set(slots)
    funcs: list[FunctionSymmetry] = []
    orders: list[TermOrder] = []
    seen: set[sympy.Expr] = set()
    sums = [n for n in sympy.preorder_traversal(expr) if n.is_Add]
    if not expr.is_Add:
        sums.insert(0, expr)  # the whole formula is then a sum of one term
    for node in sums:
        by_key: dict[str, list[tuple[str, ...]]] = {}
        for term in sympy.Add.make_args(node):
            amp, rest = _split_term(term, own)
            func = _single_function(rest, own)
            if func is not None:
                sym = _function_symmetry(func, amp, own, integer)
                if sym is not None:
                    funcs.append(sym)
                    seen.add(func)
            if amp is not None and rest.free_symbols & own:
                by_key.setdefault(_key(term, own), []).append((amp, *_order(rest, own)))
        orders += [TermOrder(tuple(t)) for t in by_key.values() if len(t) > 1]
    for node in sympy.preorder_traversal(expr):  # periodic nodes with no amplitude slot
        if isinstance(node, sympy.Function) and len(node.args) == 1 and node not in seen:
            sym = _function_symmetry(node, None, own, integer)
            if sym is not None:
                funcs.append(sym)
    return tuple(funcs), tuple(orders)


def _wrap(value: float, period: float) -> float:
    """``value`` modulo ``period``, in ``(-period/2, period/2]``."""
    v = math.remainder(value, period)
    return period / 2 if math.isclose(v, -period / 2, rel_tol=0, abs_tol=1e-12) else v


def _canonical_function(c: dict[str, float], s: FunctionSymmetry) -> None:
    for name in s.integer_coefs:
        c[name] = _wrap(c[name], s.period)
    if s.coefs and c[s.coefs[0]] < 0 and (s.even or (s.odd and s.amp is not None)):
        for name in (*s.coefs, *([s.phase] if s.phase else [])):
            c[name] = -c[name]
        if s.odd and not s.even:
            c[s.amp] = -c[s.amp]
    if s.antiperiodic and s.amp is not None and s.phase is not None and c[s.amp] < 0:
        c[s.amp] = -c[s.amp]
        c[s.phase] += s.period / 2
    if s.phase is not None:
        c[s.phase] = _wrap(c[s.phase], s.period)


def sign_slots(expr: sympy.Expr, slots: tuple[sympy.Symbol, ...]) -> tuple[str, ...]:
    """The slots whose negation negates the whole template: each top-level term's coefficient
    slot and the offset slot; empty when a top-level term has no slot of its own."""
    own, out = set(slots), []
    for term in sympy.Add.make_args(expr):
        amp = term.name if term in own else _split_term(term, own)[0]
        if amp is None:
            return ()
        out.append(amp)
    return tuple(out)


def canonical_constants(
    constants: Mapping[str, float],
    funcs: tuple[FunctionSymmetry, ...],
    orders: tuple[TermOrder, ...],
) -> dict[str, float]:
    """The canonical representative of ``constants`` (same function, see the module
    docstring): every periodic node first, then interchangeable terms in order.

    Examples
    --------
    >>> import sympy
    >>> from ensemble_lens.distill.template import make_template
    >>> t = make_template(2.0 * sympy.cos(0.5 * sympy.Symbol("a")) + 1.0)
    >>> str(t)
    'c2*cos(a*c0 + c1) + c3'
    >>> c = canonical_constants({"c0": -0.5, "c1": 0.25, "c2": -2.0, "c3": 1.0}, *t.symmetry)
    >>> {k: round(v, 4) for k, v in c.items()}  # 2 cos(0.5 a + pi - 0.25) + 1: same function
    {'c0': 0.5, 'c1': 2.8916, 'c2': 2.0, 'c3': 1.0}
    """
    c = {k: float(v) for k, v in constants.items()}
    for s in funcs:
        _canonical_function(c, s)
    for order in orders:
        values = [tuple(c[n] for n in term) for term in order.terms]
        values.sort(key=lambda v: (-abs(v[0]), v))
        for term, vals in zip(order.terms, values, strict=True):
            c.update(zip(term, vals, strict=True))
    return c


def oriented_constants(
    constants: Mapping[str, float],
    funcs: tuple[FunctionSymmetry, ...],
    orders: tuple[TermOrder, ...],
    flip: tuple[str, ...],
) -> tuple[dict[str, float], bool]:
    """Canonical constants of ``constants`` or of their negated function, and whether it was
    negated: for a component whose overall sign is free (a member's component is a
    projection; its sign is the basis's). The first periodic wave whose amplitude is one of
    ``flip`` (:func:`sign_slots`) decides: with a phase (antiperiodic waves), the sign that
    puts the phase in ``[-3T/8, T/8)``, so that a sine law reads ``amp*cos(u - pi/2)`` with
    ``amp >= 0`` in every member (the quarter turns 0 and -pi/2 lie inside, away from the
    window's ends); without one, the sign that makes its amplitude non-negative."""
    c = canonical_constants(constants, funcs, orders)
    lead = next((s for s in funcs if s.amp is not None and s.amp in flip), None)
    if lead is None or lead.amp is None:
        return c, False
    if lead.phase is not None and lead.antiperiodic:
        keep = -3 * lead.period / 8 <= c[lead.phase] < lead.period / 8
    else:
        keep = c[lead.amp] >= 0
    if keep:
        return c, False
    for name in flip:
        c[name] = -c[name]
    return canonical_constants(c, funcs, orders), True


def canonical_values(expr: sympy.Expr, slots: tuple[str, ...]) -> Callable[[Any], Any]:
    """``values -> values`` for the constants ``slots`` of ``expr`` in canonical form (the
    sign of a periodic function's amplitude and argument, its phase wrapped; see
    :func:`canonical_constants`), so refits on different data are compared on one branch of
    each symmetry. Non-finite values are returned unchanged."""
    import numpy as np

    funcs, orders = symmetries(expr, tuple(sympy.Symbol(s) for s in slots), ())

    def canon(values: Any) -> Any:
        if not np.isfinite(values).all():
            return values
        c = canonical_constants(dict(zip(slots, values, strict=True)), funcs, orders)
        return np.array([c[s] for s in slots])

    return canon
