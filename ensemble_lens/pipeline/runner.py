"""Run a whole study, or some of its stages, from one config."""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from ..config import StudyConfig, load_config
from ..errors import ConfigError, StoreDamagedError
from ..record.lock import StoreLock
from ..record.repair import check_parts_named, drop_part, is_part, repair_root
from ..record.store import StudyStore, open_store
from ..record.verify import check_parts, damage_message, store_parts
from .precheck import (
    check_probe_and_members,
    check_same_study,
    check_store_path,
    check_study_name,
)
from .stages import (
    Progress,
    StageContext,
    stage_consensus,
    stage_members,
    stage_probe,
    stage_similarity,
)
from .supplied import record_in_memory

log = logging.getLogger(__name__)

Stage = Literal[
    "probe", "train", "record", "compare", "consensus", "distill", "templates", "report"
]
ALL_STAGES: tuple[Stage, ...] = (
    "probe",
    "train",
    "record",
    "compare",
    "consensus",
    "distill",
    "templates",
    "report",
)
_PACKAGES = (
    "ensemble-lens",
    "torch",
    "numpy",
    "scipy",
    "scikit-learn",
    "sympy",
    "xarray",
    "zarr",
    "dask",
    "distributed",
    "pyoperon",
)


@dataclass
class StudyResult:
    """What :func:`run_study` did: the store, per-stage outcomes and timings, the formulas."""

    store: StudyStore
    outcomes: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    report: Path | None = None

    @property
    def formulas(self) -> list[dict[str, Any]]:
        return self.store.read_formulas()


def package_versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


@contextlib.contextmanager
def _executor_for(cfg: StudyConfig, executor: Any) -> Iterator[Any]:
    if executor is not None:
        yield executor
        return
    from ..execution import make_executor

    ex = cfg.execution
    with make_executor(
        ex.scheduler, workers=ex.workers, retries=ex.retries, jobqueue=ex.jobqueue
    ) as made:
        yield made


def run_study(
    config: str | os.PathLike[str] | dict[str, Any] | StudyConfig,
    store: str | os.PathLike[str] | StudyStore | None = None,
    executor: Any = None,
    *,
    stages: Sequence[Stage] | None = None,
    progress: Progress | None = None,
    redo: Sequence[str] = (),
    wait: bool = False,
    members: Mapping[str, Any] | None = None,
    add_members: bool = False,
) -> StudyResult:
    """Run a study: probe, train + record members, compare, consensus, distill, report.

    Parameters
    ----------
    config
        A YAML path, a mapping, or a :class:`StudyConfig`.
    store
        Where the study store lives (default: the config's ``store``, else
        ``runs/<name>/study.zarr``). An existing store is resumed.
    executor
        An executor from :func:`ensemble_lens.execution.make_executor` (or anything with
        ``submit``); default: built from the config's ``execution`` section and closed after.
    stages
        Run only these stages (default: all, in order).
    progress
        Called as ``progress(label, done, total)`` for members, epochs, pairs and components.
    redo
        Member ids to rebuild (retrain / re-ingest and re-record) even when stored complete,
        e.g. after ``inspect --verify`` found a damaged chunk of theirs; and parts of the store
        to write again: ``"probe"``, ``"similarity/<layer>"``, ``"consensus/<layer>"``,
        ``"distill"``, or ``"root"`` (the store's own metadata, rewritten where it does not
        parse). Every damage ``inspect --verify`` reports names its ``redo``.
    wait
        When another run holds the store's lock, wait for it instead of raising
        :class:`~ensemble_lens.errors.StoreLockedError`.
    members
        Members already in memory, by id: ``nn.Module``s (recorded on the probe at the layers
        of ``record.layers``, in this process) or activations (an array (sample, unit), or a
        dict layer -> array, rows in the probe's order). They join the config's members; a
        study with no ``task`` may consist of these alone.
    add_members
        Let a config whose members are a superset of the store's add its new members to the
        study (``--add-members``); without it a config whose members differ from those the
        store was made with is refused. Every config that made the store is kept in its
        ``configs`` attribute, and every result records the hash of the one that made it.

    Raises
    ------
    ConfigError, StoreError
        Before anything is written: a bad config, a study name that is not one path
        component, no members, a store path that is a file or read-only, a store made by a
        config with another task, probe or members, a missing or unreadable probe file, a
        probe with fewer rows than the split needs, an ingested member that does not fit the
        probe; :class:`~ensemble_lens.errors.StoreDamagedError` when a part of the store the
        run reads is damaged (the message names it and its ``redo``);
        :class:`~ensemble_lens.errors.StoreLockedError` when another run writes it.

    Examples
    --------
    >>> result = run_study("configs/demo.yaml")          # doctest: +SKIP
    >>> [f["expression"] for f in result.formulas]       # doctest: +SKIP
    """
    cfg = load_config(config)
    cfg.use_base_dir()
    if cfg.task is None and not cfg.ensemble.ingest and not members:
        raise ConfigError(
            "a study without 'task' needs members: 'ensemble.ingest' entries, or "
            "run_study(config, members={id: nn.Module or activations})"
        )
    wanted = tuple(stages) if stages else ALL_STAGES
    path = store.path if isinstance(store, StudyStore) else Path(store or cfg.store_path())
    from .members import expand_members, task_of

    # everything checked before writing
    check_study_name(cfg)
    check_store_path(path)
    check_parts_named(redo)
    if "root" in redo and path.is_dir():  # the one repair done first: the checks read the root
        with StoreLock(path, wait=wait):
            for fixed in repair_root(path):
                log.warning("rewrote %s (--redo root)", fixed)
    task = task_of(cfg)
    check_members(cfg, task, path, wanted, tuple(redo), in_memory=tuple(members or ()))
    specs = expand_members(cfg, task)
    check_device(cfg, wanted, executor)
    existed = (path / "zarr.json").is_file()
    if not existed:  # a new store: the probe is checked in a temporary one, nothing made here
        check_probe_and_members(cfg, task, path, wanted, specs, tuple(redo))
    with StoreLock(path, wait=wait):
        if (path / "zarr.json").is_file():  # read under the lock: another run may write it
            check_same_study(cfg, path, specs, add_members=add_members)
            check_probe_and_members(cfg, task, path, wanted, specs, tuple(redo))
            refuse_damage(path, wanted, redo)
        for part in filter(is_part, redo):
            drop_part(path, part)
        if not isinstance(store, StudyStore):
            store = open_store(path, mode="a")
        return _run_locked(cfg, store, task, executor, wanted, progress, tuple(redo), members)


