"""Study configuration: pydantic models loaded from YAML, strict about unknown keys.

A study is one task, one probe set, an ensemble (seeds x architecture variants x data subsets,
plus ingested members), and the settings of each analysis stage. Every error names the YAML
path of the bad key, e.g. ``demo.yaml: ensemble.architectures.1.width: Input should be ...``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError

Metric = Literal[
    "linear_cka",
    "linear_cka_debiased",
    "rbf_cka",
    "mean_cca",
    "svcca",
    "pwcca",
    "procrustes_similarity",
    "shape_distance",
    "rsa",
    "mutual_knn",
    "linear_predictivity",
]


_DEFAULT_METRICS: tuple[Metric, ...] = (
    "linear_cka",
    "mean_cca",
    "procrustes_similarity",
    "shape_distance",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskConfig(_Strict):
    """Which task: a built-in name (``gravity``, ``spring`` ...) or ``"module:callable"``."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class ProbeConfig(_Strict):
    """The shared probe set every member is recorded on."""

    n: int = Field(default=4000, ge=10)
    seed: int = 12345
    test_fraction: float = Field(default=0.25, gt=0.0, lt=1.0)
    n_extrapolation: int = Field(default=2000, ge=0)


class IngestConfig(_Strict):
    """A member that was trained elsewhere.

    ``kind``: ``module`` (a ``"module:callable"`` returning an ``nn.Module``), ``torchscript``
    (a saved TorchScript file), ``state_dict`` (a state_dict file plus a ``factory``
    ``"module:callable"`` building the architecture), or ``activations`` (precomputed
    activations: .npz with one array per layer, or an xarray/netCDF/Zarr dataset).
    """

    id: str
    kind: Literal["module", "torchscript", "state_dict", "activations"]
    path: str | None = None
    factory: str | None = None
    factory_kwargs: dict[str, Any] = Field(default_factory=dict)
    layers: list[str] | None = None
    input_fn: str | None = None
    sample_ids: Literal["check", "probe_order"] = "check"
    attrs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _needs(self) -> IngestConfig:
        if self.kind in ("torchscript", "state_dict", "activations") and not self.path:
            raise ValueError(f"kind {self.kind!r} needs 'path'")
        if self.kind in ("module", "state_dict") and not self.factory:
            raise ValueError(f"kind {self.kind!r} needs 'factory' ('module:callable')")
        return self


class EnsembleConfig(_Strict):
    """Members = seeds x architecture variants x data subsets (+ ingested members).

    ``architectures`` are overrides of the task's default architecture (``{}`` = default);
    ``train`` overrides the task's default training settings.
    """

    seeds: list[int] = Field(default_factory=lambda: list(range(8)))
    architectures: list[dict[str, Any]] = Field(default_factory=lambda: [dict[str, Any]()])
    train: dict[str, Any] = Field(default_factory=dict)
    data_subsets: int = Field(default=1, ge=1)
    untrained_null: bool = True
    ingest: list[IngestConfig] = Field(default_factory=list)


class RecordConfig(_Strict):
    layers: list[str] | None = None  # default: the task's latent layer
    batch_size: int = Field(default=4096, ge=1)


class SimilarityConfig(_Strict):
    metrics: list[Metric] = Field(default_factory=lambda: list(_DEFAULT_METRICS))
    n_perm: int = Field(default=0, ge=0)
    seed: int = 0


class ConsensusConfig(_Strict):
    method: Literal["gcca", "procrustes"] = "gcca"
    variance_keep: float = Field(default=0.99, gt=0.0, le=1.0)
    n_components: int | None = None
    n_null: int = Field(default=20, ge=1)
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    p_support: float = Field(default=0.8, gt=0.0, le=1.0)
    min_variance: float = Field(default=0.01, ge=0.0, lt=1.0)
    max_untrained_r2: float = Field(default=0.9, gt=0.0, le=1.0)
    min_learned_share: float = Field(default=0.02, ge=0.0, lt=1.0)
    #: member weights of the consensus scores: precision from held-out validation error
    #: (``1 / (1 - val_r2)``; equal when a member has no val_r2), or equal
    weights: Literal["validation", "equal"] = "validation"
    seed: int = 0


class DistillConfig(_Strict):
    enabled: bool = True
    backend: Literal["operon", "sparse", "pysr"] = "operon"
    time_budget: float = Field(default=30.0, gt=0.0)
    seeds: list[int] = Field(default_factory=lambda: [0])
    max_points: int = Field(default=800, ge=20)
    #: reduce each invariant's formula modulo the others' where simpler (monotone latents)
    reduce: bool = True
    options: dict[str, Any] = Field(default_factory=dict)


