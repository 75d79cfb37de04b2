"""Train one member network of an ensemble, deterministically, and checkpoint it.

Examples
--------
>>> from ensemble_lens.tasks import get_task
>>> task = get_task("bottleneck")
>>> result = train_member(task, task.default_arch, task.default_train, seed=0)  # doctest: +SKIP
>>> result.metrics["val_r2"] > 0.99                                            # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from ensemble_lens.errors import BackendUnavailableError, ConfigError, ExecutionError, IngestError
from ensemble_lens.models.spec import ArchSpec, TrainSpec
from ensemble_lens.tasks.base import Task

log = logging.getLogger(__name__)

__all__ = [
    "TrainResult",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "shuffle_targets",
    "train_member",
]

Progress = Callable[[int, dict[str, float]], None]
StopReason = Literal["epochs", "patience", "max_seconds"]


@dataclass
class TrainResult:
    """A trained member.

    Attributes
    ----------
    model : nn.Module
        The network with the best validation weights, in eval mode.
    metrics : dict of str to float
        ``task.score`` on the validation split (``val_r2`` and task-specific entries) plus
        ``val_loss`` (best validation ``task.loss``), ``epochs`` (epochs run), ``best_epoch``
        (1-based), ``polished`` (1.0 when the L-BFGS polish of ``train.polish`` was kept)
        and ``seconds`` (wall time).
    stopped_by : {"epochs", "patience", "max_seconds"}
        Why training stopped: all ``train.epochs`` ran, early stopping, or the wall-clock cap
        ``train.max_seconds`` (then ``metrics["epochs"]`` depends on the machine's speed and
        load; ``replay_epochs`` of :func:`train_member` trains exactly that many again).
    seed : int
        Member seed (initialisation and batch order).
    arch, train : ArchSpec, TrainSpec
        The specifications it was trained with.
    """

    model: nn.Module
    metrics: dict[str, float]
    seed: int
    arch: ArchSpec
    train: TrainSpec
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_by: StopReason = "epochs"

    def state_dict_bytes(self) -> bytes:
        """The model's state dict serialised by :func:`save_checkpoint`."""
        return save_checkpoint(self.model)


def save_checkpoint(model: nn.Module) -> bytes:
    """Serialise ``model.state_dict()`` with ``torch.save`` into bytes."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


def load_checkpoint(task: Task, arch: ArchSpec, data: bytes, *, seed: int = 0) -> nn.Module:
    """Rebuild ``task.build_model(arch, seed)`` and load a :func:`save_checkpoint` blob.

    Loading uses ``weights_only=True`` (no arbitrary code). The model is returned in eval mode.

    Raises
    ------
    IngestError
        The bytes are not a state dict or do not fit the architecture.
    """
    model = task.build_model(arch, seed)
    try:
        state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
        model.load_state_dict(state)
    except Exception as err:  # torch raises several unrelated types here
        raise IngestError(
            f"task '{task.name}' arch {arch.family}/{arch.width}x{arch.depth}: checkpoint does "
            f"not load: {err}"
        ) from err
    return model.eval()


def resolve_device(device: str = "cpu") -> torch.device:
    """The torch device for ``execution.device``: ``cpu``, ``cuda`` or ``auto``.

    ``auto`` is ``cuda`` when :func:`torch.cuda.is_available`, else ``cpu``; ``torch-cpu``
    (which picks the torch path of the moments pass) trains on the ``cpu``.

    Raises
    ------
    BackendUnavailableError
        ``cuda`` was asked for and torch sees no CUDA device.
    ConfigError
        Any other name.
    """
    if device not in ("cpu", "cuda", "auto", "torch-cpu"):
        raise ConfigError(f"execution.device: expected 'cpu', 'cuda' or 'auto', got {device!r}")
    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise BackendUnavailableError(
            f"execution.device: 'cuda' asked for, but torch {torch.__version__} sees no CUDA "
            "device; use 'auto' (falls back to cpu) or 'cpu'"
        )
    return torch.device("cuda" if device == "cuda" or (device == "auto" and has_cuda) else "cpu")


def check_batch_size(task: Task, train: TrainSpec) -> None:
    """Raise :class:`ConfigError` when no complete batch fits in the training split."""
    if train.batch_size > train.n_train:
        raise ConfigError(
            f"task '{task.name}': expected TrainSpec.batch_size <= n_train, got batch_size "
            f"{train.batch_size} and n_train {train.n_train}"
        )


@contextlib.contextmanager
def _torch_settings() -> Iterator[None]:
    """One torch thread and deterministic algorithms, restored afterwards.

    Deterministic cuBLAS needs ``CUBLAS_WORKSPACE_CONFIG``; it is set (if unset) here.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _take(data: dict[str, torch.Tensor], idx: torch.Tensor | slice) -> dict[str, torch.Tensor]:
    return {k: v[idx] for k, v in data.items()}


