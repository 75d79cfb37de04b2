"""Formula templates: formulas equal up to their numeric constants, with constants as slots.

Two members can share a law without sharing a subspace: ``2.1*cos(0.5*a)`` and
``1.3*cos(0.7*a)`` are one *template* ``c0*cos(c1*a + c2) + c3`` with member-specific
constants. :func:`make_template` turns a formula into its template:

* every numeric constant becomes a slot (``c0, c1, ...``); integer and rational exponents
  (``x**2``, ``r**-3``, ``sqrt``) are structure and stay;
* every term of a sum gets its own coefficient slot and every sum an offset slot, so a formula
  that happens to have a coefficient of 1 (``cos(a)``) has the same template as one that does
  not (``cos(0.5*a)``); inside a product or a power the first term's coefficient is fixed to 1
  (the scale is the outer slot's), so the slots stay identifiable;
* the argument of a function is affine in slots (``cos(c1*a + c2)``) and ``sin`` becomes
  ``cos`` (the phase slot absorbs the quarter turn).

The template's ``key`` is its tree with every slot replaced by one symbol: two formulas have
the same template exactly when their keys are equal. :func:`fit_template` fits one member's
constants by least squares (scipy), with several starts; a slot that multiplies a declared
periodic input inside ``cos`` is started at every frequency ``2 pi k / p`` of Z_p, because the
least-squares surface of a frequency has a local minimum at each of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy

from ..errors import ShapeError
from ._expr import check_names, r2_score
from .symmetry import (
    FunctionSymmetry,
    TermOrder,
    canonical_constants,
    oriented_constants,
    sign_slots,
    symmetries,
)

__all__ = [
    "Template",
    "TemplateFit",
    "fit_template",
    "fold_phases",
    "folded_frequency",
    "make_template",
    "template_r2",
]

#: a phase slot within this many radians (of a 2 pi period; scaled with the period) of the same
#: quarter turn in every member is that quarter turn: ``cos(u - pi/2)`` is written ``sin(u)``.
#: Trained networks hold a phase to a few hundredths of a radian (six networks trained on
#: a_k sin(b_k x1) x2: -pi/2 within 0.03 rad in every member); the folded template is refitted
#: and kept only when it explains as many members (:func:`shared_templates`)
PHASE_TOL = 0.05


def _key(expr: sympy.Expr, slots: set[sympy.Symbol]) -> str:
    """The tree as a string with every slot written ``C`` and the arguments of sums and
    products sorted: slot names and their order do not matter, and nothing is merged (a
    substitution into sympy would turn ``C*cos(u) + C*cos(u)`` into ``2*C*cos(u)``)."""
    if expr in slots:
        return "C"
    if not expr.args:
        return sympy.srepr(expr)
    parts = [_key(arg, slots) for arg in expr.args]
    if expr.is_Add or expr.is_Mul:
        parts.sort()
    return f"{type(expr).__name__}({', '.join(parts)})"


@dataclass(frozen=True)
class Template:
    """A formula with its numeric constants replaced by slots.

    Attributes
    ----------
    expr : sympy.Expr
        The template over the input symbols and the slot symbols.
    slots : tuple of sympy.Symbol
        Slot symbols ``c0, c1, ...`` in creation order.
    init : dict of str to float
        Each slot's value in the formula the template was made from (a fitting start).
    key : str
        The tree of ``expr`` with every slot written ``C`` (sums and products sorted): equal
        keys, equal forms.
    frequencies : dict of str to tuple of (str, int)
        Slots that multiply a declared periodic input inside ``cos``: slot name to
        ``(variable, period)``.
    symmetry : tuple
        The symmetries of the constants (:func:`~ensemble_lens.distill.symmetry.symmetries`):
        fitted constants are reported in their canonical form
        (:func:`~ensemble_lens.distill.symmetry.canonical_constants`).
    """

    expr: sympy.Expr
    slots: tuple[sympy.Symbol, ...]
    init: dict[str, float]
    key: str
    frequencies: dict[str, tuple[str, int]] = field(default_factory=dict)
    symmetry: tuple[tuple[FunctionSymmetry, ...], tuple[TermOrder, ...]] = ((), ())
    sign: tuple[str, ...] = ()  # slots whose negation negates the template

    def canonical(self, constants: Mapping[str, float]) -> dict[str, float]:
        """``constants`` mapped to their canonical representative (the same function)."""
        return canonical_constants(constants, *self.symmetry)

    def oriented(self, constants: Mapping[str, float]) -> tuple[dict[str, float], bool]:
        """Canonical constants of the function or of its negation (slots ``sign``), and
        whether negated (:func:`~ensemble_lens.distill.symmetry.oriented_constants`): for a
        component whose sign is free."""
        return oriented_constants(constants, *self.symmetry, self.sign)

    def __str__(self) -> str:
        return str(self.expr)


class _Slots:
    """Fresh slot symbols and the constants they replace."""

    def __init__(self, periodic: Mapping[str, int]) -> None:
        self.symbols: list[sympy.Symbol] = []
        self.init: dict[str, float] = {}
        self.periodic = periodic
        self.frequencies: dict[str, tuple[str, int]] = {}

    def new(self, value: float) -> sympy.Symbol:
        s = sympy.Symbol(f"c{len(self.symbols)}")
        self.symbols.append(s)
        self.init[s.name] = float(value)
        return s


def _split_coeff(term: sympy.Expr) -> tuple[float, sympy.Expr]:
    """``(numeric coefficient, the rest)`` of a product; numeric factors include ``pi``."""
    factors = sympy.Mul.make_args(term)
    coeff = [f for f in factors if f.is_number]
    rest = [f for f in factors if not f.is_number]
    value = float(sympy.Mul(*coeff)) if coeff else 1.0
    return value, sympy.Mul(*rest)


def _linear(
    expr: sympy.Expr, slots: _Slots, *, free_scale: bool, in_cos: bool, offset: bool = True
) -> sympy.Expr:
    """``sum_i c_i * struct(term_i) + c0`` over the terms of ``expr`` (numbers dropped; no
    ``c0`` when ``offset`` is False)."""
    terms = [(*_split_coeff(t), t) for t in sympy.Add.make_args(expr) if not t.is_number]
    shift = sum(float(t) for t in sympy.Add.make_args(expr) if t.is_number)
    terms.sort(key=lambda ct: sympy.default_sort_key(ct[1]))
    out = []
    for i, (coeff, rest, _) in enumerate(terms):
        core = _struct(rest, slots)
        if i == 0 and not free_scale:
            out.append(core)
            continue
        slot = slots.new(coeff)
        if in_cos and rest.is_Symbol and rest.name in slots.periodic:
            slots.frequencies[slot.name] = (rest.name, int(slots.periodic[rest.name]))
        out.append(slot * core)
    return sympy.Add(*out) + (slots.new(shift) if offset else 0)


def _struct(expr: sympy.Expr, slots: _Slots) -> sympy.Expr:
    """The coefficient-free structure of a product, power, function or symbol."""
    if expr.is_Symbol or expr.is_number:
        return expr
    if expr.is_Add:
        return _linear(expr, slots, free_scale=False, in_cos=False)
    if expr.is_Mul:
        return sympy.Mul(*(_struct(f, slots) for f in expr.args if not f.is_number))
    if expr.is_Pow:
        base = _struct(expr.base, slots)
        if expr.exp.is_Rational:
            return sympy.Pow(base, expr.exp)
        if expr.exp.is_number:
            return sympy.Pow(base, slots.new(float(expr.exp)))
        return sympy.Pow(base, _struct(expr.exp, slots))
    if isinstance(expr, sympy.Function) and len(expr.args) == 1:
        func = sympy.cos if expr.func in (sympy.sin, sympy.cos) else expr.func
        arg = expr.args[0]
        if expr.func is sympy.sin:
            arg = arg - sympy.pi / 2
        # exp(u + c) = exp(c) exp(u): the offset is the outer scale's, so exp gets none
        linear = _linear(
            arg, slots, free_scale=True, in_cos=func is sympy.cos, offset=func is not sympy.exp
        )
        return func(linear)
    return expr.func(*(_struct(a, slots) for a in expr.args))


def make_template(expr: sympy.Expr, *, periodic: Mapping[str, int] | None = None) -> Template:
    """The template of a formula (see the module docstring).

    Parameters
    ----------
    expr : sympy.Expr
        A formula over input symbols.
    periodic : mapping of str to int, optional
        Declared periodic inputs and their periods (e.g. ``{"a": 23}`` for ``a`` in Z_23).

    Returns
    -------
    Template

    Examples
    --------
    >>> import sympy
    >>> a = sympy.Symbol("a")
    >>> t1 = make_template(2.1 * sympy.cos(0.5 * a))
    >>> t2 = make_template(1.3 * sympy.sin(0.7 * a) + 0.2)
    >>> t1.key == t2.key, str(t1)
    (True, 'c2*cos(a*c0 + c1) + c3')
    """
    slots = _Slots(dict(periodic or {}))
    expr = sympy.sympify(expr)
    if expr.is_Add:
        body = _linear(expr, slots, free_scale=True, in_cos=False)
    else:
        coeff, rest = _split_coeff(expr)
        core = _struct(rest, slots)
        body = slots.new(coeff) * core + slots.new(0.0) if rest != 1 else slots.new(coeff)
    key = _key(body, set(slots.symbols))
    symmetry = symmetries(body, tuple(slots.symbols), slots.periodic)
    sign = sign_slots(body, tuple(slots.symbols))
    return Template(body, tuple(slots.symbols), slots.init, key, slots.frequencies, symmetry, sign)


def fold_phases(
    template: Template, constants: Sequence[Mapping[str, float]], *, tol: float = PHASE_TOL
) -> Template | None:
    """The template with every phase slot that all ``constants`` put on one quarter turn
    replaced by it (sympy then writes ``cos(u - pi/2)`` as ``sin(u)``, ``cos(u + pi)`` as
    ``-cos(u)``), or None when no phase folds.

    Parameters
    ----------
    template : Template
    constants : sequence of dict
        Canonical constants (:meth:`Template.canonical`) of the components it explains.
    tol : float
        Radians of a 2 pi period (see :data:`PHASE_TOL`).

    Examples
    --------
    >>> import sympy
    >>> x1, x2 = sympy.symbols("x1 x2")
    >>> t = make_template(1.0 * x2 * sympy.sin(2.0 * x1) + 0.1)
    >>> str(t)
    'c2*x2*cos(c0*x1 + c1) + c3'
    >>> str(fold_phases(t, [{"c0": 2.0, "c1": -1.5703, "c2": 0.9, "c3": 0.0}]))
    'c2*x2*sin(c0*x1) + c3'
    """
    if not constants:
        return None
    fixed: dict[sympy.Symbol, sympy.Expr] = {}
    for sym in template.symmetry[0]:
        if sym.phase is None:
            continue
        quarter = sym.period / 4
        near = [round(c[sym.phase] / quarter) for c in constants]
        off = max(abs(c[sym.phase] - k * quarter) for c, k in zip(constants, near, strict=True))
        turns = {k % 4 for k in near}  # phases wrap: -pi and pi are one half turn
        k = next(iter(turns))
        if len(turns) == 1 and off <= tol * sym.period / (2 * math.pi):
            exact = sympy.nsimplify(sym.period / (2 * math.pi)) * sympy.pi / 2
            fixed[sympy.Symbol(sym.phase)] = k * exact
    if not fixed:
        return None
    expr = template.expr.xreplace(fixed)
    slots = tuple(s for s in template.slots if s not in fixed)
    periodic = {var: p for var, p in template.frequencies.values()}
    return Template(
        expr,
        slots,
        {s.name: template.init[s.name] for s in slots},
        _key(expr, set(slots)),
        dict(template.frequencies),
        symmetries(expr, slots, periodic),
        sign_slots(expr, slots),
    )


@dataclass(frozen=True)
class TemplateFit:
    """One member component's constants in a template.

    Attributes
    ----------
    constants : dict of str to float
        Fitted slot values.
    r2_fit, r2_test : float
        R^2 of the fitted template on the fit and the test split.
    frequencies : dict of str to float
        For each frequency slot, its frequency ``k`` from the canonical constants: in
        ``[0, p/2]`` for the first slot of an argument (:func:`folded_frequency`), in
        ``(-p/2, p/2]`` for the others of a joint wave (the sign tells ``a + b`` from
        ``a - b``).
    """

    constants: dict[str, float]
    r2_fit: float
    r2_test: float
    frequencies: dict[str, float]


def folded_frequency(omega: float, period: int) -> float:
    """The frequency ``k`` of ``cos(omega * v + phi)`` on integer ``v`` mod ``period``, folded
    into ``[0, period / 2]`` (``omega`` and ``omega + 2 pi`` agree on integers, and ``-omega``
    is the same wave with the phase negated)."""
    k = (omega * period / (2 * math.pi)) % period
    return float(min(k, period - k))


def _frequency(omega: float, period: int, *, canonical: bool) -> float:
    """``k`` of a canonical frequency slot (signed: in a joint wave ``cos(w1 a + w2 b)`` the
    sign of ``w2`` relative to ``w1`` tells ``a + b`` from ``a - b``), else folded."""
    if not canonical or not np.isfinite(omega):
        return folded_frequency(omega, period)
    return float(omega * period / (2 * math.pi))


def _compiled(template: Template, names: Sequence[str]) -> Callable[..., np.ndarray]:
    symbols = [*template.slots, *(sympy.Symbol(n) for n in names)]
    return sympy.lambdify(symbols, template.expr, modules="numpy")


def fit_template(
    template: Template,
    X_fit: np.ndarray,
    y_fit: np.ndarray,
    names: Sequence[str],
    *,
    X_test: np.ndarray,
    y_test: np.ndarray,
    n_random: int = 2,
    seed: int = 0,
) -> TemplateFit:
    from .template_starts import fitting_starts

    """Least-squares constants of ``template`` for one component, from several starts.

    Parameters
    ----------
    template : Template
    X_fit, X_test : np.ndarray, shape (sample, variable)
        Inputs of the fit and test splits, columns named by ``names``.
    y_fit, y_test : np.ndarray, shape (sample,)
        The component on each split.
    names : sequence of str
    n_random : int
        Random starts (the formula's own constants perturbed) beyond the formula's constants
        and, for frequency slots, every frequency of Z_p.
    seed : int
        Seed of the random starts.

    Returns
    -------
    TemplateFit
        Constants in their canonical form (:meth:`Template.canonical`: amplitudes of periodic
        functions non-negative, phases wrapped, frequencies over integer inputs folded, equal
        terms ordered). Every start gets a short run (``5 (slots + 1)`` evaluations), the two
        best are run to convergence, and the lower fit-split error wins; ``r2_test`` judges it
        on the test split.
    """
    from scipy.optimize import least_squares

    if X_fit.shape[1] != len(names) or len(X_fit) != len(y_fit) or len(X_test) != len(y_test):
        raise ShapeError(
            f"fit_template: expected X (sample, {len(names)}) and y (sample,) of equal lengths, "
            f"got X_fit {X_fit.shape}, y_fit {y_fit.shape}, X_test {X_test.shape}, "
            f"y_test {y_test.shape}"
        )
    check_names(template.expr.subs({s: 1 for s in template.slots}), names, "fit_template")
    fn = _compiled(template, names)
    cols_fit = [X_fit[:, j] for j in range(X_fit.shape[1])]
    scale = float(np.std(y_fit)) or 1.0

    def residual(c: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            pred = np.broadcast_to(np.asarray(fn(*c, *cols_fit), dtype=np.float64), y_fit.shape)
        r = (pred - y_fit) / scale
        return np.where(np.isfinite(r), r, 1e3)

    # every start gets a short run; the two best are then run to convergence
    short = []
    starts = fitting_starts(
        template, X_fit, y_fit, names, n_random=n_random, rng=np.random.default_rng(seed)
    )
    for x0 in starts:
        try:
            short.append(least_squares(residual, x0, method="lm", max_nfev=5 * (len(x0) + 1)))
        except ValueError:  # non-finite start
            continue
    best = None
    for sol0 in sorted(short, key=lambda s: s.cost)[:2]:
        sol = least_squares(residual, sol0.x, method="lm", max_nfev=100 * (len(sol0.x) + 1))
        if best is None or sol.cost < best.cost:
            best = sol
    consts = best.x if best is not None else np.full(len(template.slots), np.nan)
    values = {s.name: float(v) for s, v in zip(template.slots, consts, strict=True)}
    if best is not None:
        values = template.canonical(values)
    return TemplateFit(
        constants=values,
        r2_fit=_r2(fn, consts, X_fit, y_fit),
        r2_test=_r2(fn, consts, X_test, y_test),
        frequencies={
            name: _frequency(values[name], period, canonical=best is not None)
            for name, (_, period) in template.frequencies.items()
        },
    )


def template_r2(
    template: Template,
    constants: Mapping[str, float],
    X: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
) -> float:
    """R^2 of ``template`` with the given slot values on ``(X, y)`` (no refit): how a
    member's fitted template does on other inputs, e.g. an extrapolation range; ``-inf``
    when it is non-finite on any sample or ``y`` is constant (nothing to explain there)."""
    if float(np.ptp(y)) == 0.0:
        return -math.inf
    c = np.array([constants[s.name] for s in template.slots], dtype=np.float64)
    return _r2(_compiled(template, names), c, X, y)


def _r2(fn: Callable[..., np.ndarray], c: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        pred = np.broadcast_to(np.asarray(fn(*c, *X.T), dtype=np.float64), y.shape)
    if not np.isfinite(pred).all():
        return -math.inf
    return float(r2_score(pred, y))
