"""Dimensional analysis: a search over dimensionless groups instead of raw inputs.

A physical law can only combine its inputs into dimensionless groups (Buckingham's Pi
theorem): with the units of each input and of the target known, ``y = scale(x) *
g(pi_1(x), ..., pi_k(x))``, where ``scale`` is a product of powers of the inputs with the
target's units and the ``pi_j`` are products of powers with no units at all. There are
``d - rank`` groups for ``d`` inputs whose unit exponents have that rank, so the search meets a
law of fewer variables: ``m0/sqrt(1 - v**2/c**2)`` becomes ``1/sqrt(1 - pi0**2)`` in the one
group ``pi0 = v/c``, times ``m0``. This is the first step of AI Feynman (Udrescu & Tegmark
2020, "Dimensional analysis"); here it is a change of variables around any engine's search,
and the formulas come back written in the original inputs, so selection and every verdict
are unchanged.

Units are written as products of powers of unit names that ``sympy.physics.units`` knows
(``"kg*m/s**2"`` or ``"kg*m/s^2"``, ``"N"``, ``"V/m"``, ``"1"`` for none); only their
dimensions count, so ``"km"`` and ``"m"`` are alike (the search fits the constants). The
groups come from the rational null space of the exponent matrix (``sympy.Matrix.nullspace``),
made the simplest: small integer combinations of that basis with the least total exponent,
taken while independent (ties: the order the inputs are named), each with coprime integer
exponents and its first exponent positive. The target's scale is the exact solution with
the least total exponent among one solution plus small multiples of the groups (``m0``
above, not ``m0*v/c``), and a group that is the ratio of two inputs, one of them in the
scale, has that one below: the other input measured in the unit the scale sets
(``(u + v)/(1 + u*v/c**2)`` is ``c`` times a law of ``u/c`` and ``v/c``, not of ``c/u`` and
``c/v``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any

import numpy as np
import sympy

from ..errors import ConfigError, NonFiniteError
from ._expr import evaluate, read_syntax, symbols_for

__all__ = ["DimensionlessView", "Dimensions", "unit_exponents"]

#: how a unit is written, for error messages
UNIT_RULE = (
    "a product of powers of unit names from sympy.physics.units, e.g. 'kg*m/s**2', 'N', "
    "'V/m', or '1' for none"
)


def unit_exponents(unit: str, where: str) -> dict[str, sympy.Rational]:
    """The base-dimension exponents of ``unit`` (``{"length": 1, "time": -1}`` for ``"m/s"``;
    empty for ``"1"`` or ``""``); one line naming ``where`` when it is not a unit."""
    from sympy.physics import units as u
    from sympy.physics.units.systems.si import SI, dimsys_SI

    text = str(unit).strip()
    if text in ("", "1"):
        return {}
    out: dict[str, sympy.Rational] = {}
    for name, power in _unit_powers(text, where).items():
        quantity = getattr(u, name, None)
        if not isinstance(quantity, u.Quantity):
            raise ConfigError(
                f"{where}: unit {text!r} names {name!r}, which sympy.physics.units does not "
                "know as a unit (m, kg, s, A, K, mol, cd, N, J, W, Pa, C, V, T, Hz, ...)"
            )
        deps = dimsys_SI.get_dimensional_dependencies(SI.get_quantity_dimension(quantity))
        for dim, exp in deps.items():
            key = str(dim.name)
            out[key] = out.get(key, sympy.Integer(0)) + sympy.Rational(exp) * power
    return {k: v for k, v in out.items() if v != 0}


def _unit_powers(text: str, where: str) -> dict[str, sympy.Expr]:
    """The unit names in ``text`` with their powers (a number in front is dropped: only
    dimensions count), read off its syntax tree like a formula
    (:func:`~ensemble_lens.distill._expr.read_syntax`: nothing in a unit is run; ``^`` is a
    power, ``m^2``)."""

    def refuse(fname: str, n: int) -> Any:
        raise ConfigError(f"{where}: unit {text!r} is not {UNIT_RULE}")

    def error(message: str) -> Exception:
        if message.startswith("not a formula"):
            return ConfigError(f"{where}: unit {text!r} does not parse ({UNIT_RULE})")
        return ConfigError(f"{where}: unit {text!r} is not {UNIT_RULE}")

    expr = read_syntax(
        text, name=sympy.Symbol, function=refuse, error=error,
        number=lambda value, literal: sympy.Rational(literal),  # 0.5 is 1/2 exactly
    )  # fmt: skip
    out: dict[str, sympy.Expr] = {}
    for factor in sympy.Mul.make_args(expr):
        base, power = factor.as_base_exp()
        if base.is_number and power.is_number:
            continue  # a number in front
        if not (isinstance(base, sympy.Symbol) and power.is_Rational):
            raise ConfigError(f"{where}: unit {text!r} is not {UNIT_RULE}")
        out[base.name] = out.get(base.name, sympy.Integer(0)) + power
    return out


@dataclass(frozen=True)
class Dimensions:
    """The units of a search's inputs and of its target (the ``distill.dimensions`` setting).

    Attributes
    ----------
    variables : mapping of str to str
        Each input variable's unit (see the module docstring for how units are written).
    target : str or sequence of str
        The searched quantity's unit; a sequence gives one per component of a layer with
        several outputs.

    Examples
    --------
    >>> dims = Dimensions({"m0": "kg", "v": "m/s", "c": "m/s"}, target="kg")
    >>> view = dims.view(["m0", "v", "c"])
    >>> view.groups, view.scale
    ([v/c], m0)
    """

    variables: Mapping[str, str]
    target: str | Sequence[str] = "1"

    def __post_init__(self) -> None:
        for name, unit in self.variables.items():
            unit_exponents(unit, f"dimensions: variable {name!r}")
        for unit in self.targets:
            unit_exponents(unit, "dimensions: target")

    @property
    def targets(self) -> list[str]:
        """The target's unit(s) as a list."""
        return [self.target] if isinstance(self.target, str) else [str(t) for t in self.target]

    def for_component(self, j: int, n: int) -> Dimensions:
        """The dimensions of component ``j`` of ``n``: one target unit for all, or the
        ``j``-th of one per component."""
        targets = self.targets
        if len(targets) not in (1, n):
            raise ConfigError(
                f"dimensions: {len(targets)} target units for a layer of {n} components; give "
                f"one unit, or one per component"
            )
        return Dimensions(self.variables, targets[0] if len(targets) == 1 else targets[j])

    def view(self, names: Sequence[str], component: int | str = 0) -> DimensionlessView:
        """The dimensionless groups and the target's scale over the inputs ``names`` (every
        one of which must have a unit); one line when the target's unit is not a product of
        powers of the inputs' units."""
        missing = [n for n in names if n not in self.variables]
        if missing:
            raise ConfigError(
                f"dimensions: no unit for the input variable(s) {missing}; give every searched "
                "variable a unit ('1' for a dimensionless one)"
            )
        if len(self.targets) != 1:
            raise ConfigError(
                f"dimensions: component {component!r} needs one target unit, got {self.targets}"
            )
        cols = [unit_exponents(self.variables[n], f"dimensions: variable {n!r}") for n in names]
        target = unit_exponents(self.targets[0], "dimensions: target")
        bases = sorted(set().union(target, *cols))
        D = sympy.Matrix(len(bases), len(names), lambda i, j: cols[j].get(bases[i], 0))
        t = sympy.Matrix(len(bases), 1, [target.get(b, 0) for b in bases])  # (0, 1) when none
        try:  # one exact solution: the free inputs' powers 0, the pivots' solving the rest
            sol, free = D.gauss_jordan_solve(t)
        except ValueError:
            raise ConfigError(
                f"dimensions: component {component!r}: the target's unit "
                f"{self.targets[0]!r} is not a product of powers of the inputs' units "
                f"({dict(zip(names, (self.variables[n] for n in names), strict=True))}); a "
                "missing input, or a dimensional constant the law needs, is not in the search"
            ) from None
        p = sol.subs({f: 0 for f in free})
        x = symbols_for(names)
        basis = _simplest([_integer(v) for v in D.nullspace()])
        scale = min((_shifted(p, basis, z) for z in _combinations(len(basis))), key=_weight)
        groups = [_monomial(x, _measured_by(v, scale)) for v in basis]
        return DimensionlessView(list(names), groups, _monomial(x, scale))


