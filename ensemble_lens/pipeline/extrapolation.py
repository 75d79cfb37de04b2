"""The members on the probe's extrapolation samples, for judging formulas without a truth.

A probe file's rows labelled ``extrapolation`` are kept apart from the fit and test splits
(:meth:`~ensemble_lens.record.store.StudyStore.extrapolation_probe`): no member is fitted,
aligned or scored on them. After the members stage every member network (trained, or ingested
as a state_dict, TorchScript file or module) is run on them too, and its layers are stored in
``extrapolation/<id>`` (:meth:`~ensemble_lens.record.store.StudyStore.extrapolation_writer`);
an activations-only member gives them through its entry's ``extrapolation_path``. The
consensus stage then maps them with the alignment learnt on the fit split, and the distill
stage judges each formula against the consensus there when the probe has no truth.

Nothing here retrains or re-records a member: a trained member is rebuilt from the checkpoint
its group stores, an ingested one is loaded from its file again. The recording has a tag of
its own (the member's tag, the extrapolation inputs, an activations file's digest), so adding
extrapolation rows to a study, or this feature to an old store, records only these rows.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import stable_hash
from ..errors import ConfigError, ExecutionError, IngestError, ShapeError
from ..record.store import open_store
from .members import MemberSpec, _ingested, _layers, is_done, one_torch_thread, task_of

log = logging.getLogger(__name__)

__all__ = [
    "check_extrapolation_file",
    "extrapolation_file",
    "extrapolation_reason",
    "record_extrapolations",
    "run_extrapolation",
]


def extrapolation_reason(member: MemberSpec) -> str | None:
    """Why ``member`` cannot be had on the extrapolation samples, or None when it can."""
    if member.ingest.get("kind") == "activations" and not member.ingest.get("extrapolation_path"):
        return (
            "activations-only member without an 'extrapolation_path' file of its activations "
            "on the extrapolation rows"
        )
    return None


def extrapolation_file(cfg: Any, ing: Any, p: Path, index: int) -> str | None:
    """An entry's ``extrapolation_path`` for the member of file ``p``, resolved."""
    if not ing.extrapolation_path:
        return None
    where = f"ingest entry {ing.id!r}: extrapolation_path {ing.extrapolation_path!r}"
    try:
        name = ing.extrapolation_path.format(
            stem=p.stem, name=p.name, parent=p.parent.name, index=index
        )
    except (KeyError, IndexError, ValueError) as err:
        raise ConfigError(
            f"{where}: expected placeholders {{stem}}, {{name}}, {{parent}} or {{index}} ({err})"
        ) from err
    path = cfg.resolve(name)
    if not path.exists():
        raise IngestError(f"{where}: file {path} (for {p.name}) does not exist")
    return str(path)


def _tag(member: MemberSpec, inputs_digest: str) -> str:
    from ..record.probe_file import file_digest

    path = member.ingest.get("extrapolation_path")
    return stable_hash(
        {"member": member.tag, "inputs": inputs_digest, "file": path and file_digest(path)}
    )


def inputs_digest(store: Any) -> str:
    """sha256 of the extrapolation inputs (float32 bytes, in the probe's columns)."""
    values = np.ascontiguousarray(store.extrapolation_inputs().values)
    return hashlib.sha256(values.tobytes()).hexdigest()


