"""One list of findings: what a study found, per layer, before the evidence behind it.

:func:`build_findings` reads the two detailed result channels — ``formulas`` (one record per
consensus component, :mod:`ensemble_lens.distill.study`) and ``laws`` (the templates stage per
layer: the shared template and the groups, :mod:`ensemble_lens.pipeline.template_stage`) — and
returns one entry per finding, results first. Every entry has the same keys::

    {kind: "template" | "group" | "formula", layer, component, group, expression, form,
     members: {id: {constants: [{slot: value}], r2, frequencies?}}, support, r2_test,
     r2_extrapolation, verdict, is_result, reason, exact_recovery, truth_verdict}

``component`` is set for a formula, ``group`` for a group, both None for a template. A
formula also has ``form``: its expression with the constants as slots ``_c0, _c1...`` (the
names of its members' constants; None without a constants verdict).
``members[id]["constants"]`` holds one dict per component of that member the expression
explains (a template: its fitted slots ``c0, c1...``; a formula: the member's own refit of
the formula's constants ``_c0, _c1...``; empty when the member is not explained or its
constants were not refitted).

``truth_verdict`` is a formula record's verdict against a ground truth where one was judged
(the headline; ``exact_recovery`` the 2 % rule).

The rule this module adds: a formula whose constants vary across members (a constant with
the verdict "varies across members", or a record flagged ``varies``/``mixture``) is never a
result when a template or a group law of the same layer is one: the template explains the
members with member-specific constants, and the formula is an average over different laws
(``verdict`` :data:`AVERAGE`, ``is_result`` False; the record's own reason is kept when it
already says so). A record the distill verdict flagged ``mixture`` has that verdict in any
case. Everything else keeps the verdict its record carries. Works on plain JSON
(``results.json``'s own values); imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["AVERAGE", "KINDS", "build_findings", "formula_varies"]

#: the verdict of a formula shown only as an average over members with different laws
AVERAGE = "average over different laws"
#: the kinds of finding, in the order they are listed within a layer
KINDS = ("template", "group", "formula")
#: formula flags that mean the members' constants differ (set by the distill verdicts)
VARY_FLAGS = ("varies", "mixture", "constants_vary")
_VARIES = "varies across members"


def build_findings(
    formulas: Sequence[Mapping[str, Any]], laws: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The findings of a study from its formula records and its templates-stage records.

    Parameters
    ----------
    formulas : list of dict
        The formula records as stored (``results.json`` ``formulas``).
    laws : dict
        ``{layer: record}`` of the templates stage (``results.json`` ``laws``).

    Returns
    -------
    list of dict
        One entry per finding (keys in the module docstring): the results first, then by
        layer (as first seen) and kind (template, group, formula).

    Examples
    --------
    >>> rec = {"layer": "h", "component": 0, "expression": "2*x", "is_result": True,
    ...        "support": 1.0, "r2_test": 0.99, "member_r2": {"a": 0.99}}
    >>> [(f["kind"], f["expression"], f["is_result"]) for f in build_findings([rec], {})]
    [('formula', '2*x', True)]
    """
    out: list[dict[str, Any]] = []
    for layer, rec in laws.items():
        tmpl = rec.get("templates") or {}
        groups = rec.get("groups") or {}
        if tmpl.get("best"):
            out.append(_template(layer, tmpl, union=bool(groups.get("note"))))
        for i, group in enumerate(groups.get("per_group") or []):
            out.append(_group(layer, i, group, tmpl))
    explained = {f["layer"]: f for f in out if f["is_result"]}
    for rec in formulas:
        if rec.get("expression") is not None or rec.get("rejected_expression"):
            out.append(_formula(rec, explained.get(str(rec.get("layer")))))
    layers = list(dict.fromkeys(str(f["layer"]) for f in out))
    return sorted(
        out,
        key=lambda f: (not f["is_result"], layers.index(str(f["layer"])), KINDS.index(f["kind"])),
    )


def _entry(kind: str, layer: Any, **values: Any) -> dict[str, Any]:
    base = dict.fromkeys(
        ("component", "group", "expression", "form", "support", "r2_test",
         "r2_extrapolation", "verdict", "reason", "exact_recovery", "truth_verdict"),
    )  # fmt: skip
    return {"kind": kind, "layer": layer, **base, "members": {}, "is_result": False, **values}