class TemplatesConfig(_Strict):
    """Formula-level consensus: distill each member's own components, find the shared
    template (formulas equal up to constants) and each member's constants.

    ``backend``: ``auto`` is the Fourier backend when the task (or ``periodic``) declares
    periodic inputs, else ``distill.backend`` with ``distill.options``. ``periodic``: declared
    periodic inputs and their periods (``{a: 23}``), added to the task's ``periodic_inputs``.
    """

    enabled: bool = False
    backend: Literal["auto", "fourier", "operon", "sparse", "pysr"] = "auto"
    time_budget: float = Field(default=10.0, gt=0.0)
    max_components: int = Field(default=3, ge=1)
    variance_keep: float = Field(default=0.9, gt=0.0, le=1.0)
    r2_threshold: float = Field(default=0.9, gt=0.0, le=1.0)
    p_support: float = Field(default=0.8, gt=0.0, le=1.0)
    max_points: int = Field(default=800, ge=20)
    periodic: dict[str, int] = Field(default_factory=dict)
    seed: int = 0


class GroupsConfig(_Strict):
    """Groups of members from the ``metric`` similarity matrix (a permutation null decides
    whether there is more than one); consensus and distillation per group when
    ``per_group`` and there are several."""

    enabled: bool = False
    metric: Metric = "linear_cka"
    n_perm: int = Field(default=499, ge=19)
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    max_groups: int = Field(default=4, ge=2)
    min_size: int = Field(default=2, ge=1)
    per_group: bool = True
    seed: int = 0


class JobqueueConfig(_Strict):
    """A dask-jobqueue cluster (SLURM, PBS, ...); extra keys go to the cluster class."""

    kind: Literal["slurm", "pbs", "sge", "lsf", "htcondor"] = "slurm"
    jobs: int = Field(default=1, ge=1)
    cores: int = Field(default=1, ge=1)
    memory: str = "4GB"
    options: dict[str, Any] = Field(default_factory=dict)


class ExecutionConfig(_Strict):
    """``scheduler``: ``local`` (a LocalCluster of processes), ``serial`` (in-process),
    ``jobqueue`` (see ``jobqueue``) or a scheduler address ``tcp://host:8786``."""

    scheduler: str = "local"
    workers: int | None = None
    retries: int = Field(default=2, ge=0)
    jobqueue: JobqueueConfig | None = None


class StudyConfig(_Strict):
    """A whole study, as read from one YAML file."""

    name: str = "study"
    task: TaskConfig
    probe: ProbeConfig = Field(default_factory=ProbeConfig)
    ensemble: EnsembleConfig = Field(default_factory=EnsembleConfig)
    record: RecordConfig = Field(default_factory=RecordConfig)
    similarity: SimilarityConfig = Field(default_factory=SimilarityConfig)
    consensus: ConsensusConfig = Field(default_factory=ConsensusConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    templates: TemplatesConfig = Field(default_factory=TemplatesConfig)
    groups: GroupsConfig = Field(default_factory=GroupsConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    store: str | None = None  # default: runs/<name>/study.zarr relative to the working dir

    def sha256(self, *parts: str) -> str:
        """Hash of the whole config, or of the named top-level sections only."""
        data = self.model_dump(mode="json")
        if parts:
            data = {p: data[p] for p in parts}
        return stable_hash(data)

    def store_path(self) -> Path:
        return Path(self.store) if self.store else Path("runs") / self.name / "study.zarr"


def stable_hash(data: Any) -> str:
    """sha256 of the canonical JSON of ``data``."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _format_errors(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"{source}: {loc}: {e['msg']}")
    return "invalid study config\n" + "\n".join(lines)


def parse_config(data: dict[str, Any], source: str = "<config>") -> StudyConfig:
    """Validate a config mapping; errors name the YAML path of each bad key."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        return StudyConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from err


def load_config(path_or_data: str | os.PathLike[str] | dict[str, Any] | StudyConfig) -> StudyConfig:
    """Load a study config from a YAML file, a mapping, or pass a StudyConfig through.

    Examples
    --------
    >>> cfg = load_config({"task": {"name": "gravity"}, "ensemble": {"seeds": [0, 1]}})
    >>> cfg.ensemble.seeds
    [0, 1]
    """
    if isinstance(path_or_data, StudyConfig):
        return path_or_data
    if isinstance(path_or_data, dict):
        return parse_config(path_or_data)
    path = Path(path_or_data)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror}") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    return parse_config(data or {}, source=str(path))


def with_profile(cfg: StudyConfig, profile: str | os.PathLike[str]) -> StudyConfig:
    """The config with its ``execution`` section replaced by an execution profile (YAML)."""
    path = Path(profile)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read execution profile {path}: {err}") from err
    try:
        execution = ExecutionConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, f"{path} (execution profile)")) from err
    return cfg.model_copy(update={"execution": execution})
