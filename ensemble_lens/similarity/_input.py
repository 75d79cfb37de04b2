"""Validation at the public edge of the similarity measures (private helpers trust inputs)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._arrays import as_matrix, check_same_samples
from ..errors import DroppedUnitsWarning, ShapeError

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


def warn_dead(mask: np.ndarray, name: str) -> np.ndarray:
    """Warn about (or raise for) the dead units in ``mask``; returns the mask."""
    n_dead = int((~mask).sum())
    if n_dead == mask.size:
        raise ShapeError(f"{name}: all {mask.size} units are constant; nothing to compare")
    if n_dead:
        idx = np.flatnonzero(~mask)[:10].tolist()
        warnings.warn(
            f"{name}: dropped {n_dead} of {mask.size} constant (dead) units, e.g. {idx}",
            DroppedUnitsWarning,
            stacklevel=4,
        )
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
    x = as_matrix(X, names[0], min_samples=min_samples)
    y = as_matrix(Y, names[1], min_samples=min_samples)
    check_same_samples(X, Y, x, y, names)
    if rescale:
        x, y = safe_scale(x), safe_scale(y)
    return drop_dead(x, names[0]), drop_dead(y, names[1])


def center(x: np.ndarray) -> np.ndarray:
    """Column-centered copy."""
    return x - x.mean(axis=0)
