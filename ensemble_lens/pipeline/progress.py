"""Terminal progress and the closing summary of a CLI run (the library itself stays quiet)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from .stages import Progress


@contextlib.contextmanager
def console_progress() -> Iterator[Progress | None]:
    """A rich progress bar per stage when stderr is a terminal, else no progress callback."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bars: dict[str, Any] = {}
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    ) as prog:

        def update(label: str, done: int, total: int) -> None:
            if label not in bars:
                bars[label] = prog.add_task(label, total=total)
            prog.update(bars[label], completed=done, total=total)

        yield update


def print_summary(result: Any) -> None:
    """Stage timings, the formulas found, and where the report is."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="stages", show_edge=False)
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("outcome", overflow="fold")
    for stage, seconds in result.timings.items():
        outcome = result.outcomes.get(stage)
        text = f"{len(outcome)} members built" if isinstance(outcome, list) else str(outcome)
        table.add_row(stage, f"{seconds:.1f}", text[:80])
    console.print(table)
    formulas = result.store.read_formulas()
    for f in formulas:
        if f.get("expression") is None:
            console.print(
                f"[bold]{f.get('layer')}/{f.get('component')}[/]: no formula "
                f"({f.get('reason') or 'consensus too weak'})"
            )
            continue
        verdict = {True: "exact", False: "not exact", None: "truth unknown"}[
            f.get("exact_recovery")
        ]
        console.print(
            f"[bold]{f.get('layer')}/{f.get('component')}[/] = {f['expression']}   "
            f"(support {f.get('support', float('nan')):.2f}, "
            f"R2 test {f.get('r2_test', float('nan')):.4f}, {verdict})"
        )
    console.print(f"store: {result.store.path}")
    if result.report:
        console.print(f"report: {result.report}")
