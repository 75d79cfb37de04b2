"""The ensemble's members: expanded from the config, each trained/loaded and recorded by one task.

A member task receives store coordinates and a JSON-able spec, never arrays, and writes its
model group through the store's staging, so a killed worker leaves no half-written member.
"""

from __future__ import annotations

import contextlib
import glob
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..config import StudyConfig, stable_hash
from ..errors import ConfigError, IngestError
from ..record.store import COMPLETE, open_store
from .replay import replay_epochs


@dataclass(frozen=True)
class MemberSpec:
    """One member of the ensemble, as plain JSON-able data."""

    id: str
    source: str  # "trained" | "untrained" | "ingested"
    seed: int = 0
    arch: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    ingest: dict[str, Any] = field(default_factory=dict)
    tag: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def task_of(cfg: StudyConfig) -> Any:
    from ..tasks import get_task

    if cfg.task is None:
        return None
    return get_task(cfg.task.name, **cfg.task.params)


def expand_members(cfg: StudyConfig, task: Any) -> list[MemberSpec]:
    """Members = seeds x architecture variants x data subsets, then ingested members.

    Ids: ``s<seed>`` with one variant and one subset, else ``a<variant>-d<subset>-s<seed>``.
    Each member's tag hashes everything that determines its weights and recording.
    """
    base = {
        "task": cfg.task.model_dump(mode="json") if cfg.task else None,
        "probe": _probe_key(cfg),
        "record": cfg.record.model_dump(mode="json"),
    }
    members: list[MemberSpec] = []
    if task is not None and cfg.ensemble.seeds:
        members += _trained(cfg, task, base)
    taken: set[int] = set()
    for ing in cfg.ensemble.ingest:
        for spec in expand_ingest(cfg, ing):
            tag = stable_hash({**base, **_tagged(spec)})
            members.append(MemberSpec(spec["id"], "ingested", ingest=spec, tag=tag))
            if cfg.ensemble.untrained_null and _has_twin(spec):
                seed = twin_seed(spec, taken)
                # a twin seeded as before (its index) keeps its tag; another is recorded anew
                twin_tag = tag if seed == spec["index"] else stable_hash([tag, seed])
                members.append(
                    MemberSpec(f"null-{spec['id']}", "untrained", seed, ingest=spec, tag=twin_tag)
                )
    _unique(members)
    return members


#: ingest fields left out of the member tag: added after stores were made (which keep their
#: members), and the extrapolation file has a tag of its own (pipeline/extrapolation.py)
_LATER_INGEST_FIELDS = ("extrapolation_path",)


def _tagged(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k not in _LATER_INGEST_FIELDS}


def twin_seed(spec: dict[str, Any], taken: set[int]) -> int:
    """The seed of an ingested member's untrained twin, distinct from every seed in ``taken``
    (which it joins): its index in its pattern's matches when the entry is a pattern and
    that index is free (the seed twins always had), else one derived from the member's id
    (sha256), so twins of single-file entries, or of a second pattern, differ."""
    seed = int(spec["index"])
    if not (spec.get("pattern") and glob.has_magic(spec["pattern"])) or seed in taken:
        text = str(spec["id"])
        while (seed := int(stable_hash(text)[:8], 16) % 2**31) in taken:
            text += "+"
    taken.add(seed)
    return seed


def _probe_key(cfg: StudyConfig) -> dict[str, Any]:
    """The probe settings that decide what members see: unset (None or empty) fields and the
    truth columns (which change no activation) are left out, so a store made before those
    fields existed keeps its member tags, and naming a truth column records nothing again."""
    dump = cfg.probe.model_dump(mode="json")
    return {k: v for k, v in dump.items() if k != "truth" and v not in (None, [], {})}


