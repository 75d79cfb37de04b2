"""What a similarity result records about itself: one :class:`ResultInfo` for a single value
(:class:`Score`, what ``measure(name)(X, Y)`` returns) and for a K x K matrix (its ``attrs``,
written by :meth:`ResultInfo.attrs`), so both carry the same fields from one place."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._names import Measure

__all__ = [
    "MEASURE_KEYS",
    "ResultInfo",
    "Score",
    "measure_attrs",
    "note_resolved",
    "recording",
    "result_attrs",
]

#: attrs that describe the measure (the same for every call with the same name and options)
MEASURE_KEYS = ("metric", "requested", "kind", "direction", "parameters", "method", "version")


@dataclass(frozen=True)
class ResultInfo:
    """What a similarity result computed (``Score.info``; a K x K result's ``attrs`` hold
    the same fields, nested ones as JSON text).

    Attributes
    ----------
    metric : str
        Canonical standardized name of the measure.
    requested : str
        The name (or function name) as given.
    kind : {"similarity", "distance"}
    direction : str
        ``"symmetric"``, ``"row predicts column"``, ``"column predicts row"`` or ``"row is the
        first argument"`` (for a single value: row = ``X``, column = ``Y``).
    parameters : dict
        Every option of the measure's function as resolved.
    method : str
        ``"pair"`` (a single value), or how ``pairwise`` computed the matrix: ``"moments"``,
        ``"prepared"`` or ``"pairs"``.
    version : str
        ensemble_lens version.
    states : int
        Per-network states computed (0 for a single value: its function does its own work).
    dropped_units : dict
        ``{input: (dropped, units)}`` constant units dropped per input (``X``/``Y`` for a
        single value, the network names in a matrix).
    resolved : dict
        ``{input: {...}}`` what each input's own work resolved: the kernel width ``sigma``
        used, the SVCCA ``components`` kept.
    notes : tuple of str
        E.g. tensors that required grad and were detached.
    """

    metric: str
    requested: str
    kind: str
    direction: str
    parameters: dict[str, Any]
    method: str
    version: str
    states: int = 0
    dropped_units: dict[str, tuple[int, int]] = field(default_factory=dict)
    resolved: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def attrs(self) -> dict[str, Any]:
        """The DataArray / study-store form: nested values as JSON text, notes joined."""
        dropped = {k: list(v) for k, v in self.dropped_units.items()}
        return {
            **self.measure_attrs(),
            "states": int(self.states),
            "dropped_units": json.dumps(dropped, sort_keys=True),
            "resolved": json.dumps(self.resolved, sort_keys=True, default=repr),
            "notes": "; ".join(self.notes),
        }

    def measure_attrs(self) -> dict[str, Any]:
        """Only the :data:`MEASURE_KEYS` (what describes the measure, not the data)."""
        return {
            "metric": self.metric,
            "requested": self.requested,
            "kind": self.kind,
            "direction": self.direction,
            "parameters": json.dumps(dict(self.parameters), sort_keys=True, default=repr),
            "method": self.method,
            "version": self.version,
        }


class Score(float):
    """A measure's value: a ``float`` in every use (arithmetic, comparisons, numpy, JSON,
    formatting, pickling) that also carries :attr:`info`, a :class:`ResultInfo` saying what
    was computed. Arithmetic on it gives plain floats (a derived number is not the measure's),
    and so does ``Score(x)`` without ``info``. Like numpy's float64, YAML's safe dumper does
    not take it: write ``float(s)``.

    >>> s = measure("cka-kernel=rbf-hsic=gretton-score")(X, Y)  # doctest: +SKIP
    >>> float(s), s.info.metric, s.info.resolved["X"]["sigma"]  # doctest: +SKIP
    """

    __slots__ = ("info",)
    info: ResultInfo

    def __new__(cls, value: float, info: ResultInfo | None = None) -> Any:
        if info is None:  # what code that rebuilds "a number of the same type" gets
            return float(value)  # (statistics.mean...): a plain float, not an unlabelled Score
        self = super().__new__(cls, value)
        self.info = info
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (Score, (float(self), self.info))


def _version() -> str:
    from .. import __version__

    return str(__version__)


def _requested(m: Measure, asked: Any) -> str:
    if isinstance(asked, str):
        return asked
    return str(getattr(asked, "__name__", None) or m.requested or m.name)


def _base(m: Measure, asked: Any, method: str) -> dict[str, Any]:
    return {
        "metric": m.name,
        "requested": _requested(m, asked),
        "kind": m.kind,
        "direction": m.direction,
        "parameters": dict(m.options),
        "method": method,
        "version": _version(),
    }


def measure_attrs(m: Measure, asked: Any, method: str) -> dict[str, Any]:
    """The measure-level attrs of a result (:data:`MEASURE_KEYS`; see :func:`result_attrs`)."""
    return ResultInfo(**_base(m, asked, method)).measure_attrs()


def result_info(
    m: Measure, asked: Any, method: str, info: dict[str, Any], work: dict[str, Any]
) -> ResultInfo:
    """The :class:`ResultInfo` of a call: ``info`` from :func:`~._warn.collected` (dropped
    units, detached inputs), ``work`` what the computation did (``states``, ``resolved``,
    ``notes``)."""
    dropped = {k: (int(v[0]), int(v[1])) for k, v in (info.get("dropped") or {}).items()}
    notes = list(work.get("notes", []))
    if info.get("detached"):
        notes.append(f"detached tensors that required grad: {', '.join(info['detached'])}")
    return ResultInfo(
        **_base(m, asked, method),
        states=int(work.get("states", 0)),
        dropped_units=dropped,
        resolved={str(k): dict(v) for k, v in (work.get("resolved") or {}).items()},
        notes=tuple(notes),
    )


def result_attrs(
    m: Measure, asked: Any, method: str, info: dict[str, Any], work: dict[str, Any]
) -> dict[str, Any]:
    """attrs of a K x K result: ``metric`` (canonical standardized name), ``requested`` (the
    name or function as given), ``kind``, ``direction``, ``parameters`` (JSON of every option
    of the measure's function as resolved), ``method`` ("moments", "prepared" or "pairs"),
    ``states`` (per-network states computed), ``dropped_units`` (JSON {network: [dropped,
    units]}), ``resolved`` (JSON {network: what its per-network work resolved: the kernel
    width ``sigma`` used, the SVCCA ``components`` kept}), ``notes``, ``version``."""
    return result_info(m, asked, method, info, work).attrs()


# ------------------------------------------------------- what a single call's work resolved
_RESOLVED: ContextVar[list[dict[str, Any]] | None] = ContextVar("resolved", default=None)


@contextlib.contextmanager
def recording() -> Iterator[list[dict[str, Any]]]:
    """Collect, in order, what the per-input work of one single-pair call resolved."""
    token = _RESOLVED.set([])
    try:
        yield _RESOLVED.get()  # type: ignore[misc]
    finally:
        _RESOLVED.reset(token)


def note_resolved(item: Mapping[str, Any]) -> None:
    """Record what one input's work resolved (a no-op outside :func:`recording`)."""
    seen = _RESOLVED.get()
    if seen is not None:
        seen.append(dict(item))


def pair_resolved(seen: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{"X": ..., "Y": ...}`` from the two inputs' records (in the order the work ran: X
    first); anything else (none, or a procedure that ran per fold) records nothing."""
    return dict(zip(("X", "Y"), seen, strict=True)) if len(seen) == 2 else {}
