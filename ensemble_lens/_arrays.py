"""Conversion of array-likes at the public edge: numpy, torch, xarray and dask.

Private helpers trust their inputs; public functions call :func:`as_matrix` once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ShapeError


def _to_numpy(x: Any) -> np.ndarray:
    """Materialise numpy/torch/xarray/dask array-likes as a numpy array (no copy when possible)."""
    mod = type(x).__module__
    if mod.startswith("torch"):
        return torch_to_numpy(x)
    if hasattr(x, "dims") and hasattr(x, "values") and hasattr(x, "transpose"):  # xarray
        if "sample" in x.dims and x.ndim == 2:
            x = x.transpose("sample", ...)
        data = x.data
        return np.asarray(data.compute() if hasattr(data, "compute") else data)
    if hasattr(x, "compute") and hasattr(x, "chunks"):  # dask array
        return np.asarray(x.compute())
    return np.asarray(x)


def torch_to_numpy(x: Any) -> np.ndarray:
    """A torch tensor as numpy; bfloat16/float16 (which numpy lacks or computes poorly in)
    are widened to float32 first, exactly."""
    x = x.detach().cpu()
    if str(x.dtype) in ("torch.bfloat16", "torch.float16"):
        x = x.float()
    return x.numpy()


def check_real(arr: np.ndarray, name: str) -> None:
    """Refuse complex input: activations are real, and silently dropping the imaginary part
    (numpy's ComplexWarning) would compare something else."""
    if np.iscomplexobj(arr):
        raise ShapeError(
            f"{name}: expected real activations, got complex dtype {arr.dtype}; "
            "pass .real, abs() or the stacked [real, imag] parts explicitly"
        )


def sample_ids_of(x: Any) -> np.ndarray | None:
    """The ``sample`` coordinate of an xarray input, else None."""
    if hasattr(x, "dims") and "sample" in getattr(x, "dims", ()) and "sample" in x.coords:
        return np.asarray(x.coords["sample"].values)
    return None


def as_matrix(
    x: Any, name: str = "X", *, dtype: Any = np.float64, min_samples: int = 2
) -> np.ndarray:
    """Validate and convert one activation matrix to a C-contiguous ``(sample, unit)`` array.

    Raises
    ------
    ShapeError
        When the input is not 2-D (a 1-D input is taken as one unit), has fewer than
        ``min_samples`` rows, no units, or non-finite values.
    """
    arr = _to_numpy(x)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ShapeError(f"{name}: expected a 2-D (sample, unit) array, got shape {arr.shape}")
    check_real(arr, name)
    n, d = arr.shape
    if n < min_samples:
        raise ShapeError(f"{name}: expected at least {min_samples} samples, got {n}")
    if d == 0:
        raise ShapeError(f"{name}: expected at least one unit, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise ShapeError(f"{name}: {bad} non-finite values (NaN or inf) in a {n}x{d} array")
    return arr


def check_same_samples(
    x: Any, y: Any, X: np.ndarray, Y: np.ndarray, names: tuple[str, str]
) -> None:
    """Raise when two inputs disagree in sample count or (for xarray inputs) in sample ids."""
    if X.shape[0] != Y.shape[0]:
        raise ShapeError(
            f"{names[0]} has {X.shape[0]} samples but {names[1]} has {Y.shape[0]}: "
            "both must be activations on the same probe samples"
        )
    ix, iy = sample_ids_of(x), sample_ids_of(y)
    if ix is not None and iy is not None and not np.array_equal(ix, iy):
        where = int(np.argmax(ix != iy))
        raise ShapeError(
            f"{names[0]} and {names[1]} have different sample ids (first difference at position "
            f"{where}: {ix[where]!r} vs {iy[where]!r}); align them on the same probe set first"
        )