#: stages that read the members' stored activations, and those that read stored results
_READ_MEMBERS = ("compare", "consensus", "distill", "templates", "report")
_READ_RESULTS = ("distill", "templates", "report")


def refuse_damage(path: Path, wanted: Sequence[str], rebuilt: Sequence[str]) -> None:
    """The cheap check (metadata, chunk files, stored bytes; no chunk is read) of every part
    of the store these stages read, but the members and parts being rebuilt: raise
    :class:`~ensemble_lens.errors.StoreDamagedError` with the first damage and its repair."""
    if not (path / "zarr.json").is_file():
        return
    parts = []
    for part in store_parts(path):
        kind, _, rest = part.partition("/")
        if part in rebuilt:
            continue
        if kind in ("models", "extrapolation"):
            if rest not in rebuilt and any(s in wanted for s in _READ_MEMBERS):
                parts.append(part)
        elif kind == "probe" or any(s in wanted for s in _READ_RESULTS):
            parts.append(part)
    damage = check_parts(path, parts)
    if damage:
        raise StoreDamagedError(damage_message(path, damage))


def _run_locked(
    cfg: StudyConfig,
    store: StudyStore,
    task: Any,
    executor: Any,
    wanted: tuple[Stage, ...],
    progress: Progress | None,
    redo: tuple[str, ...],
    members: Mapping[str, Any] | None,
) -> StudyResult:
    store.write_study_attrs(
        config=cfg.model_dump(mode="json"),
        config_sha256=cfg.sha256(),
        configs=config_history(store, cfg),
        study=cfg.name,
        task=cfg.task.name if cfg.task else None,
        package_versions=package_versions(),
    )
    result = StudyResult(store)
    with _executor_for(cfg, executor) as ex:
        ctx = StageContext(cfg, store, task, ex, progress, redo=redo)
        for stage in ALL_STAGES:
            if stage not in wanted:
                continue
            start = time.perf_counter()
            result.outcomes[stage] = _run_stage(stage, ctx, wanted)
            if stage == "probe" and members:
                result.outcomes["members"] = record_in_memory(ctx, members)
            result.timings[stage] = time.perf_counter() - start
            log.info("stage %s: %.1f s", stage, result.timings[stage])
            timings = {**store.study_attrs().get("stage_timings", {}), **result.timings}
            store.write_study_attrs(stage_timings=timings)  # before the report reads them
    if "report" in wanted:
        result.report = result.outcomes.get("report")
    return result


def config_history(store: StudyStore, cfg: StudyConfig) -> list[dict[str, Any]]:
    """Every config that ran on the store, oldest first (``sha256``, ``config``): the
    store's ``configs`` with this one added (each result's ``config_sha256`` names one)."""
    attrs = store.study_attrs()
    history = list(attrs.get("configs") or [])
    if not history and attrs.get("config"):
        history = [{"sha256": attrs.get("config_sha256"), "config": attrs["config"]}]
    if cfg.sha256() not in [h.get("sha256") for h in history]:
        history.append({"sha256": cfg.sha256(), "config": cfg.model_dump(mode="json")})
    return history