def expand_ingest(cfg: StudyConfig, ing: Any) -> list[dict[str, Any]]:
    """One ingest entry as the specs of its members: a ``path`` with glob characters gives
    one member per matching file, sorted by name (numbers compared as numbers: seed2 before
    seed10), with ``id`` filled in from ``{stem}``, ``{name}``, ``{parent}``, ``{index}``.

    Each spec holds the resolved ``path``, the ``pattern`` it came from, its ``index`` and
    the ``file_sha256`` of the file (a changed file is recorded again).
    """
    from ..record.probe_file import file_digest
    from .extrapolation import extrapolation_file

    spec = ing.model_dump(mode="json")
    if ing.path is None:
        return [{**spec, "index": 0, "pattern": None}]
    where = f"ingest entry {ing.id!r}"
    pattern = str(cfg.resolve(ing.path))
    if glob.has_magic(pattern):
        files = sorted(glob.glob(pattern, recursive=True), key=_natural)
        if not files:
            raise IngestError(
                f"{where}: pattern {ing.path!r} matches no file (searched {pattern}); "
                "expected at least one"
            )
    else:
        if not Path(pattern).exists():
            raise IngestError(f"{where}: file {pattern} does not exist")
        files = [pattern]
    if len(files) > 1 and "{" not in ing.id:
        raise ConfigError(
            f"{where}: pattern {ing.path!r} matches {len(files)} files, so 'id' must be a "
            "template such as '{stem}', '{parent}' or 'm{index}' to give each member its own id"
        )
    out = []
    for index, f in enumerate(files):
        p = Path(f)
        try:
            mid = ing.id.format(stem=p.stem, name=p.name, parent=p.parent.name, index=index)
        except (KeyError, IndexError, ValueError) as err:
            raise ConfigError(
                f"{where}: id template {ing.id!r}: expected placeholders {{stem}}, {{name}}, "
                f"{{parent}} or {{index}} ({err})"
            ) from err
        digest = file_digest(p)
        out.append(
            {
                **spec,
                "id": mid,
                "path": str(p),
                "pattern": ing.path,
                "index": index,
                "file_sha256": digest,
                "extrapolation_path": extrapolation_file(cfg, ing, p, index),
            }
        )
    return out


def _has_twin(spec: dict[str, Any]) -> bool:
    """An untrained twin needs a factory that builds the untrained architecture: state_dict
    and TorchScript members with a factory (a ``module`` factory may load trained weights)."""
    return bool(spec.get("factory")) and spec["kind"] in ("state_dict", "torchscript")


def _natural(text: str) -> list[Any]:
    """Sort key comparing runs of digits as numbers (``seed2`` < ``seed10``)."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text)]


def _unique(members: list[MemberSpec]) -> None:
    from ..record._zarrio import _check_name

    seen: dict[str, str] = {}
    for m in members:
        _check_name("member id", m.id)
        where = m.ingest.get("path") or m.source
        if m.id in seen:
            raise ConfigError(
                f"member id {m.id!r} is given twice ({seen[m.id]} and {where}); expected "
                "unique ids (use an id template such as '{parent}-{stem}')"
            )
        seen[m.id] = where


def _trained(cfg: StudyConfig, task: Any, base: dict[str, Any]) -> list[MemberSpec]:
    from ..models.spec import ArchSpec, TrainSpec

    ens = cfg.ensemble
    train_base = task.default_train.model_dump()
    out = []
    for v, override in enumerate(ens.architectures):
        arch = ArchSpec(**{**task.default_arch.model_dump(), **override}).model_dump()
        for subset in range(ens.data_subsets):
            train = {**train_base, **ens.train}
            if ens.data_subsets > 1:
                train["data_seed"] = (train.get("data_seed") or 0) + subset
            TrainSpec(**train)  # validate early, in the main process
            simple = len(ens.architectures) == 1 and ens.data_subsets == 1
            for seed in ens.seeds:
                mid = f"s{seed}" if simple else f"a{v}-d{subset}-s{seed}"
                spec = {"arch": arch, "train": train, "seed": seed}
                tag = stable_hash({**base, **spec})
                out.append(MemberSpec(mid, "trained", seed, arch, train, tag=tag))
                if ens.untrained_null:
                    out.append(MemberSpec(f"null-{mid}", "untrained", seed, arch, train, tag=tag))
    return out


def is_done(store: Any, member: MemberSpec) -> bool:
    """A member is done when its group is complete, was made with the same tag and recorded
    on the probe the store holds now (its ``probe_digest``, where recorded)."""
    if store.status(member.id) != COMPLETE:
        return False
    attrs = store.model_attrs(member.id)
    on = attrs.get("probe_digest")
    return attrs.get("tag") == member.tag and (on is None or on == store.probe_digest())


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Training and recording run with one torch thread, so results do not depend on where
    (serial or which worker) a member ran."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_member(
    store_path: str, cfg_json: dict[str, Any], member_json: dict[str, Any], force: bool = False
) -> dict[str, Any]:
    """Executor task: build (train / load) one member and record it. Returns its metrics.

    ``force`` rebuilds a member that is stored complete (``--redo``)."""
    from ..config import load_config

    cfg = load_config(cfg_json)
    cfg.use_base_dir()  # user modules next to the config import on workers too
    member = MemberSpec(**member_json)
    store = open_store(store_path, mode="a")
    if not force and is_done(store, member):
        return {"id": member.id, "action": "skipped"}
    start = time.perf_counter()
    if member.source == "ingested" and member.ingest["kind"] == "activations":
        return _ingest_arrays(store, member, start)
    with one_torch_thread():
        task = task_of(cfg)
        built = _build(task, member, cfg.execution.device, replay_epochs(store, member))
        metrics = record_member(store, cfg, task, member, built)
    seconds = time.perf_counter() - start
    return {"id": member.id, "action": member.source, "seconds": seconds, **metrics}


def record_member(
    store: Any, cfg: StudyConfig, task: Any, member: MemberSpec, built: tuple
) -> dict[str, Any]:
    """Record one built member (model, probe module, metrics, checkpoint, input_fn) into its
    model group, written through the store's staging; returns its metrics.

    An ingested network is scored on the probe's target columns (``probe.target``) from the
    outputs the recording computes (:class:`~ensemble_lens.record.skill.OutputSkill`): that
    R^2 is its ``val_r2``, unless its entry's ``attrs`` give one."""
    from ..record.hooks import resolve_layers
    from ..record.recorder import record_into
    from ..record.skill import OutputSkill

    _model, probe_model, metrics, ckpt, input_fn = built
    layers = _layers(cfg, task, member)
    modules = resolve_layers(probe_model, layers, member.id)
    scored = member.source == "ingested" and "val_r2" not in metrics and bool(store.target_names())
    skill = OutputSkill(store) if scored else None
    with store.model_writer(member.id, overwrite=True) as writer:
        writer.set_attrs(
            tag=member.tag,
            source=member.source,
            seed=member.seed,
            architecture=member.arch,
            train=member.train,
            task=cfg.task.name if cfg.task else None,
            metrics=metrics,
            status="recording",
            **source_attrs(member),
        )
        if ckpt is not None:
            writer.write_checkpoint(ckpt)
        record_into(writer, probe_model, modules, cfg.record.batch_size, input_fn, on_output=skill)
        if skill is not None:
            metrics = {**metrics, "val_r2": skill.r2(), "val_r2_on": "probe.target"}
            writer.set_attrs(metrics=metrics)
    return metrics


