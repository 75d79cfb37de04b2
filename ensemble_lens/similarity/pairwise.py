"""All-pairs (K x K) similarity over an ensemble of networks.

Linear measures (linear CKA, mean CCA, SVCCA, PWCCA, Procrustes, shape distance) are computed
from one streaming pass of shared second moments (:mod:`.moments`): each network's covariance
block is eigendecomposed once, and each pair costs two small GEMMs and one small SVD of its
whitened cross-covariance. Other measures loop over pairs through the single-pair functions.
"""

from __future__ import annotations

import inspect
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from .._arrays import as_matrix
from ..errors import EnsembleLensWarning, IllConditionedWarning, ShapeError
from ._input import drop_dead
from ._pairstate import MOMENT_METRICS, eval_pairs, live_mask, prepare_net
from ._registry import resolve_metric
from .moments import Moments, cross_covariance, moments_of_spec, resolve_inputs, subset_spec
from .stats import permutation_test

if TYPE_CHECKING:
    import xarray as xr

logger = logging.getLogger(__name__)

__all__ = ["pairwise", "pairwise_permutation_test"]

_BATCH = 16


def _check_kwargs(fn: Callable[..., float], name: str, kwargs: dict[str, Any]) -> None:
    try:
        inspect.signature(fn).bind(None, None, **kwargs)
    except TypeError as err:
        raise ShapeError(f"metric {name!r}: invalid options {sorted(kwargs)}: {err}") from err


def _groups(widths: Sequence[int], max_bytes: int) -> list[list[int]]:
    """Consecutive groups of networks whose total width w keeps a w x w float64 tile in budget."""
    cap = max(1, int(np.sqrt(max_bytes / 8)))
    groups: list[list[int]] = [[]]
    width = 0
    for k, d in enumerate(widths):
        if groups[-1] and width + d > cap:
            groups.append([])
            width = 0
        groups[-1].append(k)
        width += d
    return groups


def _default_jobs() -> int:
    blas = [i.get("num_threads", 1) for i in threadpool_info() if i.get("user_api") == "blas"]
    return max(blas or [os.cpu_count() or 1])