# -------------------------------------------------------------------- templates and groups
def _template_members(cand: Mapping[str, Any], ids: Sequence[str] | None = None) -> dict:
    """Each member's fitted constants (one dict per explained component), its best test R^2
    and, over periodic inputs, its folded frequencies."""
    r2 = cand.get("member_r2") or {}
    consts = cand.get("constants") or {}
    freqs = cand.get("frequencies") or {}
    out = {}
    for m in ids if ids is not None else list(r2):
        entry: dict[str, Any] = {"constants": list(consts.get(m) or []), "r2": r2.get(m)}
        if freqs.get(m):
            entry["frequencies"] = list(freqs[m])
        out[str(m)] = entry
    return out


def _template(layer: str, tmpl: Mapping[str, Any], *, union: bool) -> dict[str, Any]:
    """The layer's best shared template; a shared form that only joins groups with
    different forms is not a result (each group's law is)."""
    best = tmpl["best"]
    verdict = str(tmpl.get("verdict"))
    reason = tmpl.get("reason") or best.get("reason")
    if union and verdict == "shared form":
        verdict = "shared form only as the union of the groups' forms"
        reason = "the groups have different templates: read each group's law"
    return _entry(
        "template",
        layer,
        expression=best.get("template"),
        members=_template_members(best),
        support=best.get("support"),
        r2_test=best.get("r2_test"),
        r2_extrapolation=best.get("r2_extrapolation"),
        verdict=verdict,
        is_result=bool(best.get("is_result")) and verdict == "shared form",
        reason=reason,
    )


def _group(layer: str, i: int, g: Mapping[str, Any], tmpl: Mapping[str, Any]) -> dict[str, Any]:
    """One group of networks: its shared template when it has one, else its best
    consensus formula that is a result, else what was rejected and why."""
    members = [str(m) for m in g.get("members") or []]
    if g.get("template"):
        cand: Mapping[str, Any] = next(
            (c for c in tmpl.get("candidates") or [] if c.get("template") == g["template"]), {}
        )
        return _entry(
            "group", layer, group=i, expression=g["template"],
            members=_template_members(cand, members), support=g.get("template_support"),
            r2_test=g.get("template_r2_test"),
            r2_extrapolation=g.get("template_r2_extrapolation"),
            verdict=g.get("template_verdict"), is_result=bool(g.get("template_is_result")),
            reason=g.get("template_reason"),
        )  # fmt: skip
    laws = [f for f in g.get("formulas") or [] if f.get("is_result")]
    if laws:
        f = max(laws, key=lambda r: r.get("support") or 0.0)
        r2 = f.get("member_r2") or {}
        return _entry(
            "group", layer, group=i, expression=f.get("expression"),
            members={m: {"constants": [], "r2": r2.get(m)} for m in members},
            support=f.get("support"), r2_test=f.get("r2_test"),
            r2_extrapolation=f.get("r2_extrapolation"), verdict="group law", is_result=True,
            reason=None, exact_recovery=f.get("exact_recovery"),
        )  # fmt: skip
    reason = g.get("template_reason") or g.get("reason") or "no formula is a result"
    return _entry(
        "group", layer, group=i, expression=g.get("rejected_template"),
        members={m: {"constants": [], "r2": None} for m in members},
        verdict="no group law", reason=reason,
    )  # fmt: skip


# -------------------------------------------------------------------- formulas
def formula_varies(rec: Mapping[str, Any]) -> list[str]:
    """The constants of a formula record whose members set their own values ("varies across
    members"), or ``["*"]`` when the record is flagged as such; empty when none."""
    rows = (rec.get("constants") or {}).get("constants") or []
    names = [str(c.get("name")) for c in rows if c.get("verdict") == _VARIES]
    if not names and any(f in VARY_FLAGS for f in rec.get("flags") or []):
        names = ["*"]
    return names


