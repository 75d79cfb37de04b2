"""Plain statements the report makes from what the store holds.

Each function turns stored facts into a small JSON-serialisable dict with a ``statement``
that the page prints as is: whether recovery is judged (ground truth in the probe), which null
decided the consensus, the SR seed each formula was searched with, and how the consensus
components of a layer became its formulas. They read only the store's results and attrs, so
``results.json`` and the page say the same.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..record.store import StudyStore

NO_TRUTH = "no ground truth: recovery is not judged"


def ground_truth(store: StudyStore, formulas: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Whether formulas are judged against a ground truth, and the plain statement.

    Recovery is judged when a formula record says its study knew truth formulas
    (``ground_truth``) or carries a verdict (``exact_recovery`` not None); records written
    before ``ground_truth`` existed count a probe ``truth_<name>`` variable instead. A probe
    file's truth columns alone give values, not formulas: recovery is then not judged.
    """
    names = list(store.truth_names()) if store.has_probe() else []
    verdict = any(f.get("exact_recovery") is not None for f in formulas)
    if any("ground_truth" in f for f in formulas):  # records say whether truths were known
        judged = verdict or any(f.get("ground_truth") for f in formulas)
    else:  # older records: a probe truth came from a task
        judged = verdict or bool(names)
    if judged:
        statement = (
            f"ground truth in the probe: {', '.join(names)}; each formula is judged against it"
            if names
            else "recovery judged against the task's latents"
        )
    elif names:  # a probe file's truth columns: values without a formula to recover
        statement = (
            f"{NO_TRUTH} (the probe's truth values {', '.join(names)} serve the extrapolation "
            "check only)"
        )
    else:
        statement = NO_TRUTH
    return {"judged": judged, "truth_variables": names, "statement": statement}


