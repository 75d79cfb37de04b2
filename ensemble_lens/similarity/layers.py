"""Layers x models: the (model, layer) flattening ``pairwise(..., layers=)`` runs through, and
the layer-correspondence test of Kornblith et al. (2019). Imports nothing of ``pairwise``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ShapeError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["flatten", "layer_correspondence", "unflatten"]


def flatten(inputs: Any, layers: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    """Models and the flat ``{"model/layer": activations}`` dict of a store or nested dict
    (the one place that knows the (model, layer) flattening; :func:`unflatten` undoes it)."""
    if not layers:
        raise ShapeError("layers: expected at least one layer name, got none")
    if hasattr(inputs, "activations") and hasattr(inputs, "models"):
        models = [str(m) for m in inputs.models]
        if not models:
            raise ShapeError(f"store {inputs.path}: no models to compare")
        for m in models:
            missing = [ly for ly in layers if ly not in inputs.layers(m)]
            if missing:
                raise ShapeError(f"model {m!r}: no layer(s) {missing}; it has {inputs.layers(m)}")
        get: Callable[[str, str], Any] = inputs.activations
    elif isinstance(inputs, Mapping):
        models = [str(m) for m in inputs]
        for m in inputs:
            if not isinstance(inputs[m], Mapping):
                raise ShapeError(
                    f"model {m!r}: expected a dict {{layer: array}} when layers= is given"
                )
            missing = [ly for ly in layers if ly not in inputs[m]]
            if missing:
                raise ShapeError(f"model {m!r}: no layer(s) {missing}; it has {list(inputs[m])}")
        get = lambda m, ly: inputs[m][ly]  # noqa: E731
    else:
        raise ShapeError(
            "inputs: with layers=, expected a StudyStore or {model: {layer: array}}, "
            f"got {type(inputs).__name__}"
        )
    return models, {f"{m}/{ly}": get(m, ly) for m in models for ly in layers}


def unflatten(flat: xr.DataArray, models: list[str], layers: list[str]) -> xr.DataArray:
    """The (model, layer, model_, layer_) matrix from the flat ("model/layer") one."""
    import xarray as xr

    k, nl = len(models), len(layers)
    return xr.DataArray(
        flat.values.reshape(k, nl, k, nl),
        dims=("model", "layer", "model_", "layer_"),
        coords={"model": models, "layer": layers, "model_": models, "layer_": layers},
        attrs=dict(flat.attrs),
    )


def layer_correspondence(sim: xr.DataArray, direction: str | None = None) -> xr.Dataset:
    """Which layer of model B is most similar to layer l of model A (Kornblith et al. 2019).

    Parameters
    ----------
    sim : xarray.DataArray
        dims ("model", "layer", "model_", "layer_") from ``pairwise(..., layers=...)``.
    direction : {"row", "column", "mean"}, optional
        Which entries score layer l of A against layer m of B: ``"row"``
        ``sim[A, l, B, m]`` (A's layer is the first argument: for regression-type measures it
        predicts B's), ``"column"`` ``sim[B, m, A, l]`` (B's layer predicts A's), ``"mean"``
        their average. Required when ``sim.attrs["direction"]`` is not ``"symmetric"``.

    Returns
    -------
    xarray.Dataset
        ``best`` (model, layer, model_): the layer of ``model_`` most similar to ``layer`` of
        ``model`` (largest similarity, smallest distance by ``sim.attrs["kind"]``), empty
        string on the diagonal; ``correct`` the same as booleans (best == layer);
        ``accuracy`` (layer): share of ordered model pairs (A != B) where the best match of
        layer l is layer l; ``overall`` the mean over layers and pairs.
    """
    import xarray as xr

    if tuple(sim.dims) != ("model", "layer", "model_", "layer_"):
        raise ShapeError(
            f"sim: expected dims ('model', 'layer', 'model_', 'layer_'), got {sim.dims}"
        )
    models, layers = list(sim["model"].values), list(sim["layer"].values)
    if len(models) < 2:
        raise ShapeError(
            f"sim: need at least 2 models for a correspondence test, got {len(models)}"
        )
    vals = _oriented(sim, direction)
    pick = np.nanargmin if sim.attrs.get("kind") == "distance" else np.nanargmax
    best = np.full((len(models), len(layers), len(models)), "", dtype=object)
    correct = np.zeros(best.shape, dtype=bool)
    off = ~np.eye(len(models), dtype=bool)
    for a in range(len(models)):
        for b in range(len(models)):
            if a == b:
                continue
            for li in range(len(layers)):
                j = int(pick(vals[a, li, b, :]))
                best[a, li, b] = layers[j]
                correct[a, li, b] = j == li
    acc = correct.transpose(1, 0, 2)[:, off].mean(axis=1)
    return xr.Dataset(
        {
            "best": (("model", "layer", "model_"), best.astype(str)),
            "correct": (("model", "layer", "model_"), correct),
            "accuracy": (("layer",), acc),
            "overall": ((), float(acc.mean())),
        },
        coords={"model": models, "layer": layers, "model_": list(sim["model_"].values)},
        attrs={"metric": sim.attrs.get("metric", ""), "direction": direction or "row"},
    )


def _oriented(sim: xr.DataArray, direction: str | None) -> np.ndarray:
    """The values with [A, l, B, m] scoring A's layer l against B's layer m."""
    stated = sim.attrs.get("direction", "symmetric")
    if direction is None and stated != "symmetric":
        raise ShapeError(
            f"direction: the measure {sim.attrs.get('metric', '')!r} is not symmetric "
            f"({stated}); pass direction='row', 'column' or 'mean'"
        )
    if direction not in (None, "row", "column", "mean"):
        raise ShapeError(f"direction: expected 'row', 'column' or 'mean', got {direction!r}")
    vals = np.asarray(sim.values, dtype=float)
    back = vals.transpose(2, 3, 0, 1)
    if direction == "column":
        return back
    return (vals + back) / 2 if direction == "mean" else vals
