"""A formula's numeric constants as parameters: refitted on every member, with an interval.

A search writes one value per constant, fitted to the consensus. Whether that value is a
property of the law or an accident of the consensus shows only when the same form is refitted
on each member's own aligned component: a constant the data pin down comes back within a
narrow interval; one that trades off against another (a flat direction of the fit) or that
each member sets its own way does not. :func:`constants_across_members` reports, per constant,
the consensus value, the median and interval across members, the value refitted on the
extrapolation range when there is one, and a verdict:

* ``"pinned"``: identifiable (the fit's Jacobian is well conditioned and the constant's
  relative standard error is below ``pin_tol``) and the members agree (interval width
  relative to the median within ``pin_tol``);
* ``"varies across members"``: identifiable, but the members' values spread wider;
* ``"not pinned by the data"``: the data do not determine it (ill-conditioned Jacobian or
  relative standard error above ``pin_tol``).

Constants are the Floats and non-integer Rationals of the expression that are not exponents
(``r**-3`` keeps its exponent; ``exp(-0.968*r)`` has one constant, ``0.968``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

from ._expr import evaluate, r2_score

__all__ = ["Template", "constants_across_members", "form_key", "refit_constants", "template"]

#: rows used for each refit (a random subset when there are more)
MAX_POINTS = 1000
#: members from which the interval is the 5-95 % range instead of min-max
MIN_FOR_PERCENTILES = 20
#: condition number of the column-scaled Jacobian above which constants are not identifiable
MAX_CONDITION = 1e6


@dataclass(frozen=True)
class Template:
    """A formula with its constants replaced by symbols ``_c0, _c1, ...``."""

    expr: sympy.Expr
    slots: tuple[str, ...]
    values: tuple[float, ...]


def _is_constant(node: sympy.Expr) -> bool:
    return bool(node.is_Float or (node.is_Rational and not node.is_Integer))


def template(expr: sympy.Expr) -> Template:
    """The form of ``expr`` with one slot per constant occurrence (exponents are kept)."""
    slots: list[str] = []
    values: list[float] = []

    def walk(node: sympy.Expr) -> sympy.Expr:
        if node.is_Number:
            if not _is_constant(node):
                return node
            slots.append(f"_c{len(slots)}")
            values.append(float(node))
            return sympy.Symbol(slots[-1])
        if node.is_Pow and node.args[1].is_Number:
            return sympy.Pow(walk(node.args[0]), node.args[1], evaluate=False)
        if not node.args:
            return node
        return node.func(*[walk(a) for a in node.args], evaluate=False)

    return Template(walk(expr), tuple(slots), tuple(values))


def form_key(expr: sympy.Expr) -> str:
    """A string equal for two formulas that differ only in their constants."""
    t = template(expr)
    same = {sympy.Symbol(s): sympy.Symbol("C") for s in t.slots}
    return sympy.srepr(t.expr.xreplace(same))


@dataclass(frozen=True)
class ConstantFit:
    """Constants refitted on one data set: values, R^2, Jacobian (sample, constant)."""

    values: np.ndarray
    r2: float
    jac: np.ndarray
    residual_var: float


def refit_constants(
    t: Template, X: np.ndarray, y: np.ndarray, names: Sequence[str], *, seed: int = 0
) -> ConstantFit:
    """Least-squares values of the template's constants on ``(X, y)``, from its own values.

    Parameters
    ----------
    t : Template
    X : ndarray, shape (sample, variable)
    y : ndarray, shape (sample,)
    names : sequence of str
    seed : int
        Seed of the row subset when there are more than :data:`MAX_POINTS` rows.
    """
    from scipy.optimize import least_squares

    if len(X) > MAX_POINTS:
        rows = np.sort(np.random.default_rng(seed).choice(len(X), MAX_POINTS, replace=False))
        X, y = X[rows], y[rows]
    cols = list(names) + list(t.slots)
    scale = max(float(np.std(y)), 1e-300)

    def residual(c: np.ndarray) -> np.ndarray:
        pred = evaluate(t.expr, np.c_[X, np.broadcast_to(c, (len(X), len(c)))], cols)
        r = (pred - y) / scale
        return np.where(np.isfinite(r), r, 1e6)

    x0 = np.asarray(t.values, dtype=np.float64)
    fit = least_squares(residual, x0, method="trf", x_scale="jac")
    pred = evaluate(t.expr, np.c_[X, np.broadcast_to(fit.x, (len(X), len(x0)))], cols)
    dof = max(len(y) - len(x0), 1)
    return ConstantFit(
        fit.x, r2_score(pred, y), fit.jac * scale, float(np.sum((pred - y) ** 2) / dof)
    )


def _identifiable(fit: ConstantFit, pin_tol: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Per constant: identifiable (bool) and relative standard error; and the condition
    number of the Jacobian with columns scaled by the constants' values."""
    J = fit.jac * np.where(fit.values != 0, np.abs(fit.values), 1.0)[None, :]
    if not np.isfinite(J).all():
        return np.zeros(len(fit.values), bool), np.full(len(fit.values), np.inf), np.inf
    sv = np.linalg.svd(J, compute_uv=False)
    cond = float(sv[0] / sv[-1]) if sv[-1] > 0 else np.inf
    cov = np.linalg.pinv(J.T @ J) * fit.residual_var
    rel_se = np.sqrt(np.maximum(np.diag(cov), 0.0))  # in units of each constant's value
    ok = (cond < MAX_CONDITION) & (rel_se <= pin_tol)
    return np.asarray(ok, bool), rel_se, cond


