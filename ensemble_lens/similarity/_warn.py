"""Warnings of the similarity library: attributed to the caller's line, one per call.

Every warning names the first frame outside the ``ensemble_lens`` package (the user's line),
whatever the depth of the library code that raised it. A public call collects the warnings of
its work and re-issues them once each at its end (:func:`collected`); dropped constant units
of all networks become one :class:`DroppedUnitsWarning` in one format:
``dropped constant (dead) units: 'net1' 1 of 8, 'net3' 2 of 9``.
"""

from __future__ import annotations

import contextlib
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import DroppedUnitsWarning, GradientDetachedWarning

__all__ = ["DROPPED_PREFIX", "collected", "dropped_counts", "user_stacklevel", "warn"]

_PACKAGE = str(Path(__file__).resolve().parents[1])
DROPPED_PREFIX = "dropped constant (dead) units: "
DETACHED_PREFIX = "detached tensors that require grad (no gradient flows through): "
_DROPPED = re.compile(r"'([^']*)'(?::)? (?:dropped )?(\d+) of (\d+)")


def user_stacklevel() -> int:
    """``stacklevel`` for ``warnings.warn`` called by this function's caller that points at
    the first frame outside the package."""
    frame, level = sys._getframe(1), 1
    while frame is not None and (
        frame.f_code.co_filename.startswith(_PACKAGE)
        or frame.f_code.co_filename == contextlib.__file__
    ):
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    return level


def warn(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` attributed to the user's line."""
    warnings.warn(message, category, stacklevel=user_stacklevel())


def dropped_counts(records: list[warnings.WarningMessage]) -> dict[str, tuple[int, int]]:
    """{network: (dropped, units)} from the DroppedUnitsWarnings among ``records``."""
    out: dict[str, tuple[int, int]] = {}
    for r in records:
        if issubclass(r.category, DroppedUnitsWarning):
            for name, k, d in _DROPPED.findall(str(r.message)):
                out[name.removeprefix("network ")] = (int(k), int(d))
    return out


def detached_inputs(records: list[warnings.WarningMessage]) -> list[str]:
    """Inputs named by the GradientDetachedWarnings among ``records``."""
    out = [
        str(r.message).split(":", 1)[0]
        for r in records
        if issubclass(r.category, GradientDetachedWarning)
    ]
    return list(dict.fromkeys(out))


def reissue(records: list[warnings.WarningMessage]) -> dict[str, tuple[int, int]]:
    """Re-issue ``records`` once each at the user's line, dropped units merged into one
    warning, detached tensors into another; returns the dropped counts per network."""
    dropped = dropped_counts(records)
    detached = detached_inputs(records)
    merged = (DroppedUnitsWarning, GradientDetachedWarning)
    seen: set[tuple[type, str]] = set()
    for r in records:
        key = (r.category, str(r.message))
        if issubclass(r.category, merged) or key in seen:
            continue
        seen.add(key)
        warn(str(r.message), r.category)
    if dropped:
        text = ", ".join(f"{n!r} {k} of {d}" for n, (k, d) in dropped.items())
        warn(DROPPED_PREFIX + text, DroppedUnitsWarning)
    if detached:
        warn(f"{DETACHED_PREFIX}{', '.join(detached)}", GradientDetachedWarning)
    return dropped


@contextlib.contextmanager
def collected() -> Iterator[dict[str, Any]]:
    """Collect the warnings of a block and re-issue them once each at its end; the yielded
    dict gets ``dropped`` ({network: (dropped, units)}) and ``detached`` (input names)."""
    out: dict[str, Any] = {}
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        yield out
    out["detached"] = detached_inputs(rec)
    out["dropped"] = reissue(rec)