def _map(job: Any, fn: Callable[..., Any], arglist: list[tuple[Any, ...]]) -> list[Any]:
    """``[fn(*args) ...]`` with one BLAS thread per call, over the executor or local threads.

    Small factorisations run far slower with several BLAS threads each (and pathologically so
    on a loaded machine), so parallelism comes from running calls side by side instead.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        if job.executor is None and job.n_jobs <= 1:
            return [fn(*args) for args in arglist]
        pool = job.executor or ThreadPoolExecutor(max_workers=job.n_jobs)
        try:
            return [f.result() for f in [pool.submit(fn, *args) for args in arglist]]
        finally:
            if job.executor is None:
                pool.shutdown()


def _run_pairs(
    pairs: list[tuple[int, int]], cross: Callable[[int, int], np.ndarray], job: Any
) -> list[tuple[float, float]]:
    """Evaluate ``(v_ij, v_ji)`` for pairs, in batches."""
    batches = [pairs[i : i + _BATCH] for i in range(0, len(pairs), _BATCH)]
    nets = job.nets
    args = [
        ([(nets[i], nets[j], cross(i, j)) for i, j in batch], job.metric, job.kw)
        for batch in batches
    ]
    return [v for batch in _map(job, eval_pairs, args) for v in batch]


@dataclass
class _Job:
    """Everything the tiles of one moments-based ``pairwise`` call share."""

    spec: Any
    names: tuple[str, ...]
    n: int
    widths: tuple[int, ...]
    chunk: int
    executor: Any
    metric: str
    kw: dict[str, Any]
    n_jobs: int
    nets: list[Any]
    out: np.ndarray

    def store(self, pairs: list[tuple[int, int]], vals: list[tuple[float, float]]) -> None:
        for (i, j), (vij, vji) in zip(pairs, vals, strict=True):
            self.out[i, j], self.out[j, i] = vij, vji


def _diag_tile(job: _Job, idx: list[int], mom: Moments | None = None) -> np.ndarray:
    """Moments of one group of networks: prepare each network, evaluate in-group pairs."""
    if mom is None:
        mom = moments_of_spec(
            subset_spec(job.spec, idx),
            tuple(job.names[i] for i in idx),
            job.n,
            tuple(job.widths[i] for i in idx),
            job.chunk,
            job.executor,
        )
    o = mom.offsets
    blocks = [mom.block(a, a) for a in range(len(idx))]
    lives = [
        live_mask(blocks[a], mom.mean[o[a] : o[a + 1]], job.names[i]) for a, i in enumerate(idx)
    ]
    states = _map(
        job, prepare_net, [(b, lv, job.metric) for b, lv in zip(blocks, lives, strict=True)]
    )
    for i, state in zip(idx, states, strict=True):
        job.nets[i] = state
    pos = {i: a for a, i in enumerate(idx)}
    pairs = [(i, j) for a, i in enumerate(idx) for j in idx[a:]]
    job.store(pairs, _run_pairs(pairs, lambda i, j: mom.block(pos[i], pos[j]), job))
    return mom.mean


def _cross_tile(
    job: _Job, ia: list[int], ib: list[int], mean_a: np.ndarray, mean_b: np.ndarray
) -> None:
    """Cross-covariance of two groups in one pass, then all their pairs."""
    specs = (subset_spec(job.spec, ia), subset_spec(job.spec, ib))
    nm = (tuple(job.names[i] for i in ia), tuple(job.names[i] for i in ib))
    c = cross_covariance(specs, nm, (mean_a, mean_b), job.n, job.chunk, job.executor)
    oa = np.concatenate([[0], np.cumsum([job.widths[i] for i in ia])])
    ob = np.concatenate([[0], np.cumsum([job.widths[j] for j in ib])])
    pa, pb = {i: a for a, i in enumerate(ia)}, {j: b for b, j in enumerate(ib)}
    pairs = [(i, j) for i in ia for j in ib]
    vals = _run_pairs(
        pairs, lambda i, j: c[oa[pa[i]] : oa[pa[i] + 1], ob[pb[j]] : ob[pb[j] + 1]], job
    )
    job.store(pairs, vals)


def _warn_cca(job: _Job) -> None:
    if job.metric in ("mean_cca", "pwcca") and job.kw.get("ridge", 0.0) == 0:
        top = sorted(job.widths)[-2:]
        widest_pair = sum(top) if len(top) == 2 else 2 * top[0]
        if widest_pair >= job.n:
            warnings.warn(
                f"{job.metric}: networks with {top} units on {job.n} samples: with d1 + d2 >= n "
                "some canonical correlations are 1 by construction; use ridge > 0 or svcca",
                IllConditionedWarning,
                stacklevel=4,
            )


def _moments_matrix(
    inputs: Any,
    name: str,
    kw: dict[str, Any],
    executor: Any,
    chunk: int,
    max_bytes: int,
    n_jobs: int,
) -> tuple[tuple[str, ...], np.ndarray]:
    if isinstance(inputs, Moments):
        names, spec, n, widths = inputs.names, None, inputs.n, inputs.widths
    else:
        names, spec, n, widths = resolve_inputs(inputs)
    k = len(widths)
    job = _Job(
        spec, names, n, widths, chunk, executor, name, kw, n_jobs, [None] * k, np.empty((k, k))
    )
    _warn_cca(job)
    if isinstance(inputs, Moments):
        _diag_tile(job, list(range(k)), inputs)
        return names, job.out
    groups = _groups(widths, max_bytes)
    if len(groups) > 1:
        logger.info("pairwise %s: %d networks tiled in %d groups", name, k, len(groups))
    means = [_diag_tile(job, idx) for idx in groups]
    for ga in range(len(groups)):
        for gb in range(ga + 1, len(groups)):
            _cross_tile(job, groups[ga], groups[gb], means[ga], means[gb])
    return names, job.out


def _materialise(inputs: Any) -> tuple[tuple[str, ...], list[np.ndarray]]:
    """Each network converted once and cleaned of dead units (one warning per network)."""
    names, spec, _, _ = resolve_inputs(inputs)
    arrays = [
        drop_dead(as_matrix(a, f"network {nm!r}"), f"network {nm!r}")[0]
        for a, nm in zip(spec.open(), names, strict=True)
    ]
    return names, arrays


def _pair_task(fn: Callable[..., float], x: np.ndarray, y: np.ndarray, kw: dict[str, Any]) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        return float(fn(x, y, **kw))


def _loop_matrix(
    inputs: Any, fn: Callable[..., float], symmetric: bool, kw: dict[str, Any], executor: Any
) -> tuple[tuple[str, ...], np.ndarray]:
    names, arrays = _materialise(inputs)
    k = len(arrays)
    pairs = [(i, j) for i in range(k) for j in range(i if symmetric else 0, k)]
    if pairs:
        fn(arrays[pairs[-1][0]], arrays[pairs[-1][1]], **kw)  # surfaces warnings once
    submit = executor.submit if executor is not None else None
    if submit is None:
        vals = [_pair_task(fn, arrays[i], arrays[j], kw) for i, j in pairs]
    else:
        vals = [
            f.result() for f in [submit(_pair_task, fn, arrays[i], arrays[j], kw) for i, j in pairs]
        ]
    out = np.empty((k, k))
    for (i, j), v in zip(pairs, vals, strict=True):
        out[i, j] = v
        if symmetric:
            out[j, i] = v
    return names, out


def _to_dataarray(names: Sequence[str], values: np.ndarray, attrs: dict[str, Any]) -> xr.DataArray:
    import xarray as xr

    return xr.DataArray(
        values,
        dims=("model", "model_"),
        coords={"model": list(names), "model_": list(names)},
        attrs=attrs,
    )


def pairwise(
    inputs: Any,
    metric: str | Callable[..., float],
    *,
    executor: Any = None,
    chunk_size: int = 8192,
    max_bytes: int = 2**30,
    n_jobs: int | None = None,
    **kwargs: Any,
) -> xr.DataArray:
    """K x K matrix of a measure between every pair of networks.

    Parameters
    ----------
    inputs : list/dict of (n, d_k) arrays, (StudyStore, layer), or Moments
        Activations of K networks on the same n samples (widths may differ), or their
        precomputed :class:`Moments` (moments-based measures only) so that several measures
        share one streaming pass.
    metric : str or callable
        A measure name (``"linear_cka"``, ``"mean_cca"``, ``"svcca"``, ``"pwcca"``,
        ``"procrustes_similarity"``, ``"shape_distance"``, ``"rbf_cka"``, ``"rsa"``,
        ``"mutual_knn"``, ``"permutation_distance"``, ``"linear_predictivity"``) or a
        function ``f(X, Y, **kwargs) -> float`` (taken as symmetric).
    executor : object with ``submit``, optional
        Runs the moments pass (sample blocks) and the per-pair work.
    chunk_size : int
        Samples per chunk of the moments pass.
    max_bytes : int
        Budget for one covariance tile: networks are grouped so that a group's total width
        ``w`` has ``8 w^2 <= max_bytes``; with several groups the moments pass runs once per
        group (diagonal tiles) and once per pair of groups (cross tiles), same total FLOPs.
    n_jobs : int, optional
        Threads for the per-pair stage when no executor is given (default: the BLAS thread
        count). Each pair's small factorisations run with one BLAS thread.
    **kwargs
        Options of the measure (e.g. ``ridge=``, ``alpha=``, ``debiased=``).

    Returns
    -------
    xarray.DataArray
        dims ("model", "model_"), coords the network names; entry (i, j) is
        ``metric(X_i, X_j)`` (row = first argument for asymmetric measures). Moments-based
        values equal the single-pair functions to about 1e-12.
    """
    name, info = resolve_metric(metric)
    _check_kwargs(info.fn, name, kwargs)
    if name in MOMENT_METRICS and not (name == "linear_cka" and kwargs.get("debiased")):
        jobs = n_jobs if n_jobs is not None else _default_jobs()
        names, out = _moments_matrix(inputs, name, kwargs, executor, chunk_size, max_bytes, jobs)
        method = "moments"
    else:
        if isinstance(inputs, Moments):
            raise ShapeError(f"metric {name!r} needs the activations, not only their moments")
        names, out = _loop_matrix(inputs, info.fn, info.symmetric(kwargs), kwargs, executor)
        method = "pairs"
    attrs = {"metric": name, "method": method, **{k: repr(v) for k, v in kwargs.items()}}
    return _to_dataarray(names, out, attrs)


def pairwise_permutation_test(
    inputs: Any,
    metric: str | Callable[..., float],
    *,
    n_perm: int = 1000,
    seed: int = 0,
    executor: Any = None,
    **kwargs: Any,
) -> xr.DataArray:
    """K x K permutation-test p-values (rows of the second network shuffled).

    Each tested pair gets its own generator from ``numpy.random.SeedSequence(seed).spawn``, so
    results do not depend on the executor. The diagonal is not tested and holds NaN.
    Symmetric measures test i < j only and mirror the p-value.
    """
    name, info = resolve_metric(metric)
    _check_kwargs(info.fn, name, kwargs)
    names, arrays = _materialise(inputs)
    k, sym = len(arrays), info.symmetric(kwargs)
    pairs = [(i, j) for i in range(k) for j in range(k) if (i < j if sym else i != j)]
    seeds = np.random.SeedSequence(seed).spawn(len(pairs))
    submit = executor.submit if executor is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EnsembleLensWarning)
        jobs = [
            (arrays[i], arrays[j], info.fn, n_perm, np.random.default_rng(s))
            for (i, j), s in zip(pairs, seeds, strict=True)
        ]
        if submit is None:
            res = [permutation_test(*a[:3], n_perm=a[3], seed=a[4], **kwargs) for a in jobs]
        else:
            futs = [
                submit(permutation_test, *a[:3], n_perm=a[3], seed=a[4], **kwargs) for a in jobs
            ]
            res = [f.result() for f in futs]
    out = np.full((k, k), np.nan)
    for (i, j), r in zip(pairs, res, strict=True):
        out[i, j] = r.p_value
        if sym:
            out[j, i] = r.p_value
    return _to_dataarray(names, out, {"metric": name, "n_perm": n_perm, "seed": seed})
