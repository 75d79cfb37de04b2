"""Bring in networks and activations that were made elsewhere.

* :func:`load_model`: a torch ``nn.Module``, a TorchScript file, or a state_dict file plus a
  ``"module:callable"`` factory that builds the architecture.
* :func:`ingest_activations`: precomputed activations (.npy per layer, .npz with one array per
  layer, or an xarray Dataset / netCDF / Zarr dataset) with an explicit sample-id check.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._imports import import_callable as _import_callable
from ..errors import IngestError, ShapeError
from .store import StudyStore, open_store
from .writers import checked_activations

SampleIds = Literal["check", "probe_order"] | Sequence[Any] | np.ndarray


def import_callable(spec: str, what: str = "callable") -> Any:
    """Resolve ``"package.module:attr"``; errors are :class:`IngestError`."""
    return _import_callable(spec, what, IngestError)


def load_model(
    source: Any,
    *,
    factory: str | None = None,
    factory_kwargs: Mapping[str, Any] | None = None,
    model_id: str = "model",
) -> Any:
    """Load a network for recording.

    Parameters
    ----------
    source
        An ``nn.Module`` (returned as is), a path to a TorchScript file (when ``factory`` is
        None), a path to a state_dict file (with ``factory``), or None (``factory`` alone
        builds the model, e.g. one that loads its own weights).
    factory
        ``"module:callable"`` returning an ``nn.Module`` (called with ``factory_kwargs``).

    Raises
    ------
    IngestError
        Unreadable files, a factory that does not return a module, or a state_dict whose keys
        or shapes do not fit the factory's architecture (the message lists the mismatches).
    """
    import torch

    if isinstance(source, torch.nn.Module):
        return source
    if factory is not None:
        model = import_callable(factory, "factory")(**dict(factory_kwargs or {}))
        if not isinstance(model, torch.nn.Module):
            raise IngestError(
                f"model {model_id!r}: factory {factory!r} returned {type(model).__name__}"
            )
        if source is not None:
            _load_state(model, Path(source), model_id)
        return model
    if source is None:
        raise IngestError(f"model {model_id!r}: give a module, a TorchScript path or a factory")
    path = Path(source)
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError, OSError) as err:
        raise IngestError(
            f"model {model_id!r}: {path} is not a TorchScript file ({err}); for a state_dict "
            "give factory='module:callable' too"
        ) from err


#: where common training checkpoints keep the network's state_dict
_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")


def _load_state(model: Any, path: Path, model_id: str) -> None:
    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # a garbage file fails inside the unpickler with any error type
        raise IngestError(
            f"model {model_id!r}: cannot read state_dict {path}: not a torch state_dict file, "
            f"or one holding more than tensors, which is never unpickled ({type(err).__name__})"
        ) from err
    for key in _CHECKPOINT_KEYS:  # a training checkpoint that holds the state_dict
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, Mapping):
        raise IngestError(
            f"model {model_id!r}: {path}: expected a state_dict (a mapping of parameter names "
            f"to tensors), got {type(state).__name__}"
        )
    problems = state_dict_mismatch(model, state)
    if problems:
        raise IngestError(
            f"model {model_id!r}: state_dict {path} does not fit the factory's architecture: "
            f"{problems}"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise IngestError(
            f"model {model_id!r}: state_dict {path} does not fit the factory's architecture: {err}"
        ) from err


def state_dict_mismatch(model: Any, state: Mapping[str, Any]) -> str:
    """One line naming the keys the network expects but ``state`` lacks, the keys ``state``
    has but the network does not, and shape mismatches; empty when they fit."""
    expected = model.state_dict()

    def few(keys: list[str]) -> str:
        return ", ".join(keys[:6]) + (f" (+{len(keys) - 6} more)" if len(keys) > 6 else "")

    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(v.shape)
    ]
    parts = []
    if missing:
        parts.append(f"missing keys {few(missing)}")
    if unexpected:
        parts.append(f"unexpected keys {few(unexpected)}")
    if shapes:
        parts.append(f"shapes (file vs network) {few(shapes)}")
    return "; ".join(parts)


def ingest_activations(
    store: StudyStore | str | os.PathLike[str],
    model_id: str,
    source: Any,
    *,
    layers: Sequence[str] | None = None,
    sample_ids: SampleIds = "check",
    attrs: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> list[str]:
    """Store activations computed elsewhere as model ``model_id``.

    Parameters
    ----------
    source
        A mapping layer -> array or .npy path; a ``.npz`` file (one array per layer, plus an
        optional ``sample_ids`` array); an ``xarray.Dataset`` or a netCDF (``.nc``) / Zarr
        path whose data variables are layers with a ``sample`` dimension and coordinate.
    layers
        Which layers to take (default: all).
    sample_ids
        ``"check"`` (default): the ids in the source must equal the probe's ids in order —
        a source without ids is an error; ``"probe_order"``: assert the rows follow the probe
        order (no ids needed); or the ids of the rows, checked against the probe.

    Returns
    -------
    list of str
        The layers written.
    """
    if not isinstance(store, StudyStore):
        store = open_store(store, mode="a")
    arrays, ids = _read_source(source, model_id)
    if layers is not None:
        missing = sorted(set(layers) - set(arrays))
        if missing:
            raise IngestError(
                f"model {model_id!r}: layers {missing} not in source (has {sorted(arrays)})"
            )
        arrays = {k: arrays[k] for k in layers}
    ids = _resolve_ids(store, model_id, ids, sample_ids)
    if ids is not None and not np.array_equal(np.asarray(ids), store.sample_ids):
        raise ShapeError(
            f"model {model_id!r}: sample ids of the source differ from the probe set's "
            f"({len(ids)} ids vs {store.n_samples}); reorder the rows to the probe's sample ids"
        )
    exists = store.has_model(model_id)
    clash = sorted(set(arrays) & set(store.layers(model_id))) if exists else []
    if clash and not overwrite:
        raise IngestError(f"model {model_id!r} already has layers {clash}; pass overwrite=True")
    checked = {k: checked_activations(store, model_id, k, v) for k, v in arrays.items()}
    with store.model_writer(model_id, overwrite=True, keep_existing=exists) as writer:
        writer.set_attrs(**{"source": "ingested", **dict(attrs or {})})
        for layer, values in checked.items():
            writer.write_layer(layer, values)
    return list(arrays)


def _resolve_ids(store: StudyStore, model_id: str, ids: Any, sample_ids: SampleIds) -> Any:
    if isinstance(sample_ids, str):
        if sample_ids == "probe_order":
            return None
        if sample_ids != "check":
            raise IngestError(
                f"sample_ids must be 'check', 'probe_order' or ids, got {sample_ids!r}"
            )
        if ids is None:
            raise IngestError(
                f"model {model_id!r}: the source carries no sample ids; pass sample_ids=<row ids> "
                "or sample_ids='probe_order' to assert the rows follow the probe's order"
            )
        return ids
    given = np.asarray(sample_ids)
    if ids is not None and not np.array_equal(given, np.asarray(ids)):
        raise ShapeError(
            f"model {model_id!r}: sample_ids given disagree with the ids in the source"
        )
    return given


def _read_source(source: Any, model_id: str) -> tuple[dict[str, Any], Any]:
    """Layers -> arrays (or lazy xarray) and the sample ids carried by the source, if any."""
    if hasattr(source, "data_vars"):  # an xarray Dataset (itself a Mapping)
        return _from_dataset(source, model_id)
    if isinstance(source, Mapping):
        return {str(k): _load_npy(v, model_id) for k, v in source.items()}, None
    path = Path(source)
    if not path.exists():
        raise IngestError(f"model {model_id!r}: activation source {path} does not exist")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files if k != "sample_ids"}
            ids = data["sample_ids"] if "sample_ids" in data.files else None
        return arrays, ids
    if path.suffix == ".npy":
        return {path.stem: _load_npy(path, model_id)}, None
    import xarray as xr

    try:
        ds = xr.open_zarr(str(path), consolidated=None) if path.is_dir() else xr.open_dataset(path)
    except (OSError, ValueError, KeyError) as err:
        raise IngestError(
            f"model {model_id!r}: cannot open {path} as an xarray dataset: {err}"
        ) from err
    return _from_dataset(ds, model_id)


def _load_npy(value: Any, model_id: str) -> Any:
    if isinstance(value, (str, os.PathLike)):
        try:
            return np.load(value, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise IngestError(f"model {model_id!r}: cannot read {value}: {err}") from err
    return value


def _from_dataset(ds: Any, model_id: str) -> tuple[dict[str, Any], Any]:
    if "sample" not in ds.dims or "sample" not in ds.coords:
        raise IngestError(
            f"model {model_id!r}: dataset needs a 'sample' dimension with sample-id coordinates "
            f"(dims: {dict(ds.sizes)})"
        )
    arrays = {}
    for name, var in ds.data_vars.items():
        if "sample" not in var.dims:
            continue
        other = [d for d in var.dims if d != "sample"]
        var = var.transpose("sample", *other)
        arrays[str(name)] = var.values.reshape(var.sizes["sample"], -1)
    return arrays, np.asarray(ds["sample"].values)