def null_used(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Which null decided the consensus of a layer, from the consensus result's attrs.

    ``null_method`` is ``"permutation"`` or ``"permutation+untrained"``; ``n_null`` is the
    number of permutation refits and ``n_untrained`` the number of untrained twins.
    """
    method = str(attrs.get("null_method") or "unknown")
    n_perm = attrs.get("n_null")
    n_twins = attrs.get("n_untrained")
    untrained = "untrained" in method
    perm = "permutation" if n_perm is None else f"permutation ({n_perm} refits)"
    if method == "unknown":
        statement = "null: not recorded in the consensus result"
    elif untrained:
        twins = "untrained twins" if n_twins is None else f"{n_twins} untrained twins"
        statement = f"null: {perm} + {twins}"
    elif "permutation" in method:
        statement = f"null: {perm} only; no untrained twins"
    else:
        statement = f"null: {method}"
    return {
        "method": method,
        "n_permutations": n_perm,
        "n_untrained": n_twins if untrained else 0,
        "statement": statement,
    }


def _config_seeds(config: Any) -> list[int] | None:
    distill = config.get("distill") if isinstance(config, Mapping) else None
    seeds = distill.get("seeds") if isinstance(distill, Mapping) else None
    return [int(s) for s in seeds] if isinstance(seeds, list) else None


def seed_rule(config: Any) -> str:
    """The rule from the configured SR seeds to the seed each component was searched with.

    >>> seed_rule({"distill": {"seeds": [0, 5]}})[-43:]
    'base seed + j, for each base seed in [0, 5]'
    """
    seeds = _config_seeds(config)
    where = "" if seeds is None else f", for each base seed in {seeds}"
    return f"SR seeds (distill.seeds): component j of a layer is searched with base seed + j{where}"


def _component_index(rec: Mapping[str, Any], position: int, configured: list[int] | None) -> int:
    """j of a record: from its ``seeds_tried`` and the configured bases when both are known
    (each tried seed is ``base + j``), else its position among its layer's records."""
    tried = rec.get("seeds_tried")
    if configured and isinstance(tried, list) and len(tried) == len(configured):
        offsets = {int(t) - b for t, b in zip(tried, configured, strict=True)}
        if len(offsets) == 1:
            return offsets.pop()
    return position


def formula_seeds(formulas: Sequence[Mapping[str, Any]], config: Any) -> list[dict[str, Any]]:
    """The SR seed each formula was searched with, its base seed and the rule between them.

    The distill stage searches component ``j`` of a layer with ``base + j`` for each base seed
    in the config's ``distill.seeds``; records store only that effective seed (and
    ``seeds_tried``). The base is derived here as ``seed - j``, with ``j`` from
    ``seeds_tried`` and the config or else the record's position in its layer, and checked
    against the config (``matches_config``: None when the config names no seeds).
    """
    out: list[dict[str, Any]] = []
    position: dict[Any, int] = {}
    configured = _config_seeds(config)
    for rec in formulas:
        layer = rec.get("layer")
        j = _component_index(rec, position.get(layer, 0), configured)
        position[layer] = position.get(layer, 0) + 1
        seed = rec.get("seed")
        entry: dict[str, Any] = {
            "seed": seed,
            "base_seed": None,
            "component_index": None,
            "matches_config": None,
            "statement": "no search was run",
        }
        if (
            isinstance(seed, int)
            and not isinstance(seed, bool)
            and rec.get("component") is not None
        ):
            base = seed - j
            matches = None if configured is None else base in configured
            entry.update(component_index=j, matches_config=matches)
            if matches is False:
                entry["statement"] = f"{seed} (not base + {j} for distill.seeds {configured})"
            else:
                entry.update(
                    base_seed=base, statement=f"{seed} = base seed {base} + component index {j}"
                )
        out.append(entry)
    return out


def pareto_mask(front: Sequence[Mapping[str, Any]]) -> list[bool | None]:
    """Per front point: True when no other point is at most as complex and at most as lossy
    (and better in one), False when one is (a dominated candidate), None when the point has
    no finite complexity and loss.

    >>> pareto_mask([{"complexity": 7, "loss": 0.1}, {"complexity": 8, "loss": 0.2}])
    [True, False]
    """
    pts = [(_finite(p.get("complexity")), _finite(p.get("loss"))) for p in front]
    out: list[bool | None] = []
    for c, loss in pts:
        if c is None or loss is None:
            out.append(None)
            continue
        beaten = any(
            c2 is not None and l2 is not None and c2 <= c and l2 <= loss and (c2, l2) != (c, loss)
            for c2, l2 in pts
        )
        out.append(not beaten)
    return out


def _finite(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _vector_names(layer: Mapping[str, Any], recs: Sequence[Mapping[str, Any]]) -> list[str]:
    vector = layer.get("vector") or {}
    if vector.get("component_names"):
        return [str(n) for n in vector["component_names"]]
    return [str(r.get("component")).removesuffix("-component") for r in recs]


def _outcome(found: int, n: int, what: str) -> str:
    """'2 formulas' when every search found one, else how many of the n did."""
    if found == n:
        return f"{n} formula{'s' if n != 1 else ''}"
    return f"{n} {what} to distill, with a formula found for {found} of them"


def formula_bridge(layer: Mapping[str, Any], formulas: Sequence[Mapping[str, Any]]) -> str:
    """How the consensus components of one layer became its formulas, in one sentence.

    ``layer`` is the layer's consensus entry of ``collect_results`` (``n_consensus``,
    ``vector``); ``formulas`` are the formula records of that layer.

    >>> print(formula_bridge({"n_consensus": 5, "vector": {"component_names": ["dx", "dy"]}},
    ...     [{"component": c, "basis": "equivariant", "expression": "x"} for c in "ab"]))
    ... # doctest: +NORMALIZE_WHITESPACE
    5 consensus components span a 2-d vector quantity; mapped onto the (dx, dy) input basis
    they give 2 formulas, one per vector component.
    """
    n_cons = int(layer.get("n_consensus") or 0)
    recs = [r for r in formulas if r.get("component") is not None]
    found = sum(1 for r in recs if r.get("expression") is not None)
    comps = f"{n_cons} consensus component{'s' if n_cons != 1 else ''}"
    if not recs:
        return f"{comps}; no formula search is recorded for this layer."
    basis = recs[0].get("basis")
    if basis == "equivariant":
        names = _vector_names(layer, recs)
        verb = "spans" if n_cons == 1 else "span"
        return (
            f"{comps} {verb} a {len(names)}-d vector quantity; mapped onto the "
            f"({', '.join(names)}) input basis they give "
            f"{_outcome(found, len(recs), 'vector components')}, one per vector component."
        )
    if basis == "sparse":
        return (
            f"{comps} were rotated to a sparse basis of their span (each direction a simple "
            f"function of the inputs); searched direction by direction they give "
            f"{_outcome(found, len(recs), 'directions')}."
        )
    return f"{comps}, each searched as aligned, give {_outcome(found, len(recs), 'components')}."