def record_extrapolations(ctx: Any, members: list[MemberSpec]) -> dict[str, Any]:
    """Record every complete member network on the extrapolation samples, unless recorded
    there with the same tag already (and not named in ``--redo``); untrained twins are not
    (the null uses fit and test samples only). Writes the study attribute
    ``extrapolation_members``: id -> "recorded" or why not.

    Raises
    ------
    IngestError, ShapeError
        An activations member's extrapolation file that does not fit, before any is written.
    ExecutionError
        When members fail, after the others finished.
    """
    store = ctx.store
    if not store.n_extrapolation:
        return {}
    digest = inputs_digest(store)
    todo, status = [], {}
    for m in members:
        if m.source == "untrained" or not is_done(store, m):
            continue
        reason = extrapolation_reason(m)
        status[m.id] = reason or "recorded"
        stale = store.extrapolation_tag(m.id) != _tag(m, digest) or m.id in ctx.redo
        if reason is None and stale:
            todo.append(m)
    for m in todo:
        if m.ingest.get("kind") == "activations":
            check_extrapolation_file(store, m)
    said = store.study_attrs().get("extrapolation_members", {})
    store.write_study_attrs(extrapolation_members={**said, **status})
    cfg_json = ctx.cfg.model_dump(mode="json")
    futures = {
        m.id: ctx.executor.submit(
            run_extrapolation,
            str(store.path),
            cfg_json,
            m.to_dict(),
            _tag(m, digest),
            key=f"extrapolation-{m.id}",
        )
        for m in todo
    }
    failures = {}
    for mid, fut in futures.items():
        try:
            fut.result()
        except Exception as err:  # collect, so the other members still finish
            failures[mid] = err
            log.error("member %s on the extrapolation rows failed: %s", mid, err)
    if failures:
        detail = "; ".join(f"{k}: {type(v).__name__}: {v}" for k, v in failures.items())
        raise ExecutionError(
            f"{len(failures)} of {len(todo)} members failed on the extrapolation rows: {detail}"
        ) from next(iter(failures.values()))
    return {"recorded": len(todo), "samples": store.n_extrapolation}


def run_extrapolation(
    store_path: str, cfg_json: dict[str, Any], member_json: dict[str, Any], tag: str
) -> dict[str, Any]:
    """Executor task: one complete member on the extrapolation samples, stored with ``tag``."""
    from ..config import load_config
    from ..record.hooks import resolve_layers
    from ..record.recorder import record_into

    cfg = load_config(cfg_json)
    cfg.use_base_dir()
    member = MemberSpec(**member_json)
    store = open_store(store_path, mode="a")
    start = time.perf_counter()
    if member.ingest.get("kind") == "activations":
        arrays = check_extrapolation_file(store, member)
        with store.extrapolation_writer(member.id, tag) as writer:
            for layer, values in arrays.items():
                writer.write_layer(layer, values)
    else:
        with one_torch_thread():
            task = task_of(cfg)
            model, input_fn = _rebuilt(task, member, store)
            modules = resolve_layers(model, _layers(cfg, task, member), member.id)
            with store.extrapolation_writer(member.id, tag) as writer:
                inputs = store.extrapolation_inputs()
                record_into(writer, model, modules, cfg.record.batch_size, input_fn, inputs=inputs)
    log.info("member %s recorded on %d extrapolation samples", member.id, store.n_extrapolation)
    return {"id": member.id, "seconds": time.perf_counter() - start}


def _rebuilt(task: Any, member: MemberSpec, store: Any) -> tuple[Any, Any]:
    """(probe module, input_fn) of a recorded member: a trained one from the checkpoint in
    its group, an ingested one from its file."""
    if member.source == "trained":
        from ..models.spec import ArchSpec
        from ..models.train import load_checkpoint

        ckpt = store.checkpoint(member.id)
        model = load_checkpoint(task, ArchSpec(**member.arch), ckpt, seed=member.seed)
        return task.probe_module(model), None
    _model, probe_model, _metrics, _ckpt, input_fn = _ingested(task, member)
    return probe_model, input_fn


def check_extrapolation_file(store: Any, member: MemberSpec) -> dict[str, np.ndarray]:
    """The layers of an activations member's ``extrapolation_path`` file, checked: the
    member's layers (those of its entry, else of its file), one finite row per extrapolation
    sample (in their order when the file carries ``sample_ids``).

    Raises
    ------
    IngestError, ShapeError
        One line naming the member, the file and what was expected.
    """
    from ..record.ingest import _read_source

    path = member.ingest["extrapolation_path"]
    where = f"member {member.id!r} extrapolation file {path}"
    arrays, ids = _read_source(path, member.id)
    layers = member.ingest.get("layers") or list(_read_source(member.ingest["path"], member.id)[0])
    missing = [k for k in layers if k not in arrays]
    if missing:
        raise IngestError(f"{where}: no layer {missing[0]!r} (has {sorted(arrays)})")
    n = store.n_extrapolation
    want = store.extrapolation_probe()["sample_id"].values
    if ids is not None and not np.array_equal(np.asarray(ids), want):
        raise ShapeError(
            f"{where}: sample ids differ from the probe's extrapolation samples' (expected "
            f"{n} ids in the probe file's order)"
        )
    out = {}
    for layer in layers:
        values = np.asarray(arrays[layer], np.float32)
        if values.ndim != 2 or values.shape[0] != n:
            raise ShapeError(
                f"{where} layer {layer!r}: expected ({n}, unit) activations, one row per "
                f"extrapolation sample of the probe, got shape {values.shape}"
            )
        if not np.isfinite(values).all():
            raise ShapeError(f"{where} layer {layer!r}: non-finite activation values")
        out[layer] = values
    return out


