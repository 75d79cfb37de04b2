"""What a similarity result records about itself (``attrs`` of every result DataArray)."""

from __future__ import annotations

import json
from typing import Any

from ._names import Measure

__all__ = ["MEASURE_KEYS", "measure_attrs", "result_attrs"]

#: attrs that describe the measure (the same for every call with the same name and options)
MEASURE_KEYS = ("metric", "requested", "kind", "direction", "parameters", "method", "version")


def _version() -> str:
    from .. import __version__

    return str(__version__)


def _jsonable(options: Any) -> str:
    return json.dumps(dict(options), sort_keys=True, default=repr)


def measure_attrs(m: Measure, asked: Any, method: str) -> dict[str, Any]:
    """The measure-level attrs of a result (:data:`MEASURE_KEYS`; see :func:`result_attrs`)."""
    requested = asked if isinstance(asked, str) else getattr(asked, "__name__", m.name)
    return {
        "metric": m.name,
        "requested": str(requested),
        "kind": m.kind,
        "direction": m.direction,
        "parameters": _jsonable(m.options),
        "method": method,
        "version": _version(),
    }


def result_attrs(
    m: Measure, asked: Any, method: str, info: dict[str, Any], work: dict[str, Any]
) -> dict[str, Any]:
    """attrs of a K x K result: ``metric`` (canonical standardized name), ``requested`` (the
    name or function as given), ``kind``, ``direction``, ``parameters`` (JSON of every option
    of the measure's function as resolved), ``method`` ("moments", "prepared" or "pairs"),
    ``states`` (per-network states computed), ``dropped_units`` (JSON {network: [dropped,
    units]}), ``resolved`` (JSON {network: what its per-network work resolved: the kernel
    width ``sigma`` used, the SVCCA ``components`` kept}), ``notes``, ``version``."""
    dropped = {k: list(v) for k, v in (info.get("dropped") or {}).items()}
    notes = list(work.get("notes", []))
    if info.get("detached"):
        notes.append(f"detached tensors that required grad: {', '.join(info['detached'])}")
    return {
        **measure_attrs(m, asked, method),
        "states": int(work.get("states", 0)),
        "dropped_units": json.dumps(dropped, sort_keys=True),
        "resolved": json.dumps(work.get("resolved") or {}, sort_keys=True, default=repr),
        "notes": "; ".join(notes),
    }