def _ingest_arrays(store: Any, member: MemberSpec, start: float) -> dict[str, Any]:
    from ..record.ingest import ingest_activations

    ing = member.ingest
    attrs = {
        **ing.get("attrs", {}),
        "tag": member.tag,
        "source": "ingested",
        **source_attrs(member),
    }
    ingest_activations(
        store,
        member.id,
        ing["path"],
        layers=ing.get("layers"),
        sample_ids=ing.get("sample_ids", "check"),
        attrs=attrs,
        overwrite=True,
    )
    return {"id": member.id, "action": "ingested", "seconds": time.perf_counter() - start}


def preflight(cfg: StudyConfig, store: Any, members: list[MemberSpec]) -> None:
    """Check every ingested member before anything is recorded: each activation file holds
    its layers with one row per probe sample; each network loads (a state_dict fits its
    factory's network) and gives one output row per probe sample on a small probe batch.

    Raises
    ------
    IngestError, ShapeError
        One line naming the member, its file and what was expected.
    """
    for m in members:
        if m.source != "ingested" or is_done(store, m):
            continue
        if m.ingest["kind"] == "activations":
            _check_activation_file(store, m)
            if m.ingest.get("extrapolation_path") and store.n_extrapolation:
                from .extrapolation import check_extrapolation_file

                check_extrapolation_file(store, m)
            continue
        with one_torch_thread():
            _check_network(cfg, store, m)


def _check_activation_file(store: Any, member: MemberSpec) -> None:
    from ..errors import ShapeError
    from ..record.ingest import _read_source

    ing = member.ingest
    arrays, _ids = _read_source(ing["path"], member.id)
    layers = ing.get("layers") or list(arrays)
    missing = [k for k in layers if k not in arrays]
    if missing:
        raise IngestError(
            f"member {member.id!r} file {ing['path']}: no layer {missing[0]!r} (has "
            f"{sorted(arrays)})"
        )
    for layer in layers:
        rows = int(arrays[layer].shape[0])
        if rows != store.n_samples:
            raise ShapeError(
                f"member {member.id!r} file {ing['path']} layer {layer!r}: expected "
                f"{store.n_samples} samples like the probe set, got {rows}"
            )


def _check_network(cfg: StudyConfig, store: Any, member: MemberSpec) -> None:
    from ..errors import ShapeError
    from ..record.hooks import resolve_layers
    from ..record.recorder import check_forward
    from ..record.skill import check_output_width

    where = f"member {member.id!r} file {member.ingest.get('path') or member.ingest['factory']}"
    task = task_of(cfg)
    _model, probe_model, _m, _c, input_fn = _ingested(task, member)
    modules = resolve_layers(probe_model, _layers(cfg, task, member), member.id)
    try:
        check_forward(store, probe_model, modules, member.id, input_fn)
        check_output_width(store, probe_model, where, input_fn)
    except ShapeError as err:
        if where in str(err):
            raise
        raise ShapeError(f"{err} ({where})") from err
    except Exception as err:  # the user's network or input_fn rejected the probe batch
        raise IngestError(
            f"{where}: the network failed on a probe batch ({type(err).__name__}: {err}); "
            "expected it to take the probe inputs (give 'input_fn' to adapt them)"
        ) from err


