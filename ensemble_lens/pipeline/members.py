"""The ensemble's members: expanded from the config, each trained/loaded and recorded by one task.

A member task receives store coordinates and a JSON-able spec, never arrays, and writes its
model group through the store's staging, so a killed worker leaves no half-written member.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from ..config import StudyConfig, stable_hash
from ..record.store import COMPLETE, open_store


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
        "probe": cfg.probe.model_dump(mode="json"),
        "record": cfg.record.model_dump(mode="json"),
    }
    members: list[MemberSpec] = []
    if task is not None and cfg.ensemble.seeds:
        members += _trained(cfg, task, base)
    for ing in cfg.ensemble.ingest:
        spec = ing.model_dump(mode="json")
        members.append(
            MemberSpec(ing.id, "ingested", ingest=spec, tag=stable_hash({**base, **spec}))
        )
    return members


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
    """A member is done when its group is complete and was made with the same tag."""
    if store.status(member.id) != COMPLETE:
        return False
    return store.model_attrs(member.id).get("tag") == member.tag


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
    member = MemberSpec(**member_json)
    store = open_store(store_path, mode="a")
    if not force and is_done(store, member):
        return {"id": member.id, "action": "skipped"}
    start = time.perf_counter()
    if member.source == "ingested" and member.ingest["kind"] == "activations":
        return _ingest_arrays(store, member, start)
    with one_torch_thread():
        task = task_of(cfg)
        built = _build(task, member, cfg.execution.device)
        record_member(store, cfg, task, member, built)
    seconds = time.perf_counter() - start
    return {"id": member.id, "action": member.source, "seconds": seconds, **built[2]}


def record_member(
    store: Any, cfg: StudyConfig, task: Any, member: MemberSpec, built: tuple
) -> None:
    """Record one built member (model, probe module, metrics, checkpoint, input_fn) into its
    model group, written through the store's staging."""
    from ..record.hooks import resolve_layers
    from ..record.recorder import record_into

    _model, probe_model, metrics, ckpt, input_fn = built
    layers = _layers(cfg, task, member)
    modules = resolve_layers(probe_model, layers, member.id)
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
        )
        if ckpt is not None:
            writer.write_checkpoint(ckpt)
        record_into(writer, probe_model, modules, cfg.record.batch_size, input_fn)


def _ingest_arrays(store: Any, member: MemberSpec, start: float) -> dict[str, Any]:
    from ..record.ingest import ingest_activations

    ing = member.ingest
    attrs = {**ing.get("attrs", {}), "tag": member.tag, "source": "ingested"}
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


def member_line(result: dict[str, Any]) -> str:
    """One concise line for a finished member: what was done, validation metrics, time."""
    keys = [k for k in ("val_r2", "val_loss", "epochs") if k in result]
    metrics = ", ".join(f"{k} {result[k]:.4g}" for k in keys)
    seconds = f"{result['seconds']:.1f} s" if "seconds" in result else ""
    return ", ".join(p for p in (result.get("action", ""), metrics, seconds) if p)


def _layers(cfg: StudyConfig, task: Any, member: MemberSpec) -> list[str]:
    if member.source == "ingested" and member.ingest.get("layers"):
        return list(member.ingest["layers"])
    if cfg.record.layers:
        return list(cfg.record.layers)
    return [task.latent_layer]


def _build(
    task: Any, member: MemberSpec, device: str = "cpu"
) -> tuple[Any, Any, dict[str, Any], bytes | None, Any]:
    """(model, probe module, metrics, checkpoint bytes, input_fn) of one member."""
    from ..models.spec import ArchSpec, TrainSpec
    from ..models.train import save_checkpoint, train_member

    if member.source == "ingested":
        return _ingested(task, member)
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
    )
    return built_from_result(task, result)


def built_from_result(task: Any, result: Any) -> tuple[Any, Any, dict[str, Any], bytes | None, Any]:
    """The built-member tuple of a :class:`~ensemble_lens.models.train.TrainResult`."""
    metrics = {k: float(v) for k, v in result.metrics.items()}
    return result.model, task.probe_module(result.model), metrics, result.state_dict_bytes(), None


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
