"""All-pairs evaluation of measures with per-network work (``prepare``/``combine``) and of the
rest pair by pair; shared helpers of :func:`~ensemble_lens.similarity.pairwise`.

Per-network work (a transformed Gram matrix, an RDM and its ranks, neighbour lists, a
factorisation) is done once per network; each pair then costs only ``combine``. When the
states are vectors whose dot product is the measure (kernel CKA with a non-linear kernel,
RSA with pearson/spearman/rho_a/cosine/whitened comparators), a block of pairs is one matrix
product. States are kept for at most ``max_bytes``: networks are split into groups and each
pair of groups is evaluated with only those two groups' states in memory (a group's states
are recomputed once per later group, the cost of bounded memory).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController, threadpool_info

from ..errors import DroppedUnitsWarning, IllConditionedWarning, ShapeError
from ._input import checked_matrix, live_units, safe_scale
from ._names import POST, Measure
from ._warn import reissue, warn
from .moments import resolve_inputs

_BATCH = 16
Progress = Callable[[int, int], None] | None


def default_jobs() -> int:
    """Threads for per-pair work: the BLAS thread count (or the CPU count)."""
    blas = [i.get("num_threads", 1) for i in threadpool_info() if i.get("user_api") == "blas"]
    return max(blas or [os.cpu_count() or 1])


_CONTROLLER: list[ThreadpoolController] = []


def blas_limit(n: int) -> Any:
    """Context limiting BLAS to ``n`` threads (the library scan is done once per process)."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=n, user_api="blas")


def map_calls(
    executor: Any, n_jobs: int, fn: Callable[..., Any], arglist: list[tuple[Any, ...]]
) -> list[Any]:
    """``[fn(*args) ...]`` with one BLAS thread per call, over the executor or local threads.

    Small factorisations run far slower with several BLAS threads each (and pathologically so
    on a loaded machine), so parallelism comes from running calls side by side instead.
    """
    with blas_limit(1):
        if executor is None and n_jobs <= 1:
            return [fn(*args) for args in arglist]
        pool = executor or ThreadPoolExecutor(max_workers=n_jobs)
        try:
            return [f.result() for f in [pool.submit(fn, *args) for args in arglist]]
        finally:
            if executor is None:
                pool.shutdown()


def materialise(inputs: Any, keep_dead: bool) -> tuple[tuple[str, ...], list[np.ndarray]]:
    """Each network converted once; constant units dropped unless ``keep_dead`` (counted in
    one DroppedUnitsWarning for the whole call)."""
    names, spec, _, _ = resolve_inputs(inputs)
    arrays, dropped = [], []
    for a, nm in zip(spec.open(), names, strict=True):
        x = checked_matrix(a, f"network {nm!r}")
        if not keep_dead:
            xs = safe_scale(x)
            live = live_units(xs.mean(axis=0), xs.var(axis=0))
            if not live.any():
                raise ShapeError(
                    f"network {nm!r}: all {live.size} units are constant; nothing to compare"
                )
            if not live.all():
                dropped.append(f"{nm!r} {int((~live).sum())} of {live.size}")
                x = x[:, live]
        arrays.append(x)
    if dropped:
        warn(
            f"dropped constant (dead) units: {', '.join(dropped)}",
            DroppedUnitsWarning,
        )
    return names, arrays


def aggregate_warnings(records: Sequence[warnings.WarningMessage]) -> dict[str, tuple[int, int]]:
    """Re-issue recorded warnings once each at the user's line, dropped units in one warning;
    returns {network: (dropped, units)}."""
    return reissue(list(records))


def pairs_of(k: int, symmetric: bool) -> list[tuple[int, int]]:
    """Pairs to evaluate: i <= j for symmetric measures, all ordered pairs otherwise."""
    return [(i, j) for i in range(k) for j in range(i if symmetric else 0, k)]


def _pair_task(
    fn: Callable[..., float], post: str, x: np.ndarray, y: np.ndarray, kw: dict[str, Any]
) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        return POST[post](fn(x, y, **kw))


def _pair_batch(
    fn: Callable[..., float],
    post: str,
    items: list[tuple[np.ndarray, np.ndarray]],
    kw: dict[str, Any],
) -> list[float]:
    return [_pair_task(fn, post, x, y, kw) for x, y in items]


