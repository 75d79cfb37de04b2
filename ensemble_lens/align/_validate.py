"""Validation of a multi-network input at the public edge of :mod:`ensemble_lens.align`.

A multi-network input is a sequence of ``(sample, unit)`` arrays or a mapping ``name -> array``
(numpy, torch, xarray or dask). Every network must hold the same probe samples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._arrays import as_matrix, check_same_samples
from ..errors import ShapeError

__all__ = ["as_matrices", "check_like_fit"]


def _named(inputs: Any) -> tuple[list[str], list[Any]]:
    """Split a mapping or sequence of networks into names and raw arrays."""
    if isinstance(inputs, Mapping):
        return [str(k) for k in inputs], list(inputs.values())
    if isinstance(inputs, np.ndarray) or not isinstance(inputs, Sequence):
        raise ShapeError(
            "expected a sequence or a dict of (sample, unit) arrays, one per network, "
            f"got {type(inputs).__name__}"
        )
    return [f"model{k}" for k in range(len(inputs))], list(inputs)


def as_matrices(
    inputs: Sequence[Any] | Mapping[str, Any],
    *,
    min_models: int = 2,
    names: Sequence[str] | None = None,
) -> tuple[list[str], list[np.ndarray]]:
    """Convert every network to a float64 ``(sample, unit)`` matrix and check the sample counts.

    Parameters
    ----------
    inputs : sequence or dict of array-like, each (sample, unit_k)
        One activation matrix per network.
    min_models : int
        Fewest networks accepted.
    names : sequence of str, optional
        Network names overriding the default ``model{k}`` (or the dict keys).

    Returns
    -------
    names : list of str
        One name per network (dict keys, or ``model{k}``).
    arrays : list of ndarray, each (n, d_k)
        C-contiguous float64 matrices.

    Raises
    ------
    ShapeError
        Fewer than ``min_models`` networks, an invalid matrix, or networks that disagree in
        sample count or sample ids (the message names the offending network).
    """
    default_names, raw = _named(inputs)
    names = list(names) if names is not None else default_names
    if len(raw) < min_models:
        raise ShapeError(f"expected at least {min_models} networks, got {len(raw)}")
    arrays = [as_matrix(x, f"model {name!r}") for name, x in zip(names, raw, strict=True)]
    for k in range(1, len(arrays)):
        check_same_samples(
            raw[0], raw[k], arrays[0], arrays[k], (f"model {names[0]!r}", f"model {names[k]!r}")
        )
    return names, arrays


def check_like_fit(
    inputs: Sequence[Any] | Mapping[str, Any], widths: Sequence[int], names: Sequence[str]
) -> list[np.ndarray]:
    """Validate networks passed to ``transform`` against the widths seen in ``fit``.

    Returns
    -------
    list of ndarray, each (n, d_k)

    Raises
    ------
    ShapeError
        A different number of networks, other names (for a dict), a different unit count,
        or mismatched samples.
    """
    if isinstance(inputs, Mapping):
        by_name = {str(k): v for k, v in inputs.items()}
        if set(by_name) != set(names):
            raise ShapeError(
                f"expected the networks {list(names)} like in fit, got {list(by_name)}"
            )
        inputs = {name: by_name[name] for name in names}
    _, raw = _named(inputs)
    if len(raw) != len(widths):
        raise ShapeError(f"expected {len(widths)} networks like in fit, got {len(raw)}")
    _, arrays = as_matrices(inputs, min_models=1, names=names)
    for name, x, d in zip(names, arrays, widths, strict=True):
        if x.shape[1] != d:
            raise ShapeError(f"model {name!r}: expected {d} units like in fit, got {x.shape[1]}")
    return arrays