def check_members(
    cfg: StudyConfig,
    task: Any,
    path: Path,
    wanted: Sequence[str],
    redo: Sequence[str],
    in_memory: Sequence[str] = (),
) -> None:
    """Refuse, before anything is written, a study with no members, unknown ``redo`` ids and
    ingested files that are missing or not torch files (``in_memory``: ids of the members
    given to :func:`run_study` as objects)."""
    from .members import expand_members

    for i, ing in enumerate(cfg.ensemble.ingest):
        if ing.path and not glob.has_magic(ing.path):
            check_ingest_file(str(cfg.resolve(ing.path)), ing.kind, f"ensemble.ingest.{i}.path")
    members = expand_members(cfg, task)  # ingest patterns matching nothing raise here
    ids = [m.id for m in members] + list(in_memory)
    clash = sorted(set(members_ids := [m.id for m in members]) & set(in_memory))
    if clash:
        raise ConfigError(
            f"run_study(members=...): id(s) {', '.join(clash)} are also members of the config "
            f"({len(members_ids)} there); give in-memory members ids of their own"
        )
    if not ids and not _has_models(path):
        raise ConfigError(
            "ensemble: the study has no members (ensemble.seeds is empty and nothing is listed "
            "under ensemble.ingest); give at least one seed or ingested model"
        )
    # what these stages build (twins of ingested members go with them, like stage_members)
    built = [m.id for m in members if _built_by("ingested" if m.ingest else m.source, wanted)]
    unknown = [m for m in redo if m not in built and not is_part(m)]
    if unknown:
        raise ConfigError(
            f"--redo {', '.join(unknown)}: not a member these stages build (members: "
            f"{', '.join(built) or 'none'}) nor a part of the store (root, probe, "
            "similarity/<layer>, consensus/<layer>, distill)"
        )
    if _built_by("ingested", wanted):
        done = _done_members(path, members)
        for m in members:
            pattern = m.ingest.get("pattern") if m.source == "ingested" else None
            if pattern and glob.has_magic(pattern) and (m.id not in done or m.id in redo):
                where = f"member {m.id!r} (pattern {pattern!r})"
                check_ingest_file(m.ingest["path"], m.ingest["kind"], where)


def check_device(cfg: StudyConfig, wanted: Sequence[str], executor: Any = None) -> None:
    """Refuse, before anything is written, ``execution.device: cuda`` where torch sees no CUDA
    device and a stage that uses it (train, compare, consensus) is to run. Checked by one small
    task on the given executor (where the work will run), else here for the ``local`` and
    ``serial`` schedulers (their workers run on this machine); the workers of a remote
    scheduler raise the same error when their first task starts."""
    if cfg.execution.device != "cuda" or not {"train", "compare", "consensus"} & set(wanted):
        return
    from ..similarity._device import moments_backend

    if executor is not None:
        executor.submit(moments_backend, "cuda", "execution.device").result()
    elif cfg.execution.scheduler in ("local", "serial"):
        moments_backend("cuda", "execution.device")


def _built_by(source: str, wanted: Sequence[str]) -> bool:
    """Whether the stages ``wanted`` build a member of this kind: ``train`` builds the task's
    members and their twins, ``record`` the ingested ones and theirs (the stage's ``only``)."""
    if "train" in wanted and "record" in wanted:
        return True
    return ("train" in wanted and source != "ingested") or (
        "record" in wanted and source == "ingested"
    )


def check_ingest_file(file: str | None, kind: str, where: str) -> None:
    """An ingested member's file exists, and a torch file starts like one (zip or pickle)."""
    if not file:
        return
    path = Path(file)
    if not path.exists():
        raise ConfigError(f"{where}: no such file or directory: {path}")
    if kind in ("state_dict", "torchscript") and path.is_file():
        with open(path, "rb") as fh:
            head = fh.read(4)
        if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
            raise ConfigError(
                f"{where}: {path} is not a torch file (torch.save writes a zip archive "
                f"or a pickle; this starts with {head!r})"
            )


def _done_members(path: Path, members: Sequence[Any]) -> set[str]:
    from .members import is_done

    if not (path / "zarr.json").is_file():
        return set()
    store = open_store(path, mode="r")
    return {m.id for m in members if is_done(store, m)}


def _has_models(path: Path) -> bool:
    if not (path / "zarr.json").is_file():
        return False
    return bool(open_store(path, mode="r").complete_models)


def _run_stage(stage: Stage, ctx: StageContext, wanted: tuple[str, ...]) -> Any:
    if stage == "probe":
        return stage_probe(ctx)
    if stage == "train":
        return stage_members(ctx, only=None if "record" in wanted else "trained")
    if stage == "record":
        return "done with train" if "train" in wanted else stage_members(ctx, only="ingested")
    if stage == "compare":
        return stage_similarity(ctx)
    if stage == "consensus":
        return stage_consensus(ctx)
    if stage == "distill":
        from .distill_stage import stage_distill

        return stage_distill(ctx)
    if stage == "templates":
        from .template_stage import stage_templates

        return stage_templates(ctx)
    from ..report import build_report

    return build_report(ctx.store).html