def to_device(data: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """A new dict with the tensors of ``data`` on ``device``."""
    return {k: v.to(device) for k, v in data.items()}


def split_data(task: Task, train: TrainSpec, seed: int) -> tuple[dict, dict]:
    """(training, validation) splits of the member data: ``task.make_data`` with
    ``train.data_seed`` (the member ``seed`` when that is ``None``), targets shuffled as
    ``train.target_shuffle`` says (:func:`shuffle_targets`), first ``n_train`` rows."""
    data_seed = seed if train.data_seed is None else train.data_seed
    data = task.make_data(train.n_train + train.n_val, data_seed)
    data = shuffle_targets(
        data,
        train.target_shuffle,
        data_seed=data_seed,
        seed=seed,
        keys=tuple(getattr(task, "target_keys", ("target",))),
    )
    return _take(data, slice(0, train.n_train)), _take(data, slice(train.n_train, None))


def _validation_loss(task: Task, model: nn.Module, data: dict, batch_size: int) -> float:
    """Mean of ``task.loss`` over consecutive batches of the validation split."""
    n = len(data["target"])
    total = 0.0
    with torch.no_grad():
        for start in range(0, n, batch_size):
            batch = _take(data, slice(start, start + batch_size))
            total += float(task.loss(model, batch).detach()) * len(batch["target"])
    return total / n


def shuffle_targets(
    data: dict[str, torch.Tensor],
    how: str,
    *,
    data_seed: int,
    seed: int,
    keys: tuple[str, ...] = ("target",),
) -> dict[str, torch.Tensor]:
    """The data with its ``keys`` (``Task.target_keys``) permuted along the example axis, all
    by one permutation (a null ensemble).

    ``how``: ``"none"`` (unchanged), ``"shared"`` (permutation seeded by ``data_seed``: the
    same for every member that sees the same data) or ``"independent"`` (seeded by the member
    ``seed``). Training and validation targets are permuted together, so the validation
    R^2 measures what a member learnt of the shuffled task (nothing).
    """
    if how == "none":
        return data
    missing = [k for k in keys if k not in data]
    if missing:
        raise ConfigError(
            f"target_shuffle: the task's data has no {missing} (Task.target_keys); "
            f"it has {sorted(data)}"
        )
    # offset: a member whose seed equals the data seed still gets a permutation of its own
    gen = torch.Generator().manual_seed(data_seed if how == "shared" else seed + 7919)
    perm = torch.randperm(len(data[keys[0]]), generator=gen)
    return {**data, **{k: data[k][perm] for k in keys}}


def _scheduler(opt: torch.optim.Optimizer, train: TrainSpec) -> Any:
    if train.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=train.epochs)
    if train.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    return None


