"""Zarr/JSON helpers and probe-layout constants shared by :mod:`.store`, :mod:`.writers` and
:mod:`._probe_data` (the on-disk layout itself is described in :mod:`.store`)."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StoreDamagedError, StoreError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_TARGET_CHUNK_BYTES = 4 * 2**20
_SPLIT_CODES = {"fit": 0, "test": 1}
_INPUT_PREFIX = "model_input_"  # probe arrays the networks take as they are
_EXTRAP_PREFIX = "extrapolation_"  # probe samples kept apart for extrapolation
_EXTRA_PREFIXES = (_INPUT_PREFIX, _EXTRAP_PREFIX)
_TARGET_PREFIX = "target_"  # what the networks were trained to predict (probe.target)


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise StoreError(
            f"{kind} {name!r} is not a valid name: use letters, digits, '_', '.', '-' "
            "and start with a letter or digit"
        )
    return name


def chunk_rows(width: int, n: int) -> int:
    """Rows per chunk so that one (rows, width) float32 chunk is about 4 MB."""
    rows = max(1024, _TARGET_CHUNK_BYTES // (4 * max(width, 1)))
    return int(min(rows, max(n, 1)))


def _activation_codecs() -> Any:
    """Fast Zstd (level 1): ReLU-like activations shrink ~2x, and it costs less than the write."""
    from zarr.codecs import ZstdCodec

    return [ZstdCodec(level=int(os.environ.get("ENSEMBLE_LENS_ZSTD_LEVEL", "1")))]


def _zarr():
    import zarr

    return zarr


def _xr():
    import xarray

    return xarray


def _read_attrs(group_dir: Path) -> dict[str, Any]:
    meta = group_dir / "zarr.json"
    try:
        with open(meta) as fh:
            return dict(json.load(fh).get("attributes", {}))
    except FileNotFoundError as err:
        raise StoreError(f"no Zarr group at {group_dir}") from err
    except (ValueError, AttributeError) as err:  # truncated or overwritten metadata
        raise StoreDamagedError(metadata_damage(meta, err)) from err


def metadata_damage(meta: Path, err: BaseException) -> str:
    """One line for a ``zarr.json`` that does not parse: the file, the error, the repair."""
    detail = " ".join(f"{type(err).__name__}: {err}".split())
    root = store_root(meta.parent)
    if root is None:
        return f"{meta}: not valid Zarr metadata ({detail})"
    rel = meta.parent.relative_to(root).as_posix()
    rel = "" if rel == "." else rel
    return (
        f"store {root}: metadata file {meta} is not valid Zarr metadata ({detail}); "
        f"{repair_command(rel)}"
    )


def store_root(path: Path) -> Path | None:
    """The study store that holds ``path`` (the nearest directory with ``models/`` and
    ``_staging/``), or None."""
    for p in (path, *path.parents):
        if (p / "models").is_dir() and (p / "_staging").is_dir():
            return p
    return None


def repair_command(rel: str) -> str:
    """How to repair the part of a store at store-relative path ``rel`` (see ``--redo``)."""
    parts = [p for p in rel.split("/") if p]
    if len(parts) <= 1 and parts[:1] != ["probe"] and parts[:1] != ["distill"]:
        return (
            "rerun with --redo root (rewrites the store's own metadata and the study "
            "attributes from the config; results are checked against their inputs again)"
        )
    if parts[0] in ("models", "extrapolation") and len(parts) > 1:
        return f"rerun with --redo {parts[1]}"
    if parts[0] in ("similarity", "consensus", "similarity_blocks") and len(parts) > 1:
        kind = "consensus" if parts[0] == "consensus" else "similarity"
        return f"rerun with --redo {kind}/{parts[1]}"
    if parts[0] in ("probe", "distill"):
        return f"rerun with --redo {parts[0]}"
    return f"delete {rel} from the store and run the same command again"


def _jsonable(value: Any) -> Any:
    """Round-trip through JSON so attributes never hold numpy scalars or tuples."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in store attributes")


def content_bytes(group_dir: Path) -> int:
    """Bytes of the data files of a group (every file but the ``zarr.json`` metadata, whose
    attributes change when this is written): a truncated or deleted chunk changes it."""
    total = 0
    for dirpath, _dirs, files in os.walk(group_dir):
        for name in files:
            if name != "zarr.json":
                total += os.stat(os.path.join(dirpath, name)).st_size
    return total


def dataset_digest(ds: Any) -> str:
    """sha256 of an xarray Dataset's content: its attributes, and every variable's name,
    dims, dtype, shape and values (C order)."""
    h = hashlib.sha256(json.dumps(_jsonable(dict(ds.attrs)), sort_keys=True).encode())
    for name in sorted(map(str, ds.variables)):
        var = ds.variables[name]
        values = np.asarray(var.values)
        h.update(f"|{name}|{var.dims}|{values.dtype.str}|{values.shape}|".encode())
        if values.dtype.kind in "OUS":
            h.update(json.dumps(values.tolist()).encode())
        else:
            h.update(np.ascontiguousarray(values).tobytes())
    return h.hexdigest()


def stamp_bytes(group_dir: Path) -> None:
    """Write ``stored_bytes`` (see :func:`content_bytes`) into a written group's attributes."""
    group = _zarr().open_group(str(group_dir), mode="a")
    group.attrs["stored_bytes"] = content_bytes(group_dir)
