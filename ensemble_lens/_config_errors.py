"""Config errors as one line per bad key: ``<file>: <yaml.path>: <message>``, with the
closest valid key for an unknown one (``did you mean 'epochs'?``)."""

from __future__ import annotations

import difflib
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

__all__ = ["format_errors"]


def format_errors(
    err: ValidationError, source: str, model: Any, prefix: tuple[Any, ...] = ()
) -> str:
    """One line per error, ``<file>: <yaml.path>: <message>``; several joined by ``; ``.
    An unknown key (``extra="forbid"``) also gets the closest valid key of its section."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in (*prefix, *e["loc"])) or "(top level)"
        hint = _closest_key(model, e["loc"]) if e["type"] == "extra_forbidden" else ""
        # a validator's own message, without pydantic's "Value error, " in front
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{source}: {loc}: {msg}{hint}")
    return "; ".join(lines)


def _closest_key(model: Any, loc: tuple[Any, ...]) -> str:
    """``; did you mean 'epochs'?`` for the section at ``loc[:-1]`` (or its valid keys)."""
    for part in loc[:-1]:
        if isinstance(part, int):  # a list index: the model stays the list's item model
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            return ""
        model = _section_model(field.annotation)
    if model is None:
        return ""
    keys = sorted(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), keys, n=2, cutoff=0.6)
    if close:
        return "; did you mean " + " or ".join(repr(k) for k in close) + "?"
    return f"; valid keys: {', '.join(keys)}"


def _section_model(annotation: Any) -> Any:
    """The pydantic model inside ``Model``, ``Model | None`` or ``list[Model]``, else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    found = (_section_model(arg) for arg in get_args(annotation))
    return next((m for m in found if m is not None), None)
