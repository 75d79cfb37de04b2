"""Shared second moments of many networks, streamed over sample chunks.

Linear CKA, CCA (and SVCCA/PWCCA), Procrustes and shape metrics depend on the data only through
each network's mean and the centered (cross-)covariances between networks. One streaming pass
over sample chunks gives all of them for every pair: the activations of all networks on a chunk
are placed side by side in one ``(chunk, D)`` matrix ``Z`` (``D = sum of widths``) and
accumulated with one symmetric rank-k update ``S += Z^T Z`` (BLAS ``dsyrk``, in place).

Numerical stability: every value is shifted by the mean of the first chunk before it is
accumulated, so large offsets do not cancel catastrophically in ``S - n mu mu^T``.

Memory: the accumulators are ``D`` floats and one ``D x D`` float64 matrix; the chunk buffer is
``chunk_size x D``. Neither grows with the number of samples ``n``.

Execution: with an ``executor`` the sample range is split into blocks; a module-level task
computes the partial sums of one block (opening the study store by path when the inputs are a
``(store, layer)`` pair) and the partial sums are added in a tree.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.linalg.blas import dgemm, dsyr, dsyrk

from .._arrays import check_real, sample_ids_of, torch_to_numpy
from ..errors import ShapeError, StoreError
from ._input import SAFE_EXP

logger = logging.getLogger(__name__)

__all__ = ["Moments", "compute_moments"]


@dataclass(frozen=True)
class Moments:
    """Means and centered covariance of several networks' activations, side by side.

    Attributes
    ----------
    n : int
        Number of samples.
    names : tuple of str
        One name per network (list inputs are named ``"0"``, ``"1"``, ...).
    widths : tuple of int
        Units per network; ``D = sum(widths)``.
    mean : ndarray, shape (D,)
        Per-unit means, float64.
    cov : ndarray, shape (D, D)
        ``Xc^T Xc / (n - 1)`` of all networks stacked side by side (unbiased covariance).
    scales : ndarray, shape (D,), optional
        Power-of-two factor applied to each unit before accumulation (the same for all units
        of one network). 1 (and ``None``) unless a network's values lie beyond 2**+-64, where
        squares would overflow or underflow; then ``mean`` and ``cov`` are those of the
        rescaled activations (exact, and the scale-invariant measures are unchanged).
    """

    n: int
    names: tuple[str, ...]
    widths: tuple[int, ...]
    mean: np.ndarray
    cov: np.ndarray
    scales: np.ndarray | None = None

    @property
    def offsets(self) -> np.ndarray:
        """(K + 1,) cumulative widths: network ``k`` owns columns ``offsets[k]:offsets[k+1]``."""
        return np.concatenate([[0], np.cumsum(self.widths)]).astype(np.int64)

    def block(self, i: int, j: int) -> np.ndarray:
        """(d_i, d_j) view of the covariance between networks ``i`` and ``j``."""
        o = self.offsets
        return self.cov[o[i] : o[i + 1], o[j] : o[j + 1]]


# ----------------------------------------------------------------------------- sources


def _is_store_pair(inputs: Any) -> bool:
    return (
        isinstance(inputs, tuple)
        and len(inputs) == 2
        and hasattr(inputs[0], "activations")
        and hasattr(inputs[0], "models")
        and isinstance(inputs[1], str)
    )


def _slice_rows(x: Any, a: int, b: int) -> np.ndarray:
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
    if hasattr(x, "dims") and hasattr(x, "isel"):
        if x.ndim != 2 or "sample" not in x.dims:
            raise ShapeError(f"network {name!r}: expected dims ('sample', 'unit'), got {x.dims}")
        x = x.transpose("sample", ...)
    shape = tuple(int(s) for s in x.shape)
    if len(shape) != 2:
        raise ShapeError(f"network {name!r}: expected a 2-D (sample, unit) array, got {shape}")
    return shape  # type: ignore[return-value]


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
        arrays = tuple(a.transpose("sample", ...) if hasattr(a, "isel") else a for a in arrays)
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


# ----------------------------------------------------------------------------- accumulation


def _fill(
    buf: np.ndarray,
    arrays: Sequence[Any],
    names: Sequence[str],
    a: int,
    b: int,
    scales: np.ndarray | None = None,
    check: bool = True,
) -> None:
    """Write rows a:b of every network side by side into ``buf[: b - a]`` (times ``scales``);
    ``check=False`` for networks already read through a checked pass (cross tiles)."""
    col = 0
    for x, nm in zip(arrays, names, strict=True):
        part = _slice_rows(x, a, b)
        if check:
            check_real(part, f"network {nm!r}")
            if not np.isfinite(part).all():
                raise ShapeError(
                    f"network {nm!r}: non-finite values (NaN or inf) in samples {a}:{b}"
                )
        dst = buf[: b - a, col : col + part.shape[1]]
        dst[...] = part
        if scales is not None:
            dst *= scales[col : col + part.shape[1]]
        col += part.shape[1]


def safe_scales(first: np.ndarray, widths: Sequence[int]) -> np.ndarray | None:
    """Per-unit power-of-two factors bringing each network's largest |value| near 1, for the
    networks whose values lie beyond 2**+-SAFE_EXP (None when no network needs one)."""
    out = np.ones(first.shape[1])
    col = 0
    for d in widths:
        peak = float(np.abs(first[:, col : col + d]).max()) if first.size else 0.0
        if peak > 0 and not 2.0**-SAFE_EXP <= peak <= 2.0**SAFE_EXP:
            out[col : col + d] = 2.0 ** -np.frexp(peak)[1]
        col += d
    return None if (out == 1).all() else out


#: Sample blocks submitted to an executor (memory: one partial D x D sum per block).
EXECUTOR_BLOCKS = 4

#: Cap on the chunk buffer: rows per chunk shrink for very wide stacks (K * d large).
CHUNK_BYTES = 64 * 2**20


def _rows(chunk_size: int, width: int) -> int:
    return max(1, min(chunk_size, CHUNK_BYTES // (8 * width)))


def _block_sums(
    spec: Any,
    names: tuple[str, ...],
    a: int,
    b: int,
    shift: np.ndarray,
    chunk_size: int,
    scales: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Module-level task: shifted sums ``(sum z, upper(sum z z^T))`` over samples a:b."""
    arrays = spec.open()
    width = shift.shape[0]
    s = np.zeros(width)
    S = np.zeros((width, width), order="F")
    chunk_size = _rows(chunk_size, width)
    buf = np.empty((min(chunk_size, b - a), width))
    for start in range(a, b, chunk_size):
        stop = min(start + chunk_size, b)
        _fill(buf, arrays, names, start, stop, scales)
        z = buf[: stop - start]
        z -= shift
        s += z.sum(axis=0)
        S = dsyrk(1.0, z.T, beta=1.0, c=S, trans=0, lower=0, overwrite_c=1)
    return s, S


