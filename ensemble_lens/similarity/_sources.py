"""Sources of the moments pass: in-memory arrays or a study store's layer, validated once and
described by a picklable spec that executor tasks re-open (:mod:`.moments`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._arrays import sample_ids_of, torch_to_numpy
from ..errors import ShapeError, StoreError
from ._input import check_input

__all__ = ["in_memory", "resolve_inputs", "slice_rows", "subset_spec"]


def _is_store_pair(inputs: Any) -> bool:
    return (
        isinstance(inputs, tuple)
        and len(inputs) == 2
        and hasattr(inputs[0], "activations")
        and hasattr(inputs[0], "models")
        and isinstance(inputs[1], str)
    )


def slice_rows(x: Any, a: int, b: int) -> np.ndarray:
    """Rows ``a:b`` of one (sample, unit) array-like as float64 numpy."""
    mod = type(x).__module__
    if mod.startswith("torch"):
        part = torch_to_numpy(x[a:b])
    elif hasattr(x, "dims") and hasattr(x, "isel"):  # xarray (possibly dask-backed)
        part = np.asarray(x.isel(sample=slice(a, b)).values)
    else:
        part = x[a:b]
        if hasattr(part, "compute") and hasattr(part, "chunks"):  # dask
            part = part.compute()
        part = np.asarray(part)
    return part


@dataclass(frozen=True)
class _ArraySpec:
    """In-memory (or dask) arrays; picklable for process executors."""

    arrays: tuple[Any, ...]

    def open(self) -> tuple[Any, ...]:
        return self.arrays


@dataclass(frozen=True)
class _StoreSpec:
    """Coordinates of activations in a study store: what executor tasks receive.

    ``store`` (the caller's open store) is used in this process and dropped when pickled, so a
    task in another process re-opens the store by path.
    """

    path: str
    layer: str
    model_ids: tuple[str, ...]
    store: Any = field(default=None, compare=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "layer": self.layer, "model_ids": self.model_ids}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in {**state, "store": None}.items():
            object.__setattr__(self, key, value)

    def open(self) -> tuple[Any, ...]:
        store = self.store
        if store is None:
            from ..record.store import open_store

            store = open_store(self.path, mode="r")
        acts = (store.activations(m, self.layer) for m in self.model_ids)
        return tuple(a.transpose("sample", ...) for a in acts)


def _shape_of(x: Any, name: str) -> tuple[int, int]:
    check_input(x, f"network {name!r}")
    if hasattr(x, "dims") and hasattr(x, "isel"):
        x = x.transpose("sample", ...)
    shape = tuple(int(s) for s in x.shape)
    if len(shape) != 2:
        raise ShapeError(f"network {name!r}: expected a 2-D (sample, unit) array, got {shape}")
    return shape  # type: ignore[return-value]


def _detached(a: Any, name: str) -> Any:
    """One in-memory network, checked (:func:`check_input`), detached, samples first."""
    a = check_input(a, f"network {name!r}")
    return a.transpose("sample", ...) if hasattr(a, "isel") else a


def _resolve(inputs: Any) -> tuple[tuple[str, ...], Any, int, tuple[int, ...]]:
    """Normalise inputs to (names, spec, n, widths), validating shapes and sample ids."""
    if _is_store_pair(inputs):
        store, layer = inputs
        names = tuple(str(m) for m in store.models)
        if not names:
            raise StoreError(f"store {store.path}: no models to compute moments of")
        spec: Any = _StoreSpec(str(store.path), layer, names, store)
        arrays = spec.open()
    else:
        if isinstance(inputs, Mapping):
            names, arrays = tuple(str(k) for k in inputs), tuple(inputs.values())
        elif isinstance(inputs, Sequence) and not isinstance(inputs, str):
            arrays = tuple(inputs)
            names = tuple(str(i) for i in range(len(arrays)))
        else:
            raise ShapeError(
                "inputs: expected a list/dict of (sample, unit) arrays or a (StudyStore, layer) "
                f"pair, got {type(inputs).__name__}"
            )
        if not arrays:
            raise ShapeError("inputs: expected at least one network, got none")
        arrays = tuple(_detached(a, nm) for a, nm in zip(arrays, names, strict=True))
        spec = _ArraySpec(arrays)
    shapes = [_shape_of(a, nm) for a, nm in zip(arrays, names, strict=True)]
    n = shapes[0][0]
    for (nk, dk), nm in zip(shapes, names, strict=True):
        if nk != n:
            raise ShapeError(f"network {nm!r}: expected {n} samples like {names[0]!r}, got {nk}")
        if dk == 0:
            raise ShapeError(f"network {nm!r}: expected at least one unit, got 0")
    if n < 2:
        raise ShapeError(f"inputs: expected at least 2 samples, got {n}")
    _check_ids(arrays, names)
    return names, spec, n, tuple(s[1] for s in shapes)


def _check_ids(arrays: Sequence[Any], names: Sequence[str]) -> None:
    ref, ref_name = None, None
    for a, nm in zip(arrays, names, strict=True):
        ids = sample_ids_of(a)
        if ids is None:
            continue
        if ref is None:
            ref, ref_name = ids, nm
        elif not np.array_equal(ids, ref):
            raise ShapeError(
                f"network {nm!r} has different sample ids from {ref_name!r}; "
                "align them on the same probe set first"
            )


def in_memory(spec: Any) -> bool:
    """Whether every network of ``spec`` is a numpy array (re-reading it is only a copy)."""
    return isinstance(spec, _ArraySpec) and all(isinstance(a, np.ndarray) for a in spec.arrays)


def subset_spec(spec: Any, idx: Sequence[int]) -> Any:
    """The source spec restricted to the networks at positions ``idx`` (for tiling)."""
    if isinstance(spec, _StoreSpec):
        ids = tuple(spec.model_ids[i] for i in idx)
        return _StoreSpec(spec.path, spec.layer, ids, spec.store)
    return _ArraySpec(tuple(spec.arrays[i] for i in idx))


def resolve_inputs(inputs: Any) -> tuple[tuple[str, ...], Any, int, tuple[int, ...]]:
    """Validate list/dict/(store, layer) inputs: ``(names, spec, n, widths)``."""
    return _resolve(inputs)
