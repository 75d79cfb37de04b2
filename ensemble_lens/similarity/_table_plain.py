"""Rows of the registry table for names the registry takes from one repository as they are:
nn_similarity_index's ``euclidean``, nnsrm-neurips18's ``isc`` and the plain ``cosine``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ShapeError
from ._names import Built, Family, Output
from ._states import (
    flat_cosine,
    flat_state,
    gram_euclidean,
    gram_euclidean_fn,
    gram_state,
    isc_fn,
    isc_state,
)

__all__ = ["plain_families"]


def _flat_combine(a: np.ndarray, b: np.ndarray) -> float:
    if a.size != b.size:
        raise ShapeError(
            f"cosine: compares two matrices entry by entry, expected the same size, got "
            f"{a.size} and {b.size} values"
        )
    return float(a @ b)


def _build(fn: Any, prepare: Any, combine: Any, shares: str, dot: bool = False) -> Any:
    return lambda o, _out: Built(fn, {}, prepare=prepare, combine=combine, shares=shares, dot=dot)


def plain_families() -> list[Family]:
    """The euclidean, isc and cosine rows."""
    return [
        Family(
            "euclidean",
            "Frobenius distance between the raw linear Gram matrices X X^T and Y Y^T "
            "(nn_similarity_index)",
            "kernel",
            ("orthogonal",),
            _build(gram_euclidean_fn, gram_state, gram_euclidean, "features"),
            outputs={"score": Output("distance")},
            listed=("euclidean",),
            paper="Tang et al. 2020",
        ),
        Family(
            "isc",
            "inter-subject correlation: mean Pearson correlation over every pair of units "
            "(nnsrm-neurips18)",
            "statistic",
            ("per-unit-affine", "permutation"),
            _build(isc_fn, isc_state, np.dot, "features", dot=True),
            listed=("isc",),
            paper="Lu et al. 2018",
        ),
        Family(
            "cosine",
            "cosine between the two activation matrices as vectors (same shape)",
            "statistic",
            ("isotropic-scaling",),
            _build(flat_cosine, flat_state, _flat_combine, "features"),
            listed=(),  # parses, but measure_names() lists names that take any widths
            paper="the registry",
        ),
    ]
