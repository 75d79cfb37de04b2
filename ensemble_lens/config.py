"""Study configuration: pydantic models loaded from YAML, strict about unknown keys.

A study is one task, one probe set, an ensemble (seeds x architecture variants x data subsets,
plus ingested members), and the settings of each analysis stage. The task is optional: a study
on the user's own networks takes its probe from a data file (``probe.path``) and its members
from ``ensemble.ingest`` patterns; relative paths and user modules resolve from the YAML's
folder (``base_dir``). Every error names the YAML
path of the bad key, e.g. ``demo.yaml: ensemble.architectures.1.width: Input should be ...``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from ._config_errors import format_errors
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


FORMULA_TASK = "ensemble_lens.tasks.formula:FormulaTask"
_FORMULA_KEYS = ("formula", "variables", "noise", "n", "extrapolation", "output")


class TaskConfig(_Strict):
    """Which task: a built-in name (``gravity``, ``spring`` ...) or ``"module:callable"``, or
    a law written as a formula::

        task: {formula: "q1*q2/(4*pi*epsilon*r**2)", variables: {q1: [1, 5], ...},
               noise: 0.01, n: 10000, extrapolation: 1.5, output: F}

    The formula form is stored as ``name: ensemble_lens.tasks.formula:FormulaTask`` with the
    keys as ``params`` (see :class:`ensemble_lens.tasks.FormulaTask`), and checked (formula,
    variables, ranges) when the config is read.
    """

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _formula_form(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "formula" not in data:
            return data
        extra = sorted(set(data) - set(_FORMULA_KEYS))
        if extra:
            raise ValueError(
                f"a formula task takes {', '.join(_FORMULA_KEYS)}; unexpected key {extra[0]!r}"
            )
        if "variables" not in data:
            raise ValueError("a formula task needs 'variables' ({name: [low, high], ...})")
        return {"name": FORMULA_TASK, "params": dict(data)}

    @model_validator(mode="after")
    def _check_formula(self) -> TaskConfig:
        if self.name == FORMULA_TASK:
            from .errors import TaskError
            from .tasks.formula import FormulaTask

            try:
                FormulaTask(**self.params)
            except TaskError as err:
                raise ValueError(str(err)) from None
            except TypeError as err:
                raise ValueError(f"formula task: {err}") from None
        return self


class ProbeConfig(_Strict):
    """The shared probe set every member is recorded on."""

    n: int = Field(default=4000, ge=10)
    seed: int = 12345
    test_fraction: float = Field(default=0.25, gt=0.0, lt=1.0)
    n_extrapolation: int = Field(default=2000, ge=0)
    #: a data file of probe inputs instead of a task's sampler (CSV, Parquet, .npz, netCDF,
    #: Zarr); relative to the config file's folder. See :mod:`ensemble_lens.record.probe_file`.
    path: str | None = None
    #: named scalar variables (columns) of the file, in order (default: every numeric column
    #: that is not the split, a truth or an id column)
    variables: list[str] | None = None
    #: the split column (values fit/test/extrapolation) or the test fraction of a seeded split
    split: str | float | None = None
    #: ground-truth latents given in the file: latent name -> column
    truth: dict[str, str] = Field(default_factory=dict)
    #: the columns the networks were trained to predict, in the order of their outputs: each
    #: ingested network's R^2 on them (probe test rows) is its val_r2, so the member-skill
    #: check (consensus.min_member_r2) runs on networks trained elsewhere
    target: list[str] | None = None
    #: arrays of the file fed to the networks as they are (images, sequences, token ids);
    #: one name -> one tensor, several -> a dict of tensors (default: the named variables)
    inputs: list[str] | None = None
    #: the column of unique integer sample ids (default 0..n-1)
    sample_id: str | None = None

    @model_validator(mode="after")
    def _split_value(self) -> ProbeConfig:
        if isinstance(self.split, float) and not 0.0 < self.split < 1.0:
            raise ValueError(f"split: a test fraction must be in (0, 1), got {self.split}")
        if self.target and self.path is None:
            raise ValueError(
                f"target {self.target}: target columns are read from a probe file; expected "
                "probe.path (a task's members carry their own validation R^2)"
            )
        return self


class IngestConfig(_Strict):
    """A member that was trained elsewhere, or many: a ``path`` with glob characters
    (``runs/seed*/model.pt``) expands to one member per matching file, in sorted order, with
    ``id`` a template of ``{stem}``, ``{name}``, ``{parent}`` and ``{index}``.

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
    #: kind activations: a file of the member's activations on the probe's extrapolation rows
    #: (same layers, one row per extrapolation row); a template like ``id`` for a pattern
    extrapolation_path: str | None = None

    @model_validator(mode="after")
    def _needs(self) -> IngestConfig:
        if self.kind in ("torchscript", "state_dict", "activations") and not self.path:
            raise ValueError(f"kind {self.kind!r} needs 'path'")
        if self.kind in ("module", "state_dict") and not self.factory:
            raise ValueError(f"kind {self.kind!r} needs 'factory' ('module:callable')")
        if self.extrapolation_path and self.kind != "activations":
            raise ValueError(
                f"'extrapolation_path' is for kind 'activations'; a {self.kind} network is run "
                "on the probe's extrapolation rows itself"
            )
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


