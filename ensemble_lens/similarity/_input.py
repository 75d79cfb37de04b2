"""Validation at the public edge of the similarity measures (private helpers trust inputs)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._arrays import as_matrix, check_same_samples
from ..errors import DroppedUnitsWarning, GradientDetachedWarning, NonFiniteError, ShapeError
from ._warn import DROPPED_PREFIX, collected, warn

#: A unit is dead (constant) when its standard deviation is at most this fraction of |mean|
#: (exactly constant units have std 0; the tolerance catches round-off around a big offset).
DEAD_RTOL = 1e-12


def live_units(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Boolean mask of units that are not constant, from their means and variances."""
    return np.sqrt(np.maximum(var, 0.0)) > DEAD_RTOL * np.abs(mean)


def drop_dead(x: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Drop constant units with a DroppedUnitsWarning; ``(kept columns, live mask)``.

    The test runs on a power-of-two rescaled copy, so tiny or huge values are not taken for
    constants; the kept columns are the original values.
    """
    xs = safe_scale(x)
    mask = live_units(xs.mean(axis=0), xs.var(axis=0))
    return x[:, mask] if not mask.all() else x, warn_dead(mask, name)


def warn_dead(mask: np.ndarray, name: str, where: str | None = None) -> np.ndarray:
    """Warn about (or raise for) the dead units in ``mask``; returns the mask. The warning has
    the one format of the library, ``dropped constant (dead) units: 'name' k of d``, which a
    call merges over its inputs; errors name the input as ``where`` (default ``name``)."""
    n_dead = int((~mask).sum())
    if n_dead == mask.size:
        raise ShapeError(f"{where or name}: all {mask.size} units are constant; nothing to compare")
    if n_dead:
        warn(f"{DROPPED_PREFIX}{name!r} {n_dead} of {mask.size}", DroppedUnitsWarning)
    return mask


#: Inputs whose largest |value| lies beyond 2**+-SAFE_EXP are rescaled (see :func:`safe_scale`).
SAFE_EXP = 64


def safe_scale(x: np.ndarray) -> np.ndarray:
    """Rescale by a power of two (exact) when values would overflow or underflow in squares.

    Only for measures invariant to isotropic scaling; values within 2**+-64 are untouched.
    """
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > 0 and not 2.0**-SAFE_EXP <= peak <= 2.0**SAFE_EXP:
        return x * 2.0 ** -np.frexp(peak)[1]
    return x


def check_input(x: Any, name: str) -> Any:
    """Refuse what would be read by guesswork; detach (with a warning) what needs it.

    1-D input and xarray inputs whose dims are not ``("sample", "unit")`` (in either order)
    raise :class:`ShapeError` saying what to pass; a torch tensor that requires grad is
    detached with a :class:`GradientDetachedWarning` (collected into the result's notes).
    """
    if type(x).__module__.startswith("torch") and getattr(x, "requires_grad", False):
        warn(f"{name}: detached a tensor that requires grad", GradientDetachedWarning)
        x = x.detach()
    dims = tuple(getattr(x, "dims", ()) or ())
    if dims and hasattr(x, "transpose") and set(dims) != {"sample", "unit"}:
        raise ShapeError(
            f"{name}: expected an xarray.DataArray with dims ('sample', 'unit'), got {dims}; "
            "rename them, e.g. x.rename({old: 'sample', ...})"
        )
    shape = getattr(x, "shape", None)
    if shape is None:
        shape = np.shape(x)
    if len(shape) == 1:
        raise ShapeError(
            f"{name}: expected a 2-D (sample, unit) array, got a 1-D array of {shape[0]} "
            "values; pass x[:, None] (one unit) or x[None, :] (one sample) explicitly"
        )
    return x


def checked_matrix(x: Any, name: str, min_samples: int = 2) -> np.ndarray:
    """:func:`check_input`, then the float64 (sample, unit) matrix; NaN or inf raise
    :class:`NonFiniteError`."""
    x = check_input(x, name)
    try:
        return as_matrix(x, name, min_samples=min_samples)
    except ShapeError as err:
        if "non-finite" in str(err):
            raise NonFiniteError(str(err)) from err
        raise


def prepare_pair(
    X: Any,
    Y: Any,
    names: tuple[str, str] = ("X", "Y"),
    *,
    min_samples: int = 2,
    rescale: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Convert, check samples, and drop dead units of two inputs (float64, not centered).

    ``rescale`` (for scale-invariant measures) applies :func:`safe_scale` to each input
    before anything is squared, so values near 1e+-200 give the same result as near 1.
    """
    x, y = prepare_pair_masked(X, Y, names, min_samples=min_samples, rescale=rescale)
    return x[0], y[0]


def prepare_pair_masked(
    X: Any,
    Y: Any,
    names: tuple[str, str] = ("X", "Y"),
    *,
    min_samples: int = 2,
    rescale: bool = True,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Like :func:`prepare_pair` but also return each input's live-unit mask."""
    x = checked_matrix(X, names[0], min_samples=min_samples)
    y = checked_matrix(Y, names[1], min_samples=min_samples)
    check_same_samples(X, Y, x, y, names)
    if rescale:
        x, y = safe_scale(x), safe_scale(y)
    with collected():  # one warning for both inputs
        return drop_dead(x, names[0]), drop_dead(y, names[1])


def center(x: np.ndarray) -> np.ndarray:
    """Column-centered copy."""
    return x - x.mean(axis=0)
