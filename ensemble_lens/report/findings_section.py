"""The report's findings block, at the top of the page: what the study found, results first.

Draws ``results["findings"]`` (:mod:`ensemble_lens.report.findings`): one card per finding
with its expression, verdict and reason, its support and R^2, and each member's constants.
The Formulas and Laws sections below hold the evidence.
"""

from __future__ import annotations

from typing import Any

from .findings import member_table, no_formula_lines, truth_text, where
from .html import Num, esc, fmt_share, note, r2_cell, table

_KIND = {"template": "Template", "group": "Group law", "formula": "Formula"}


def _card(i: int, f: dict[str, Any]) -> str:
    status = (
        '<span class="ok">result</span>'
        if f["is_result"]
        else '<span class="bad">not a result</span>'
    )
    head = (
        f"<h3>{i}. {_KIND[f['kind']]}, layer <code>{esc(where(f))}</code>: "
        f"{esc(f.get('verdict') or '')} ({status})</h3>"
    )
    expr = f.get("expression")
    body = f"<p><code>{esc(expr)}</code></p>" if expr else "<p><em>no expression</em></p>"
    if f.get("reason"):
        body += f"<p>{esc(f['reason'])}</p>"
    recovery = truth_text(f)
    stats: dict[str, Any] = {
        "support": Num(fmt_share(f.get("support"))),
        "R² test": r2_cell(f.get("r2_test")),
        "R² extrapolation": r2_cell(f.get("r2_extrapolation")),
    }
    if recovery is not None:
        stats["against the truth"] = recovery
    body += table(list(stats), [list(stats.values())])
    headers, rows = member_table(f)
    if rows:
        r2_col = headers.index("R²")
        rows = [[*r[:r2_col], r2_cell(r[r2_col]), *r[r2_col + 1 :]] for r in rows]
        form = f" of <code>{esc(f['form'])}</code>" if f.get("form") else ""
        body += f"<h4>Each member's constants{form}</h4>" + table(headers, rows)
    return f'<div class="card">{head}{body}</div>'


def findings_block(results: dict[str, Any]) -> str:
    """The findings: a count, then one card per finding (results first)."""
    found = results.get("findings") or []
    nothing = no_formula_lines(results.get("formulas") or [])
    listed = "<ul>" + "".join(f"<li>{esc(t)}</li>" for t in nothing) + "</ul>" if nothing else ""
    if not found:
        return (
            note(
                "No findings: no formula, template or group law in the store (the sections "
                "below say why)."
            )
            + listed
        )
    n = sum(f["is_result"] for f in found)
    lead = (
        f"<p><b>{n} of {len(found)} findings are results.</b> The Formulas and Laws sections "
        "below hold the evidence behind each one.</p>"
    )
    return lead + "".join(_card(i + 1, f) for i, f in enumerate(found)) + listed
