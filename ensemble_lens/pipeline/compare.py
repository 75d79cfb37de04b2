"""The compare stage in blocks: the K x K matrices split into blocks of members, one executor
task per block, each bounded in memory and stored as soon as it is done.

The members of a layer are cut into consecutive groups of ``g`` (chosen from
``similarity.block_memory``, see :func:`plan_blocks`); one block per pair of groups
``ga <= gb`` (the upper triangle; asymmetric measures fill both directions inside a block).
A block task runs on a worker with the store's path, not arrays: it reads its members'
activations from the store, computes every configured metric (and p-values) with each
member's per-network work done once (:mod:`ensemble_lens.similarity.blocks`), one BLAS thread,
and writes its values to ``similarity_blocks/<layer>/<key>`` tagged with the hash of the final
result. A rerun (after ``kill -9``, a lost worker...) submits only the blocks not already
stored with that tag and those members; the driver then assembles the matrices, writes
``similarity/<layer>`` exactly as before, and deletes the blocks.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import byte_size
from ..errors import ConfigError
from ..record.store import open_store

log = logging.getLogger(__name__)

__all__ = ["BlockPlan", "compare_layer", "plan_blocks", "run_block"]

#: Most members per group: bounds the work lost with a block and keeps blocks for every worker.
MAX_GROUP = 256
_CHUNK_BYTES = 64 * 2**20  # the moments pass' chunk buffer cap (similarity.moments.CHUNK_BYTES)


def metric_specs(scfg: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(variable, measure name, options) per configured metric."""
    return [
        (m, "linear_cka", {"debiased": True}) if m == "linear_cka_debiased" else (m, m, {})
        for m in scfg.metrics
    ]


@dataclass(frozen=True)
class BlockPlan:
    """Groups of member ids; blocks are the pairs of groups ``ga <= gb``."""

    groups: tuple[tuple[str, ...], ...]
    block_bytes: int  # estimated working set of the largest block

    def blocks(self) -> list[tuple[int, int]]:
        n = len(self.groups)
        return [(ga, gb) for ga in range(n) for gb in range(ga, n)]

    @staticmethod
    def key(ga: int, gb: int) -> str:
        return f"b{ga:05d}-{gb:05d}"

    def n_pairs(self, ga: int, gb: int) -> int:
        a, b = len(self.groups[ga]), len(self.groups[gb])
        return a * (a - 1) // 2 if ga == gb else a * b


def block_bytes(members: int, n: int, width: int, state: int) -> int:
    """Estimated working set of a block of ``members`` networks of at most ``width`` units on
    ``n`` samples: activations (float32 read + float64 copy), per-network states, the block's
    covariance (moments pass) and its chunk buffer."""
    per_member = 12 * n * width + state + 24 * width**2
    wide = members * width
    return members * per_member + 8 * wide**2 + min(_CHUNK_BYTES, 8 * min(n, 8192) * wide)


def plan_blocks(
    ids: list[str], n: int, width: int, state: int, memory: int, n_workers: int, layer: str
) -> BlockPlan:
    """Groups as large as ``memory`` allows for a block of two groups, at most
    :data:`MAX_GROUP`, and small enough that every worker gets about two blocks."""
    k = len(ids)
    if block_bytes(2, n, width, state) > memory:
        need = block_bytes(2, n, width, state)
        raise ConfigError(
            f"layer {layer!r}: similarity.block_memory is {memory / 1e6:.2f} MB, expected at "
            f"least {need / 1e6:.2f} MB (one block of 2 members: {n} samples, up to {width} "
            f"units, {state / 1e6:.1f} MB of per-network state)"
        )
    g = 1
    while g < k and block_bytes(2 * (g + 1), n, width, state) <= memory:
        g += 1
    g = min(g, MAX_GROUP)
    if n_workers > 1:  # G groups make G (G + 1) / 2 blocks: at least 2 per worker
        n_groups = math.ceil((math.sqrt(1 + 16 * n_workers) - 1) / 2)
        g = min(g, max(1, math.ceil(k / n_groups)))
    groups = tuple(tuple(ids[s : s + g]) for s in range(0, k, g))
    return BlockPlan(groups, block_bytes(2 * g, n, width, state))


def state_bytes(store: Any, model: str, layer: str, scfg: Any) -> int:
    """Largest per-network state of the configured measures, measured on one member (the
    measures that keep none cost ``16 n d`` of transient copies)."""
    from ..similarity import measure
    from ..similarity.allpairs import _nbytes, materialise

    x = np.asarray(store.activations(model, layer).values)
    most = 16 * x.size
    for _, name, kw in metric_specs(scfg):
        m = measure(name, **kw)
        if m.moment is None and m.prepare is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, (arr,) = materialise({model: x}, m.keep_dead)
                most = max(most, _nbytes(m.prepare(arr)))
    return most


