"""What a scientist can check of a formula, with or without a ground truth.

Every formula record gets, besides test R^2 and support:

* **agreement across SR seeds**: the share of the searches (one per seed) that wrote the same
  form up to constants (:func:`~ensemble_lens.distill.constants.form_key`);
* **drop-one-member stability**: the component is re-derived as the mean of the remaining
  members' aligned components, once per left-out member, and the chosen form (constants
  refitted) must explain each within ``stability_tolerance`` of its R^2 on the mean of all
  members; otherwise the formula is flagged ``unstable`` (it depends on one member);
* **constants across members** (:mod:`~ensemble_lens.distill.constants`), the members'
  components first put on the consensus' scale (:func:`on_consensus_scale`): each constant
  pinned or not, and its best-supported value (:func:`constants_verdict`); with a truth,
  :func:`recovered_with_best_constants` is the exact-recovery verdict of the formula with
  those values (stored as ``exact_recovery_best``);
* **the knee of the search front** (:func:`front_knee`): a closed form shows up on the
  error-size front as a sharp drop (the law's formula explains nearly everything and longer
  ones add nothing), while a smooth function that no short formula describes (what a null
  ensemble fitted to shuffled targets shares) lowers the error gradually, node by node. A
  formula whose front has no step steeper than ``min_knee`` (log error per added node) up to
  it is flagged ``no_knee`` and is not a result (not measured for formulas chosen by gradient
  agreement or reduced modulo other components: the front's errors do not rank those);
* **the extrapolation verdict**: a formula whose extrapolation R^2 is negative, or more than
  ``max_extrapolation_drop`` below its test R^2, does not hold beyond the probe's range and is
  not a result: its expression moves to ``rejected_expression`` and ``expression`` is None.

* **one law, not an average** (:mod:`~ensemble_lens.distill.mixture`): a formula with a law
  constant that varies across members, or with an input the members' own refits do not need
  (``unneeded_inputs``), is an average over different laws: flag ``"mixture"``, not a result.

Without a ground truth the records say ``ground_truth: false`` and :data:`NO_TRUTH`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy

from .constants import (
    best_expression,
    constants_across_members,
    form_key,
    refit_constants,
    template,
)
from .mixture import distractor_failure, unneeded_inputs, varying_constants_failure

__all__ = [
    "NO_TRUTH",
    "constants_verdict",
    "drop_one_member",
    "extrapolation_failure",
    "formula_failure",
    "front_knee",
    "judge",
    "on_consensus_scale",
    "recovered_with_best_constants",
    "seed_agreement",
]

NO_TRUTH = "no ground truth: recovery is not judged"


def seed_agreement(pick: Any, results: Sequence[Any]) -> dict[str, Any]:
    """The seeds whose formula has the pick's form up to constants, and their share."""
    key = form_key(pick.expr)
    agree = [r.seed for r in results if r.expr is not None and form_key(r.expr) == key]
    return {"seed_agreement": len(agree) / len(results), "seeds_agreeing": agree}


def drop_one_member(
    expr: sympy.Expr,
    X: np.ndarray,
    member_y: np.ndarray,
    member_ids: Sequence[str],
    names: Sequence[str],
    *,
    tolerance: float,
) -> dict[str, Any]:
    """R^2 of the formula's form (constants refitted) on the mean of all members but one.

    Parameters
    ----------
    expr : sympy.Expr
    X : ndarray, shape (sample, variable)
    member_y : ndarray, shape (member, sample)
        Each member's aligned component.
    member_ids, names : sequences of str
    tolerance : float
        Largest R^2 loss, against the mean of all members, of a stable formula.

    Returns
    -------
    dict
        ``drop_one_r2`` {left-out member: R^2}, ``drop_one_reference_r2`` (all members) and
        ``stable`` (None with fewer than 3 members).
    """
    if len(member_y) < 3:
        return {"drop_one_r2": {}, "drop_one_reference_r2": None, "stable": None}
    t = template(expr)
    ref = _fit_r2(t, expr, X, member_y.mean(0), names)
    total = member_y.sum(0)
    r2 = {
        str(m): _fit_r2(t, expr, X, (total - member_y[k]) / (len(member_y) - 1), names)
        for k, m in enumerate(member_ids)
    }
    return {
        "drop_one_r2": r2,
        "drop_one_reference_r2": ref,
        "stable": bool(min(r2.values()) >= ref - tolerance),
    }


def _fit_r2(t: Any, expr: sympy.Expr, X: np.ndarray, y: np.ndarray, names: Sequence[str]):
    if not t.slots:
        from ._expr import affine_r2, evaluate

        return float(affine_r2(evaluate(expr, X, names), y))
    return float(refit_constants(t, X, y, names).r2)