def _check_metric_names(names: list[str]) -> list[str]:
    """Every name must be a Metric above or a registry name (``ensemble-lens measures``)."""
    from .similarity import measure

    for name in names:
        if name in get_args(Metric):
            continue
        try:
            measure(name)
        except ValueError as err:  # UnknownMeasureError, MeasureParameterError, ShapeError
            raise ValueError(f"{err} (see `ensemble-lens measures`)") from None
    return names


_BYTE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}  # fmt: skip


def byte_size(value: int | str) -> int:
    """Bytes of ``1GB``, ``512MiB``, ``2e9`` or an int (a 10-line parser rather than importing
    dask's ``parse_bytes``: the config module must stay light)."""
    if isinstance(value, int):
        size = value
    else:
        text = str(value).strip().upper().replace(" ", "")
        num = text.rstrip("KMGTIB")
        try:
            size = int(float(num) * _BYTE_UNITS[text[len(num) :]])
        except (KeyError, ValueError):
            raise ValueError(f"expected a size like '1GB' or '512MiB', got {value!r}") from None
    if size <= 0:
        raise ValueError(f"expected a positive size, got {value!r}")
    return size


def _check_bytes(value: int | str) -> int | str:
    byte_size(value)
    return value


class SimilarityConfig(_Strict):
    #: a Metric name or any standardized name of the similarity registry
    metrics: Annotated[list[str], AfterValidator(_check_metric_names)] = Field(
        default_factory=lambda: list(_DEFAULT_METRICS)
    )
    n_perm: int = Field(default=0, ge=0)
    seed: int = 0
    #: memory bound of one block of the all-pairs stage (a worker's working set for it):
    #: "1GB", "512MiB" or bytes; not part of the result's tag (the values do not depend on it)
    block_memory: Annotated[int | str, AfterValidator(_check_bytes)] = "1GB"


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
    #: member skill: a member whose validation R^2 (val_r2) is below this learnt nothing of its
    #: task; when fewer than the share p_support of the scored members reach it, the study
    #: stops short of formulas (None: no check)
    min_member_r2: float | None = Field(default=0.5, le=1.0)


class DimensionsConfig(_Strict):
    """Units for dimensional analysis (``distill.dimensions``): an output layer searched in its
    target's units is searched on the inputs' dimensionless groups
    (:mod:`ensemble_lens.distill.dimensions`)::

        dimensions: {variables: {m0: kg, v: m/s, c: m/s}, target: kg}
    """

    #: YAML reads ``sigma: 1`` as the number 1: a number is taken as a unit ("1": none)
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    #: each formula variable's unit: unit names of sympy.physics.units ('kg*m/s**2', 'N',
    #: 'V/m'), '1' for a dimensionless variable
    variables: dict[str, str]
    #: the target's unit, or one per output unit of the layer
    target: str | list[str] = "1"

    @model_validator(mode="after")
    def _check_units(self) -> DimensionsConfig:
        from .distill.dimensions import Dimensions

        try:
            Dimensions(self.variables, self.target)
        except ConfigError as err:  # the key path already says distill.dimensions
            raise ValueError(str(err).removeprefix("dimensions: ")) from None
        return self

    def dimensions(self) -> Any:
        """The :class:`~ensemble_lens.distill.dimensions.Dimensions` these units describe."""
        from .distill.dimensions import Dimensions

        return Dimensions(dict(self.variables), self.target)


