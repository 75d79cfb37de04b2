"""A formula's numeric constants as parameters: refitted, with intervals, and a verdict.

A search writes one value per constant, fitted to the consensus. Whether that value is a
property of the law or an accident of the consensus shows only when the same form is refitted
elsewhere. :func:`constants_across_members` refits the form's constants on three kinds of data
and puts the evidence together, per constant:

* **the consensus** (test split): the refit value, its curvature standard error ``se``
  (Jacobian, independent-noise assumption) and its *profile interval*: the values for which
  the best fit with the other constants re-optimised has at most twice the smallest misfit.
  A network's error is smooth along the inputs, not independent noise, so the standard error
  (which shrinks with the number of samples) is far too narrow; a value that only doubles the
  misfit cannot be told apart from the best one by the fit range. The interval comes from the
  profile at ``+-pin_tol`` (a quadratic through each side); ``profile_cost`` is the misfit
  added by that move, in units of the misfit (below 1: the constant is *sloppy*);
* **every member** (its own aligned component): the median and interval (min-max under 20
  members, else 5-95 %); when the members spread wider than ``+-pin_tol``, each member's own
  profile interval says whether they disagree beyond their own precision;
* **the extrapolation range**, when there is one: the refit value, its profile interval there
  and the refit R^2.

The *fit-range interval* is the hull of the consensus' profile interval and the members'
interval. The rule, in this order (``pin_tol`` = 0.05 by default, relative half-widths):

1. ``"not pinned by the data"``: the constants are not identifiable (the condition number of
   the value-scaled Jacobian exceeds :data:`MAX_CONDITION`, e.g. two constants that only act
   as a product);
2. ``"varies across members"``: the members' interval is wider than ``+-pin_tol`` and no one
   value lies inside every member's own profile interval (each member sets its own);
3. ``"fit and extrapolation disagree"``: the extrapolation refit is *tight* (profile
   half-width within ``pin_tol`` and refit R^2 >= :data:`MIN_EXTRAPOLATION_R2`) and lies
   outside the fit-range interval;
4. ``"pinned by the extrapolation range"``: the fit-range interval is wider than
   ``+-pin_tol`` (sloppy, or the members spread within their precision), the extrapolation
   refit is tight and inside it;
5. ``"not pinned by the data"``: the fit-range interval is wider than ``+-pin_tol`` and there
   is no tight extrapolation refit;
6. ``"pinned"``: otherwise (the fit range pins it; the extrapolation refit, when tight, agrees).

The *best-supported value* is the extrapolation refit when it is tight and the consensus
value lies outside its profile interval (the fit range biases the constant; a wider range of
the inputs pins it), except for constants that vary across members; else the consensus value.
``best_source`` and ``best_note`` say which and why. When the extrapolation target is the
ground truth (a task's law evaluated there), the refit there is the law's own constant, not a
measurement by the networks: it is recorded (``extrapolation``) but is evidence for neither
the verdict nor the best-supported value (that would judge the formula by a refit on the
truth, a circular verdict); :mod:`~ensemble_lens.distill.truth` compares the networks'
values with the truth's. ``extrapolation_reference`` says which target was used.

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
from .canonical import fold_phases, round_constants, unit_free
from .symmetry import canonical_values

__all__ = [
    "Template",
    "best_expression",
    "constants_across_members",
    "form_key",
    "pinned_summary",
    "polish_constants",
    "refit_constants",
    "template",
]

#: rows used for each refit (a random subset when there are more)
MAX_POINTS = 1000
#: members from which the interval is the 5-95 % range instead of min-max
MIN_FOR_PERCENTILES = 20
#: condition number of the column-scaled Jacobian above which constants are not identifiable
MAX_CONDITION = 1e6
#: relative half-width below which a profile interval is not narrowed (the optimiser's
#: precision: refits of exact data on two ranges differ at this level)
PRECISION = 1e-6
#: refit R^2 an extrapolation range needs before its constants count as evidence
MIN_EXTRAPOLATION_R2 = 0.9


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
    """A string equal for two formulas that differ only in their constants, after phases near
    a quarter turn are folded and factors near 1 dropped (``1.002*dy*(...)`` has the form of
    ``dy*(...)``; :func:`~ensemble_lens.distill.canonical.unit_free`)."""
    t = template(unit_free(fold_phases(expr)))
    same = {sympy.Symbol(s): sympy.Symbol("C") for s in t.slots}
    return sympy.srepr(t.expr.xreplace(same))


@dataclass(frozen=True)
class ConstantFit:
    """Constants refitted on one data set: values, R^2, Jacobian (sample, constant), residual
    variance and sum of squared residuals."""

    values: np.ndarray
    r2: float
    jac: np.ndarray
    residual_var: float
    ssr: float = 0.0


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
    return _refit(t, *_subset(X, y, seed), names)


#: formulas with more constants than this are not refitted by :func:`polish_constants`
MAX_POLISHED = 12


def polish_constants(
    expr: sympy.Expr, X: np.ndarray, y: np.ndarray, names: Sequence[str]
) -> sympy.Expr:
    """``expr`` with every float constant refitted together by least squares in float64
    (:func:`refit_constants`), kept only when it lowers the squared error on ``(X, y)``.

    Why: pyoperon fits a tree's constants with a few Levenberg-Marquardt steps in float32, and
    the canonical form refits only the outer scale and offset, so an inner constant stays where
    the search left it (``exp(-0.5019*theta**2)`` for ``exp(-theta**2/2)``). Near an exact law
    that costs more accuracy than the data's own precision (test R^2 0.99996 against 0.999996
    on AI Feynman's I.6.2a, noise 0.1), and a look-alike with more constants then out-scores the
    law at selection. Exponents stay as they are; a formula with more than
    :data:`MAX_POLISHED` constants is returned unchanged.
    """
    t = template(expr)
    if not t.slots or len(t.slots) > MAX_POLISHED:
        return expr
    before = evaluate(expr, X, names)
    if not np.all(np.isfinite(before)):
        return expr
    try:
        # a trial step can overflow a residual; the step is then rejected, nothing to report
        with np.errstate(all="ignore"):
            fit = refit_constants(t, X, y, names)
    except (ValueError, FloatingPointError, np.linalg.LinAlgError):
        return expr
    polished = _substitute(t, fit.values)
    after = evaluate(polished, X, names)
    if np.all(np.isfinite(after)) and np.sum((after - y) ** 2) < np.sum((before - y) ** 2):
        return polished
    return expr


def _subset(X: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    if len(X) <= MAX_POINTS:
        return X, y
    rows = np.sort(np.random.default_rng(seed).choice(len(X), MAX_POINTS, replace=False))
    return X[rows], y[rows]


def _predict(t: Template, X: np.ndarray, c: np.ndarray, cols: list[str]) -> np.ndarray:
    return evaluate(t.expr, np.c_[X, np.broadcast_to(c, (len(X), len(c)))], cols)


def _refit(t: Template, X: np.ndarray, y: np.ndarray, names: Sequence[str]) -> ConstantFit:
    from scipy.optimize import least_squares

    cols = list(names) + list(t.slots)
    scale = max(float(np.std(y)), 1e-300)

    def residual(c: np.ndarray) -> np.ndarray:
        r = (_predict(t, X, c, cols) - y) / scale
        return np.where(np.isfinite(r), r, 1e6)

    x0 = np.asarray(t.values, dtype=np.float64)
    fit = least_squares(residual, x0, method="trf", x_scale="jac")
    pred = _predict(t, X, fit.x, cols)
    ssr = float(np.sum((pred - y) ** 2)) if np.all(np.isfinite(pred)) else np.inf
    dof = max(len(y) - len(x0), 1)
    return ConstantFit(fit.x, r2_score(pred, y), fit.jac * scale, ssr / dof, ssr)


def _profile_ssr(
    t: Template, X: np.ndarray, y: np.ndarray, names: Sequence[str], fit: ConstantFit, i: int,
    value: float,
) -> float:  # fmt: skip
    """The smallest misfit with constant ``i`` held at ``value``, the others re-optimised."""
    keep = [k for k in range(len(t.slots)) if k != i]
    fixed = Template(
        t.expr.xreplace({sympy.Symbol(t.slots[i]): sympy.Float(value)}),
        tuple(t.slots[k] for k in keep),
        tuple(float(fit.values[k]) for k in keep),
    )
    if fixed.slots:
        return _refit(fixed, X, y, names).ssr
    pred = evaluate(fixed.expr, X, names)
    return float(np.sum((pred - y) ** 2)) if np.all(np.isfinite(pred)) else np.inf


def _profile(
    t: Template, X: np.ndarray, y: np.ndarray, names: Sequence[str], fit: ConstantFit, i: int,
    step: float,
) -> tuple[float, float, float]:  # fmt: skip
    """Profile interval (low, high) of constant ``i``, where the misfit at most doubles, and
    the misfit that moving it by ``+-step`` (relative) adds, in units of the misfit (the
    smaller side).

    The profile is measured at ``value * (1 +- step)`` and each side taken as quadratic: the
    curvature of a least-squares misfit, read off the re-optimised fit rather than the
    Jacobian, so that constants traded off against others are seen as the flat directions
    they are.
    """
    c = float(fit.values[i])
    unit = abs(c) if c != 0 else 1.0
    half, costs = [], []
    for sign in (-1.0, 1.0):
        added = _profile_ssr(t, X, y, names, fit, i, c + sign * step * unit) - fit.ssr
        tiny = 1e-9 * fit.ssr
        costs.append(added / fit.ssr if fit.ssr > 0 else np.inf)
        half.append(step * unit * np.sqrt(fit.ssr / added) if added > tiny else np.inf)
    floor = PRECISION * unit  # two refits of exact data differ by the optimiser's precision
    return c - max(half[0], floor), c + max(half[1], floor), float(min(costs))


def _condition(fit: ConstantFit) -> tuple[np.ndarray, float]:
    """Standard errors (independent-noise assumption) and the condition number of the
    Jacobian with columns scaled by the constants' values."""
    J = fit.jac * np.where(fit.values != 0, np.abs(fit.values), 1.0)[None, :]
    if not np.isfinite(J).all():
        return np.full(len(fit.values), np.inf), np.inf
    sv = np.linalg.svd(J, compute_uv=False)
    cond = float(sv[0] / sv[-1]) if sv[-1] > 0 else np.inf
    cov = np.linalg.pinv(fit.jac.T @ fit.jac) * fit.residual_var
    return np.sqrt(np.maximum(np.diag(cov), 0.0)), cond