def _formula_members(rec: Mapping[str, Any]) -> dict[str, Any]:
    cons = rec.get("constants") or {}
    names = [str(c.get("name")) for c in cons.get("constants") or []]
    values = cons.get("member_values") or {}
    r2 = rec.get("member_r2") or {}
    out = {}
    for m in dict.fromkeys([*r2, *values]):
        own = values.get(m)
        constants = [dict(zip(names, own, strict=False))] if own and names else []
        out[str(m)] = {"constants": constants, "r2": r2.get(m)}
    return out


def _formula(rec: Mapping[str, Any], explained_by: Mapping[str, Any] | None) -> dict[str, Any]:
    expr = rec.get("expression") or rec.get("rejected_expression")
    is_result = bool(rec.get("is_result", rec.get("expression") is not None))
    flags = ", ".join(rec.get("flags") or [])
    verdict = rec.get("verdict") or (
        "consensus formula" if is_result else f"rejected{f' ({flags})' if flags else ''}"
    )
    reason = rec.get("reason")
    varies = formula_varies(rec)
    if "mixture" in (rec.get("flags") or []):  # the distill verdict's own: not a result
        is_result, verdict = False, AVERAGE
    if varies and explained_by is not None:
        is_result, verdict = False, AVERAGE
        if not str(reason or "").startswith(AVERAGE):
            what = "constants" if varies == ["*"] else ", ".join(varies)
            who = f"the {explained_by['kind']} {explained_by['expression']}"
            reason = (
                f"{AVERAGE}: its {what} vary across members, and {who} explains the members "
                "with member-specific constants"
            )
    return _entry(
        "formula", rec.get("layer"), component=rec.get("component"), expression=expr,
        form=(rec.get("constants") or {}).get("template"),
        members=_formula_members(rec), support=rec.get("support"), r2_test=rec.get("r2_test"),
        r2_extrapolation=rec.get("r2_extrapolation"), verdict=verdict, is_result=is_result,
        reason=reason, exact_recovery=rec.get("exact_recovery"),
        truth_verdict=rec.get("truth_verdict"),
    )  # fmt: skip


# -------------------------------------------------------------------- tables for readers
def member_table(finding: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows of a finding's per-member table: one row per member and explained
    component, one column per constant, the member's R^2, and its frequencies ``k`` (all of
    the member's, on its first row) when the finding has any. No rows when no member has
    constants (the R^2 alone is in the detailed record)."""
    members = finding.get("members") or {}
    slots = list(dict.fromkeys(k for e in members.values() for c in e["constants"] for k in c))
    if not slots:
        return [], []
    freq = any(e.get("frequencies") for e in members.values())
    rows: list[list[Any]] = []
    for m, e in members.items():
        consts = e["constants"] or [{}]
        for j, c in enumerate(consts):
            name = m if len(consts) == 1 else f"{m} ({j + 1})"
            k = ", ".join(f"{v:.4g}" for v in e.get("frequencies") or []) if j == 0 else ""
            rows.append([name, *[c.get(s) for s in slots], e.get("r2"), *([k] * freq)])
    return ["member", *slots, "R²", *(["k"] * freq)], rows


def no_formula_lines(formulas: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per formula record that found nothing (not a finding), with its reason:
    ``"latent/c0: no formula (0 of 3 members predict their own targets ...)"``."""
    return [
        f"{where(rec)}: no formula ({rec.get('reason') or 'consensus too weak'})"
        for rec in formulas
        if rec.get("expression") is None and not rec.get("rejected_expression")
    ]


def truth_text(finding: Mapping[str, Any]) -> str | None:
    """A finding's verdict against a ground truth: its ``truth_verdict`` (the headline),
    else exact recovery by the 2 % rule; None where no truth was judged."""
    if finding.get("truth_verdict"):
        return str(finding["truth_verdict"])
    exact = finding.get("exact_recovery")
    return None if exact is None else ("exact recovery" if exact else "not exact")


def where(finding: Mapping[str, Any]) -> str:
    """``layer``, ``layer/component`` or ``layer group i`` of a finding."""
    if finding.get("component") is not None:
        return f"{finding['layer']}/{finding['component']}"
    if finding.get("group") is not None:
        return f"{finding['layer']} group {finding['group']}"
    return str(finding["layer"])