def run_block(
    store_path: str,
    layer: str,
    groups: tuple[tuple[str, ...], tuple[str, ...] | None],
    positions: tuple[list[int], list[int]],
    settings: dict[str, Any],
    key: str,
    tag: str,
) -> dict[str, Any]:
    """Executor task: every metric of one block, written to the store; returns the block's
    key and the warnings it raised (re-issued once by the driver)."""
    from ..record.verify import check_content
    from ..similarity import compute_moments, measure
    from ..similarity.allpairs import blas_limit
    from ..similarity.blocks import block_moments, pairwise_block, permutation_block
    from .members import one_torch_thread

    store = open_store(store_path, mode="a")
    rows, cols = groups
    load = {m: np.asarray(store.activations(m, layer).values) for m in rows + (cols or ())}
    for m, values in load.items():  # what is compared is what was written
        check_content(store, m, layer, values)
    r = {m: load[m] for m in rows}
    c = None if cols is None else {m: load[m] for m in cols}
    specs, n_perm, seed, k = settings["specs"], settings["n_perm"], settings["seed"], settings["k"]
    variables = [v for var, _, _ in specs for v in (var, f"{var}_pvalue")[: 1 + bool(n_perm)]]
    values = np.empty((len(variables), 2, len(rows), len(cols or rows)))
    methods, at = {}, 0
    dev = settings.get("device", "cpu")
    torch_threads = one_torch_thread() if dev == "torch-cpu" else contextlib.nullcontext()
    with blas_limit(1), torch_threads, warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        mom = None  # one moments pass for every moments-based metric of the block
        if any(measure(name, **kw).moment is not None for _, name, kw in specs):
            mom = (
                compute_moments(load, device=dev) if c is None else block_moments(r, c, device=dev)
            )
        for var, name, kw in specs:
            shared = mom if measure(name, **kw).moment is not None else None
            fwd, bwd, methods[var] = pairwise_block(r, c, name, moments=shared, **kw)
            values[at, 0], values[at, 1] = fwd, bwd.T
            at += 1
            if n_perm:
                pf, pb = permutation_block(
                    r, c, name, positions=positions, k=k, n_perm=n_perm, seed=seed, **kw
                )
                values[at, 0], values[at, 1] = pf, pb.T
                at += 1
    meta = {"tag": tag, "rows": list(rows), "cols": list(cols or rows), "variables": variables}
    store.write_block(layer, key, values, {**meta, "methods": methods})
    found = {(type(w.message).__name__, str(w.message)) for w in rec}
    return {"key": key, "warnings": sorted(found)}


def compare_layer(ctx: Any, layer: str, ids: list[str], tag: str) -> str:
    """All blocks of one layer (those not stored with ``tag``), then the assembled result."""
    store, scfg = ctx.store, ctx.cfg.similarity
    widths = [store.layer_width(m, layer) for m in ids]
    plan = plan_blocks(
        ids,
        store.n_samples,
        max(widths),
        state_bytes(store, ids[0], layer, scfg),
        byte_size(scfg.block_memory),
        getattr(ctx.executor, "n_workers", 1),
        layer,
    )
    specs = metric_specs(scfg)
    settings = {"specs": specs, "n_perm": scfg.n_perm, "seed": scfg.seed, "k": len(ids),
                "device": ctx.cfg.execution.device}  # fmt: skip
    stored = store.open_blocks(layer)
    todo = [b for b in plan.blocks() if not _reusable(stored.get(plan.key(*b)), plan, b, tag)]
    total = sum(plan.n_pairs(*b) for b in plan.blocks())
    done = total - sum(plan.n_pairs(*b) for b in todo)
    log.info(
        "compare %s: %d members in %d groups of <= %d, %d blocks (%d stored), ~%.0f MB per block",
        layer, len(ids), len(plan.groups), len(plan.groups[0]), len(plan.blocks()),
        len(plan.blocks()) - len(todo), plan.block_bytes / 1e6,
    )  # fmt: skip
    per = len(specs) * (1 + bool(scfg.n_perm))  # progress in member pairs x matrices

    def tick(n: int) -> None:
        ctx.tick(f"pairs {layer}", n * per, total * per)

    tick(done)
    _run_blocks(ctx, layer, plan, todo, settings, tag, tick, done)
    ctx.store.write_result("similarity", layer, _assemble(store, layer, plan, ids, scfg), tag)
    store.clear_blocks(layer)
    reused = len(plan.blocks()) - len(todo)
    return f"written ({reused} of {len(plan.blocks())} blocks reused)" if reused else "written"


