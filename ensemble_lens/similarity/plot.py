"""Heatmaps of similarity matrices (matplotlib, imported when called)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ShapeError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["plot_similarity"]


def _select(
    sim: xr.DataArray, model: str | None, model_: str | None
) -> tuple[np.ndarray, list[str], list[str], str]:
    dims = tuple(sim.dims)
    if dims == ("model", "model_"):
        return (
            sim.values,
            [str(v) for v in sim["model"].values],
            [str(v) for v in sim["model_"].values],
            "model",
        )
    if dims == ("model", "layer", "model_", "layer_"):
        if model is None or model_ is None:
            raise ShapeError(
                "plot_similarity: a (model, layer, model_, layer_) matrix needs model= and model_="
            )
        sub = sim.sel(model=model, model_=model_)
        return (
            sub.values,
            [str(v) for v in sub["layer"].values],
            [str(v) for v in sub["layer_"].values],
            "layer",
        )
    if dims == ("layer", "layer_"):
        return (
            sim.values,
            [str(v) for v in sim["layer"].values],
            [str(v) for v in sim["layer_"].values],
            "layer",
        )
    raise ShapeError(
        "plot_similarity: expected dims (model, model_) or (model, layer, model_, layer_), "
        f"got {dims}"
    )


def plot_similarity(
    sim: xr.DataArray,
    *,
    model: str | None = None,
    model_: str | None = None,
    ax: Any = None,
    digits: int = 4,
    cmap: str = "viridis",
    annotate: bool | None = None,
) -> Any:
    """Draw a model x model or (for one model pair) layer x layer matrix as a heatmap.

    Parameters
    ----------
    sim : xarray.DataArray
        From :func:`pairwise` (dims ("model", "model_")) or ``pairwise(..., layers=...)``
        (then ``model`` and ``model_`` choose the pair; rows are ``model``'s layers).
    ax : matplotlib Axes, optional
        Drawn into; a new figure otherwise.
    digits : int
        Decimals printed in each cell (4 tells 0.9945 from 0.9982).
    annotate : bool, optional
        Print the values (default: when the matrix has at most 20 x 20 cells).

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    vals, rows, cols, what = _select(sim, model, model_)
    if ax is None:
        size = max(3.0, 0.55 * max(len(rows), len(cols)) + 1.5)
        _, ax = plt.subplots(figsize=(size + 1.0, size))
    im = ax.imshow(vals, cmap=cmap, interpolation="nearest")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel(f"{what} of {model_}" if model_ else what)
    ax.set_ylabel(f"{what} of {model}" if model else what)
    ax.set_title(str(sim.attrs.get("metric", "")), fontsize=9)
    if annotate if annotate is not None else max(vals.shape) <= 20:
        finite = vals[np.isfinite(vals)]
        mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
        for i in range(vals.shape[0]):
            for j in range(vals.shape[1]):
                ax.text(
                    j,
                    i,
                    f"{vals[i, j]:.{digits}f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if vals[i, j] > mid else "white",
                )
    return ax
