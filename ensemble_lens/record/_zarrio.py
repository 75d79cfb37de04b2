"""Zarr/JSON helpers and probe-layout constants shared by :mod:`.store`, :mod:`.writers` and
:mod:`._probe_data` (the on-disk layout itself is described in :mod:`.store`)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StoreError

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
