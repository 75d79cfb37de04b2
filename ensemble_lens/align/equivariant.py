"""Map an aligned subspace onto the equivariant input basis of a vector quantity.

Setting: a latent that is a vector quantity turning with an input vector ``d`` (e.g. a
pairwise force ``f = s(x) d`` with ``d = (dx, dy)``) is stored by every network as an unknown
linear image ``m ≈ A f + a`` (Cranmer et al. 2020: a graph network's messages are a linear
image of the true force). Alignment recovers ``m`` only up to an invertible ``c × c`` map, so
its components mix ``s dx`` and ``s dy``. The map back to the input basis is found from the
inputs alone, never from the answer ``s``:

find the affine ``y = B^T m + b`` (``B``: (c, v)) whose output is *parallel to d* on every
sample. Parallelism is ``y_a d_b - y_b d_a = 0`` for every pair ``a < b`` of vector
components (the 2-D cross product, the 3-D cross product's entries). Each residual is linear
in ``θ = [B; b]``, so minimising ``Σ_i Σ_{a<b} (y_a d_b - y_b d_a)_i²`` subject to the scale
``Σ_i ||y_i||² = n`` is the generalised symmetric eigenproblem ``H θ = μ N θ`` and ``θ`` is
the eigenvector of the smallest ``μ``. When ``m`` spans ``s d`` (and no second vector field
``s' d``), the minimiser is unique up to sign and scale and equals ``y = λ s d``: an output
parallel to ``d`` for all samples must be ``λ(x) d`` with a linear image of ``m``. The
sign is fixed so that ``Σ_i y_i · d_i >= 0`` (``s`` positive on average). A second
near-zero eigenvalue (see ``eigenvalues``) warns that the solution is not identified.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
import xarray as xr

from .._arrays import as_matrix, sample_ids_of
from ..errors import ShapeError

__all__ = ["InputBasisMap", "input_basis_map"]


@dataclass(frozen=True)
class InputBasisMap:
    """Result of :func:`input_basis_map`.

    Attributes
    ----------
    components : xarray.DataArray (sample, component)
        Mapped components ``y = B^T m + b``, named after the vector components
        (``component`` coordinate = ``vector_names``); mean ``||y||²`` is 1.
    matrix : ndarray (c, v)
        Linear part ``B`` acting on the *raw* scores.
    offset : ndarray (v,)
        Constant part ``b``.
    eigenvalues : ndarray (v (c + 1),)
        All generalised eigenvalues in increasing order, divided by the mean ``||d||²``;
        the first is ``misalignment``.
    misalignment : float
        Mean squared sine of the angle between ``y`` and ``d`` (weighted by ``||y||²``):
        0 for an exactly equivariant output.
    """

    components: xr.DataArray
    matrix: np.ndarray
    offset: np.ndarray
    eigenvalues: np.ndarray
    misalignment: float


def _vector_columns(
    inputs: Any, v_names: Sequence[str], input_names: Sequence[str] | None, n_cols: int
) -> list[int]:
    """Column index of every vector component among the inputs."""
    if (
        input_names is None
        and hasattr(inputs, "dims")
        and "variable" in getattr(inputs, "coords", {})
    ):
        input_names = [str(x) for x in inputs.coords["variable"].values]
    if input_names is None:
        if n_cols != len(v_names):
            raise ShapeError(
                f"inputs: expected input_names for {n_cols} columns, or exactly "
                f"{len(v_names)} columns {tuple(v_names)}"
            )
        return list(range(n_cols))
    names = list(input_names)
    if len(names) != n_cols:
        raise ShapeError(f"input_names: expected {n_cols} names like the inputs, got {len(names)}")
    missing = [v for v in v_names if v not in names]
    if missing:
        raise ShapeError(f"inputs: vector components {missing} not among the input names {names}")
    return [names.index(v) for v in v_names]


def _equivariance_forms(m1: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quadratic forms ``H`` (cross-product residual) and ``N`` (output power), (v p, v p)."""
    n, p = m1.shape
    v = d.shape[1]
    H = np.zeros((v * p, v * p))
    for a in range(v):
        for b in range(a + 1, v):
            phi = np.zeros((n, v * p))
            phi[:, a * p : (a + 1) * p] = m1 * d[:, b : b + 1]
            phi[:, b * p : (b + 1) * p] = -m1 * d[:, a : a + 1]
            H += phi.T @ phi
    N = np.kron(np.eye(v), m1.T @ m1)
    return H, N


def input_basis_map(
    scores: Any,
    inputs: Any,
    *,
    vector_names: Sequence[str] = ("dx", "dy"),
    input_names: Sequence[str] | None = None,
) -> InputBasisMap:
    """Map aligned scores onto the input vector basis by the most equivariant linear map.

    Parameters
    ----------
    scores : array-like (sample, component)
        Aligned (consensus) scores ``m`` with ``c >= len(vector_names)`` components.
    inputs : array-like (sample, variable)
        Probe inputs; an xarray ``variable`` coordinate supplies the names.
    vector_names : sequence of str
        Input variables forming the vector ``d`` that the latent turns with.
    input_names : sequence of str, optional
        Names of the input columns (needed unless inputs are exactly ``vector_names``).

    Returns
    -------
    InputBasisMap
        ``components`` (sample, component=vector_names) proportional to ``s · d``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> d = rng.normal(size=(400, 2)); s = 1 / (1 + (d**2).sum(1))
    >>> m = (s[:, None] * d) @ rng.normal(size=(2, 3))
    >>> out = input_basis_map(m, d)
    >>> bool(np.corrcoef(out.components.sel(component="dx"), s * d[:, 0])[0, 1] > 0.999)
    True
    """
    m = as_matrix(scores, "scores")
    X = as_matrix(inputs, "inputs")
    v = len(vector_names)
    if X.shape[0] != m.shape[0]:
        raise ShapeError(f"inputs: expected {m.shape[0]} samples like the scores, got {X.shape[0]}")
    if v < 2 or m.shape[1] < v:
        raise ShapeError(
            f"scores: expected at least {v} components to map onto {tuple(vector_names)} "
            f"(and at least 2 vector components), got {m.shape[1]}"
        )
    d = X[:, _vector_columns(inputs, vector_names, input_names, X.shape[1])]
    mu, sd = m.mean(axis=0), m.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    m1 = np.c_[(m - mu) / sd, np.ones(len(m))]
    H, N = _equivariance_forms(m1, d)
    N += 1e-12 * np.trace(N) / N.shape[0] * np.eye(N.shape[0])
    vals, vecs = scipy.linalg.eigh(H, N)
    theta = vecs[:, 0].reshape(v, -1).T * np.sqrt(len(m))  # (c + 1, v)
    y = m1 @ theta
    if np.sum(y * d) < 0:
        y, theta = -y, -theta
    B = theta[:-1] / sd[:, None]
    b = theta[-1] - mu @ B
    scale = float(np.mean(np.sum(d**2, axis=1)))
    ids = sample_ids_of(scores)
    comp = xr.DataArray(
        y,
        dims=("sample", "component"),
        coords={
            "sample": ids if ids is not None else np.arange(len(y)),
            "component": list(vector_names),
        },
        name="input_basis_components",
    )
    return InputBasisMap(comp, B, b, vals / scale, float(vals[0] / scale))
