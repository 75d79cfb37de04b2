"""The study's stages, one function each, chained only by :mod:`ensemble_lens.pipeline.runner`.

Each stage reads its inputs from the store and writes its outputs back, tagged with the hash of
everything that produced them; a stage whose outputs carry the same tag is skipped, so a
re-run resumes after a crash and a changed setting re-runs only what depends on it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import StudyConfig, stable_hash
from ..errors import ExecutionError, StoreError
from ..execution.events import listening
from ..record.store import StudyStore
from .batching import batch_members, run_member_batch
from .extrapolation import consensus_rows, record_extrapolations, split_off, with_rows
from .inputs import StudyInputs, study_inputs
from .members import expand_members, is_done, member_line, preflight

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


@dataclass
class StageContext:
    """What every stage receives."""

    cfg: StudyConfig
    store: StudyStore
    task: Any
    executor: Any
    progress: Progress | None = None
    redo: tuple[str, ...] = ()  # member ids to rebuild even when stored complete
    _inputs: StudyInputs | None = field(default=None, repr=False)

    @property
    def inputs(self) -> StudyInputs:
        """What the stages know about the study's variables and latents (task or not);
        built on first use, once the probe is in the store."""
        if self._inputs is None:
            self._inputs = study_inputs(self.cfg, self.task, self.store)
        return self._inputs

    def tick(self, label: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(label, done, total)


class CountedExecutor:
    """An executor that reports ``label``: tasks done of tasks submitted, as they finish."""

    def __init__(self, ctx: StageContext, label: str) -> None:
        self._ctx, self._label = ctx, label
        self.executor = ctx.executor
        self.submitted = self.done = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:  # n_workers, client, ... of the wrapped one
        return getattr(self.executor, name)

    def submit(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.submitted += 1
        future = self.executor.submit(fn, *args, **kwargs)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _future: Any) -> None:
        with self._lock:
            self.done += 1
            done, total = self.done, self.submitted
        self._ctx.tick(self._label, done, total)


# ------------------------------------------------------------------------------------ probe
def stage_probe(ctx: StageContext) -> str:
    """Write the probe set sampled from the task (skipped when one with the same tag exists)."""
    cfg, store, task = ctx.cfg, ctx.store, ctx.task
    if cfg.probe.path is not None:
        return _probe_from_file(ctx)
    tag = probe_tag(cfg)
    if store.has_probe() and store.study_attrs().get("probe_tag") == tag:
        return "skipped"
    if task is None:
        if store.has_probe():
            return "kept"
        raise StoreError(
            f"store {store.path} has no probe set and the config names no task to sample one; "
            "write a probe first (StudyStore.write_probe)"
        )
    x = task.sample_probe(cfg.probe.n, cfg.probe.seed)
    store.write_probe(
        x,
        task.input_names,
        truth=task.truth(x),
        test_fraction=cfg.probe.test_fraction,
        seed=cfg.probe.seed,
    )
    store.write_study_attrs(probe_tag=tag)
    return "written"


def probe_tag(cfg: StudyConfig) -> str:
    """The tag of the probe a config makes: its task and probe sections, and the digest of a
    probe file (which must exist)."""
    from ..record.probe_file import ProbeFileError, file_digest

    pcfg = cfg.probe
    if pcfg.path is None:
        return cfg.sha256("task", "probe")
    path = cfg.resolve(pcfg.path)
    if not path.exists():
        raise ProbeFileError(f"probe file {path}: does not exist (probe.path {pcfg.path!r})")
    return stable_hash({"probe": pcfg.model_dump(mode="json"), "file": file_digest(path)})


def _probe_from_file(ctx: StageContext) -> str:
    """Write the probe set read from ``probe.path`` (skipped when the same file and settings
    made the stored one); ``distill.variables`` must name variables of the file."""
    from ..record.probe_file import ProbeFileError, read_probe_file

    pcfg, store = ctx.cfg.probe, ctx.store
    path = ctx.cfg.resolve(pcfg.path or "")
    tag = probe_tag(ctx.cfg)
    if store.has_probe() and store.study_attrs().get("probe_tag") == tag:
        return "skipped"
    data = read_probe_file(
        path,
        variables=pcfg.variables,
        split=pcfg.split,
        truth=pcfg.truth,
        inputs=pcfg.inputs,
        sample_id=pcfg.sample_id,
        target=pcfg.target,
    )
    wanted = ctx.cfg.distill.variables or []
    unknown = [v for v in wanted if v not in data.names]
    if unknown:
        raise ProbeFileError(
            f"probe file {path}: distill.variables names {unknown}, expected variables of the "
            f"probe ({data.names})"
        )
    store.write_probe(
        data.variables,
        data.names,
        data.sample_ids,
        data.split,
        truth=data.truth,
        targets=data.targets or None,
        test_fraction=data.test_fraction or pcfg.test_fraction,
        seed=pcfg.seed,
        model_inputs=data.model_inputs or None,
    )
    store.write_study_attrs(
        probe_tag=tag, probe_file=str(path), truth_formulas=dict(data.truth_formulas)
    )
    return "written"


def consensus_settings(ccfg: Any) -> dict[str, Any]:
    """The ``find_consensus`` keywords a study's ``consensus:`` section sets (alignment,
    permutation null, support), shared by the consensus and the per-group stages."""
    return {
        "method": ccfg.method,
        "n_components": ccfg.n_components,
        "variance_keep": ccfg.variance_keep,
        "n_null": ccfg.n_null,
        "alpha": ccfg.alpha,
        "p_support": ccfg.p_support,
        "min_variance": ccfg.min_variance,
        "seed": ccfg.seed,
    }


# ------------------------------------------------------------------------------------ members
def stage_members(ctx: StageContext, only: str | None = None) -> list[dict[str, Any]]:
    """Train / load and record every member not already done, in batches of members per
    executor task (:mod:`ensemble_lens.pipeline.batching`).

    ``only``: ``"trained"`` (task members and their untrained twins) or ``"ingested"``
    (ingested members and their untrained twins) to run one kind of member.
    """
    everyone = expand_members(ctx.cfg, ctx.task)
    members = [m for m in everyone if only in (None, _kind(m))]
    todo = [m for m in members if m.id in ctx.redo or not is_done(ctx.store, m)]
    log.info("%d members, %d to build", len(members), len(todo))
    preflight(ctx.cfg, ctx.store, todo)  # every ingested member checked before any is recorded
    _write_member_attrs(ctx, everyone)
    ctx.tick("members", 0, len(todo))
    with listening(ctx.executor, ctx.progress):  # before submitting: serial tasks run at once
        results, failures = _run_batches(ctx, todo)
    n = len(todo)
    if failures:
        detail = "; ".join(f"{k}: {type(v).__name__}: {v}" for k, v in failures.items())
        raise ExecutionError(f"{len(failures)} of {n} members failed: {detail}") from next(
            iter(failures.values())
        )
    record_extrapolations(ctx, members)
    return results


def _run_batches(ctx: StageContext, todo: list[Any]) -> tuple[list[dict], dict[str, Exception]]:
    """Submit the members in batches (``execution.members_per_task``); collect per member."""
    ex = ctx.cfg.execution
    batches = batch_members(todo, ex.members_per_task, getattr(ctx.executor, "n_workers", 1))
    cfg_json = ctx.cfg.model_dump(mode="json")
    futures = {
        f"{b[0].id}+{len(b) - 1}": ctx.executor.submit(
            run_member_batch,
            str(ctx.store.path),
            cfg_json,
            [m.to_dict() for m in b],
            key=f"members-{b[0].id}",
            force=[m.id for m in b if m.id in ctx.redo],
        )
        for b in batches
    }
    sizes = {f"{b[0].id}+{len(b) - 1}": [m.id for m in b] for b in batches}
    results, failures, done = [], {}, 0
    for name, fut in _as_completed(futures):
        try:
            batch = fut.result()
        except Exception as err:  # collect, so the other batches still finish
            batch = [{"id": mid, "action": "failed", "error": err} for mid in sizes[name]]
        for res in batch:
            if res.get("action") == "failed":
                failures[res["id"]] = res["error"]
                log.error("member %s failed: %s", res["id"], res["error"])
            else:
                results.append(res)
                log.info("member %s: %s", res["id"], member_line(res))
        done += len(batch)
        ctx.tick("members", done, len(todo))
    return results, failures


def _kind(member: Any) -> str:
    """``"ingested"`` for ingested members and their untrained twins, else ``"trained"``."""
    return "ingested" if member.ingest else "trained"


def _write_member_attrs(ctx: StageContext, members: list[Any]) -> None:
    """Study attrs: the members in order with the files they came from, and the null used."""
    listing = [
        {
            "id": m.id,
            "source": m.source,
            "file": m.ingest.get("path"),
            "index": m.ingest.get("index"),
        }
        for m in members
    ]
    ids = {m.id for m in members}
    kept = [e for e in ctx.store.study_attrs().get("members") or [] if e.get("id") not in ids]
    listing = kept + listing  # members added with --add-members keep the earlier ones
    twins = sum(m.source == "untrained" for m in members)
    if twins:
        null = f"permutation + untrained twins ({twins} networks of the members' architectures)"
    else:
        null = (
            "permutation only: no untrained networks (ensemble.untrained_null is false, or the "
            "ingested members have no factory to build untrained twins)"
        )
    ctx.store.write_study_attrs(members=listing, null=null)


def _as_completed(futures: dict[str, Any]) -> list[tuple[str, Any]]:
    """(id, future) pairs in completion order for dask futures, submission order otherwise."""
    values = list(futures.values())
    if values and type(values[0]).__module__.startswith("distributed"):
        from distributed import as_completed

        back = {id(f): k for k, f in futures.items()}
        return [(back[id(f)], f) for f in as_completed(values)]
    return list(futures.items())


def analysed_members(ctx: StageContext, layer: str) -> list[str]:
    """Complete members with ``layer``, excluding untrained null members."""
    ids = []
    for mid in ctx.store.complete_models:
        if mid.startswith("null-") or layer not in ctx.store.layers(mid):
            continue
        ids.append(mid)
    return ids


def recorded_layers(ctx: StageContext) -> list[str]:
    """Layers recorded for every complete (non-null) member."""
    members = [m for m in ctx.store.complete_models if not m.startswith("null-")]
    if not members:
        return []
    common = set(ctx.store.layers(members[0]))
    for m in members[1:]:
        common &= set(ctx.store.layers(m))
    return sorted(common)


@contextlib.contextmanager
def damage_named(store: StudyStore, ids: list[str], layer: str) -> Iterator[None]:
    """Before reading members' layer, refuse missing chunks (they would read as NaN); when the
    reading fails, name the damaged model, layer and chunk instead of a bare decoder error."""
    from ..record.verify import check_layers

    check_layers(store, ids, layer)
    try:
        yield
    except Exception:
        check_layers(store, ids, layer, read=True)  # raises StoreDamagedError if damaged
        raise


def _members_tag(ctx: StageContext, ids: list[str], layer: str) -> dict[str, Any]:
    """What a stage read of members ``ids``: the content digest of each one's ``layer`` (a
    member recorded before digests were kept: the tag of its settings). A member rebuilt with
    other content changes this, and so every result that used it."""
    store = ctx.store
    return {m: store.layer_digest(m, layer) or store.model_attrs(m).get("tag") for m in ids}


def _read_checked(store: StudyStore, model: str, layer: str) -> np.ndarray:
    """A member's layer as float64, checked against the digest written with it."""
    from ..record.verify import check_content

    values = np.asarray(store.activations(model, layer).values)
    check_content(store, model, layer, values)
    return values.astype(np.float64)


