"""Terminal summary of a finished study (for ``ensemble-lens inspect STORE``).

:func:`summary_renderables` returns rich renderables; the CLI prints them with
``rich.console.Console().print(*renderables)``. The numbers come from
:func:`ensemble_lens.report.results.collect_results`, like the HTML report's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..distill.constants import pinned_summary
from .findings import member_table, no_formula_lines, truth_text, where
from .html import ARCH_NAME_KEYS, fmt, fmt_r2, fmt_share

#: constants per table in the terminal: more slots go into a second table (80 columns)
SLOTS_PER_TABLE = 5
_KIND = {"template": "template", "group": "group law", "formula": "formula"}

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ..record.store import StudyStore


def _table(title: str, headers: list[str], rows: list[list[Any]], r2: tuple[str, ...] = ()) -> Any:
    """A rich table whose cells fold (never cut with an ellipsis); columns named in ``r2``
    print with :func:`~.html.fmt_r2`."""
    from rich.table import Table

    t = Table(title=title, title_justify="left", header_style="bold")
    for h in headers:
        t.add_column(h, overflow="fold")
    for row in rows:
        t.add_row(*[fmt_r2(v) if h in r2 else fmt(v) for h, v in zip(headers, row, strict=True)])
    return t


# -------------------------------------------------------------------- findings
def _constants_tables(f: dict[str, Any]) -> list[Any]:
    """Each member's constants, at most :data:`SLOTS_PER_TABLE` constants per table."""
    headers, rows = member_table(f)
    if not rows:
        return []
    slots = [h for h in headers[1:] if h not in ("R²", "k")]
    tail = headers[1 + len(slots) :]
    out = []
    for start in range(0, len(slots), SLOTS_PER_TABLE):
        cols = list(range(1 + start, 1 + min(start + SLOTS_PER_TABLE, len(slots))))
        last = start + SLOTS_PER_TABLE >= len(slots)
        keep = [0, *cols, *(range(1 + len(slots), len(headers)) if last else [])]
        title = "each member's constants" + ("" if start == 0 else " (continued)")
        out.append(
            _table(
                title,
                [headers[i] for i in keep],
                [[r[i] for i in keep] for r in rows],
                r2=("R²",) if last and tail else (),
            )
        )
    return out


def findings_renderables(
    findings: list[dict[str, Any]], formulas: Sequence[dict[str, Any]] = ()
) -> list[RenderableType]:
    """The findings, results first: per finding its kind, where, verdict, expression (whole,
    wrapped), reason, support and R^2, and each member's constants as tables that fit 80
    columns; then each of ``formulas`` that found nothing, with its reason. A dimmed line
    when there are no findings."""
    from rich.padding import Padding
    from rich.text import Text

    nothing = [Padding(Text(t, style="dim"), (0, 0, 0, 3)) for t in no_formula_lines(formulas)]
    if not findings:
        head = "findings: none (no formula, template or group law)"
        return [Text(head, style="dim"), *nothing]
    n = sum(f["is_result"] for f in findings)
    parts: list[Any] = [Text(f"Findings: {n} of {len(findings)} are results", style="bold")]
    for i, f in enumerate(findings, 1):
        status = "result" if f["is_result"] else "not a result"
        parts.append(
            Text(f"{i}. {_KIND[f['kind']]} {where(f)}: {f.get('verdict')} ({status})", style="bold")
        )
        expr = Text(f.get("expression") or "(no expression)", overflow="fold")
        parts.append(Padding(expr, (0, 0, 0, 3)))
        if f.get("reason"):
            parts.append(Padding(Text(f["reason"], style="dim"), (0, 0, 0, 3)))
        stats = (
            f"support {fmt_share(f.get('support'))}, R² test {fmt_r2(f.get('r2_test'))}, "
            f"R² extrapolation {fmt_r2(f.get('r2_extrapolation'))}"
        )
        truth = truth_text(f)
        stats += f"; against the truth: {truth}" if truth else ""
        parts.append(Padding(Text(stats), (0, 0, 0, 3)))
        if f.get("form") and member_table(f)[1]:
            parts.append(Padding(Text(f"constants of {f['form']}", overflow="fold"), (0, 0, 0, 3)))
        parts.extend(_constants_tables(f))
    return parts + nothing


def _name_key(arch: dict[str, Any]) -> str:
    """The key that names an architecture (``name``, ``family``, ``kind``...)."""
    return next((k for k in ARCH_NAME_KEYS if k in arch), "name")


