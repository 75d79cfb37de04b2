"""Members whose training the wall clock stopped (``train.max_seconds``), for the run summary,
results.json and the report: their epoch counts depend on the machine's load, so a reader must
see which they are.

Examples
--------
>>> models = [
...     {"id": "s0", "attrs": {"metrics": {"epochs": 3.0, "stopped_by": "max_seconds"},
...                            "train": {"epochs": 20, "max_seconds": 60}}},
...     {"id": "s1", "attrs": {"metrics": {"epochs": 20.0, "stopped_by": "epochs"}}},
... ]
>>> rows = stopped_early(models)
>>> rows
[{'id': 's0', 'epochs': 3, 'of': 20, 'max_seconds': 60}]
>>> stopped_early_line(rows).endswith("recorded epochs): s0 at epoch 3 of 20 (max_seconds 60)")
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["stopped_early", "stopped_early_line"]


def stopped_early(models: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The members (``{"id", "attrs"}`` entries, as in results.json's provenance) that
    ``train.max_seconds`` stopped: id, epochs reached, epochs configured, the cap."""
    rows = []
    for m in models:
        attrs = m.get("attrs") or {}
        metrics = attrs.get("metrics") or {}
        if metrics.get("stopped_by") != "max_seconds":
            continue
        train = attrs.get("train") or {}
        rows.append(
            {
                "id": m["id"],
                "epochs": int(metrics.get("epochs", 0)),
                "of": train.get("epochs"),
                "max_seconds": train.get("max_seconds"),
            }
        )
    return rows


def stopped_early_line(rows: list[dict[str, Any]]) -> str:
    """One sentence naming every member in ``rows`` (from :func:`stopped_early`); ``""`` when
    there are none."""
    if not rows:
        return ""
    who = ", ".join(
        f"{r['id']} at epoch {r['epochs']} of {r['of']} (max_seconds {_num(r['max_seconds'])})"
        for r in rows
    )
    n = len(rows)
    noun = "member" if n == 1 else "members"
    its = "its" if n == 1 else "their"
    return (
        f"{n} {noun} stopped early by train.max_seconds ({its} epochs depend on the "
        f"machine's load; a rebuild with --redo trains exactly the recorded epochs): {who}"
    )


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)
