"""The probe set as an xarray Dataset: inputs, split codes, truths, extra arrays, and the
string encoding the store keeps out of arrays (used by :mod:`.store`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ShapeError
from ._zarrio import (
    _EXTRAP_PREFIX,
    _INPUT_PREFIX,
    _SPLIT_CODES,
    _TARGET_PREFIX,
    _check_name,
    _json_default,
    _xr,
)

if TYPE_CHECKING:
    import xarray as xr


def _probe_dataset(inputs, names, sample_ids, split, truth, test_fraction, seed) -> xr.Dataset:
    from .._arrays import _to_numpy

    xr = _xr()
    x = np.asarray(_to_numpy(inputs), dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    names = [str(n) for n in names]
    if x.ndim != 2 or x.shape[1] != len(names):
        raise ShapeError(
            f"probe: expected (sample, {len(names)}) inputs for {names}, got {x.shape}"
        )
    if len(set(names)) != len(names):
        raise ShapeError(f"probe: variable names must be unique, got {names}")
    n = x.shape[0]
    if not np.isfinite(x).all():
        raise ShapeError(f"probe: {int((~np.isfinite(x)).sum())} non-finite input values")
    ids = np.arange(n) if sample_ids is None else np.asarray(sample_ids)
    if ids.shape != (n,) or np.unique(ids).size != n:
        raise ShapeError(f"probe: expected {n} unique sample ids, got shape {ids.shape}")
    codes = _split_codes(split, n, test_fraction, seed)
    ds = xr.Dataset(
        {"inputs": (("sample", "variable"), x), "split": ("sample", codes)},
        coords={"sample": ids, "variable": names},
        attrs={"split_seed": seed, "split_codes": "0=fit 1=test"},
    )
    for key, values in (truth or {}).items():
        ds[f"truth_{key}"] = ("sample", _per_sample(values, n, f"truth {key!r}"))
    return ds


def _per_sample(values: Any, n: int, what: str) -> np.ndarray:
    from .._arrays import _to_numpy

    v = np.asarray(_to_numpy(values), dtype=np.float64).reshape(-1)
    if v.size != n:
        raise ShapeError(f"probe {what}: expected {n} values, got {v.size}")
    return v


def _split_codes(split, n: int, test_fraction: float, seed: int) -> np.ndarray:
    if split is None:
        rng = np.random.default_rng(seed)
        codes = np.zeros(n, np.uint8)
        codes[rng.permutation(n)[: round(test_fraction * n)]] = 1
        return codes
    s = np.asarray(split)
    if s.shape != (n,):
        raise ShapeError(f"probe split: expected {n} entries, got shape {s.shape}")
    if s.dtype == bool:
        return s.astype(np.uint8)
    codes = {**_SPLIT_CODES, "extrapolation": 2}
    bad = sorted({str(v) for v in s} - set(codes))
    if bad:
        raise ShapeError(
            f"probe split: entries must be 'fit', 'test' or 'extrapolation', got {bad[:5]}"
        )
    return np.array([codes[str(v)] for v in s], np.uint8)


def _with_extras(ds: xr.Dataset, model_inputs: Mapping[str, Any] | None) -> xr.Dataset:
    """Add the arrays the networks take (``model_input_<name>``, as they are) and move the
    extrapolation samples (split code 2) into ``extrapolation_*`` variables of their own
    sample dimension, so every reader of ``inputs``/``split`` sees fit and test only."""
    from .._arrays import _to_numpy

    n = ds.sizes["sample"]
    for key, value in (model_inputs or {}).items():
        _check_name("model input", str(key))
        arr = np.asarray(_to_numpy(value))
        if arr.ndim < 1 or arr.shape[0] != n:
            raise ShapeError(
                f"probe model input {key!r}: expected {n} samples first, got shape {arr.shape}"
            )
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        dims = ("sample", *(f"{_INPUT_PREFIX}{key}_{i}" for i in range(1, arr.ndim)))
        ds[f"{_INPUT_PREFIX}{key}"] = (dims, arr)
    extrap = ds["split"].values == 2
    if not extrap.any():
        return ds
    if model_inputs:
        raise ShapeError(
            "probe split: extrapolation samples are supported for named variables only, "
            "not with model inputs that are not flat"
        )
    part = ds.isel(sample=extrap)
    ds = ds.isel(sample=~extrap)
    ds[f"{_EXTRAP_PREFIX}inputs"] = (("extrapolation_sample", "variable"), part["inputs"].values)
    for k in part.data_vars:
        if str(k).startswith(("truth_", _TARGET_PREFIX)):
            ds[f"{_EXTRAP_PREFIX}{k}"] = ("extrapolation_sample", part[k].values)
    ds[f"{_EXTRAP_PREFIX}sample_id"] = ("extrapolation_sample", part["sample"].values)
    return ds


def _encode_strings(ds: xr.Dataset) -> xr.Dataset:
    """Move string coordinates into attributes so no array holds strings."""
    ds = ds.copy()
    encoded = {}
    for name in list(ds.coords):
        var = ds.coords[name]
        if var.dtype.kind in "OUS" and var.ndim <= 1:
            values = [str(v) for v in np.atleast_1d(var.values)]
            encoded[str(name)] = {
                "dims": list(var.dims),
                "values": values if var.ndim else values[0],
            }
            ds = ds.drop_vars([name])
    for key, value in list(ds.attrs.items()):
        if isinstance(value, (dict, list, tuple)) or value is None or isinstance(value, bool):
            ds.attrs[key] = "json:" + json.dumps(value, default=_json_default)
    ds.attrs["_string_coords"] = json.dumps(encoded)
    # a store lists its arrays in whatever order the file system gives; the order written
    # (truth and target columns follow the networks' outputs) is kept here and restored on read
    ds.attrs["_data_vars"] = json.dumps([str(k) for k in ds.data_vars])
    for variable in ds.variables.values():
        variable.encoding.clear()
    return ds


def _decode_strings(ds: xr.Dataset) -> xr.Dataset:
    attrs = dict(ds.attrs)
    encoded = json.loads(attrs.pop("_string_coords", "{}"))
    written = [k for k in json.loads(attrs.pop("_data_vars", "[]")) if k in ds.data_vars]
    if written:  # stores from before the order was recorded keep the file system's order
        ds = ds[written + [k for k in ds.data_vars if k not in written]]
    for key, value in list(attrs.items()):
        if isinstance(value, str) and value.startswith("json:"):
            attrs[key] = json.loads(value[5:])
    ds.attrs = attrs
    for name, spec in encoded.items():
        if spec["dims"]:
            ds = ds.assign_coords({name: (tuple(spec["dims"]), np.array(spec["values"]))})
        else:
            ds = ds.assign_coords({name: spec["values"]})
    return ds
