"""Is one formula the members' law, or an average over different laws?

A subspace formula is fitted to the consensus: the weighted mean of the members' aligned
components. When the members hold different laws (each its own constants, ``a_k sin(b_k x)``),
the mean is a function none of them computes, and a search writes a formula for it that can
pass test R^2, support and even extrapolation. Three checks, each from the members' own data:

* :func:`varying_constants_failure` -- a constant of the formula that *varies across members*
  (:func:`~ensemble_lens.distill.constants.constants_across_members`: the members' refits
  spread beyond ``pin_tol`` and no one value lies inside every member's own profile
  interval): each member sets its own value, so the formula's value is an average;
* :func:`unneeded_inputs` -- an input the formula uses that the members' own refits do not
  need: with that input held at its mean and every constant refitted, each member's
  unexplained variance grows by at most ``MAX_UNEXPLAINED_GROWTH`` (a distractor the average
  picked up, not a variable of any member's law);
* :func:`templates_failure` -- against the templates stage's record of the same layer: a
  formula is not the law when the shared template explains the members with constants of
  their own (a constant that varies across them), or when it uses an input that no member's
  own formula uses.

Each returns the reason (a sentence starting with :data:`MIXTURE`) or None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sympy

from ._expr import affine_r2, evaluate, parse_written
from .constants import refit_constants, template

__all__ = [
    "MIXTURE",
    "distractor_failure",
    "law_slots",
    "mark_mixtures",
    "templates_failure",
    "unneeded_inputs",
    "varying_constants_failure",
]

#: the start of every reason given here
MIXTURE = "average over different laws"
#: an input is needed by a member when holding it at its mean multiplies the member's
#: unexplained variance (after refitting every constant) by more than 1 + this
MAX_UNEXPLAINED_GROWTH = 0.05
#: refit R^2 a member needs before its fit says which inputs it needs (below it, an input's
#: share is lost in what the formula leaves unexplained)
MIN_MEMBER_R2 = 0.5
#: members refitted at most (evenly spaced) when checking inputs
MAX_MEMBERS = 20
#: relative spread of a template constant across members above which each member has its own
CONSTANT_SPREAD = 0.05


def varying_constants_failure(constants: Mapping[str, Any] | None) -> str | None:
    """Why a formula is an average: the law constants (:func:`law_slots`) that vary across
    members (``constants``: the record of
    :func:`~ensemble_lens.distill.constants.constants_across_members`), or None."""
    if not constants or not constants.get("constants"):
        return None
    rows = constants["constants"]
    keep = set(law_slots(parse_written(constants["template"]), [c["name"] for c in rows]))
    vary = [c for c in rows if c.get("verdict") == "varies across members" and c["name"] in keep]
    if not vary:
        return None
    spread = ", ".join(f"{c['name']} from {c['low']:.4g} to {c['high']:.4g}" for c in vary)
    return (
        f"{MIXTURE}: each member has its own value of {spread} (beyond each member's own "
        "precision), so the formula's constants are an average over members, not a law; "
        "not presented as a result"
    )


def _unexplained(expr: sympy.Expr, X: np.ndarray, y: np.ndarray, names: Sequence[str]) -> float:
    t = template(expr)
    if not t.slots:
        return 1.0 - float(affine_r2(evaluate(expr, X, names), y))
    return 1.0 - float(refit_constants(t, X, y, names).r2)


def unneeded_inputs(
    expr: sympy.Expr,
    X: np.ndarray,
    member_y: np.ndarray,
    names: Sequence[str],
    *,
    max_growth: float = MAX_UNEXPLAINED_GROWTH,
) -> list[str]:
    """The inputs of ``expr`` that most members' own refits do not need.

    Parameters
    ----------
    expr : sympy.Expr
        The formula (its Floats are the constants refitted).
    X : ndarray, shape (sample, variable)
        Inputs named by ``names``.
    member_y : ndarray, shape (member, sample)
        Each member's own component.
    names : sequence of str
    max_growth : float
        See :data:`MAX_UNEXPLAINED_GROWTH`.

    Returns
    -------
    list of str
        In the order of ``names``: inputs that, held at their mean, leave the median member's
        unexplained variance within ``1 + max_growth`` of its value with the input, over the
        members the formula explains (refit R^2 >= :data:`MIN_MEMBER_R2`); empty when fewer
        than two are.

    Examples
    --------
    >>> import numpy as np, sympy
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(1, 2, size=(300, 2))
    >>> x1, x2 = sympy.symbols("x1 x2")
    >>> Y = np.stack([k * np.sin(3 * X[:, 0]) + 0.05 * rng.normal(size=300) for k in (1, 2, 3)])
    >>> unneeded_inputs(2.0 * sympy.sin(3.0 * x1) + 0.05 * x2, X, Y, ["x1", "x2"])
    ['x2']
    """
    used = {s.name for s in expr.free_symbols}
    pick = np.unique(np.linspace(0, len(member_y) - 1, min(len(member_y), MAX_MEMBERS)).round())
    ys, base = [], []
    for k in pick:
        left = _unexplained(expr, X, member_y[int(k)], names)
        if left <= 1.0 - MIN_MEMBER_R2:  # a member the formula does not explain tells nothing
            ys.append(member_y[int(k)])
            base.append(left)
    if len(ys) < 2:
        return []
    out = []
    for j, name in enumerate(names):
        if name not in used:
            continue
        held = expr.xreplace({sympy.Symbol(name): sympy.Float(float(np.mean(X[:, j])))})
        grown = [
            (_unexplained(held, X, y, names) + 1e-9) / (b + 1e-9)
            for y, b in zip(ys, base, strict=True)
        ]
        if float(np.median(grown)) <= 1.0 + max_growth:
            out.append(name)
    return out


def distractor_failure(inputs: Sequence[str]) -> str | None:
    """The reason for a formula that uses inputs the members do not need, or None."""
    if not inputs:
        return None
    return (
        f"{MIXTURE}: it uses {', '.join(inputs)}, which the members' own refits do not need "
        "(held at its mean, no member's fit gets worse): a distractor picked up by the "
        "average, not a variable of the members' law; not presented as a result"
    )


def law_slots(expr: sympy.Expr, slots: Sequence[str]) -> list[str]:
    """The slots of a template that say which law a member holds: not those in which it is
    affine (a component's scale and offset are the member's basis, not its law) nor the
    phases of periodic functions (a member's pair of components in a rotated basis)."""
    from .symmetry import symmetries
    from .template_starts import _affine_slots

    syms = tuple(sympy.Symbol(s) for s in slots)
    affine = {slots[i] for i in _affine_slots(expr, syms)}
    phases = {f.phase for f in symmetries(expr, syms, ())[0] if f.phase is not None}
    return [s for s in slots if s not in affine | phases]


def _varying_template_slots(best: Mapping[str, Any]) -> list[str]:
    """Law slots (:func:`law_slots`) of a template whose values spread across members beyond
    :data:`CONSTANT_SPREAD` (half the range relative to the median magnitude); each member's
    first explained component counts."""
    out = []
    keep = set(law_slots(parse_written(best["template"]), list(best.get("slots") or [])))
    per_member: dict[str, list[float]] = {}
    for consts in (best.get("constants") or {}).values():
        if not consts:
            continue
        for slot, value in consts[0].items():
            if slot in keep:
                per_member.setdefault(slot, []).append(float(value))
    for slot, vals in per_member.items():
        if len(vals) < 2:
            continue
        lo, hi = min(vals), max(vals)
        mid = float(np.median(np.abs(vals)))
        if (hi - lo) / 2 > CONSTANT_SPREAD * max(mid, 1e-12):
            out.append(slot)
    return sorted(out)


def templates_failure(
    formula: Mapping[str, Any], templates: Mapping[str, Any] | None
) -> str | None:
    """Why a subspace formula is an average, given the templates record of its layer (the
    ``templates`` entry of the templates stage: ``verdict``, ``best``, ``member_formulas``);
    None when the templates do not contradict it (or there are none)."""
    expr_text = formula.get("expression") or formula.get("rejected_expression")
    if not templates or not expr_text:
        return None
    expr = parse_written(expr_text)
    best = templates.get("best")
    if templates.get("verdict") == "shared form" and best:
        vary = _varying_template_slots(best)
        if vary:
            return (
                f"{MIXTURE}: the template {best['template']} explains the members with "
                f"constants of their own ({', '.join(vary)} differ across members): read the "
                "template and each member's constants, not this formula"
            )
    own = {
        s.name
        for per in (templates.get("member_formulas") or {}).values()
        for text in per.values()
        if text
        for s in parse_written(text).free_symbols
    }
    extra = sorted(s.name for s in expr.free_symbols if own and s.name not in own)
    if extra:
        return (
            f"{MIXTURE}: it uses {', '.join(extra)}, which no member's own formula uses: a "
            "distractor picked up by the average; not presented as a result"
        )
    return None


def mark_mixtures(
    formulas: Sequence[dict[str, Any]], templates: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """The layer's formula records with :func:`templates_failure` applied: a formula it
    rejects gets ``is_result`` False, the flag ``"mixture"``, the reason, and its expression
    moved to ``rejected_expression`` (as every rejected formula). Copies; idempotent."""
    out = []
    for rec in formulas:
        rec = dict(rec)
        reason = templates_failure(rec, templates) if rec.get("is_result") else None
        if reason is not None:
            rec["flags"] = [*rec.get("flags", []), "mixture"]
            rec.update(is_result=False, reason=reason, rejected_expression=rec["expression"],
                       expression=None, srepr=None, latex=None)  # fmt: skip
        out.append(rec)
    return out
