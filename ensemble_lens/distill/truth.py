"""Honest constants: a formula's constants judged against a ground truth without refitting it.

Refitting a formula's constants on the truth and then calling it exact is circular: any
formula of the right form passes, whatever the networks hold. Here the formula keeps the
values the networks gave it (the consensus fit); the truth only supplies *its own* value of
each constant: the formula's template, given a scale and an offset of its own, fitted to the
truth on the test split. Each law constant (not a scale, an offset or a phase:
:func:`~ensemble_lens.distill.mixture.law_slots`) is then compared, and the verdict says
where an error comes from:

* ``"exact"``: every constant within ``tol`` (relative) of the truth's;
* ``"constants off: the members hold the off values (a network bias, not a search miss)"``:
  for every constant that is off, the truth's value lies outside the members' own refits'
  interval (each member, fitted alone, holds the off value);
* ``"constants off: a search miss (the members' own refits include the truth)"``: some
  constant that is off has the truth's value inside the members' interval;
* ``"not the truth's form"``: the template cannot reproduce the truth (refit R^2 below
  :data:`MIN_FORM_R2`): constants are not compared.

:func:`constants_against_truth` returns the record (``constants_truth`` of a formula record,
whose ``verdict`` is the headline ``truth_verdict``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sympy

from ._expr import affine_fit, evaluate
from .constants import Template, refit_constants, template
from .mixture import law_slots
from .symmetry import canonical_values

__all__ = ["EXACT", "MIN_FORM_R2", "constants_against_truth", "truth_verdict"]

#: how far (relative) a constant may be from the truth's and count as exact: the constants'
#: precision of :func:`~ensemble_lens.distill.judge.exact_recovery`
TOL = 0.02
#: refit R^2 on the truth below which the formula is not of the truth's form
MIN_FORM_R2 = 0.999
EXACT = "exact"
BIAS = "constants off: the members hold the off values (a network bias, not a search miss)"
MISS = "constants off: a search miss (the members' own refits include the truth)"
OTHER_FORM = "not the truth's form"


def _rel(a: float, b: float) -> float:
    return float(abs(a - b) / abs(b)) if b != 0 else float(abs(a - b))


def constants_against_truth(
    expr: sympy.Expr,
    constants: Mapping[str, Any] | None,
    truth: sympy.Expr,
    X: np.ndarray,
    names: Sequence[str],
    *,
    tol: float = TOL,
) -> dict[str, Any] | None:
    """The formula's constants against the truth's (see the module docstring).

    Parameters
    ----------
    expr : sympy.Expr
        The formula, with the constants the networks gave it.
    constants : dict or None
        Its record from :func:`~ensemble_lens.distill.constants.constants_across_members`
        (the members' intervals ``low``/``high`` per constant, on the component's scale).
    truth : sympy.Expr
        The ground-truth latent.
    X : ndarray, shape (sample, variable)
        Test inputs.
    names : sequence of str
    tol : float
        Relative distance within which a constant counts as the truth's.

    Returns
    -------
    dict or None
        ``verdict``, ``form_r2`` (the template's refit R^2 on the truth), ``tol``,
        ``off`` (the law constants off by more than ``tol``), ``constants``: per constant
        ``{name, value, truth, relative_error, low, high, members_hold_off_value, judged}``;
        None without a constants record or constants.

    Examples
    --------
    >>> import numpy as np, sympy
    >>> from ensemble_lens.distill.constants import constants_across_members
    >>> r = sympy.Symbol("r")
    >>> X = np.linspace(0.5, 3, 300)[:, None]
    >>> members = np.stack([np.exp(-0.97 * X[:, 0]), np.exp(-0.965 * X[:, 0])])
    >>> expr = sympy.exp(-0.9675 * r)
    >>> c = constants_across_members(expr, X, members.mean(0), members, ["a", "b"], ["r"])
    >>> constants_against_truth(expr, c, sympy.exp(-r), X, ["r"])["verdict"]
    'constants off: the members hold the off values (a network bias, not a search miss)'
    """
    t = template(expr)
    if constants is None or not t.slots or not constants.get("constants"):
        return None
    tv = evaluate(truth, X, names)
    # the truth's law constants do not depend on its scale and offset: the template gets its
    # own (``_A``, ``_B``) and is fitted to the truth as it is
    a, b = affine_fit(evaluate(expr, X, names), tv)
    A, B = sympy.Symbol("_A"), sympy.Symbol("_B")
    wrapped = Template(A * t.expr + B, (*t.slots, "_A", "_B"), (*t.values, a, b))
    fit = refit_constants(wrapped, X, tv, names)
    record: dict[str, Any] = {"form_r2": float(fit.r2), "tol": tol, "constants": []}
    if not np.isfinite(fit.r2) or fit.r2 < MIN_FORM_R2:
        return {**record, "verdict": OTHER_FORM}
    truth_values = canonical_values(t.expr, t.slots)(fit.values[: len(t.slots)])
    judged = set(law_slots(t.expr, list(t.slots)))
    off, held = [], []
    for row, true in zip(constants["constants"], truth_values, strict=True):
        if row["name"] not in judged:  # a scale, an offset or a phase: the member's basis
            record["constants"].append({"name": row["name"], "value": row["value"],
                                        "truth": None, "judged": False})  # fmt: skip
            continue
        value, low, high = row["value"], row.get("low"), row.get("high")
        err = _rel(value, float(true))
        hold = None if low is None or high is None else not low <= float(true) <= high
        record["constants"].append(
            {"name": row["name"], "value": value, "truth": float(true), "relative_error": err,
             "low": low, "high": high, "members_hold_off_value": hold, "judged": True}
        )  # fmt: skip
        if err > tol:
            off.append(row["name"])
            held.append(bool(hold))
    record["verdict"] = EXACT if not off else BIAS if all(held) else MISS
    record["off"] = off
    return record


def truth_verdict(rec: Mapping[str, Any]) -> str | None:
    """The headline verdict of a formula record against its truth, never from a refit on the
    truth: the constants' verdict (:func:`constants_against_truth`, ``constants_truth``) when
    the formula has law constants and the truth's form; else ``"exact"`` or
    ``"not recovered"`` from ``exact_recovery`` (the formula with the networks' constants);
    None without a truth."""
    if rec.get("exact_recovery") is None and rec.get("constants_truth") is None:
        return None
    ct = rec.get("constants_truth")
    if ct and ct["verdict"] != OTHER_FORM and any(c["judged"] for c in ct["constants"]):
        return ct["verdict"]
    return EXACT if rec.get("exact_recovery") else "not recovered"