class DistillConfig(_Strict):
    enabled: bool = True
    backend: Literal["operon", "sparse", "pysr"] = "operon"
    #: seconds per formula search, or None (default): the search is bounded by its work
    #: budget (``options``: operon ``generations``/``population_size``/``max_evaluations``,
    #: pysr ``niterations``), so the same config gives the same formulas on a busy or an
    #: idle machine; a time budget makes them depend on the load (recorded per formula)
    time_budget: float | None = Field(default=None, gt=0.0)
    seeds: list[int] = Field(default_factory=lambda: [0])
    max_points: int = Field(default=800, ge=20)
    #: reduce each invariant's formula modulo the others' where simpler (monotone latents)
    reduce: bool = True
    #: probe variables formulas may use (default: all named probe variables)
    variables: list[str] | None = None
    #: unary SR primitives (``exp``, ``log``, ``sin`` ...; default: the task's ``sr_functions``)
    functions: list[str] | None = None
    #: input variables a vector latent turns with, e.g. [dx, dy, dz] (default: the task's)
    equivariant_vector: list[str] | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    #: a formula whose extrapolation R^2 is below 0, or more than this below its test R^2,
    #: is not a result (kept as ``rejected_expression``)
    max_extrapolation_drop: float = Field(default=0.5, ge=0.0)
    #: drop-one-member check: the formula is unstable when, refitted on the mean of the other
    #: members, its R^2 falls more than this below its R^2 on the mean of all members
    stability_tolerance: float = Field(default=0.02, gt=0.0)
    #: a formula that explains (R^2 >= 0.9) fewer than this share of the members' own
    #: components is not a result: it fits the average, not what the members carry
    min_support: float = Field(default=0.5, ge=0.0, le=1.0)
    #: a formula is a closed form only if its search front has a knee: somewhere up to the
    #: chosen formula one added node cuts the unexplained variance by at least exp(min_knee)
    #: (0 switches the check off; see ensemble_lens.distill.verdict.front_knee)
    min_knee: float = Field(default=0.5, ge=0.0)
    #: member bootstrap: this many resamples of the members (with replacement), each searched
    #: again (that many more searches per component); 0: off (drop-one stability only)
    bootstrap: int = Field(default=0, ge=0)
    #: a formula whose form comes back in fewer of the resamples than this share is flagged
    bootstrap_min_agreement: float = Field(default=0.8, ge=0.0, le=1.0)
    #: the units of the formula variables and of the target: the output layer is then searched
    #: on dimensionless groups (None: on the variables themselves)
    dimensions: DimensionsConfig | None = None


class TemplatesConfig(_Strict):
    """Formula-level consensus: distill each member's own components, find the shared
    template (formulas equal up to constants) and each member's constants.

    ``backend``: ``auto`` is the Fourier backend when the task (or ``periodic``) declares
    periodic inputs, else ``distill.backend`` with ``distill.options``. ``periodic``: declared
    periodic inputs and their periods (``{a: 23}``), added to the task's ``periodic_inputs``.
    """

    enabled: bool = False
    backend: Literal["auto", "fourier", "operon", "sparse", "pysr"] = "auto"
    #: seconds per member-component search, or None (default): work budget only (as
    #: ``distill.time_budget``)
    time_budget: float | None = Field(default=None, gt=0.0)
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
    # a list: each tested at alpha / len (Bonferroni), the smallest p decides. The default
    # pairs a global measure (linear CKA: members that share a subspace) with a local one
    # (mutual kNN overlap: members whose neighbourhoods agree, which tells Clock from Pizza
    # networks that pick their own frequencies); a default metric the similarity stage did
    # not compute is computed for the groups alone
    metric: Metric | Annotated[list[Metric], Field(min_length=1)] = Field(
        default_factory=lambda: ["linear_cka", "mutual_knn"]
    )
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
    #: members built per executor task (None: enough tasks for ~4 per worker, at most 64
    #: members each); a finished member is stored at once, so resume stays per member
    members_per_task: int | None = Field(default=None, ge=1)
    #: where members train: ``cpu``, ``cuda`` (error when there is none) or ``auto``; the
    #: moments pass of compare and consensus too (``cpu``: numpy; ``cuda``/``auto``: torch
    #: GEMMs on the GPU, ``auto`` falling back to numpy; ``torch-cpu``: torch GEMMs on the CPU)
    device: Literal["cpu", "cuda", "auto", "torch-cpu"] = "cpu"
    #: ``member``: one network at a time (bit-reproducible); ``vmap``: members of one
    #: architecture and training spec in a task train together (torch.func, stacked params)
    train_mode: Literal["member", "vmap"] = "member"
    #: most members trained together by one vmap call (bounds the stacked parameter memory)
    vmap_max_members: int = Field(default=64, ge=1)


