"""Terminal progress and the closing summary of a CLI run (the library itself stays quiet)."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from .stages import Progress


@contextlib.contextmanager
def console_progress(tty: bool | None = None) -> Iterator[Progress]:
    """A progress callback ``(label, done, total)`` for a CLI run.

    On a terminal (``tty``, default: whether stderr is one): one rich bar per label (members,
    each member's epochs, pairs per layer, SR layers). Otherwise one plain line per event on
    stderr, throttled to every tenth of the way, the first and the last event and at least one
    line a minute per label, so a log file shows the run moving without thousands of lines.
    """
    if tty is None:
        tty = sys.stderr.isatty()
    if not tty:
        yield _LinePrinter()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bars: dict[str, Any] = {}
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as prog:

        def update(label: str, done: int, total: int) -> None:
            if label not in bars:
                bars[label] = prog.add_task(label, total=total)
            prog.update(bars[label], completed=done, total=total)

        yield update


class _LinePrinter:
    """One line per progress event on stderr (thread-safe: dask delivers from its own thread).

    Each member's epochs (labels ``"epochs <member>"``) fold into one ``epochs`` line: printed
    when the first epoch arrives and then at most once every ``every_s``, so a thousand-member
    study writes a bounded log; the ``members`` line counts the members finished.
    """

    def __init__(self, every_s: float = 60.0) -> None:
        self.every_s = every_s
        self._last: dict[str, tuple[int, float]] = {}
        self._epochs: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def __call__(self, label: str, done: int, total: int) -> None:
        with self._lock:
            now = time.monotonic()
            if label.startswith("epochs "):
                self._epoch_event(label, done, total, now)
                return
            last_done, last_t = self._last.get(label, (-1, 0.0))
            step = max(1, total // 10)
            due = (
                last_done < 0
                or done >= total
                or done // step > last_done // step
                or now - last_t >= self.every_s
            )
            if not due or done == last_done:
                return
            self._last[label] = (done, now)
            _line(f"{label}: {done}/{total}")

    def _epoch_event(self, label: str, done: int, total: int, now: float) -> None:
        self._epochs[label] = (done, total)
        _, last_t = self._last.get("epochs", (-1, -self.every_s))
        if now - last_t < self.every_s:
            return
        self._last["epochs"] = (0, now)
        running = sum(d < t for d, t in self._epochs.values())
        finished = len(self._epochs) - running
        done_all = sum(d for d, _ in self._epochs.values())
        total_all = sum(t for _, t in self._epochs.values())
        _line(
            f"epochs: {done_all}/{total_all} of the members seen so far "
            f"({running} training, {finished} finished)"
        )


def _line(text: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"{stamp} progress {text}", file=sys.stderr, flush=True)


def print_summary(result: Any) -> None:
    """The findings first (results first, every member's constants), then the stage timings
    and outcomes (whole, wrapped), and where the store and the report are."""
    from rich.console import Console
    from rich.table import Table

    from ..report.findings import build_findings
    from ..report.results import formulas_and_laws
    from ..report.terminal import findings_renderables

    console = Console()
    store = result.store
    formulas, laws = formulas_and_laws(store)
    for part in findings_renderables(build_findings(formulas, laws), formulas):
        console.print(part)
    table = Table(title="stages", show_edge=False)
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("outcome", overflow="fold")
    for stage, seconds in result.timings.items():
        outcome = result.outcomes.get(stage)
        text = f"{len(outcome)} members built" if isinstance(outcome, list) else str(outcome)
        table.add_row(stage, f"{seconds:.1f}", text)
    console.print(table)
    if clock := _stopped_early(result.store):
        console.print(f"[bold yellow]{clock}[/]")
    for f in formulas:
        cons = f.get("constants") or {}
        if f.get("expression") is not None and cons.get("best_from_extrapolation"):
            where = "/".join(str(f[k]) for k in ("layer", "component") if f.get(k) is not None)
            verdict = f.get("exact_recovery_best")
            said = "" if verdict is None else (" (exact)" if verdict else " (not exact)")
            console.print(
                f"{where}: with the best-supported constants: {cons['best_expression']}{said}"
            )
    console.print(f"store: {store.path}")
    if result.report:
        console.print(f"report: {result.report}")


def _stopped_early(store: Any) -> str:
    """The summary line naming the members that ``train.max_seconds`` stopped, or ``""``."""
    from ..report.stops import stopped_early, stopped_early_line

    entries = [{"id": m, "attrs": store.model_attrs(m)} for m in store.complete_models]
    return stopped_early_line(stopped_early(entries))