def _reusable(
    attrs: dict[str, Any] | None, plan: BlockPlan, block: tuple[int, int], tag: str
) -> bool:
    """A stored block counts when made with the same tag for the same members."""
    if attrs is None or attrs.get("tag") != tag:
        return False
    ga, gb = block
    return attrs.get("rows") == list(plan.groups[ga]) and attrs.get("cols") == list(plan.groups[gb])


def _run_blocks(
    ctx: Any,
    layer: str,
    plan: BlockPlan,
    todo: list[tuple[int, int]],
    settings: dict[str, Any],
    tag: str,
    tick: Callable[[int], None],
    done: int,
) -> None:
    """Submit the blocks, wait for all of them (a failed block does not stop the others, so a
    rerun keeps their work), then re-issue their warnings once and raise the first failure."""
    from .stages import _as_completed

    order = [m for g in plan.groups for m in g]
    pos = {m: i for i, m in enumerate(order)}
    futures = {}
    for ga, gb in todo:
        rows, cols = plan.groups[ga], (None if ga == gb else plan.groups[gb])
        positions = ([pos[m] for m in rows], [pos[m] for m in cols or ()])
        futures[(ga, gb)] = ctx.executor.submit(
            run_block, str(ctx.store.path), layer, (rows, cols), positions, settings,
            plan.key(ga, gb), tag, key=f"compare-{layer}-{plan.key(ga, gb)}",
        )  # fmt: skip
    failure, found = None, set()
    for block, fut in _as_completed(futures):
        try:
            found.update(tuple(w) for w in fut.result()["warnings"])
        except Exception as err:  # collected: the other blocks still finish and are kept
            failure = failure or err
            log.error("compare %s block %s failed: %s", layer, plan.key(*block), err)
            continue
        done += plan.n_pairs(*block)
        tick(done)
    if failure is not None:
        raise failure
    _reissue(found)


def _reissue(found: set[tuple[str, str]]) -> None:
    """Each distinct warning of the blocks once; dropped dead units merged into one line."""
    from .. import errors

    prefix = "dropped constant (dead) units: "
    dropped = sorted(
        {p for c, msg in found if msg.startswith(prefix) for p in msg[len(prefix) :].split(", ")}
    )
    for cat, msg in sorted(found):
        if not msg.startswith(prefix):
            warnings.warn(msg, getattr(errors, cat, UserWarning), stacklevel=4)
    if dropped:
        warnings.warn(prefix + ", ".join(dropped), errors.DroppedUnitsWarning, stacklevel=4)


def _assemble(store: Any, layer: str, plan: BlockPlan, ids: list[str], scfg: Any) -> Any:
    """The stored blocks put together: the Dataset ``pairwise`` per metric would give."""
    import xarray as xr

    from ..similarity import measure
    from ..similarity._meta import measure_attrs

    k, pos = len(ids), {m: i for i, m in enumerate(ids)}
    mats: dict[str, np.ndarray] = {}
    methods: dict[str, str] = {}
    for ga, gb in plan.blocks():
        key = plan.key(ga, gb)
        attrs, values = store.block_attrs(layer, key), store.read_block(layer, key)
        ri, ci = [pos[m] for m in attrs["rows"]], [pos[m] for m in attrs["cols"]]
        methods.update(attrs["methods"])
        for v, var in enumerate(attrs["variables"]):
            out = mats.setdefault(var, np.full((k, k), np.nan))
            out[np.ix_(ri, ci)] = values[v, 0]
            out[np.ix_(ci, ri)] = values[v, 1].T
    variables = {}
    for var, name, kw in metric_specs(scfg):
        m = measure(name, **kw)
        variables[var] = _matrix(mats[var], ids, measure_attrs(m, name, methods[var]))
        if scfg.n_perm:
            p_attrs = {**measure_attrs(m, name, "pairs"), "n_perm": scfg.n_perm, "seed": scfg.seed}
            variables[f"{var}_pvalue"] = _matrix(mats[f"{var}_pvalue"], ids, p_attrs)
    return xr.Dataset(variables)


def _matrix(values: np.ndarray, ids: list[str], attrs: dict[str, Any]) -> Any:
    import xarray as xr

    coords = {"model": list(ids), "model_": list(ids)}
    return xr.DataArray(values, dims=("model", "model_"), coords=coords, attrs=attrs)