def _integer(v: sympy.Matrix | Sequence[sympy.Expr]) -> list[sympy.Integer]:
    """Coprime integer exponents along ``v``, the first non-zero positive."""
    lcm = reduce(math.lcm, (int(sympy.fraction(e)[1]) for e in v), 1)
    ints = [int(e * lcm) for e in v]
    g = reduce(math.gcd, (abs(i) for i in ints), 0) or 1
    sign = next((1 if i > 0 else -1 for i in ints if i), 1)
    return [sympy.Integer(sign * i // g) for i in ints]


def _measured_by(v: list[sympy.Integer], scale: Sequence[sympy.Expr]) -> list[sympy.Integer]:
    """A ratio of two inputs (``a/b``, both exponents 1) of which only ``b`` is in the
    target's scale, written with ``b`` below: ``a`` measured in the unit the scale sets
    (``v/c`` and ``u/c`` for a speed of scale ``c``, ``x/r`` for a field of scale
    ``p_d/(epsilon*r**3)``). Any other group keeps its first exponent positive: in a
    composite group such as ``h*omega/(kb*T)`` the scale's inputs are often the numerator
    of the law's own argument."""
    used = [i for i, e in enumerate(v) if e != 0]
    if len(used) != 2 or sorted(abs(v[i]) for i in used) != [1, 1] or v[used[0]] == v[used[1]]:
        return v
    top, bottom = used if v[used[0]] > 0 else used[::-1]
    return [-e for e in v] if scale[top] != 0 and scale[bottom] == 0 else v


def _weight(v: Sequence[sympy.Expr]) -> tuple[sympy.Expr, int]:
    """How complex a product of powers is: its total exponent, then how many inputs it uses."""
    return (sum(abs(e) for e in v), sum(1 for e in v if e != 0))


def _combinations(k: int) -> list[tuple[int, ...]]:
    """Small integer combinations of ``k`` basis vectors (coefficients -2..2, or -1..1 past
    four vectors, so the count stays in the thousands), the unit ones first."""
    span = range(-2, 3) if k <= 4 else range(-1, 2)
    units = [tuple(int(i == j) for i in range(k)) for j in range(k)]
    rest = [z for z in itertools.product(span, repeat=k) if any(z) and z not in units]
    return [(0,) * k, *units, *rest]


def _shifted(p: sympy.Matrix, basis: list[list[sympy.Integer]], z: tuple[int, ...]) -> list:
    return [p[i] + sum(c * v[i] for c, v in zip(z, basis, strict=True)) for i in range(len(p))]


def _simplest(basis: list[list[sympy.Integer]]) -> list[list[sympy.Integer]]:
    """A basis of the same null space with the simplest groups: small integer combinations
    of ``basis``, lightest first (:func:`_weight`; ties keep ``basis``'s own vectors, in the
    order the inputs are named), taken while they add a dimension. The null space's
    reduced-echelon basis depends on the inputs' order: for ``n = n_0*exp(-m*g*x/(kb*T))``
    it gives ``n_0*x**3`` and ``T**3*kb**3*n_0/(g**3*m**3)``, where this gives ``n_0*x**3``
    and ``T*kb/(g*m*x)``."""
    if not basis:
        return []
    seen: dict[tuple[int, ...], list[sympy.Integer]] = {}
    for z in _combinations(len(basis))[1:]:
        v = _integer(_shifted(sympy.zeros(len(basis[0]), 1), basis, z))
        seen.setdefault(tuple(int(e) for e in v), v)
    chosen: list[list[sympy.Integer]] = []
    for v in sorted(seen.values(), key=_weight):  # stable: the unit combinations lead ties
        if sympy.Matrix([*chosen, v]).rank() > len(chosen):
            chosen.append(v)
        if len(chosen) == len(basis):
            break
    return chosen


def _monomial(x: Sequence[sympy.Symbol], exponents: Sequence[sympy.Expr]) -> sympy.Expr:
    return sympy.Mul(*(s**e for s, e in zip(x, exponents, strict=True) if e != 0))


@dataclass(frozen=True)
class DimensionlessView:
    """A search's inputs as dimensionless groups and its target over its scale.

    Attributes
    ----------
    names : list of str
        The original inputs.
    groups : list of sympy.Expr
        The dimensionless groups, products of powers of the inputs (none when the target's
        scale alone is the law up to a constant).
    scale : sympy.Expr
        The product of powers of the inputs with the target's unit (1 for a dimensionless
        target).
    """

    names: list[str]
    groups: list[sympy.Expr]
    scale: sympy.Expr

    @property
    def group_names(self) -> list[str]:
        """``pi0, pi1, ...``, prefixed with underscores while one is an input's name."""
        prefix = "pi"
        while any(n.startswith(prefix) for n in self.names):
            prefix = "_" + prefix
        return [f"{prefix}{j}" for j in range(len(self.groups))]

    def inputs(self, X: np.ndarray) -> np.ndarray:
        """The groups on the rows of ``X`` (sample, variable): (sample, group)."""
        cols = [self._values(g, X, f"group {g}", zero_ok=True) for g in self.groups]
        return np.stack(cols, axis=1) if cols else np.empty((len(X), 0))

    def target(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``y`` over the target's scale on the rows of ``X``."""
        return np.asarray(y, np.float64) / self._values(self.scale, X, f"scale {self.scale}")

    def back(self, expr: sympy.Expr) -> sympy.Expr:
        """A formula of the groups (over ``group_names``) written in the original inputs."""
        subs = {sympy.Symbol(n): g for n, g in zip(self.group_names, self.groups, strict=True)}
        return expr.xreplace(subs) * self.scale

    def _values(
        self, expr: sympy.Expr, X: np.ndarray, what: str, zero_ok: bool = False
    ) -> np.ndarray:
        with np.errstate(all="ignore"):
            v = np.broadcast_to(np.asarray(evaluate(expr, X, self.names), np.float64), (len(X),))
        bad = ~np.isfinite(v) if zero_ok else ~np.isfinite(v) | (v == 0)
        if bad.any():
            state = "not finite" if zero_ok else "zero or not finite"
            raise NonFiniteError(
                f"dimensions: the {what} is {state} on {int(bad.sum())} of {len(X)} rows"
                " (a zero in a denominator, or a fractional power of a negative input); "
                "search these inputs without dimensions"
            )
        return v
