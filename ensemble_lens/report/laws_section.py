"""The report's laws section: groups of networks, each group's law, and the shared template.

Takes ``results["laws"]`` (the templates stage's record per layer, see
:func:`ensemble_lens.report.results.collect_results`): the groups with the permutation
p-value that decided their number, each group's formulas and template with their verdicts,
and the template the ensemble shares (or "no shared form" and why), with a strip plot of each
constant across members.
"""

from __future__ import annotations

import math
from typing import Any

from .figures import constants_strip_svg
from .html import FigureSink, Raw, details, esc, fmt, fmt_r2, note, r2_cell, table


def _code(text: Any) -> Raw:
    return Raw(f"<code>{esc(text)}</code>")


def _verdict_box(verdict: str, reason: str | None, union: bool = False) -> str:
    """A shared form in plain text; "no shared form" in the red box, with its reason; a
    shared form that only joins groups with different forms (``union``) says so."""
    if verdict == "shared form" and union:
        return (
            '<p class="none">Verdict: shared form only as the union of the groups\' different '
            "forms: no one form describes every member; read each group's law above.</p>"
        )
    if verdict == "shared form":
        return '<p class="ok">Verdict: shared form.</p>'
    why = f" {esc(reason)}." if reason else ""
    return f'<p class="none">Verdict: no shared form.{why}</p>'


def _law_cell(f: dict[str, Any]) -> Raw:
    """A group's formula, or the rejected one struck through with its flags."""
    if f.get("expression") is not None:
        return _code(f["expression"])
    if f.get("rejected_expression"):
        flags = ", ".join(f.get("flags") or [])
        return Raw(f"<s><code>{esc(f['rejected_expression'])}</code></s> rejected ({esc(flags)})")
    return Raw("<em>no formula</em>")


def _groups_block(groups: dict[str, Any]) -> str:
    sim = groups["similarity"]
    lead = (
        f"<p>Groups from the <code>{esc(sim['method'])}</code> matrix: "
        f"<b>{sim['n_groups']} group(s)</b>; {esc(sim['reason'])} (permutation p = "
        f"{esc(fmt(sim.get('p_value')))} over {sim.get('n_null', 0)} null draws).</p>"
    )
    if groups.get("by_metric"):
        tested = ", ".join(
            f"{m}: {g['n_groups']} group(s), p = {fmt(g.get('p_value'))}"
            for m, g in groups["by_metric"].items()
        )
        lead += f"<p>Metrics tested, each at alpha / {len(groups['by_metric'])}: {esc(tested)}.</p>"
    per = groups.get("per_group") or []
    rows = []
    for i, members in enumerate(sim["groups"]):
        g = per[i] if i < len(per) else {}
        laws = g.get("formulas") or []
        rows.append(
            [
                i,
                len(members),
                ", ".join(members),
                Raw("<br>".join(_law_cell(f) for f in laws)) if laws else _no_law(g, sim),
                Raw("<br>".join(esc(fmt(f.get("support"))) for f in laws)) if laws else "—",
                Raw("<br>".join(esc(fmt_r2(f.get("r2_extrapolation"))) for f in laws))
                if laws
                else "—",
                _group_template_cell(g),
            ]
        )
    headers = ["group", "size", "members", "law (group consensus)", "support",
               "R² extrapolation", "template (verdict, support)"]  # fmt: skip
    out = lead + table(headers, rows)
    if groups.get("note"):
        out += f"<p><b>Note:</b> {esc(groups['note'])}.</p>"
    if "template" in groups:
        tg = groups["template"]
        out += (
            f"<p>By template: {tg['n_groups']} group(s) "
            f"({esc('; '.join(', '.join(m) for m in tg['groups']))}).</p>"
        )
    reasons = [
        f"group {i}: {f['reason']}"
        for i, g in enumerate(per)
        for f in g.get("formulas") or []
        if f.get("reason")
    ]
    if reasons:
        out += details("Why formulas were rejected", "<ul>" + "".join(
            f"<li>{esc(r)}</li>" for r in reasons) + "</ul>")  # fmt: skip
    return out