def _models_table(results: dict[str, Any]) -> Any:
    rows = []
    for m in results["provenance"]["models"]:
        a = m["attrs"]
        metrics = a.get("metrics") or {}
        arch = a.get("architecture")
        name = arch.get(_name_key(arch), "") if isinstance(arch, dict) else arch
        rows.append(
            [
                m["id"],
                name,
                a.get("seed"),
                a.get("source"),
                m["status"],
                metrics.get("val_r2"),
                metrics.get("val_loss"),
            ]
        )
    headers = ["id", "architecture", "seed", "source", "status", "val_r2", "val_loss"]
    return _table("Models", headers, rows, r2=("val_r2",))


def _similarity_table(results: dict[str, Any]) -> Any:
    rows = [
        [
            layer,
            metric,
            e["kind"],
            e["mean_off_diagonal"],
            e["min_off_diagonal"],
            e["max_off_diagonal"],
        ]
        for layer, entry in results["similarity"].items()
        for metric, e in entry["metrics"].items()
    ]
    return _table(
        "Similarity (off-diagonal)", ["layer", "metric", "kind", "mean", "min", "max"], rows
    )


def _consensus_table(results: dict[str, Any]) -> Any:
    rows = [
        [
            layer,
            r["component"],
            r["sharedness"],
            r["variance"],
            r["null_threshold"],
            r["support"],
            bool(r["is_consensus"]),
        ]
        for layer, entry in results["consensus"].items()
        for r in entry["table"]
    ]
    return _table(
        "Consensus",
        ["layer", "component", "sharedness", "variance", "null", "support", "consensus"],
        rows,
    )


def _formula_verdict(rec: dict[str, Any], judged: bool) -> str | None:
    """Constants and recovery of a formula, in one cell: ``"1/2 pinned; _c1: ...; not exact,
    exact (best constants)"`` (the record's ``truth_verdict`` where it has one)."""
    if rec.get("expression") is None:
        return rec.get("reason")
    parts = [p for p in [pinned_summary(rec.get("constants"))] if p]
    if judged and rec.get("truth_verdict"):
        parts.append(str(rec["truth_verdict"]))
    elif judged and rec.get("exact_recovery") is not None:
        exact = "exact" if rec["exact_recovery"] else "not exact"
        if not rec["exact_recovery"] and rec.get("exact_recovery_best"):
            exact += ", exact (best constants)"
        parts.append(exact)
    return "; ".join(parts) or None


def _no_expression(rec: dict[str, Any]) -> str:
    """The expression cell of a record with no formula: the rejected one, or none found."""
    rejected = rec.get("rejected_expression")
    return f"rejected: {rejected}" if rejected else "(no formula found)"


def _formulas_table(results: dict[str, Any]) -> Any:
    """The formula records at 80 columns: where, expression (folded, never cut), R^2 test
    and extrapolation, support, and one verdict cell (constants, recovery or why none)."""
    judged = results["ground_truth"]["judged"]
    rows = []
    for rec in results["formulas"]:
        expr = rec.get("expression")
        if expr is not None and rec.get("reduced_modulo"):
            expr = f"{expr} (modulo component {', '.join(rec['reduced_modulo'])})"
        rows.append(
            [
                f"{rec.get('layer')}/{rec.get('component')}",
                expr if expr is not None else _no_expression(rec),
                rec.get("r2_test"),
                rec.get("r2_extrapolation"),
                rec.get("support"),
                _formula_verdict(rec, judged),
            ]
        )
    headers = ["where", "expression", "R² test", "R² ext.", "support", "verdict"]
    title = "Formulas" if judged else f"Formulas ({results['ground_truth']['statement']})"
    return _table(title, headers, rows, r2=("R² test", "R² ext."))


def summary_renderables(
    store: StudyStore,
    *,
    models: bool = True,
    findings: bool = True,
    results: dict[str, Any] | None = None,
) -> list[RenderableType]:
    """Rich renderables summarising a study: the findings first, then models, similarity,
    consensus and formulas.

    A part with no results becomes a one-line dimmed note instead of an empty table.
    ``models=False`` leaves out the models table (``ensemble-lens inspect`` prints its own,
    with layers and shapes); ``findings=False`` leaves out the findings (printed apart);
    ``results`` is :func:`~.results.collect_results` of ``store`` when already at hand.
    """
    from rich.text import Text

    from .results import collect_results

    results = collect_results(store) if results is None else results
    parts: list[Any] = (
        findings_renderables(results["findings"], results["formulas"]) if findings else []
    )
    checks = (
        *(((results["provenance"]["models"], _models_table, "no models"),) if models else ()),
        (results["similarity"], _similarity_table, "no similarity results"),
        (results["consensus"], _consensus_table, "no consensus results"),
        (results["formulas"], _formulas_table, "no formulas"),
    )
    for present, build, missing in checks:
        parts.append(
            build(results) if present else Text(f"{store.path.name}: {missing}", style="dim")
        )
    return parts