@dataclass(frozen=True)
class _Evidence:
    """One data set's refit and each constant's profile interval there."""

    fit: ConstantFit
    low: np.ndarray
    high: np.ndarray
    cost: np.ndarray

    def half(self, i: int) -> float:
        """Relative half-width of constant i's profile interval (the larger side)."""
        c = self.fit.values[i]
        return _rel(max(c - self.low[i], self.high[i] - c), c)


def _evidence(
    t: Template, X: np.ndarray, y: np.ndarray, names: Sequence[str], step: float,
    only: Sequence[int] | None = None, canon: Any = None,
) -> _Evidence:  # fmt: skip
    """The refit on ``(X, y)`` with its constants in canonical form (``canon``, from
    :func:`~ensemble_lens.distill.symmetry.canonical_values`: the same function on one branch
    of each symmetry, so fits on different data compare), and each constant's profile
    interval there."""
    X, y = _subset(X, y)
    fit = _refit(t, X, y, names)
    if canon is not None and np.isfinite(fit.ssr):
        values = canon(fit.values)
        if not np.allclose(values, fit.values, rtol=0, atol=0):  # refit there: its Jacobian
            fit = _refit(Template(t.expr, t.slots, tuple(map(float, values))), X, y, names)
    n = len(t.slots)
    out = np.full((3, n), np.nan)
    for i in range(n) if only is None else only:
        # a form that is non-finite on the data pins nothing: an unbounded, sloppy interval
        out[:, i] = _profile(t, X, y, names, fit, i, step) if np.isfinite(fit.ssr) else (
            -np.inf, np.inf, 0.0)  # fmt: skip
    return _Evidence(fit, out[0], out[1], out[2])