def source_attrs(member: MemberSpec) -> dict[str, Any]:
    """Where an ingested member (or the untrained twin of one) came from: its file, the
    pattern that matched it, its index in that match and the file's sha256."""
    ing = member.ingest
    if not ing:
        return {}
    out = {
        "ingest_kind": ing.get("kind"),
        "source_file": ing.get("path"),
        "pattern": ing.get("pattern"),
        "index": ing.get("index"),
        "file_sha256": ing.get("file_sha256"),
    }
    if member.source == "untrained":
        out.update(twin_of=ing.get("id"), untrained_seed=member.seed)
    return out


def member_line(result: dict[str, Any]) -> str:
    """One concise line for a finished member: what was done, validation metrics, time."""
    keys = [k for k in ("val_r2", "val_loss", "epochs") if k in result]
    metrics = ", ".join(f"{k} {result[k]:.4g}" for k in keys)
    seconds = f"{result['seconds']:.1f} s" if "seconds" in result else ""
    return ", ".join(p for p in (result.get("action", ""), metrics, seconds) if p)


def _layers(cfg: StudyConfig, task: Any, member: MemberSpec) -> list[str]:
    if member.ingest.get("layers"):
        return list(member.ingest["layers"])
    if cfg.record.layers:
        return list(cfg.record.layers)
    if task is None:
        raise IngestError(
            f"member {member.id!r}: no layers to record; expected 'layers' in its ingest entry "
            "or 'record.layers' (a study without a task has no default latent layer)"
        )
    return [task.latent_layer]


def _build(
    task: Any, member: MemberSpec, device: str = "cpu", replay: int | None = None
) -> tuple[Any, Any, dict[str, Any], bytes | None, Any]:
    """(model, probe module, metrics, checkpoint bytes, input_fn) of one member; ``replay``:
    see :func:`replay_epochs`."""
    from ..models.spec import ArchSpec, TrainSpec
    from ..models.train import save_checkpoint, train_member

    if member.source == "ingested":
        return _ingested(task, member)
    if member.ingest:
        return _untrained_twin(member)
    arch = ArchSpec(**member.arch)
    if member.source == "untrained":
        import torch

        torch.manual_seed(member.seed)
        model = task.build_model(arch, member.seed).eval()
        return model, task.probe_module(model), {}, save_checkpoint(model), None
    from ..execution.events import emit

    train = TrainSpec(**member.train)
    result = train_member(
        task,
        arch,
        train,
        member.seed,
        device=device,
        progress=lambda epoch, _row: emit(f"epochs {member.id}", epoch, train.epochs),
        replay_epochs=replay,
    )
    return built_from_result(task, result)


def built_from_result(task: Any, result: Any) -> tuple[Any, Any, dict[str, Any], bytes | None, Any]:
    """The built-member tuple of a :class:`~ensemble_lens.models.train.TrainResult`; its
    metrics also say why training stopped (``stopped_by``: epochs, patience, max_seconds)."""
    metrics: dict[str, Any] = {k: float(v) for k, v in result.metrics.items()}
    metrics["stopped_by"] = result.stopped_by
    return result.model, task.probe_module(result.model), metrics, result.state_dict_bytes(), None


def _untrained_twin(member: MemberSpec) -> tuple[Any, Any, dict[str, Any], bytes | None, Any]:
    """The untrained twin of an ingested member: its factory's network, freshly initialised
    after ``torch.manual_seed(seed)`` (and given ``seed=`` when the factory takes one)."""
    import inspect

    import torch

    from ..record.ingest import import_callable, load_model

    ing = member.ingest
    factory = import_callable(ing["factory"], "factory")
    kwargs = dict(ing.get("factory_kwargs") or {})
    with contextlib.suppress(TypeError, ValueError):
        if "seed" in inspect.signature(factory).parameters and "seed" not in kwargs:
            kwargs["seed"] = member.seed
    torch.manual_seed(member.seed)
    model = load_model(None, factory=ing["factory"], factory_kwargs=kwargs, model_id=member.id)
    input_fn = import_callable(ing["input_fn"], "input_fn") if ing.get("input_fn") else None
    return model, model, {}, None, input_fn


def _ingested(task: Any, member: MemberSpec) -> tuple[Any, Any, dict[str, Any], bytes | None, Any]:
    from ..record.ingest import import_callable, load_model

    ing = member.ingest
    model = load_model(
        ing.get("path") if ing["kind"] != "module" else None,
        factory=ing.get("factory"),
        factory_kwargs=ing.get("factory_kwargs"),
        model_id=member.id,
    )
    input_fn = import_callable(ing["input_fn"], "input_fn") if ing.get("input_fn") else None
    return model, model, dict(ing.get("attrs") or {}), None, input_fn
