"""Many members per executor task: grouping member jobs into batches, and the batch task.

A study of a thousand small members would spend more time in the scheduler than in training
with one task per member, so :func:`batch_members` groups the members to build into batches
(``execution.members_per_task``; by default about four batches per worker, at most
``_MAX_AUTO`` members each), keeping members that can train together (same architecture and
training settings) side by side. :func:`run_member_batch` builds the members of one batch one
after the other, or, with ``execution.train_mode: vmap``, trains each group of alike members
together (:func:`ensemble_lens.models.train_vmap.train_members_vmap`). Every member is
recorded into its own model group as soon as it is built, and a member already complete with
the same tag is skipped, so a batch re-run after a lost worker (dask retries) or a re-run of
the study resumes member by member.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

from ..record.store import open_store
from .members import (
    MemberSpec,
    built_from_result,
    is_done,
    one_torch_thread,
    record_member,
    run_member,
)
from .replay import replay_epochs

log = logging.getLogger(__name__)

__all__ = ["batch_members", "run_member_batch"]

_MAX_AUTO = 64  # most members in one batch when members_per_task is not set


def _group_key(member: MemberSpec) -> str:
    """Members with the same key can train together (one architecture, one training spec)."""
    return json.dumps([member.source, member.arch, member.train], sort_keys=True)


def batch_members(
    members: Sequence[MemberSpec], per_task: int | None = None, n_workers: int = 1
) -> list[list[MemberSpec]]:
    """Split ``members`` into batches, one executor task each.

    Parameters
    ----------
    members : sequence of MemberSpec
        The members to build.
    per_task : int, optional
        Members per batch; default ``ceil(len(members) / (4 * n_workers))`` capped at 64, so
        every worker gets about four batches (load balance) and no batch is huge.
    n_workers : int
        Workers of the executor (for the default).

    Returns
    -------
    list of list of MemberSpec
        Batches in a stable order; members of one architecture and training spec are
        contiguous, so a batch holds as few groups as possible.

    Examples
    --------
    >>> ms = [MemberSpec(f"s{i}", "trained", i) for i in range(10)]
    >>> [len(b) for b in batch_members(ms, per_task=4)]
    [4, 4, 2]
    """
    if per_task is not None and per_task < 1:
        raise ValueError(f"members_per_task: expected an integer >= 1, got {per_task}")
    if not members:
        return []
    size = per_task or min(_MAX_AUTO, math.ceil(len(members) / (4 * max(1, n_workers))))
    order = sorted(range(len(members)), key=lambda i: (_group_key(members[i]), i))
    ordered = [members[i] for i in order]
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def run_member_batch(
    store_path: str,
    cfg_json: dict[str, Any],
    members_json: list[dict[str, Any]],
    force: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Executor task: build and record every member of one batch; one result per member.

    A member that fails does not stop the others: its result has ``action: "failed"`` and
    ``error`` (the exception). Members already complete with the same tag are skipped, except
    those named in ``force`` (``--redo``), which are rebuilt.
    """
    from ..config import load_config

    cfg = load_config(cfg_json)
    cfg.use_base_dir()  # user modules next to the config import on workers too
    members = [MemberSpec(**m) for m in members_json]
    if cfg.execution.train_mode != "vmap":
        return [
            _guarded(run_member, store_path, cfg_json, m.to_dict(), m.id in force, mid=m.id)
            for m in members
        ]
    store = open_store(store_path, mode="a")
    out, todo = [], []
    for m in members:
        if m.id not in force and is_done(store, m):
            out.append({"id": m.id, "action": "skipped"})
        elif m.source == "trained":
            todo.append(m)
        else:
            out.append(
                _guarded(run_member, store_path, cfg_json, m.to_dict(), m.id in force, mid=m.id)
            )
    groups: dict[str, list[MemberSpec]] = {}
    for m in todo:
        groups.setdefault(_group_key(m), []).append(m)
    step = cfg.execution.vmap_max_members
    for group in groups.values():
        for i in range(0, len(group), step):
            out += _train_together(store, cfg, group[i : i + step])
    return out


def _guarded(fn: Any, *args: Any, mid: str) -> dict[str, Any]:
    try:
        return fn(*args)
    except Exception as err:  # logged and reported per member by the stage; the batch goes on
        return {"id": mid, "action": "failed", "error": err}


def _train_together(store: Any, cfg: Any, group: list[MemberSpec]) -> list[dict[str, Any]]:
    """Train alike members with vmap, then record each; a training failure fails the group."""
    from ..models.spec import ArchSpec, TrainSpec
    from ..models.train_vmap import train_members_vmap
    from .members import task_of

    start = time.perf_counter()
    with one_torch_thread():
        task = task_of(cfg)
        try:
            results = train_members_vmap(
                task,
                ArchSpec(**group[0].arch),
                TrainSpec(**group[0].train),
                [m.seed for m in group],
                device=cfg.execution.device,
                replay_epochs=[replay_epochs(store, m) for m in group],
            )
        except Exception as err:  # every member of the group shares the failure
            log.error("members %s (trained together) failed: %s", [m.id for m in group], err)
            return [{"id": m.id, "action": "failed", "error": err} for m in group]
        out = []
        for m, res in zip(group, results, strict=True):
            built = built_from_result(task, res)
            out.append(_guarded(_record_one, store, cfg, task, m, built, start, mid=m.id))
        return out


def _record_one(store: Any, cfg: Any, task: Any, member: MemberSpec, built: tuple, start: float):
    record_member(store, cfg, task, member, built)
    seconds = time.perf_counter() - start
    return {"id": member.id, "action": "trained (vmap)", **built[2], "seconds": seconds}
