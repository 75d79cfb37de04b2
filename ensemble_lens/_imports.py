"""Resolve ``"package.module:attr"`` specs (tasks, model factories, input adapters)."""

from __future__ import annotations

import importlib
from typing import Any

from .errors import EnsembleLensError


def import_callable(spec: str, what: str, error: type[EnsembleLensError]) -> Any:
    """The object ``"package.module:attr"`` names (``attr`` may be dotted).

    Raises ``error`` naming ``what`` and the spec when the spec is malformed, the module does
    not import, or the attribute is missing.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise error(f"{what} {spec!r} must look like 'package.module:callable'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise error(f"{what} {spec!r}: cannot import module {module_name!r}: {err}") from err
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as err:
            raise error(
                f"{what} {spec!r}: module {module_name!r} has no attribute {attr!r}"
            ) from err
    return obj
