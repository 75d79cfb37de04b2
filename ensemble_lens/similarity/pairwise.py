"""All-pairs (K x K) similarity over an ensemble of networks.

Linear measures (linear CKA, mean CCA, SVCCA, PWCCA, Procrustes, shape distance) are computed
from one streaming pass of shared second moments (:mod:`.moments`): each network's covariance
block is eigendecomposed once, and the pairs of a tile are evaluated together by
:func:`._batched.pair_values` (stacked products and eigenvalue routines; the same evaluator as
the compare stage's blocks). Measures with per-network work (kernel CKA, RSA, kNN, regression)
go through :func:`.allpairs.prepared_matrix`; the rest loop over pairs through the single-pair
functions.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import (
    EnsembleLensWarning,
    IllConditionedWarning,
    MeasureParameterError,
    ShapeError,
)
from ._batched import pair_values
from ._device import Device, Precision, check_device, moments_backend
from ._linalg import n_keep
from ._meta import measure_attrs, result_attrs
from ._names import POST, Measure
from ._pairstate import live_mask, prepare_net
from ._registry import resolve_metric
from ._warn import collected, warn
from .allpairs import (
    default_jobs,
    loop_matrix,
    map_calls,
    materialise,
    pairs_of,
    prepared_matrix,
)
from .layers import flatten, unflatten
from .moments import (
    Moments,
    cross_covariance,
    in_memory,
    moments_of_spec,
    resolve_inputs,
    subset_spec,
)
from .stats import permutation_test

if TYPE_CHECKING:
    import xarray as xr

logger = logging.getLogger(__name__)

__all__ = ["pairwise", "pairwise_permutation_test"]

#: Largest tile budget of the moments path for numpy inputs, which use the size of their widest
#: network (at least 1 MiB) up to this (``max_bytes`` bounds it further): about the memory of a
#: pair-by-pair loop. Other inputs (stores, dask) are read once per tile pair, so they use
#: ``max_bytes`` itself.
IN_MEMORY_TILE_BYTES = 8 * 2**20
_MIN_ROWS = 256


def _check_kwargs(m: Measure, label: str) -> None:
    try:
        inspect.signature(m.fn).bind(None, None, **m.options)
    except TypeError as err:
        raise MeasureParameterError(
            f"metric {label}: invalid options {sorted(m.options)}: {err}"
        ) from err


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


def _map(job: Any, fn: Callable[..., Any], arglist: list[tuple[Any, ...]]) -> list[Any]:
    return map_calls(job.executor, job.n_jobs, fn, arglist)


def _parts(pairs: list[tuple[int, int]], n: int) -> list[list[tuple[int, int]]]:
    """Pairs (sorted by row network) cut into at most ``n`` runs of whole row networks with
    about equal numbers of pairs (one task each)."""
    target, parts = -(-len(pairs) // max(1, n)), [[]]  # type: ignore[var-annotated]
    for p, pair in enumerate(pairs):
        if len(parts[-1]) >= target and pair[0] != pairs[p - 1][0]:
            parts.append([])
        parts[-1].append(pair)
    return parts


def _run_pairs(
    job: Any, pairs: list[tuple[int, int]], cov: np.ndarray, roff: dict, coff: dict
) -> None:
    """Evaluate and store ``(v_ij, v_ji)`` for the pairs of one tile through the shared pair
    evaluator (batched where the measure allows); a task gets its row networks' slab of the
    tile (a view, copied only by process executors)."""
    args = []
    for part in _parts(pairs, job.n_jobs):
        rows = sorted({i for i, _ in part})
        lo, hi = roff[rows[0]], roff[rows[-1]] + job.widths[rows[-1]]
        nets = {i: job.nets[i] for pair in part for i in pair}
        sub = {i: roff[i] - lo for i in rows}
        args.append((nets, cov[lo:hi], sub, part, job.metric, job.kw, coff))
    for arg, vals in zip(args, _map(job, pair_values, args), strict=True):
        job.store(arg[3], vals)


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
    how: tuple[str, str] = ("cpu", "float64")  # (device, precision) of the moments pass

    def store(self, pairs: list[tuple[int, int]], vals: list[tuple[float, float]]) -> None:
        for (i, j), (vij, vji) in zip(pairs, vals, strict=True):
            self.out[i, j], self.out[j, i] = vij, vji


def _diag_tile(job: _Job, idx: list[int], mom: Moments | None = None) -> Moments:
    """Moments of one group of networks: prepare each network, evaluate in-group pairs."""
    if mom is None:
        mom = moments_of_spec(
            subset_spec(job.spec, idx),
            tuple(job.names[i] for i in idx),
            job.n,
            tuple(job.widths[i] for i in idx),
            job.chunk,
            job.executor,
            job.how,
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
    off = {i: int(mom.offsets[a]) for a, i in enumerate(idx)}
    pairs = [(i, j) for a, i in enumerate(idx) for j in idx[a:]]
    _run_pairs(job, pairs, mom.cov, off, off)
    return mom


def _cross_tile(job: _Job, ia: list[int], ib: list[int], ma: Moments, mb: Moments) -> None:
    """Cross-covariance of two groups in one pass, then all their pairs."""
    specs = (subset_spec(job.spec, ia), subset_spec(job.spec, ib))
    nm = (tuple(job.names[i] for i in ia), tuple(job.names[i] for i in ib))
    c = cross_covariance(
        specs, nm, (ma.mean, mb.mean), job.n, job.chunk, job.executor, (ma.scales, mb.scales),
        job.how,
    )  # fmt: skip
    oa = np.concatenate([[0], np.cumsum([job.widths[i] for i in ia])])
    ob = np.concatenate([[0], np.cumsum([job.widths[j] for j in ib])])
    roff = {i: int(oa[a]) for a, i in enumerate(ia)}
    coff = {j: int(ob[b]) for b, j in enumerate(ib)}
    _run_pairs(job, [(i, j) for i in ia for j in ib], c, roff, coff)


def _warn_cca(job: _Job) -> None:
    if job.metric in ("mean_cca", "pwcca") and job.kw.get("ridge", 0.0) == 0:
        top = sorted(job.widths)[-2:]
        widest_pair = sum(top) if len(top) == 2 else 2 * top[0]
        if widest_pair >= job.n:
            warn(
                f"{job.metric}: networks with {top} units on {job.n} samples: with d1 + d2 >= n "
                "some canonical correlations are 1 by construction; use ridge > 0 or svcca",
                IllConditionedWarning,
            )


def _moments_matrix(
    inputs: Any,
    name: str,
    kw: dict[str, Any],
    executor: Any,
    chunk: int,
    max_bytes: int,
    n_jobs: int,
    how: tuple[str, str] = ("cpu", "float64"),
    work: dict[str, Any] | None = None,
) -> tuple[tuple[str, ...], np.ndarray]:
    if isinstance(inputs, Moments):
        names, spec, n, widths = inputs.names, None, inputs.n, inputs.widths
    else:
        names, spec, n, widths = resolve_inputs(inputs)
    k = len(widths)
    job = _Job(
        spec, names, n, widths, chunk, executor, name, kw, n_jobs, [None] * k, np.empty((k, k)),
        how,
    )  # fmt: skip
    _warn_cca(job)
    if isinstance(inputs, Moments):
        _diag_tile(job, list(range(k)), inputs)
        _kept(job, work)
        return names, job.out
    tile = max_bytes
    if in_memory(spec):  # cheap to re-read (a copy per tile): tiles about one network's size
        tile = min(max_bytes, IN_MEMORY_TILE_BYTES, max(2**20, 8 * n * max(widths)))
    groups = _groups(widths, tile)
    if len(groups) > 1:
        logger.info("pairwise %s: %d networks tiled in %d groups", name, k, len(groups))
        widest = max(sum(widths[i] for i in g) for g in groups)
        # the chunk buffer of a cross tile (two groups side by side) within the tile's budget
        job.chunk = max(_MIN_ROWS, min(chunk, tile // (16 * widest)))
    # only the means and scales of a group outlive its diagonal tile (not its covariance)
    moms = [_light(_diag_tile(job, idx)) for idx in groups]
    for ga in range(len(groups)):
        for gb in range(ga + 1, len(groups)):
            _cross_tile(job, groups[ga], groups[gb], moms[ga], moms[gb])
    _kept(job, work)
    return names, job.out


def _kept(job: _Job, work: dict[str, Any] | None) -> None:
    """SVCCA: the principal components each network kept (``work["resolved"]``)."""
    if work is None or job.metric != "svcca":
        return
    keep, nc = job.kw.get("keep_variance", 0.99), job.kw.get("n_components")
    for i, st in enumerate(job.nets):
        if st is not None and st.lam is not None:
            work.setdefault("resolved", {})[i] = {"components": n_keep(st.lam, keep, nc)}


def _light(mom: Moments) -> Moments:
    """``mom`` without its covariance (what the cross tiles need: means and scales)."""
    return replace(mom, cov=np.empty((0, 0)))


def _to_dataarray(names: Sequence[str], values: np.ndarray, attrs: dict[str, Any]) -> xr.DataArray:
    import xarray as xr

    labels = np.array(list(names))  # an array, not a list: xarray infers a list's dtype slowly
    return xr.DataArray(
        values,
        dims=("model", "model_"),
        coords={"model": ("model", labels), "model_": ("model_", labels)},
        attrs=attrs,
    )


def pairwise(
    inputs: Any,
    metric: str | Callable[..., float],
    *,
    layers: Sequence[str] | None = None,
    executor: Any = None,
    chunk_size: int = 8192,
    max_bytes: int = 2**30,
    n_jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    device: Device = "cpu",
    precision: Precision = "float64",
    **kwargs: Any,
) -> xr.DataArray:
    """K x K matrix of a measure between every pair of networks (or every (model, layer)).

    Parameters
    ----------
    inputs : list/dict of (n, d_k) arrays, (StudyStore, layer), StudyStore, or Moments
        Activations of K networks on the same n samples (widths may differ), or their
        precomputed :class:`Moments` (moments-based measures only). With ``layers``: a
        StudyStore or a dict ``{model: {layer: array}}``.
    metric : str or callable
        A standardized name (``"cka-kernel=linear-hsic=lange-score"``,
        ``"rsa-rdm=correlation-compare=spearman"``...; see :func:`measure` and
        docs/MEASURES.md), a legacy name (``"linear_cka"``, ``"mean_cca"``, ``"svcca"``,
        ``"pwcca"``, ``"procrustes_similarity"``, ``"shape_distance"``, ``"rbf_cka"``,
        ``"rsa"``, ``"mutual_knn"``, ``"permutation_distance"``, ``"linear_predictivity"``), a
        :class:`Measure`, or a function ``f(X, Y, **kwargs) -> float``, symmetric unless it
        has an attribute ``symmetric = False`` (then every ordered pair is computed).
    layers : list of str, optional
        Compare every (model, layer) with every (model, layer); the result has dims
        ``("model", "layer", "model_", "layer_")``. All networks go through one pass.
    executor : object with ``submit``, optional
        Runs the moments pass (sample blocks), the per-network work and the per-pair work.
    chunk_size : int
        Samples per chunk of the moments pass.
    max_bytes : int
        Memory budget: of one covariance tile for moments-based measures (networks grouped so
        that a group's total width ``w`` has ``8 w^2 <= max_bytes``; numpy inputs, which cost
        only a copy to re-read per tile, are tiled at the size of their widest network, 1 MiB
        to ``IN_MEMORY_TILE_BYTES`` = 8 MiB, with the chunk buffer in the same budget), and of
        the per-network states (Gram matrices, RDMs...) held at once by the other measures.
    n_jobs : int, optional
        Threads for per-network and per-pair work when no executor is given (default: the
        BLAS thread count). Each call runs with one BLAS thread.
    progress : callable, optional
        ``progress(done, total)`` after each block of pairs (the library is otherwise quiet).
    device, precision : str
        Where and in what dtype the moments pass of moments-based measures runs, as in
        :func:`compute_moments` (``"cpu"``: numpy; ``"cuda"``, ``"auto"``, ``"torch-cpu"``:
        torch GEMMs). Other measures ignore them.
    **kwargs
        Options of the measure's function (``ridge=``, ``alpha=``, ``conditions=``...).

    Returns
    -------
    xarray.DataArray
        dims ("model", "model_"); entry (i, j) is ``metric(X_i, X_j)`` (row = first argument
        for asymmetric measures, whose full matrix is computed). Distances have an exact 0
        diagonal. attrs: ``metric`` (canonical name), ``kind``, ``method``.
    """
    m = resolve_metric(metric, **kwargs)
    label = _label(metric, m)
    _check_kwargs(m, label)
    check_device(device, precision)
    how = (device, precision)
    if m.moment is not None and executor is None:
        moments_backend(device)  # a missing CUDA device is an error before any work
    if layers is not None:
        layers = [str(ly) for ly in layers]
        models, flat = flatten(inputs, layers)
        flat_da = pairwise(
            flat,
            m,
            executor=executor,
            chunk_size=chunk_size,
            max_bytes=max_bytes,
            n_jobs=n_jobs,
            progress=progress,
            device=device,
            precision=precision,
        )
        flat_da.attrs["requested"] = measure_attrs(m, metric, "")["requested"]
        return unflatten(flat_da, models, layers)
    work: dict[str, Any] = {"states": 0, "notes": []}
    with collected() as info:
        names, out, method = _matrix(
            inputs, m, executor, chunk_size, max_bytes, n_jobs, progress, how, work, label
        )
    work["resolved"] = {names[i]: v for i, v in work.get("resolved", {}).items()}
    attrs = result_attrs(m, metric, method, info, work)
    return _to_dataarray(names, out, attrs)


def _label(metric: Any, m: Measure) -> str:
    """How messages name a measure: as asked, with the canonical name when it differs."""
    asked = metric if isinstance(metric, str) else getattr(metric, "__name__", m.name)
    return repr(m.name) if asked == m.name else f"{asked!r} ({m.name})"


def _matrix(
    inputs: Any,
    m: Measure,
    executor: Any,
    chunk: int,
    max_bytes: int,
    n_jobs: int | None,
    progress: Callable[[int, int], None] | None,
    how: tuple[str, str] = ("cpu", "float64"),
    work: dict[str, Any] | None = None,
    label: str = "",
) -> tuple[tuple[str, ...], np.ndarray, str]:
    """(names, values, method) of one all-pairs call; ``work`` gets the per-network states
    computed (``"states"``) and notes about the inputs (``"notes"``)."""
    work = {"states": 0, "notes": []} if work is None else work
    jobs = n_jobs if n_jobs is not None else default_jobs()
    if m.moment is not None:
        names, out = _moments_matrix(
            inputs, m.moment, dict(m.options), executor, chunk, max_bytes, jobs, how, work
        )
        work["states"] += len(names)
        method = "moments"
        if progress is not None:
            progress(len(pairs_of(len(names), True)), len(pairs_of(len(names), True)))
    else:
        if isinstance(inputs, Moments):
            raise ShapeError(
                f"metric {label or repr(m.name)} needs the activations, not only their moments"
            )
        names, arrays = materialise(inputs, m.keep_dead)
        if m.prepare is not None and m.combine is not None:
            out = prepared_matrix(arrays, m, executor, jobs, max_bytes, progress, work)
            method = "prepared"
        else:
            return (
                names,
                _finish(loop_matrix(arrays, m, executor, jobs, progress), m, False),
                "pairs",
            )
    return names, _finish(out, m, True), method


def _finish(out: np.ndarray, m: Measure, apply_post: bool) -> np.ndarray:
    if apply_post and m.post != "identity":
        out = np.vectorize(POST[m.post], otypes=[float])(out)
    if m.kind == "distance":
        np.fill_diagonal(out, 0.0)
    return out


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
    m = resolve_metric(metric, **kwargs)
    _check_kwargs(m, _label(metric, m))
    names, arrays = materialise(inputs, m.keep_dead)
    k, sym = len(arrays), m.symmetric
    pairs = [(i, j) for i in range(k) for j in range(k) if (i < j if sym else i != j)]
    seeds = np.random.SeedSequence(seed).spawn(len(pairs))
    submit = executor.submit if executor is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EnsembleLensWarning)
        jobs = [
            (arrays[i], arrays[j], m, n_perm, np.random.default_rng(s))
            for (i, j), s in zip(pairs, seeds, strict=True)
        ]
        if submit is None:
            res = [permutation_test(*a[:3], n_perm=a[3], seed=a[4]) for a in jobs]
        else:
            futs = [submit(permutation_test, *a[:3], n_perm=a[3], seed=a[4]) for a in jobs]
            res = [f.result() for f in futs]
    out = np.full((k, k), np.nan)
    for (i, j), r in zip(pairs, res, strict=True):
        out[i, j] = r.p_value
        if sym:
            out[j, i] = r.p_value
    attrs = {**measure_attrs(m, metric, "pairs"), "n_perm": n_perm, "seed": seed}
    return _to_dataarray(names, out, attrs)