def _rel(width: float, c: float) -> float:
    return float(width / abs(c)) if c != 0 else float(width)


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
    extrapolation_reference: str | None = None,
    pin_tol: float = 0.05,
) -> dict[str, Any]:
    """The formula's constants refitted on the consensus, every member and the extrapolation
    range, with the verdict of the module docstring.

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
    extrapolation_reference : str, optional
        What ``y_extrap`` is (``"truth"``, or the networks' consensus there); recorded.
    pin_tol : float
        Relative half-width up to which an interval is tight, and the relative move of the
        profile (sloppiness) check.

    Returns
    -------
    dict
        ``template`` (str, constants as ``_c0``...), ``interval`` ("min-max" or "5-95 %"),
        ``members`` (K), ``pin_tol``, ``constants``: one dict per constant (see
        docs/CONTRACTS.md "Formulas"), ``member_values`` {member: [values]}, ``condition``,
        ``extrapolation_r2``, ``extrapolation_reference``, ``best_expression`` (the formula
        with every constant at its best-supported value, rounded to 4 significant figures),
        ``best_from_extrapolation`` (any best value taken from the extrapolation range),
        ``pinned`` (every constant pinned,
        by the fit range or the extrapolation range).

    Examples
    --------
    >>> import numpy as np, sympy
    >>> x = sympy.Symbol("x")
    >>> X = np.linspace(0.1, 2, 200)[:, None]
    >>> y = np.exp(-X[:, 0])
    >>> out = constants_across_members(sympy.exp(-0.9 * x), X, y, np.stack([y, y]),
    ...                                ["a", "b"], ["x"])
    >>> out["constants"][0]["verdict"], round(out["constants"][0]["best"], 4)
    ('pinned', -1.0)
    """
    t = template(expr)
    if not t.slots:
        return {"template": str(expr), "constants": [], "pinned": True, "members": 0,
                "best_expression": str(expr), "best_from_extrapolation": False}  # fmt: skip
    canon = canonical_values(t.expr, t.slots)
    base = _evidence(t, X, y, names, pin_tol, canon=canon)
    se, cond = _condition(base.fit)
    V = np.stack([canon(_refit(t, *_subset(X, my), names).values) for my in member_y])
    K = len(V)
    q = (5, 95) if K >= MIN_FOR_PERCENTILES else (0, 100)
    low, med, high = (np.percentile(V, p, axis=0) for p in (q[0], 50, q[1]))
    ext = None
    if X_extrap is not None and y_extrap is not None:
        ext = _evidence(t, X_extrap, y_extrap, names, pin_tol, canon=canon)
    wide = [i for i in range(len(t.slots)) if _rel((high[i] - low[i]) / 2, med[i]) > pin_tol]
    own = [
        _evidence(t, X, my, names, pin_tol, only=wide, canon=canon) for my in member_y
    ] if wide else []  # fmt: skip
    constants = []
    for i, slot in enumerate(t.slots):
        row = _constant_row(i, base, se[i], (low[i], med[i], high[i]), ext, pin_tol)
        vary = i in wide and max(e.low[i] for e in own) > min(e.high[i] for e in own)
        row["members_agree_within_precision"] = None if i not in wide else not vary
        # a refit on the truth is the truth's constant, not evidence from the networks
        evidence = ext is not None and extrapolation_reference != "truth"
        row.update(_verdict(row, cond, vary, evidence and _tight(ext, i, pin_tol),
                            pin_tol, extrapolation_reference))  # fmt: skip
        constants.append({"name": slot, **{k: _num(v) if isinstance(v, float) else v
                                           for k, v in row.items()}})  # fmt: skip
    best = [float(np.nan if c["best"] is None else c["best"]) for c in constants]
    return {
        "template": str(t.expr),
        "interval": "5-95 %" if K >= MIN_FOR_PERCENTILES else "min-max",
        "members": K,
        "pin_tol": pin_tol,
        "constants": constants,
        "member_values": {
            str(m): [_num(v) for v in row] for m, row in zip(member_ids, V, strict=True)
        },
        "condition": _num(cond),
        "extrapolation_r2": None if ext is None else _num(ext.fit.r2),
        "extrapolation_reference": extrapolation_reference if ext is not None else None,
        # shown rounded like every formula; best_expression() rebuilds it unrounded
        "best_expression": str(round_constants(_substitute(t, best))),
        "best_from_extrapolation": any(
            c["best_source"] == "extrapolation range" for c in constants
        ),
        "pinned": all(c["verdict"] in PINNED for c in constants),
    }


