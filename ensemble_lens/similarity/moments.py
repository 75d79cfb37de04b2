"""Shared second moments of many networks, streamed over sample chunks.

Linear CKA, CCA (and SVCCA/PWCCA), Procrustes and shape metrics depend on the data only through
each network's mean and the centered (cross-)covariances between networks. One streaming pass
over sample chunks gives all of them for every pair: the activations of all networks on a chunk
are placed side by side in one ``(chunk, D)`` matrix ``Z`` (``D = sum of widths``) and
accumulated with one symmetric rank-k update ``S += Z^T Z`` (BLAS ``dsyrk``, in place; with
``precision="float32"``, ``ssyrk`` over sub-chunks of 1024 rows added into the float64 ``S``).

Numerical stability: every value is shifted by the mean of the first chunk before it is
accumulated, so large offsets do not cancel catastrophically in ``S - n mu mu^T``.

Memory: the accumulators are ``D`` floats and one ``D x D`` float64 matrix; the chunk buffer is
``chunk_size x D``. Neither grows with the number of samples ``n``.

Execution: with an ``executor`` the sample range is split into blocks; a module-level task
computes the partial sums of one block (opening the study store by path when the inputs are a
``(store, layer)`` pair) and the partial sums are added in a tree.

Device: ``device="cpu"`` is the numpy path above; ``"cuda"``, ``"auto"`` and ``"torch-cpu"``
accumulate the same shifted sums with torch GEMMs on that device (:mod:`._device`), with the
same chunks, blocks and float64 accumulators.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg.blas import dgemm, dsyr, dsyrk, sgemm, ssyrk

from .._arrays import check_real
from ..errors import ShapeError
from ._device import (
    FLOAT32_ROWS,
    Device,
    Precision,
    TorchSums,
    check_device,
    moments_backend,
)
from ._input import SAFE_EXP
from ._sources import in_memory, resolve_inputs, slice_rows, subset_spec

logger = logging.getLogger(__name__)

__all__ = [
    "Moments",
    "compute_moments",
    "cross_covariance",
    "in_memory",
    "moments_of_spec",
    "resolve_inputs",
    "subset_spec",
]


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


# ----------------------------------------------------------------------------- accumulation


def _parts(
    arrays: Sequence[Any], names: Sequence[str], a: int, b: int, check: bool = True
) -> list[np.ndarray]:
    """Rows a:b of every network as numpy (its own dtype), checked real and finite unless
    ``check=False`` (networks already read through a checked pass: cross tiles)."""
    out = []
    for x, nm in zip(arrays, names, strict=True):
        part = slice_rows(x, a, b)
        if check:
            check_real(part, f"network {nm!r}")
            if not np.isfinite(part).all():
                raise ShapeError(
                    f"network {nm!r}: non-finite values (NaN or inf) in samples {a}:{b}"
                )
        out.append(part)
    return out


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
    for part in _parts(arrays, names, a, b, check):
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
    how: tuple[str, str] = ("cpu", "float64"),
) -> tuple[np.ndarray, np.ndarray]:
    """Module-level task: shifted sums ``(sum z, upper(sum z z^T))`` over samples a:b, with
    numpy (``dsyrk``/``ssyrk``) or torch GEMMs (``how``: the (device, precision) of
    :mod:`._device`)."""
    arrays = spec.open()
    width = shift.shape[0]
    chunk_size = _rows(chunk_size, width)
    backend = moments_backend(how[0])
    if backend is not None:  # the chunks go to the device as read; shifted and summed there
        acc = TorchSums(backend, how[1], (shift, scales))
        for start in range(a, b, chunk_size):
            acc.add(_parts(arrays, names, start, min(start + chunk_size, b)))
        return acc.result()  # type: ignore[return-value]
    s = np.zeros(width)
    S = np.zeros((width, width), order="F")
    buf = np.empty((min(chunk_size, b - a), width))
    for start in range(a, b, chunk_size):
        stop = min(start + chunk_size, b)
        _fill(buf, arrays, names, start, stop, scales)
        z = buf[: stop - start]
        z -= shift
        s += z.sum(axis=0)
        S = _add_syrk(S, z, how[1])
    return s, S


def _add_syrk(S: np.ndarray, z: np.ndarray, precision: str) -> np.ndarray:
    """``S += upper(z^T z)`` in place: one ``dsyrk``, or for ``"float32"`` one ``ssyrk`` per
    :data:`FLOAT32_ROWS` rows (float32 sums over at most that many rows) added in float64."""
    if precision != "float32":
        return dsyrk(1.0, z.T, beta=1.0, c=S, trans=0, lower=0, overwrite_c=1)
    for r in range(0, z.shape[0], FLOAT32_ROWS):
        part = z[r : r + FLOAT32_ROWS].astype(np.float32)
        S += ssyrk(1.0, part.T, trans=0, lower=0)
    return S


def _add_gemm(C: np.ndarray, za: np.ndarray, zb: np.ndarray, precision: str) -> np.ndarray:
    """``C += za^T zb`` in place: one ``dgemm``, or float32 ``sgemm`` per
    :data:`FLOAT32_ROWS` rows added in float64 (as :func:`_add_syrk`)."""
    if precision != "float32":
        return dgemm(1.0, za.T, zb.T, beta=1.0, c=C, trans_b=1, overwrite_c=1)
    for r in range(0, za.shape[0], FLOAT32_ROWS):
        pa = za[r : r + FLOAT32_ROWS].astype(np.float32)
        pb = zb[r : r + FLOAT32_ROWS].astype(np.float32)
        C += sgemm(1.0, pa.T, pb.T, trans_b=1)
    return C


def _cross_block_sums(
    spec_a: Any,
    spec_b: Any,
    names: tuple[tuple[str, ...], tuple[str, ...]],
    a: int,
    b: int,
    means: tuple[np.ndarray, np.ndarray],
    chunk_size: int,
    scales: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
    how: tuple[str, str] = ("cpu", "float64"),
) -> np.ndarray:
    """Module-level task: ``sum (x_a - mu_a)^T (x_b - mu_b)`` over samples a:b (two groups)."""
    arrs_a, arrs_b = spec_a.open(), spec_b.open()
    chunk_size = _rows(chunk_size, means[0].size + means[1].size)
    backend = moments_backend(how[0])
    if backend is not None:
        acc = TorchSums(backend, how[1], (means[0], scales[0]), (means[1], scales[1]))
        for start in range(a, b, chunk_size):
            stop = min(start + chunk_size, b)
            acc.add(
                _parts(arrs_a, names[0], start, stop, False),
                _parts(arrs_b, names[1], start, stop, False),
            )
        return acc.result()[1]
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
        C = _add_gemm(C, za, zb, how[1])
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
    a: int, b: int, spec: Any, names: Any, shift: Any, chunk: int, scales: Any = None,
    how: tuple[str, str] = ("cpu", "float64"),
) -> Any:  # fmt: skip
    return _block_sums(spec, names, a, b, shift, chunk, scales, how)


def _task_cross_sums(
    a: int, b: int, specs: Any, names: Any, means: Any, chunk: int, scales: Any = (None, None),
    how: tuple[str, str] = ("cpu", "float64"),
) -> Any:  # fmt: skip
    return _cross_block_sums(specs[0], specs[1], names, a, b, means, chunk, scales, how)


# ----------------------------------------------------------------------------- public


def compute_moments(
    inputs: Any,
    *,
    chunk_size: int = 8192,
    executor: Any = None,
    device: Device = "cpu",
    precision: Precision = "float64",
) -> Moments:
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
    device : {"cpu", "cuda", "auto", "torch-cpu"}
        Where the chunk products run: ``"cpu"`` numpy/BLAS (float64); ``"cuda"`` torch GEMMs on
        the CUDA device; ``"auto"`` cuda when torch sees one, else numpy; ``"torch-cpu"``
        torch GEMMs on the CPU. The torch path gives the numpy path's moments within rounding
        (float64: ~1e-15 relative; see :mod:`ensemble_lens.similarity._device`). With an
        executor, each task resolves ``device`` where it runs.
    precision : {"float64", "float32"}
        Dtype of the per-chunk products, on every device (float32: BLAS ``ssyrk``/``sgemm``
        or torch GEMMs over at most 1024 rows in float32, accumulated in float64; ~1e-7
        relative error on the covariance, about twice the speed of float64 on a CPU).

    Returns
    -------
    Moments
        ``cov`` is the unbiased ``(D, D)`` covariance ``Xc^T Xc / (n - 1)``.

    Raises
    ------
    ShapeError
        Mismatched sample counts or ids, fewer than 2 samples, non-finite values.
    BackendUnavailableError
        ``device="cuda"`` and torch sees no CUDA device (raised before any work when there is
        no executor; otherwise by the first task).
    ConfigError
        An unknown ``device`` or ``precision``.

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
    check_device(device, precision)
    if executor is None:
        moments_backend(device)  # a missing CUDA device is an error before any work
    names, spec, n, widths = resolve_inputs(inputs)
    return moments_of_spec(spec, names, n, widths, chunk_size, executor, (device, precision))


def moments_of_spec(
    spec: Any,
    names: tuple[str, ...],
    n: int,
    widths: tuple[int, ...],
    chunk: int,
    executor: Any,
    how: tuple[str, str] = ("cpu", "float64"),
) -> Moments:
    """:func:`compute_moments` on already-resolved inputs (``how``: (device, precision))."""
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
    s, S = _run(_task_block_sums, ranges, executor, spec, names, shift, chunk, scales, how)
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
    how: tuple[str, str] = ("cpu", "float64"),
) -> np.ndarray:
    """Centered cross-covariance between two groups of networks with known means (tiling);
    ``scales`` are the groups' :attr:`Moments.scales`, ``how`` the (device, precision). The
    networks are not checked again (real, finite): their means came from a checked pass over
    the same samples."""
    ranges = _ranges(n, chunk, executor)
    C = _run(_task_cross_sums, ranges, executor, specs, names, means, chunk, scales, how)
    C /= n - 1
    return C