def _combine_batch(
    combine: Callable[[Any, Any], float], items: list[tuple[Any, Any]]
) -> list[float]:
    return [float(combine(a, b)) for a, b in items]


def loop_matrix(
    arrays: list[np.ndarray], m: Measure, executor: Any, n_jobs: int, progress: Progress
) -> np.ndarray:
    """Every pair through the single-pair function (measures without per-network work); the
    diagonal of a distance (exactly 0) is not computed. The first pair runs here, so its
    warnings surface once; the others run quietly in the workers."""
    k = len(arrays)
    pairs = [p for p in pairs_of(k, m.symmetric) if p[0] != p[1] or m.kind != "distance"]
    vals: list[float] = []
    if pairs:
        i, j = pairs[0]
        vals.append(POST[m.post](m.fn(arrays[i], arrays[j], **m.options)))
    rest = pairs[1:]
    batches = [rest[s : s + _BATCH] for s in range(0, len(rest), _BATCH)]
    args = [
        (m.fn, m.post, [(arrays[i], arrays[j]) for i, j in b], dict(m.options)) for b in batches
    ]
    vals += _run_batches(executor, n_jobs, _pair_batch, args, progress, len(pairs), len(vals))
    out = _fill(k, pairs, vals, m.symmetric)
    if m.kind == "distance":
        np.fill_diagonal(out, 0.0)
    return out