#: the verdicts under which a constant counts as pinned
PINNED = ("pinned", "pinned by the extrapolation range")


def _tight(ev: _Evidence, i: int, pin_tol: float) -> bool:
    return ev.half(i) <= pin_tol and ev.fit.r2 >= MIN_EXTRAPOLATION_R2


def _constant_row(
    i: int, base: _Evidence, se: float, members: tuple[float, float, float],
    ext: _Evidence | None, pin_tol: float,
) -> dict[str, Any]:  # fmt: skip
    """The numbers of constant ``i``: consensus, members, fit-range hull, extrapolation."""
    c = float(base.fit.values[i])
    low, med, high = (float(v) for v in members)
    row: dict[str, Any] = {
        "value": c, "se": float(se), "relative_se": _rel(se, c),
        "profile_low": float(base.low[i]), "profile_high": float(base.high[i]),
        "profile_cost": float(base.cost[i]), "sloppy": bool(base.cost[i] < 1.0),
        "median": med, "low": low, "high": high,
        "relative_width": _rel(high - low, med),
        "fit_low": float(min(base.low[i], low)), "fit_high": float(max(base.high[i], high)),
        "extrapolation": None, "extrapolation_low": None, "extrapolation_high": None,
    }  # fmt: skip
    row["fit_tight"] = bool(max(c - row["fit_low"], row["fit_high"] - c) <= pin_tol * abs(c))
    if ext is not None:
        row["extrapolation"] = float(ext.fit.values[i])
        row["extrapolation_low"], row["extrapolation_high"] = float(ext.low[i]), float(ext.high[i])
    return row