def on_consensus_scale(member_y: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The members' components (member, sample) mapped by the one affine map that takes their
    mean onto the consensus ``y`` (sample,).

    Consensus components are standardised weighted means, while each member's aligned
    component keeps the aligned frame's scale; one common map keeps the members' differences
    and makes their constants comparable with the consensus formula's.
    """
    A = np.c_[member_y.mean(0), np.ones(member_y.shape[1])]
    (a, b), *_ = np.linalg.lstsq(A, y, rcond=None)
    return a * member_y + b


def constants_verdict(
    expr: sympy.Expr,
    X: np.ndarray,
    y: np.ndarray,
    member_y: np.ndarray,
    member_ids: Sequence[str],
    names: Sequence[str],
    *,
    extrapolation: tuple[np.ndarray, np.ndarray] | None = None,
    extrapolation_reference: str | None = None,
) -> dict[str, Any]:
    """:func:`~ensemble_lens.distill.constants.constants_across_members` of a formula on the
    component ``y`` (sample,), its members' own components ``member_y`` (member, sample, put
    on ``y``'s scale here) and the extrapolation range ``(inputs, target)``."""
    Xe, ye = extrapolation if extrapolation is not None else (None, None)
    return constants_across_members(
        expr, X, y, on_consensus_scale(member_y, y), member_ids, names,
        X_extrap=Xe, y_extrap=ye, extrapolation_reference=extrapolation_reference,
    )  # fmt: skip


def recovered_with_best_constants(
    expr: sympy.Expr,
    constants: dict[str, Any] | None,
    truth: sympy.Expr,
    X: np.ndarray,
    names: Sequence[str],
) -> bool | None:
    """Exact recovery (:func:`~ensemble_lens.distill.judge.exact_recovery`, the default 2 %
    tolerance) of ``expr`` with each constant at its best-supported value; None without a
    constants verdict."""
    from .judge import exact_recovery

    if constants is None:
        return None
    return bool(exact_recovery(best_expression(expr, constants), truth, X=X, names=names))


def extrapolation_failure(
    r2_test: float | None, r2_extrapolation: float | None, max_drop: float
) -> str | None:
    """Why a formula does not hold beyond the probe's range, or None when it does (or when
    there is no extrapolation range)."""
    if r2_extrapolation is None or r2_test is None:
        return None
    if r2_extrapolation < 0 or r2_extrapolation < r2_test - max_drop:
        return (
            f"extrapolation R^2 {r2_extrapolation:.3g} is far below test R^2 {r2_test:.3g} "
            f"(negative, or more than {max_drop:g} lower): the formula does not hold beyond "
            "the probe's range and is not presented as a result"
        )
    return None


def support_failure(support: float | None, min_support: float) -> str | None:
    """Why a formula is not the members' law (too few members' own components explained), or
    None when enough are (or when support was not measured)."""
    if support is None or support >= min_support:
        return None
    return (
        f"support {support:.2f} is below {min_support:g}: the formula explains the consensus "
        "but not most members' own components, so it is not presented as a result"
    )


def formula_failure(
    r2_test: float | None,
    r2_extrapolation: float | None,
    support: float | None,
    *,
    max_extrapolation_drop: float,
    min_support: float,
) -> tuple[str, str] | None:
    """``(flag, reason)`` when a formula is not a result, else None: the extrapolation rule
    (:func:`extrapolation_failure`, flag ``"extrapolation"``) first, then the support rule
    (:func:`support_failure`, flag ``"support"``). One rule for consensus formulas, per-group
    formulas and templates."""
    failure = extrapolation_failure(r2_test, r2_extrapolation, max_extrapolation_drop)
    if failure is not None:
        return "extrapolation", failure
    failure = support_failure(support, min_support)
    return None if failure is None else ("support", failure)


def front_knee(front: Sequence[dict[str, Any]], complexity: int | None) -> float | None:
    """The steepest step of the search front up to ``complexity``: the largest
    ``log(loss_a / loss_b) / (size_b - size_a)`` over consecutive improving front members
    (the per-node score PySR ranks its front by, Cranmer 2023).

    ``loss`` is the backend's training error of each front member; only ratios enter, so its
    scale does not matter. None when fewer than two front members reach ``complexity`` (no
    step to measure). Measured on this project's held-out runs: the laws' formulas have steps
    of 0.9-2.9 (error falls 2.5-18x per node at the law's size), a shuffled-target null's
    consensus formula 0.34 at best (30+ nodes, each adding a little).
    """
    if complexity is None:
        return None
    steps = sorted(
        (int(f["complexity"]), float(f["loss"]))
        for f in front
        if f.get("complexity") is not None and f.get("loss") is not None
    )
    best, prev = None, None
    for size, loss in steps:
        if size > complexity:
            break
        loss = max(loss, 1e-300)
        if prev is not None and size > prev[0] and loss < prev[1]:
            step = float(np.log(prev[1] / loss) / (size - prev[0]))
            best = step if best is None else max(best, step)
        if prev is None or loss < prev[1]:
            prev = (size, loss)
    return best


def knee_failure(knee: float | None, min_knee: float) -> str | None:
    """Why a formula is a fit rather than a closed form, or None."""
    if knee is None or min_knee <= 0 or knee >= min_knee:
        return None
    return (
        f"no knee on the search front (steepest step {knee:.2f} < {min_knee:g} log error per "
        "added node): the error falls gradually with size, as for a smooth function no short "
        "formula describes, so the formula is a fit, not a law, and is not presented as a result"
    )


def _mixture(
    rec: dict[str, Any],
    expr: sympy.Expr,
    X: np.ndarray,
    member_y: np.ndarray,
    names: Sequence[str],
) -> tuple[str, str] | None:
    """``("mixture", reason)`` for an average over different laws
    (:mod:`~ensemble_lens.distill.mixture`): law constants that vary across members, or an
    input the members' own refits do not need (``rec["unneeded_inputs"]``); else None.
    ``member_y`` on the consensus' scale; not checked for reduced formulas (no constants
    verdict)."""
    if rec.get("constants") is None:
        return None
    reason = varying_constants_failure(rec["constants"])
    if reason is None:
        rec["unneeded_inputs"] = unneeded_inputs(expr, X, member_y, names)
        reason = distractor_failure(rec["unneeded_inputs"])
    return None if reason is None else ("mixture", reason)


def judge(
    rec: dict[str, Any],
    pick: Any,
    results: Sequence[Any],
    *,
    X: np.ndarray,
    y: np.ndarray,
    member_y: np.ndarray,
    member_ids: Sequence[str],
    names: Sequence[str],
    extrapolation: tuple[np.ndarray, np.ndarray] | None,
    ground_truth: bool,
    max_extrapolation_drop: float,
    stability_tolerance: float,
    min_support: float = 0.5,
    min_knee: float = 0.0,
    extrapolation_reference: str | None = None,
) -> dict[str, Any]:
    """The record with the verdicts of this module added (see the module docstring).

    ``X``, ``y``, ``member_y``: test inputs, the component and each member's own component
    there (member, sample); ``extrapolation``: (inputs, target) or None;
    ``extrapolation_reference``: what that target is (recorded with the constants).
    """
    rec.update(ground_truth=ground_truth, truth_note=None if ground_truth else NO_TRUTH)
    rec.update(
        is_result=False, flags=[], rejected_expression=None, seed_agreement=None,
        seeds_agreeing=[], constants=None, drop_one_r2={}, drop_one_reference_r2=None,
        stable=None, knee=None, unneeded_inputs=None,
    )  # fmt: skip
    if pick.expr is None:
        return rec
    # the front ranks by values: not for a formula chosen by gradient agreement (a latent
    # known up to a monotone map) nor for one rewritten modulo other components
    # (the caller passes min_knee=0 for the first)
    rec["knee"] = (
        front_knee(rec.get("front") or [], pick.complexity) if pick.reduced_modulo is None else None
    )
    rec.update(seed_agreement(pick, results))
    if pick.reduced_modulo is None:  # members' remainders are not kept for reduced formulas
        rec["constants"] = constants_verdict(
            pick.expr, X, y, member_y, member_ids, names, extrapolation=extrapolation,
            extrapolation_reference=extrapolation_reference,
        )  # fmt: skip
        member_y = on_consensus_scale(member_y, y)
        rec.update(drop_one_member(pick.expr, X, member_y, member_ids, names,
                                   tolerance=stability_tolerance))  # fmt: skip
        if rec["stable"] is False:
            rec["flags"].append("unstable")
    failure = formula_failure(
        pick.r2_test,
        pick.r2_extrapolation,
        rec.get("support"),
        max_extrapolation_drop=max_extrapolation_drop,
        min_support=min_support,
    )
    if failure is None and (reason := knee_failure(rec["knee"], min_knee)) is not None:
        failure = ("no_knee", reason)
    if failure is None:
        failure = _mixture(rec, pick.expr, X, member_y, names)
    if failure is not None:
        flag, reason = failure
        rec["flags"].append(flag)
        rec.update(rejected_expression=rec["expression"], expression=None, srepr=None,
                   latex=None, reason=reason)  # fmt: skip
        return rec
    rec["is_result"] = True
    return rec