def _train_epoch(task: Task, model: nn.Module, opt, data: dict, train: TrainSpec, gen) -> float:
    model.train()
    n = len(data["target"])
    perm = torch.randperm(n, generator=gen)
    total = 0.0
    for start in range(0, n - train.batch_size + 1, train.batch_size):
        batch = _take(data, perm[start : start + train.batch_size])
        opt.zero_grad(set_to_none=True)
        loss = task.loss(model, batch)
        loss.backward()
        opt.step()
        total += float(loss.detach())
    return total / max(1, n // train.batch_size)


def _fit(task, model, data_tr, data_va, train: TrainSpec, seed: int, progress, replay) -> dict:
    """The epoch loop with early stopping; leaves the best weights in ``model``.

    ``replay``: the epoch count of a member that stopped by the clock; training stops after
    exactly that epoch and the clock is not read (see :func:`train_member`).
    """
    opt = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    sched = _scheduler(opt, train)
    gen = torch.Generator().manual_seed(seed)
    best_loss, best_epoch, best_state = math.inf, 0, copy.deepcopy(model.state_dict())
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    epoch, stopped_by = 0, "epochs"  # epochs=0: the network as initialised (a null member)
    for epoch in range(1, train.epochs + 1):
        train_loss = _train_epoch(task, model, opt, data_tr, train, gen)
        model.eval()
        val_loss = _validation_loss(task, model, data_va, train.batch_size)
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            raise ExecutionError(
                f"task '{task.name}' seed {seed} epoch {epoch}: non-finite loss "
                f"(train {train_loss}, val {val_loss}); lower TrainSpec.lr"
            )
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss}
        history.append(row)
        if progress is not None:
            progress(epoch, row)
        if val_loss < best_loss:
            best_loss, best_epoch = val_loss, epoch
            best_state = copy.deepcopy(model.state_dict())
        if sched is not None:
            sched.step(val_loss) if train.schedule == "plateau" else sched.step()
        if epoch - best_epoch >= train.patience:
            stopped_by = "patience"
            break
        if _out_of_time(train, epoch, replay, time.perf_counter() - start):
            stopped_by = "max_seconds"
            break
    if epoch == 0:
        model.eval()
        best_loss = _validation_loss(task, model, data_va, train.batch_size)
    model.load_state_dict(best_state)
    best_loss, polished = polish(task, model, data_tr, data_va, train, best_loss)
    return {
        "val_loss": best_loss,
        "polished": polished,
        "best_epoch": best_epoch,
        "epochs": epoch,
        "history": history,
        "stopped_by": stopped_by,
    }


def polish(
    task: Task, model: nn.Module, data_tr: dict, data_va: dict, train: TrainSpec, best: float
) -> tuple[float, bool]:
    """``train.polish`` full-batch L-BFGS iterations on ``data_tr`` from the weights in
    ``model``; kept when they lower the validation loss below ``best`` (returns the validation
    loss and whether they were kept), else the weights are put back.

    Adam's minibatch noise leaves a smooth fit at ~1e-5 to 1e-4 relative error; a quasi-Newton
    polish on the whole split goes further. It runs in float64 (in float32 the strong-Wolfe
    line search stops within a few iterations once the loss is near 1e-6, as its curvature
    checks drown in rounding) and the weights return to the model's dtype afterwards. torch's
    L-BFGS is used as is.
    """
    if not train.polish:
        return best, False
    dtype = next(model.parameters()).dtype
    if hasattr(model, "latent_activations"):
        model.latent_activations = None  # a graph tensor: no deepcopy through it
    before = copy.deepcopy(model.state_dict())
    model.double().train()
    data = {k: v.double() if v.is_floating_point() else v for k, v in data_tr.items()}
    opt = torch.optim.LBFGS(
        model.parameters(),
        lr=1.0,
        max_iter=train.polish,
        history_size=50,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-15,
        tolerance_change=1e-20,
    )

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = task.loss(model, data)
        loss.backward()
        return loss

    opt.step(closure)
    model.to(dtype).eval()
    val = _validation_loss(task, model, data_va, train.batch_size)
    if math.isfinite(val) and val < best:
        return val, True
    model.load_state_dict(before)
    return best, False


def _out_of_time(train: TrainSpec, epoch: int, replay: int | None, elapsed: float) -> bool:
    """The clock stop after ``epoch``: the recorded epoch when replaying, else the wall time
    against ``train.max_seconds`` (never when that is None, nor after the last epoch)."""
    if epoch >= train.epochs:
        return False
    if replay is not None:
        return epoch >= replay
    return train.max_seconds is not None and elapsed > train.max_seconds


def check_replay(task: Task, train: TrainSpec, seed: int, replay: int | None) -> None:
    """Raise :class:`ConfigError` unless ``replay`` is None or an epoch count in
    ``1..train.epochs``."""
    if replay is not None and not 1 <= replay <= train.epochs:
        raise ConfigError(
            f"task '{task.name}' seed {seed}: replay_epochs must be between 1 and "
            f"TrainSpec.epochs={train.epochs} (the recorded epochs of a member stopped by "
            f"max_seconds), got {replay}"
        )


