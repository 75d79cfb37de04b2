"""What ``--redo`` does to the parts of a store that are not members: rewrite the store's own
metadata (``root``), or drop a result or the probe so that the run writes it again.

Every damage :mod:`.verify` reports names one of these (or a member id) as its repair.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError
from ._zarrio import _NAME_RE

#: the groups of a store that only hold other groups
_CONTAINERS = ("models", "_staging", "extrapolation", "similarity", "consensus")


def is_part(name: str) -> bool:
    """Whether a ``--redo`` entry names a part of the store rather than a member id."""
    return name in ("root", "probe", "distill") or name.startswith(("similarity/", "consensus/"))


def check_parts_named(redo: Sequence[str]) -> None:
    """Every part named in ``redo`` is one ``--redo`` knows."""
    for name in filter(is_part, redo):
        kind, _, layer = name.partition("/")
        if kind in ("similarity", "consensus") and not _NAME_RE.match(layer):
            raise ConfigError(
                f"--redo {name}: expected {kind}/<layer> with a layer name, got {layer!r}"
            )


def repair_root(path: str | os.PathLike[str]) -> list[str]:
    """Rewrite the store's root metadata, and that of the groups that only hold groups, where
    it is missing or does not parse. The study attributes are lost (the run writes them
    again from the config; results are then checked against their inputs again). Returns
    the files rewritten."""
    from .. import __version__
    from .store import SCHEMA_VERSION

    root = Path(path)
    fixed = []
    attrs = {
        "schema_version": SCHEMA_VERSION,
        "package_version": __version__,
        "all_chunks_written": True,
    }
    for rel, group_attrs in [("", attrs)] + [(c, {}) for c in _CONTAINERS]:
        meta = root / rel / "zarr.json"
        if rel and not meta.parent.is_dir():
            continue
        if _parses(meta, needs_schema=not rel):
            continue
        body = {"zarr_format": 3, "node_type": "group", "attributes": group_attrs}
        meta.write_text(json.dumps(body))
        fixed.append(str(meta))
    return fixed


def _parses(meta: Path, *, needs_schema: bool) -> bool:
    try:
        body = json.loads(meta.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(body, dict) or body.get("node_type") != "group":
        return False
    return not needs_schema or "schema_version" in (body.get("attributes") or {})


def drop_part(path: str | os.PathLike[str], name: str) -> None:
    """Remove the part ``name`` (``probe``, ``distill``, ``similarity/<layer>``,
    ``consensus/<layer>``) so that the run writes it again."""
    root = Path(path)
    if name == "root":
        return
    shutil.rmtree(root / name, ignore_errors=True)
    if name.startswith("similarity/"):
        shutil.rmtree(root / "similarity_blocks" / name.split("/", 1)[1], ignore_errors=True)
