"""Run a whole study, or some of its stages, from one config."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from ..config import StudyConfig, load_config
from ..record.store import StudyStore, open_store
from .stages import (
    Progress,
    StageContext,
    stage_consensus,
    stage_members,
    stage_probe,
    stage_similarity,
)

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

    Examples
    --------
    >>> result = run_study("configs/demo.yaml")          # doctest: +SKIP
    >>> [f["expression"] for f in result.formulas]       # doctest: +SKIP
    """
    cfg = load_config(config)
    if not isinstance(store, StudyStore):
        store = open_store(store if store is not None else cfg.store_path(), mode="a")
    store.write_study_attrs(
        config=cfg.model_dump(mode="json"),
        config_sha256=cfg.sha256(),
        study=cfg.name,
        task=cfg.task.name if cfg.task else None,
        package_versions=package_versions(),
    )
    from .members import task_of

    wanted = tuple(stages) if stages else ALL_STAGES
    result = StudyResult(store)
    with _executor_for(cfg, executor) as ex:
        ctx = StageContext(cfg, store, task_of(cfg), ex, progress)
        for stage in ALL_STAGES:
            if stage not in wanted:
                continue
            start = time.perf_counter()
            result.outcomes[stage] = _run_stage(stage, ctx, wanted)
            result.timings[stage] = time.perf_counter() - start
            log.info("stage %s: %.1f s", stage, result.timings[stage])
            timings = {**store.study_attrs().get("stage_timings", {}), **result.timings}
            store.write_study_attrs(stage_timings=timings)  # before the report reads them
    if "report" in wanted:
        result.report = result.outcomes.get("report")
    return result


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
