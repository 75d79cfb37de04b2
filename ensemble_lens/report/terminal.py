"""Terminal summary of a finished study (for ``ensemble-lens inspect STORE``).

:func:`summary_renderables` returns rich renderables; the CLI prints them with
``rich.console.Console().print(*renderables)``. The numbers come from
:func:`ensemble_lens.report.results.collect_results`, like the HTML report's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..distill.constants import pinned_summary
from .html import ARCH_NAME_KEYS, fmt

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ..record.store import StudyStore


def _table(title: str, headers: list[str], rows: list[list[Any]]) -> Any:
    from rich.table import Table

    t = Table(title=title, title_justify="left", header_style="bold")
    for h in headers:
        t.add_column(h, overflow="fold")
    for row in rows:
        t.add_row(*[fmt(v) for v in row])
    return t


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
    return _table(
        "Models", ["id", "architecture", "seed", "source", "status", "val_r2", "val_loss"], rows
    )


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


def _formulas_table(results: dict[str, Any]) -> Any:
    judged = results["ground_truth"]["judged"]
    rows = []
    for rec in results["formulas"]:
        expr = rec.get("expression")
        if expr is not None and rec.get("reduced_modulo"):
            expr = f"{expr} (modulo component {', '.join(rec['reduced_modulo'])})"
        rows.append(
            [
                rec.get("layer"),
                rec.get("component"),
                expr if expr is not None else "(no formula found)",
                rec.get("complexity"),
                rec.get("r2_test"),
                rec.get("r2_extrapolation"),
                rec.get("support"),
                pinned_summary(rec.get("constants")) if expr is not None else None,
                *([rec.get("exact_recovery"), rec.get("exact_recovery_best")] if judged else []),
            ]
        )
    headers = ["layer", "component", "expression", "complexity", "R² test", "R² extrap."]
    headers += ["support", "constants", *(["exact", "exact (best constants)"] if judged else [])]
    title = "Formulas" if judged else f"Formulas ({results['ground_truth']['statement']})"
    return _table(title, headers, rows)


def summary_renderables(store: StudyStore, *, models: bool = True) -> list[RenderableType]:
    """Rich tables summarising a study: models, similarity, consensus and formulas.

    A part with no results becomes a one-line dimmed note instead of an empty table.
    ``models=False`` leaves out the models table (``ensemble-lens inspect`` prints its own,
    with layers and shapes).
    """
    from rich.text import Text

    from .results import collect_results

    results = collect_results(store)
    parts: list[Any] = []
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