def _run_batches(
    executor, n_jobs, fn, args, progress: Progress, total: int, done: int = 0
) -> list[float]:  # type: ignore[no-untyped-def]
    out: list[float] = []
    step = max(1, len(args) // 20)  # about 20 progress reports per call
    for s in range(0, len(args), step):
        for batch in map_calls(executor, n_jobs, fn, args[s : s + step]):
            out.extend(batch)
        if progress is not None:
            progress(done + len(out), total)
    if not args and progress is not None:
        progress(done, total)
    return out


def _fill(k: int, pairs: list[tuple[int, int]], vals: list[float], symmetric: bool) -> np.ndarray:
    out = np.zeros((k, k))
    for (i, j), v in zip(pairs, vals, strict=True):
        out[i, j] = v
        if symmetric:
            out[j, i] = v
    return out


def _nbytes(state: Any) -> int:
    if isinstance(state, np.ndarray):
        return state.nbytes
    if isinstance(state, tuple | list):
        return sum(_nbytes(s) for s in state)
    if hasattr(state, "__dict__") or hasattr(state, "__dataclass_fields__"):
        return sum(_nbytes(getattr(state, f)) for f in getattr(state, "__dataclass_fields__", {}))
    return 64


def _prepare(
    m: Measure,
    arrays: list[np.ndarray],
    idx: list[int],
    executor: Any,
    n_jobs: int,
    first: Any = None,
    work: dict[str, Any] | None = None,
) -> Any:
    """States of the networks ``idx``; for dot measures one (len(idx), L) matrix, filled row
    by row while the separate states are released (no second copy). ``work["states"]``
    counts the states computed."""
    todo = idx[1:] if first is not None else idx
    states = map_calls(executor, n_jobs, m.prepare, [(arrays[i],) for i in todo])
    if work is not None:
        work["states"] = work.get("states", 0) + len(todo)
        for i, st in zip(todo, states, strict=True):
            _harvest(work, i, st)
    if first is not None:
        states.insert(0, first)
    if m.dot and all(isinstance(v, np.ndarray) and v.ndim == 1 for v in states):
        stacked = np.empty((len(states), states[0].size))
        for r in range(len(states)):
            stacked[r], states[r] = states[r], None
        return stacked
    return states


def _harvest(work: dict[str, Any], i: int, state: Any) -> None:
    """Keep what a network's state resolved (``state.info``: the sigma used...)."""
    info = getattr(state, "info", None)
    if info:
        work.setdefault("resolved", {})[i] = dict(info)


def prepared_matrix(
    arrays: list[np.ndarray],
    m: Measure,
    executor: Any,
    n_jobs: int,
    max_bytes: int,
    progress: Progress,
    work: dict[str, Any] | None = None,
) -> np.ndarray:
    """All pairs from per-network states, in groups whose states fit ``max_bytes``;
    ``work["states"]`` counts the per-network states computed (K when they fit)."""
    assert m.prepare is not None and m.combine is not None
    k = len(arrays)
    first = map_calls(None, 1, m.prepare, [(arrays[0],)])[0]
    if work is not None:
        work["states"] = work.get("states", 0) + 1
        _harvest(work, 0, first)
    size = max(1, int(max_bytes // (2 * max(1, _nbytes(first)))))
    groups = [list(range(s, min(s + size, k))) for s in range(0, k, size)]
    out = np.empty((k, k))
    total, done = len(pairs_of(k, m.symmetric)), 0
    for ga, ia in enumerate(groups):
        sa = _prepare(m, arrays, ia, executor, n_jobs, first if ga == 0 else None, work)
        first = None
        for ib in groups[ga:]:
            sb = sa if ib is ia else _prepare(m, arrays, ib, executor, n_jobs, work=work)
            done += _block(m, ia, ib, sa, sb, out, executor, n_jobs)
            if progress is not None:
                progress(min(done, total), total)
    return out


def _many_task(fn: Callable[..., np.ndarray], a: list[Any], bs: list[Any]) -> np.ndarray:
    return np.asarray(fn(a, bs))


def _block_many(
    m: Measure,
    ia: list[int],
    ib: list[int],
    sa: list[Any],
    sb: list[Any],
    out: np.ndarray,
    executor: Any,
    n_jobs: int,
) -> int:
    """The block through ``combine_many`` (sources x targets), sources split over workers."""
    parts = [(ia, sa, ib, sb)] + ([] if ib is ia else [(ib, sb, ia, sa)])
    tasks, where = [], []
    for rows, srows, cols, scols in parts:
        step = max(1, -(-len(rows) // max(1, n_jobs)))
        for lo in range(0, len(rows), step):
            tasks.append((m.combine_many, srows[lo : lo + step], scols))
            where.append((rows[lo : lo + step], cols))
    for (rows, cols), vals in zip(
        where, map_calls(executor, n_jobs, _many_task, tasks), strict=True
    ):
        out[np.ix_(rows, cols)] = vals
    return sum(len(r) * len(c) for r, c in where)


def _block(
    m: Measure,
    ia: list[int],
    ib: list[int],
    sa: list[Any],
    sb: list[Any],
    out: np.ndarray,
    executor: Any,
    n_jobs: int,
) -> int:
    """Fill out[ia x ib] (and its mirror); returns the number of pairs evaluated."""
    same = ia is ib
    if isinstance(sa, np.ndarray):  # dot measure: one matrix product for the block
        with blas_limit(max(1, n_jobs)):
            blk = sa @ sb.T
        out[np.ix_(ia, ib)] = blk
        out[np.ix_(ib, ia)] = blk.T
        return len(ia) * (len(ia) + 1) // 2 if same else len(ia) * len(ib)
    if m.combine_many is not None and not m.symmetric:
        return _block_many(m, ia, ib, sa, sb, out, executor, n_jobs)
    diag = _diagonal(m, ia, sa, out) if same else 0
    loc = [
        (a, b)
        for a in range(len(ia))
        for b in range(len(ib))
        if not same or ((a != b or not diag) and (b >= a or not m.symmetric))
    ]
    if not same and not m.symmetric:
        loc += [(-b - 1, -a - 1) for a, b in loc]  # reverse direction: (ib[b], ia[a])
    items = [(sb[-a - 1], sa[-b - 1]) if a < 0 else (sa[a], sb[b]) for a, b in loc]
    batches = [items[s : s + _BATCH] for s in range(0, len(items), _BATCH)]
    vals = [
        v
        for batch in map_calls(executor, n_jobs, _combine_batch, [(m.combine, b) for b in batches])
        for v in batch
    ]
    for (a, b), v in zip(loc, vals, strict=True):
        i, j = (ib[-a - 1], ia[-b - 1]) if a < 0 else (ia[a], ib[b])
        out[i, j] = v
        if m.symmetric:
            out[j, i] = v
    return len(loc) + diag


def _diagonal(m: Measure, ia: list[int], sa: list[Any], out: np.ndarray) -> int:
    """Fill the diagonal of a group without ``combine`` where it is known: 0 for a distance
    (its exact 0 is written at the end; 0 here keeps ``post`` quiet), ``self_value`` where the
    measure has one; returns the entries filled (0: the diagonal goes through ``combine``)."""
    if m.kind == "distance":
        out[ia, ia] = 0.0
    elif m.self_value is not None:
        out[ia, ia] = [m.self_value(s) for s in sa]
    else:
        return 0
    return len(ia)