def constants_across_members(
    expr: sympy.Expr,
    X: np.ndarray,
    y: np.ndarray,
    member_y: np.ndarray,
    member_ids: Sequence[str],
    names: Sequence[str],
    *,
    X_extrap: np.ndarray | None = None,
    y_extrap: np.ndarray | None = None,
    pin_tol: float = 0.05,
) -> dict[str, Any]:
    """The formula's constants refitted on the consensus, every member and the extrapolation.

    Parameters
    ----------
    expr : sympy.Expr
        The chosen formula.
    X : ndarray, shape (sample, variable)
        Inputs (the test split).
    y : ndarray, shape (sample,)
        The consensus component there.
    member_y : ndarray, shape (member, sample)
        Each member's own aligned component there.
    member_ids : sequence of str
    names : sequence of str
    X_extrap, y_extrap : ndarray, optional
        The extrapolation range and its target.
    pin_tol : float
        Relative width (interval / |median|) and relative standard error up to which a
        constant is pinned.

    Returns
    -------
    dict
        ``template`` (str, constants as ``_c0``...), ``interval`` ("min-max" or "5-95 %"),
        ``members`` (K), ``constants``: one dict per constant with ``name``, ``value`` (the
        consensus refit; every value in canonical form, see :func:`_canonical`), ``median``,
        ``low``, ``high``, ``relative_width``, ``relative_se``, ``extrapolation`` (or None),
        ``verdict``; ``member_values`` {member: [values]}; ``condition`` (Jacobian condition
        number) and ``pinned`` (all constants pinned).
    """
    t = template(expr)
    if not t.slots:
        return {"template": str(expr), "constants": [], "pinned": True, "members": 0}
    base = refit_constants(t, X, y, names)
    ok, rel_se, cond = _identifiable(base, pin_tol)
    canon = _canonical(t)
    V = np.stack([canon(refit_constants(t, X, my, names).values) for my in member_y])
    K = len(V)
    q = (5, 95) if K >= MIN_FOR_PERCENTILES else (0, 100)
    low, med, high = (np.percentile(V, p, axis=0) for p in (q[0], 50, q[1]))
    ext = None
    if X_extrap is not None and y_extrap is not None:
        ext = canon(refit_constants(t, X_extrap, y_extrap, names).values)
    rel_width = (high - low) / np.maximum(np.abs(med), 1e-12)
    shown = canon(base.values)
    constants = []
    for i, slot in enumerate(t.slots):
        verdict = "not pinned by the data"
        if ok[i]:
            verdict = "pinned" if rel_width[i] <= pin_tol else "varies across members"
        constants.append(
            {
                "name": slot,
                "value": _num(shown[i]),
                "median": _num(med[i]),
                "low": _num(low[i]),
                "high": _num(high[i]),
                "relative_width": _num(rel_width[i]),
                "relative_se": _num(rel_se[i]),
                "extrapolation": None if ext is None else _num(ext[i]),
                "verdict": verdict,
            }
        )
    return {
        "template": str(t.expr),
        "interval": "5-95 %" if K >= MIN_FOR_PERCENTILES else "min-max",
        "members": K,
        "constants": constants,
        "member_values": {
            str(m): [_num(v) for v in row] for m, row in zip(member_ids, V, strict=True)
        },
        "condition": _num(cond),
        "pinned": all(c["verdict"] == "pinned" for c in constants),
    }


def _canonical(t: Template) -> Any:
    """``values -> values`` in canonical form (:mod:`~ensemble_lens.distill.symmetry`: the
    sign of a periodic function's amplitude and argument, its phase wrapped), so the members'
    refits are compared on one branch of each symmetry."""
    from .symmetry import canonical_constants, symmetries

    funcs, orders = symmetries(t.expr, tuple(sympy.Symbol(s) for s in t.slots), ())

    def canon(values: np.ndarray) -> np.ndarray:
        if not np.isfinite(values).all():
            return values
        c = canonical_constants(dict(zip(t.slots, values, strict=True)), funcs, orders)
        return np.array([c[s] for s in t.slots])

    return canon


def _num(x: float) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None