def probe_key(store: StudyStore) -> Any:
    """What a stage read of the probe: its content digest (an older store: its tag)."""
    return store.probe_digest() or store.study_attrs().get("probe_tag")


# ------------------------------------------------------------------------------------ similarity
def stage_similarity(ctx: StageContext) -> dict[str, str]:
    """All-pairs similarity matrices of every configured metric, per recorded layer, in blocks
    of members run by the executor (:mod:`ensemble_lens.pipeline.compare`)."""
    from .compare import compare_layer

    scfg = ctx.cfg.similarity
    settings = scfg.model_dump(mode="json", exclude={"block_memory"})  # values do not depend on it
    out = {}
    for layer in recorded_layers(ctx):
        ids = analysed_members(ctx, layer)
        tag = stable_hash({"members": _members_tag(ctx, ids, layer), "similarity": settings})
        if ctx.store.result_tag("similarity", layer) == tag:
            ctx.store.clear_blocks(layer)  # left by a run killed after its result was written
            out[layer] = "skipped"
            continue
        with damage_named(ctx.store, ids, layer):
            out[layer] = compare_layer(ctx, layer, ids, tag)
    return out


# ------------------------------------------------------------------------------------ consensus
def stage_consensus(ctx: StageContext) -> dict[str, str]:
    """Aligned, null-calibrated consensus components per recorded layer."""
    from ..consensus import consensus_table, find_consensus, member_skill, validation_weights

    ccfg = ctx.cfg.consensus
    out = {}
    split = ctx.store.probe()["split"].values
    for layer in recorded_layers(ctx):
        ids = analysed_members(ctx, layer)
        nulls = [
            m
            for m in ctx.store.complete_models
            if m.startswith("null-") and layer in ctx.store.layers(m)
        ]
        ext_tags, unchecked = consensus_rows(ctx.store, ids, layer)
        if ext_tags:  # what was read on the extrapolation rows: its content
            ext_tags = {
                m: ctx.store.extrapolation_digest(m, layer) or t for m, t in ext_tags.items()
            }
        tag = stable_hash(
            {
                "members": _members_tag(ctx, ids + nulls, layer),
                "consensus": ccfg.model_dump(mode="json"),
                "probe": probe_key(ctx.store),
            }
            | ({"extrapolation": ext_tags} if ext_tags else {})
        )
        if ctx.store.result_tag("consensus", layer) == tag:
            out[layer] = "skipped"
            continue
        with damage_named(ctx.store, ids + nulls, layer):
            acts = {m: _read_checked(ctx.store, m, layer) for m in ids}
            untrained = [_read_checked(ctx.store, m, layer) for m in nulls]
        rows = with_rows(ctx.store, acts, layer, split) if ext_tags else (acts, split)
        weights = None
        metrics = {m: ctx.store.model_attrs(m).get("metrics") for m in ids}
        if ccfg.weights == "validation":
            weights = validation_weights(metrics)
            if weights is None:
                lacking = [m for m, v in metrics.items() if validation_weights({m: v}) is None]
                log.warning(
                    "consensus of layer %s: members %s have no validation R^2 (val_r2); "
                    "all members weighted equally",
                    layer,
                    lacking,
                )
        ds = find_consensus(
            rows[0],
            split=rows[1],
            **consensus_settings(ccfg),
            untrained=untrained or None,
            max_untrained_r2=ccfg.max_untrained_r2,
            min_learned_share=ccfg.min_learned_share,
            member_weights=weights,
            executor=ctx.executor,
            device=ctx.cfg.execution.device,
        )
        if ext_tags:
            ds = split_off(ds, len(split), ctx.store)
        if unchecked:
            log.warning("layer %s: %s", layer, unchecked)
            ds.attrs["extrapolation_unchecked"] = unchecked
        if ds.attrs["member_weighting"] == "weighted":
            ds.attrs["member_weighting"] = "validation"
        if ccfg.min_member_r2 is not None:
            skill = member_skill(metrics, min_r2=ccfg.min_member_r2, min_fraction=ccfg.p_support)
            ds.attrs.update(skill.attrs())
            (log.info if skill.verdict == "skilled" else log.warning)(
                "layer %s: %s", layer, skill.reason
            )
        ctx.store.write_result("consensus", layer, ds, tag)
        log.info("consensus of layer %s:\n%s", layer, consensus_table(ds))
        out[layer] = "written"
    return out