def _cross_block_sums(
    spec_a: Any,
    spec_b: Any,
    names: tuple[tuple[str, ...], tuple[str, ...]],
    a: int,
    b: int,
    means: tuple[np.ndarray, np.ndarray],
    chunk_size: int,
    scales: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> np.ndarray:
    """Module-level task: ``sum (x_a - mu_a)^T (x_b - mu_b)`` over samples a:b (two groups)."""
    arrs_a, arrs_b = spec_a.open(), spec_b.open()
    chunk_size = _rows(chunk_size, means[0].size + means[1].size)
    m = min(chunk_size, b - a)
    buf_a, buf_b = np.empty((m, means[0].size)), np.empty((m, means[1].size))
    C = np.zeros((means[0].size, means[1].size), order="F")
    for start in range(a, b, chunk_size):
        stop = min(start + chunk_size, b)
        _fill(buf_a, arrs_a, names[0], start, stop, scales[0], check=False)
        _fill(buf_b, arrs_b, names[1], start, stop, scales[1], check=False)
        za, zb = buf_a[: stop - start], buf_b[: stop - start]
        za -= means[0]
        zb -= means[1]
        C = dgemm(1.0, za.T, zb.T, beta=1.0, c=C, trans_b=1, overwrite_c=1)
    return C


def _symmetrize_upper(S: np.ndarray, step: int = 512) -> None:
    """Copy the upper triangle onto the lower one in place, in blocks (no D x D temporary)."""
    D = S.shape[0]
    for a in range(0, D, step):
        b = min(a + step, D)
        S[b:, a:b] = S[a:b, b:].T
        blk = S[a:b, a:b]
        S[a:b, a:b] = np.triu(blk) + np.triu(blk, 1).T


def _iadd(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """In-place sum (partial sums are owned by the reduction, never shared)."""
    x += y
    return x


def _tree_sum(parts: list[Any]) -> Any:
    """Add partial results pairwise (log depth), as a distributed reduction would."""
    while len(parts) > 1:
        nxt: list[Any] = []
        for i in range(0, len(parts) - 1, 2):
            p, q = parts[i], parts[i + 1]
            if isinstance(p, tuple):
                nxt.append(tuple(_iadd(x, y) for x, y in zip(p, q, strict=True)))
            else:
                nxt.append(_iadd(p, q))
        if len(parts) % 2:
            nxt.append(parts[-1])
        parts = nxt
    return parts[0]


def _ranges(n: int, chunk_size: int, executor: Any) -> list[tuple[int, int]]:
    """Sample blocks: one block inline; at most ``EXECUTOR_BLOCKS`` chunk-aligned blocks
    otherwise (each holds its own partial D x D sum until the tree reduction)."""
    if executor is None:
        return [(0, n)]
    n_chunks = -(-n // chunk_size)
    per = max(1, -(-n_chunks // EXECUTOR_BLOCKS))
    return [(c * chunk_size, min(n, (c + per) * chunk_size)) for c in range(0, n_chunks, per)]


def _run(fn: Any, ranges: list[tuple[int, int]], executor: Any, *args: Any, **kw: Any) -> Any:
    """Call ``fn(a, b)`` on every block, inline or through the executor, and tree-sum."""
    if executor is None:
        parts = [fn(a, b, *args, **kw) for a, b in ranges]
    else:
        futures = [executor.submit(fn, a, b, *args, **kw) for a, b in ranges]
        parts = [f.result() for f in futures]
    return _tree_sum(parts)


def _task_block_sums(
    a: int, b: int, spec: Any, names: Any, shift: Any, chunk: int, scales: Any = None
) -> Any:
    return _block_sums(spec, names, a, b, shift, chunk, scales)


def _task_cross_sums(
    a: int, b: int, specs: Any, names: Any, means: Any, chunk: int, scales: Any = (None, None)
) -> Any:
    return _cross_block_sums(specs[0], specs[1], names, a, b, means, chunk, scales)


# ----------------------------------------------------------------------------- public


def compute_moments(inputs: Any, *, chunk_size: int = 8192, executor: Any = None) -> Moments:
    """Means and covariance of all networks side by side, in one streaming pass.

    Parameters
    ----------
    inputs : list/tuple or dict of arrays, or (StudyStore, layer)
        ``(n, d_k)`` activations per network (numpy, torch, xarray ``("sample", "unit")`` or
        dask), all on the same ``n`` samples; or a study store and a layer name, in which case
        every model's ``store.activations(model, layer)`` is streamed.
    chunk_size : int
        Samples read and accumulated at a time (buffer ``chunk_size * D * 8`` bytes, capped at
        ``CHUNK_BYTES`` = 64 MiB by reading fewer rows).
    executor : object with ``submit(fn, *args) -> future``, optional
        When given, the sample range is split into blocks whose partial sums are computed by
        module-level tasks and tree-summed (at most ``EXECUTOR_BLOCKS`` = 4 blocks, each with
        its own partial ``D x D`` sum). Store inputs are re-opened by path in each task;
        in-memory arrays travel with the task, so prefer a thread pool or a store for them.

    Returns
    -------
    Moments
        ``cov`` is the unbiased ``(D, D)`` covariance ``Xc^T Xc / (n - 1)``.

    Raises
    ------
    ShapeError
        Mismatched sample counts or ids, fewer than 2 samples, non-finite values.

    Notes
    -----
    Memory is ``O(D^2 + chunk_size * D)`` and does not grow with ``n``. The result itself is a
    dense ``D x D`` matrix; for all-pairs metrics over more networks than fit in memory use
    :func:`ensemble_lens.similarity.pairwise` with ``max_bytes``, which tiles the pass over
    groups of networks.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> m = compute_moments({"a": rng.normal(size=(100, 3)), "b": rng.normal(size=(100, 2))})
    >>> m.cov.shape, m.block(0, 1).shape
    ((5, 5), (3, 2))
    """
    if chunk_size < 1:
        raise ShapeError(f"chunk_size: expected a positive integer, got {chunk_size}")
    names, spec, n, widths = _resolve(inputs)
    return _moments_of(spec, names, n, widths, chunk_size, executor)


def _moments_of(
    spec: Any, names: tuple[str, ...], n: int, widths: tuple[int, ...], chunk: int, executor: Any
) -> Moments:
    D = sum(widths)
    first = np.empty((min(_rows(chunk, D), n), D))
    _fill(first, spec.open(), names, 0, first.shape[0])
    scales = safe_scales(first, widths)
    if scales is not None:
        first *= scales
    shift = first.mean(axis=0)
    del first
    logger.debug("moments: n=%d K=%d D=%d chunk=%d", n, len(widths), D, chunk)
    ranges = _ranges(n, chunk, executor)
    s, S = _run(_task_block_sums, ranges, executor, spec, names, shift, chunk, scales)
    mean = shift + s / n
    u = s / np.sqrt(n)
    S = dsyr(-1.0, u, a=S, lower=0, overwrite_a=1)  # S - u u^T in place (upper triangle)
    _symmetrize_upper(S)
    S /= n - 1
    # S is Fortran-ordered and exactly symmetric, so its transpose is the C-ordered matrix
    return Moments(n=n, names=names, widths=widths, mean=mean, cov=S.T, scales=scales)


def cross_covariance(
    specs: tuple[Any, Any],
    names: tuple[tuple[str, ...], tuple[str, ...]],
    means: tuple[np.ndarray, np.ndarray],
    n: int,
    chunk: int,
    executor: Any = None,
    scales: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> np.ndarray:
    """Centered cross-covariance between two groups of networks with known means (tiling);
    ``scales`` are the groups' :attr:`Moments.scales`. The networks are not checked again
    (real, finite): their means came from a checked pass over the same samples."""
    ranges = _ranges(n, chunk, executor)
    C = _run(_task_cross_sums, ranges, executor, specs, names, means, chunk, scales)
    C /= n - 1
    return C


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


def moments_of_spec(
    spec: Any, names: tuple[str, ...], n: int, widths: tuple[int, ...], chunk: int, executor: Any
) -> Moments:
    """:func:`compute_moments` on already-resolved inputs."""
    return _moments_of(spec, names, n, widths, chunk, executor)
