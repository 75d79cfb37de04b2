"""Formula records of a layer: the pick among SR seeds, and the "no formula" records.

The record keys are those of docs/CONTRACTS.md "Formulas".
"""

from __future__ import annotations

from typing import Any

__all__ = ["no_consensus_record", "pick", "record", "unskilled_record"]


def pick(results: list[Any]) -> Any:
    """The simplest seed result within :func:`~ensemble_lens.distill.distill.
    accuracy_tolerance` of the best test R^2, with the seeds' own precision floor
    (``selection_floor``), or the first result when no seed found a formula."""
    from .distill import accuracy_tolerance

    good = [r for r in results if r.expr is not None]
    if not good:
        return results[0]
    best = max(r.r2_test for r in good)
    floors = [r.selection_floor for r in good if r.selection_floor is not None]
    tol = accuracy_tolerance(best, floor=min(floors) if floors else None)
    return min(
        (r for r in good if r.r2_test >= best - tol), key=lambda r: (r.complexity, -r.r2_test)
    )


def record(chosen: Any, results: list[Any], basis: str) -> dict[str, Any]:
    """The record of the picked result, with the seeds tried and the reduction, if any."""
    rec = chosen.to_dict()
    rec.update(
        basis=basis,
        seeds_tried=[r.seed for r in results],
        seeds_exact=[r.seed for r in results if r.exact_recovery],
        reduced_modulo=chosen.reduced_modulo,
        modulo_expression=None if chosen.modulo_expr is None else str(chosen.modulo_expr),
        unreduced_expression=None if chosen.unreduced_expr is None else str(chosen.unreduced_expr),
        unreduced_exact_recovery=chosen.unreduced_exact_recovery,
        unreduced_truth_name=chosen.unreduced_truth_name,
    )
    if chosen.expr is None:
        rec["reason"] = chosen.reason
    return rec


def no_consensus_record(layer: str, ds: Any) -> dict[str, Any]:
    """The record of a layer where no component beats the null."""
    return {
        "component": None,
        "layer": layer,
        "expression": None,
        "srepr": None,
        "latex": None,
        "complexity": None,
        "r2_test": None,
        "r2_extrapolation": None,
        "gradient_agreement": None,
        "support": None,
        "member_r2": {},
        "exact_recovery": None,
        "truth_name": None,
        "front": [],
        "backend": None,
        "seed": None,
        "seconds": 0.0,
        "search_budget": None,
        "selection_floor": None,
        "is_result": False,
        "reason": f"no component is shared beyond the null ({ds.attrs.get('null_method')} null, "
        f"{ds.sizes['component']} aligned components tested): nothing to distill",
    }


def unskilled_record(layer: str, ds: Any, n_consensus: int) -> dict[str, Any]:
    """The record of a layer whose members did not learn their task (``n_consensus``
    components beat the null all the same)."""
    rec = no_consensus_record(layer, ds)
    attrs = ds.attrs
    also = f"; besides, {rec['reason']}" if n_consensus == 0 else ""
    rec.update(
        reason=str(attrs.get("member_skill_reason")) + also,
        member_skill="unskilled",
        members_skilled=list(attrs.get("members_skilled", [])),
        members_unskilled=list(attrs.get("members_unskilled", [])),
        median_val_r2=attrs.get("median_val_r2"),
    )
    return rec