def consensus_rows(store: Any, ids: list[str], layer: str) -> tuple[dict[str, str], str | None]:
    """For the consensus of ``layer``: the extrapolation tags of members ``ids`` when every
    one is recorded on the extrapolation samples (else empty), and why extrapolation is not
    checked (None when it is, or when the probe has no extrapolation samples)."""
    if not store.n_extrapolation:
        return {}, None
    missing = [m for m in ids if layer not in store.extrapolation_layers(m)]
    if not missing:
        return {m: str(store.extrapolation_tag(m)) for m in ids}, None
    said = store.study_attrs().get("extrapolation_members", {})
    by_reason: dict[str, list[str]] = {}
    for m in missing:
        reason = said.get(m)
        reason = reason if reason and reason != "recorded" else "not recorded there"
        by_reason.setdefault(reason, []).append(m)
    detail = "; ".join(f"{', '.join(ms)}: {r}" for r, ms in by_reason.items())
    return {}, (
        f"extrapolation not checked against the networks: {len(missing)} of {len(ids)} members "
        f"have no activations of layer {layer!r} on the probe's {store.n_extrapolation} "
        f"extrapolation rows ({detail})"
    )


def with_rows(
    store: Any, acts: dict[str, np.ndarray], layer: str, split: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each member's activations with its extrapolation rows appended, and the split labels
    with ``"extrapolation"`` for them (they take no part in the alignment or the scores)."""
    out = {
        m: np.r_[a, np.asarray(store.extrapolation_activations(m, layer).values, np.float64)]
        for m, a in acts.items()
    }
    return out, np.r_[np.asarray(split).astype(str), ["extrapolation"] * store.n_extrapolation]


def split_off(ds: Any, n: int, store: Any) -> Any:
    """A consensus result on fit + test + extrapolation samples as the result on the first
    ``n`` (fit and test) samples, with ``extrapolation_components`` (extrapolation_sample,
    component) and ``extrapolation_member_scores`` (model, extrapolation_sample, component)."""
    ext = ds.isel(sample=slice(n, None))
    out = ds.isel(sample=slice(0, n))
    dims = {"sample": "extrapolation_sample"}
    out["extrapolation_components"] = (
        ext["components"].rename(dims).drop_vars("extrapolation_sample")
    )
    out["extrapolation_member_scores"] = (
        ext["member_scores"].rename(dims).drop_vars("extrapolation_sample")
    )
    ids = store.extrapolation_probe()["sample_id"].values
    return out.assign_coords(extrapolation_sample=ids)


def record_in_memory(store: Any, mid: str, obj: Any, layers: list[str], batch_size: int) -> str:
    """A member given to ``run_study`` as an object, on the extrapolation samples: an
    ``nn.Module`` is run there (unless recorded with the same tag); arrays cannot be, which
    the study attribute ``extrapolation_members`` says. Returns what was done."""
    from ..record.hooks import resolve_layers
    from ..record.recorder import record_into

    if not store.n_extrapolation:
        return "no extrapolation samples"
    said = store.study_attrs().get("extrapolation_members", {})
    if not hasattr(obj, "state_dict"):
        reason = "given as activations in memory, with none on the extrapolation rows"
        store.write_study_attrs(extrapolation_members={**said, mid: reason})
        return reason
    tag = stable_hash({"member": store.model_attrs(mid).get("tag"), "inputs": inputs_digest(store)})
    if store.extrapolation_tag(mid) != tag:
        modules = resolve_layers(obj, layers, mid)
        with store.extrapolation_writer(mid, tag) as writer:
            record_into(writer, obj, modules, batch_size, inputs=store.extrapolation_inputs())
    store.write_study_attrs(extrapolation_members={**said, mid: "recorded"})
    return "recorded"