def train_member(
    task: Task,
    arch: ArchSpec,
    train: TrainSpec,
    seed: int,
    *,
    progress: Progress | None = None,
    device: str = "cpu",
    replay_epochs: int | None = None,
) -> TrainResult:
    """Train one member network of ``task`` with early stopping on a validation split.

    Data: ``task.make_data(n_train + n_val, data_seed)`` split into the first ``n_train``
    examples (training) and the rest (validation), with ``data_seed = train.data_seed`` or the
    member ``seed`` when that is ``None``. The model is ``task.build_model(arch, seed)``, trained
    with AdamW on ``task.loss`` in shuffled batches (order from a ``torch.Generator`` seeded
    with ``seed``; an incomplete last batch is dropped) under one torch thread and
    deterministic algorithms (both restored afterwards): the same seed gives bit-identical
    weights on a busy or an idle machine. The weights of the epoch with the lowest validation
    loss are restored, then polished by ``train.polish`` full-batch L-BFGS iterations when
    that is set (:func:`polish`; kept only when the validation loss goes down).

    Only ``train.max_seconds`` (None by default) makes the result depend on the clock: when it
    stops training, ``stopped_by`` is ``"max_seconds"`` and ``metrics["epochs"]`` records how
    far it got. ``replay_epochs`` (that recorded count) trains exactly that many epochs and
    ignores the clock, so a rebuilt member equals the one it replaces bit for bit.

    Parameters
    ----------
    task : Task
        The task providing data, model, loss and score.
    arch : ArchSpec
        Architecture passed to ``task.build_model``.
    train : TrainSpec
        Budget, optimiser and early-stopping settings.
    seed : int
        Member seed.
    progress : callable, optional
        Called after every epoch as ``progress(epoch, {"epoch", "train_loss", "val_loss"})``.
    device : {"cpu", "cuda", "auto"}
        Where to train (see :func:`resolve_device`); the returned model is on the CPU.
    replay_epochs : int, optional
        Stop after exactly this epoch (1 to ``train.epochs``) instead of reading the clock:
        reproduces a member that ``train.max_seconds`` stopped (its ``metrics["epochs"]``).
        Early stopping by ``patience`` still applies (a replayed member never reaches it
        earlier than the original did, since training is deterministic).

    Returns
    -------
    TrainResult
        The best model (eval mode) and its metrics (see :class:`TrainResult`).

    Raises
    ------
    ConfigError
        ``batch_size`` exceeds ``n_train`` (no complete batch to train on), or
        ``replay_epochs`` is outside ``1..train.epochs``.
    BackendUnavailableError
        ``device="cuda"`` and there is no CUDA device.
    ExecutionError
        The loss became non-finite.
    """
    check_batch_size(task, train)
    check_replay(task, train, seed, replay_epochs)
    dev = resolve_device(device)
    start = time.perf_counter()
    with _torch_settings():
        data_tr, data_va = split_data(task, train, seed)
        model = task.build_model(arch, seed).to(dev)
        tr, va = to_device(data_tr, dev), to_device(data_va, dev)
        fit = _fit(task, model, tr, va, train, seed, progress, replay_epochs)
        model.to("cpu").eval()
        metrics = dict(task.score(model, data_va))
        if hasattr(model, "latent_activations"):
            model.latent_activations = None  # type: ignore[assignment]
    metrics.update(
        val_loss=fit["val_loss"],
        epochs=fit["epochs"],
        best_epoch=fit["best_epoch"],
        polished=float(fit["polished"]),
        seconds=time.perf_counter() - start,
    )
    if fit["stopped_by"] == "max_seconds" and replay_epochs is None:
        log.warning(
            "task %s seed %d: stopped by train.max_seconds=%g after epoch %d of %d; the "
            "epoch count depends on the machine's load (recorded; a rebuild replays it)",
            task.name,
            seed,
            train.max_seconds,
            fit["epochs"],
            train.epochs,
        )
    log.info(
        "task %s seed %d: val_r2 %.4f val_loss %.4g, best epoch %d/%d, %.1f s",
        task.name,
        seed,
        metrics.get("val_r2", float("nan")),
        metrics["val_loss"],
        metrics["best_epoch"],
        metrics["epochs"],
        metrics["seconds"],
    )
    return TrainResult(model, metrics, seed, arch, train, fit["history"], fit["stopped_by"])