def _no_law(g: dict[str, Any], sim: dict[str, Any]) -> str:
    if sim["n_groups"] == 1:
        return "one group: its law is the study's consensus (Formulas section)"
    return str(g.get("reason", "—"))


def _group_template_cell(g: dict[str, Any]) -> Any:
    if "template_verdict" not in g:
        return "—"
    shown = g.get("template") or g.get("rejected_template")
    text = f"{g['template_verdict']}, {fmt(g.get('template_support'))}"
    if g.get("template_reason"):
        text += f" ({g['template_reason']})"
    return Raw(f"<code>{esc(shown)}</code><br>{esc(text)}")


def _frequencies_table(best: dict[str, Any]) -> str:
    freqs = {m: v for m, v in (best.get("frequencies") or {}).items() if v}
    if not freqs:
        return ""
    rows = [[m, ", ".join(f"{k:.2f}" for k in sorted(v))] for m, v in sorted(freqs.items())]
    return "<h4>Each member's frequencies k</h4>" + table(["member", "k"], rows)


def _slot_values(best: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """Per slot (a frequency slot as its folded frequency ``k``), each member's values."""
    freq = best.get("frequency_slots") or {}
    out = {}
    for slot in best["slots"]:
        label = f"{slot}: k over {freq[slot][0]}" if slot in freq else slot
        out[label] = {
            m: [_folded(c[slot], freq[slot][1]) if slot in freq else c[slot] for c in cs]
            for m, cs in best["constants"].items()
            if cs
        }
    return out


def _folded(omega: float, period: int) -> float:
    """``k`` of ``cos(omega v + ...)`` on Z_period, wrapped into ``(-period/2, period/2]``: the
    stored constants are canonical (:mod:`ensemble_lens.distill.symmetry`), so a lone or first
    frequency is in ``[0, period/2]`` and a joint wave's other frequency keeps its sign."""
    k = (omega * period / (2 * math.pi)) % period
    return k - period if k > period / 2 else k


def _templates_block(name: str, tmpl: dict[str, Any], sink: FigureSink, union: bool = False) -> str:
    out = _verdict_box(tmpl["verdict"], tmpl.get("reason"), union)
    best = tmpl.get("best")
    if best is None:
        return out
    out += (
        f"<p>Best template <code>{esc(best['template'])}</code>: support "
        f"{esc(fmt(best['support']))} (a member counts when one of its components reaches "
        f"test R² {esc(fmt(tmpl['r2_threshold']))}), test R² {esc(fmt_r2(best.get('r2_test')))}, "
        f"extrapolation R² {esc(fmt_r2(best.get('r2_extrapolation')))}.</p>"
    )
    values = _slot_values(best)
    svg = constants_strip_svg(values) if any(values.values()) else None
    out += sink.figure(svg, f"Layer {name}: each constant of the template across members")
    out += _frequencies_table(best)
    rows = [
        [_code(c["template"]), c["support"], r2_cell(c.get("r2_test")),
         r2_cell(c.get("r2_extrapolation")),
         "yes" if c.get("is_result") else ", ".join(c.get("flags") or []) or "no",
         len(c.get("sources") or [])]
        for c in tmpl["candidates"]
    ]  # fmt: skip
    headers = ["template", "support", "R² test", "R² extrapolation", "result", "found in"]
    return out + details("All candidate templates", table(headers, rows))


def laws_section(results: dict[str, Any], sink: FigureSink) -> str:
    """Groups, each group's law, and the shared template, per layer."""
    laws = results.get("laws") or {}
    if not laws:
        return note(
            "No templates or groups in the store: set templates.enabled or groups.enabled and "
            "run the templates stage to fill this."
        )
    out = []
    for name, rec in laws.items():
        body = note(rec["skipped"]) if rec.get("skipped") and "templates" not in rec else ""
        if "groups" in rec:
            body += "<h4>Groups of networks</h4>" + _groups_block(rec["groups"])
        if "templates" in rec:
            union = bool((rec.get("groups") or {}).get("note"))  # groups' templates differ
            body += "<h4>Shared template</h4>" + _templates_block(
                name, rec["templates"], sink, union
            )
        out.append(f"<h3>Layer <code>{esc(name)}</code></h3>{body}")
    return "".join(out)