class StudyConfig(_Strict):
    """A whole study, as read from one YAML file."""

    name: str = "study"
    #: None: a study on ingested members and a probe file (or a probe already in the store)
    task: TaskConfig | None = None
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
    #: folder that relative paths and user modules ("module:callable") are resolved from;
    #: set to the YAML file's folder by :func:`load_config` (not part of the hash)
    base_dir: str | None = None

    def sha256(self, *parts: str) -> str:
        """Hash of the whole config, or of the named top-level sections only."""
        data = self.model_dump(mode="json")
        data.pop("base_dir", None)
        if parts:
            data = {p: data[p] for p in parts}
        return stable_hash(data)

    def store_path(self) -> Path:
        return Path(self.store) if self.store else Path("runs") / self.name / "study.zarr"

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """``path`` relative to :attr:`base_dir` (absolute paths unchanged)."""
        p = Path(path).expanduser()
        return p if p.is_absolute() or self.base_dir is None else Path(self.base_dir) / p

    def use_base_dir(self) -> None:
        """Put :attr:`base_dir` first on ``sys.path`` so a user module next to the config
        imports by name ("mynets:make") without PYTHONPATH (also on workers)."""
        if self.base_dir and self.base_dir not in sys.path:
            sys.path.insert(0, self.base_dir)


def stable_hash(data: Any) -> str:
    """sha256 of the canonical JSON of ``data``."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def parse_config(data: dict[str, Any], source: str = "<config>") -> StudyConfig:
    """Validate a config mapping; errors name the YAML path of each bad key."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        cfg = StudyConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_errors(err, source, StudyConfig)) from err
    _check_member_specs(cfg.ensemble, source)
    return cfg


# valid stand-ins for the fields a task's defaults fill in, so that the overrides a config
# gives are checked (names, types, ranges) before the task is known or anything is written
_ARCH_STANDIN = {"family": "mlp", "width": 1, "depth": 1, "activation": "relu", "latent_dim": 1}
_TRAIN_STANDIN = {"epochs": 1, "batch_size": 1, "lr": 1.0, "n_train": 1, "n_val": 1, "patience": 1}


def _check_member_specs(ens: EnsembleConfig, source: str) -> None:
    """Validate ``ensemble.train`` and each ``ensemble.architectures`` entry key by key."""
    from .models.spec import ArchSpec, TrainSpec

    checks = [(("ensemble", "train"), TrainSpec, _TRAIN_STANDIN, ens.train)]
    for i, arch in enumerate(ens.architectures):
        checks.append((("ensemble", "architectures", i), ArchSpec, _ARCH_STANDIN, arch))
    for loc, spec, standin, given in checks:
        try:
            spec.model_validate({**standin, **given})
        except ValidationError as err:
            raise ConfigError(format_errors(err, source, spec, prefix=loc)) from err


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
    data = data or {}
    if isinstance(data, dict) and "base_dir" not in data:
        data = {**data, "base_dir": str(path.resolve().parent)}
    return parse_config(data, source=str(path))


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
        raise ConfigError(
            format_errors(err, f"{path} (execution profile)", ExecutionConfig)
        ) from err
    return cfg.model_copy(update={"execution": execution})