def _verdict(
    row: dict[str, Any], cond: float, vary: bool, ext_tight: bool, pin_tol: float,
    reference: str | None,
) -> dict[str, Any]:  # fmt: skip
    """``verdict``, ``reason``, ``best``, ``best_source`` and ``best_note`` of one constant
    (the rule of the module docstring, in its order)."""
    e = row["extrapolation"]
    fit = f"fit range [{row['fit_low']:.4g}, {row['fit_high']:.4g}]"
    if not np.isfinite(row["profile_low"]):
        loose = "the form is not finite on every sample"
    elif row["sloppy"]:
        loose = f"sloppy: moving it by {pin_tol:.0%} adds {row['profile_cost']:.2g} x the misfit"
    else:
        loose = f"{fit} wider than +-{pin_tol:.0%}"
    pins = f"the extrapolation range pins {e:.4g}" if ext_tight else "no tight extrapolation refit"
    rules = (
        (not cond < MAX_CONDITION, "not pinned by the data",
         f"not identifiable (Jacobian condition {cond:.3g}): it trades off against another"),
        (vary, "varies across members",
         f"members from {row['low']:.4g} to {row['high']:.4g}, beyond their own precision"),
        (ext_tight and not row["fit_low"] <= e <= row["fit_high"],
         "fit and extrapolation disagree", f"{pins}, outside the {fit}"),
        (not row["fit_tight"] and ext_tight, "pinned by the extrapolation range",
         f"{loose}; {pins}"),
        (not row["fit_tight"], "not pinned by the data", f"{loose}; {pins}"),
        (True, "pinned", f"{fit} within +-{pin_tol:.0%}"
         + (f"; the extrapolation range agrees ({e:.4g})" if ext_tight else "")),
    )  # fmt: skip
    verdict, reason = next((v, r) for hit, v, r in rules if hit)
    return {"verdict": verdict, "reason": reason, **_best(row, verdict, ext_tight, reference)}


def _best(row: dict[str, Any], verdict: str, ext_tight: bool, reference: str | None):
    """The best-supported value of one constant and where it comes from."""
    c, e = row["value"], row["extrapolation"]
    if reference == "truth" and e is not None:
        note = (
            f"the extrapolation range's target is the ground truth: its refit {e:.4g} is the "
            "truth's value, not one the networks measured, so it is never the best-supported "
            "value (see constants_truth)"
        )
        return {"best": c, "best_source": "fit range", "best_note": note}
    differs = ext_tight and not row["extrapolation_low"] <= c <= row["extrapolation_high"]
    if verdict == "varies across members" or not differs:
        return {"best": c, "best_source": "fit range", "best_note": None}
    note = (
        f"the fit range gives {c:.4g} (members {row['low']:.4g} to {row['high']:.4g}); the "
        f"extrapolation range pins {e:.4g} ({_rel(e - c, c):+.1%}), preferred"
    )
    return {"best": e, "best_source": "extrapolation range", "best_note": note}


def _substitute(t: Template, values: Sequence[float]) -> sympy.Expr:
    return t.expr.xreplace(
        {sympy.Symbol(s): sympy.Float(v) for s, v in zip(t.slots, values, strict=True)}
    )


def best_expression(expr: sympy.Expr, constants: dict[str, Any]) -> sympy.Expr:
    """``expr`` with every constant at its best-supported value from ``constants`` (the dict
    :func:`constants_across_members` returned for it)."""
    t = template(expr)
    if not t.slots:
        return expr
    vals = [c["best"] if c.get("best") is not None else c["value"] for c in constants["constants"]]
    return _substitute(t, vals)


def pinned_summary(constants: dict[str, Any] | None) -> str | None:
    """One line for tables: how many constants are pinned, and each one that is not, with
    its verdict (e.g. ``"1/2 pinned; _c1: fit and extrapolation disagree"``); None without
    a constants verdict, ``"no constants"`` for a formula without any."""
    if not constants:
        return None
    rows = constants.get("constants") or []
    if not rows:
        return "no constants"
    loose = [f"{c['name']}: {c['verdict']}" for c in rows if c.get("verdict") not in PINNED]
    pinned = sum(c.get("verdict") in PINNED for c in rows)
    return "; ".join([f"{pinned}/{len(rows)} pinned", *loose])


def _num(x: float) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None
