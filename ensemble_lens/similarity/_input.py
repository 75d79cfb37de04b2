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
    """Drop constant units with a DroppedUnitsWarning; ``(kept columns, live mask)``."""
    mask = live_units(x.mean(axis=0), x.var(axis=0))
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


def prepare_pair(
    X: Any, Y: Any, names: tuple[str, str] = ("X", "Y"), *, min_samples: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Convert, check samples, and drop dead units of two inputs (float64, not centered)."""
    x, y = prepare_pair_masked(X, Y, names, min_samples=min_samples)
    return x[0], y[0]


def prepare_pair_masked(
    X: Any, Y: Any, names: tuple[str, str] = ("X", "Y"), *, min_samples: int = 2
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Like :func:`prepare_pair` but also return each input's live-unit mask."""
    x = as_matrix(X, names[0], min_samples=min_samples)
    y = as_matrix(Y, names[1], min_samples=min_samples)
    check_same_samples(X, Y, x, y, names)
    return drop_dead(x, names[0]), drop_dead(y, names[1])


def center(x: np.ndarray) -> np.ndarray:
    """Column-centered copy."""
    return x - x.mean(axis=0)
