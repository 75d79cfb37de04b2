"""Train many members of one architecture together: stacked parameters and ``torch.func.vmap``.

Every member keeps what :func:`~ensemble_lens.models.train.train_member` gives it: its initial
weights (``task.build_model(arch, seed)``), its data (``train.data_seed`` or its seed), its batch
order (a ``torch.Generator`` seeded with its seed), AdamW with its own learning-rate schedule,
early stopping on its own validation loss and its best weights restored. Only the arithmetic is
shared: the members' parameters are stacked (as ``torch.func.stack_module_state`` does) and one
vmapped forward/backward (``torch.func.functional_call``) runs all of them, so a GPU trains
dozens of small networks at the cost of a few, and a CPU saves the per-call overhead.

The result equals the per-member path up to floating-point reduction order: batched matrix
products (``bmm``) sum in another order than one member's ``mm``, and the vectorised AdamW
below rounds its update once more than torch's fused ``addcdiv``. The differences start at
float32 rounding (~1e-7 relative) and grow with the number of steps as training amplifies
them; ``tests/models/test_models_train_vmap.py`` bounds them. A member that has stopped early
is frozen (learning rate 0) while the others go on. ``TrainSpec.max_seconds`` bounds the
wall time of the whole group (each member's own time is not separable); a member it stops
records ``stopped_by="max_seconds"`` and its epochs, which ``replay_epochs`` trains again
exactly.

Examples
--------
>>> from ensemble_lens.tasks import get_task
>>> task = get_task("bottleneck")
>>> arch, train = task.default_arch, task.default_train
>>> results = train_members_vmap(task, arch, train, [0, 1, 2])  # doctest: +SKIP
>>> [r.seed for r in results]                                   # doctest: +SKIP
[0, 1, 2]
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap

from ensemble_lens.errors import ConfigError, ExecutionError
from ensemble_lens.models.spec import ArchSpec, TrainSpec
from ensemble_lens.models.train import (
    StopReason,
    TrainResult,
    _out_of_time,
    _scheduler,
    _torch_settings,
    check_batch_size,
    check_replay,
    polish,
    resolve_device,
    split_data,
    to_device,
)
from ensemble_lens.tasks.base import Task

log = logging.getLogger(__name__)

__all__ = ["train_members_vmap"]

_BETAS, _EPS = (0.9, 0.999), 1e-8  # torch.optim.AdamW defaults, as train_member uses them


class _Bound:
    """One member seen by ``task.loss``: calling it runs the shared module with that member's
    parameters; other attributes (``l1``, ``latent_activations``) come from the module."""

    def __init__(self, base: nn.Module, params: dict, buffers: dict) -> None:
        self._base, self._state = base, (params, buffers)

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return functional_call(self._base, self._state, (batch,))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)


class _Stack:
    """The stacked members: parameters, AdamW state, per-member schedules and early stopping."""

    def __init__(
        self, task: Task, models: list[nn.Module], train: TrainSpec, dev: Any, replay: list
    ) -> None:
        params, buffers = (
            _stacked(task, models, "named_parameters"),
            _stacked(task, models, "named_buffers"),
        )
        self.params = {k: v.to(dev).requires_grad_(True) for k, v in params.items()}
        self.buffers = {k: v.to(dev) for k, v in buffers.items()}
        self.base = copy.deepcopy(models[0]).to("meta")
        self.task, self.train, self.m = task, train, len(models)
        self.exp_avg = {k: torch.zeros_like(v) for k, v in self.params.items()}
        self.exp_avg_sq = {k: torch.zeros_like(v) for k, v in self.params.items()}
        self.step_count = 0
        # one torch scheduler per member on a dummy optimiser: the very lr train_member uses
        self.opts = [torch.optim.AdamW([torch.zeros(1)], lr=train.lr) for _ in models]
        self.scheds = [_scheduler(o, train) for o in self.opts]
        self.best = {k: v.detach().clone() for k, v in self.params.items()}
        self.best_loss = [math.inf] * self.m
        self.best_epoch = [0] * self.m
        self.stopped_at: list[int | None] = [None] * self.m
        self.stopped_by: list[StopReason] = ["epochs"] * self.m
        self.replay = replay

    def losses(self, batch: dict[str, torch.Tensor], shared: bool) -> torch.Tensor:
        """(M,) ``task.loss`` of every member on its batch (``shared``: one batch for all)."""

        def one(p: dict, b: dict, data: dict) -> torch.Tensor:
            return torch.as_tensor(self.task.loss(_Bound(self.base, p, b), data))

        dims = (0, 0, None if shared else 0)
        return vmap(one, in_dims=dims, randomness="different")(self.params, self.buffers, batch)

    def adamw_step(self) -> None:
        """AdamW (torch's formula) on the stacked parameters, with a per-member lr."""
        self.step_count += 1
        (b1, b2), t = _BETAS, self.step_count
        lr = torch.tensor(
            [0.0 if s is not None else o.param_groups[0]["lr"] for o, s in self._lr_pairs()],
            dtype=torch.float64,
        )
        with torch.no_grad():
            for k, p in self.params.items():
                g = p.grad
                shape = (self.m,) + (1,) * (p.dim() - 1)
                lr_k = lr.to(p.device, p.dtype).view(shape)
                p.mul_(1 - lr_k * self.train.weight_decay)
                self.exp_avg[k].lerp_(g, 1 - b1)
                self.exp_avg_sq[k].mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (self.exp_avg_sq[k].sqrt() / math.sqrt(1 - b2**t)).add_(_EPS)
                p.sub_((lr_k / (1 - b1**t)) * self.exp_avg[k] / denom)
                p.grad = None

    def _lr_pairs(self) -> list[tuple[Any, int | None]]:
        return list(zip(self.opts, self.stopped_at, strict=True))

    def end_epoch(self, epoch: int, val: list[float], elapsed: float) -> bool:
        """Record the epoch's validation losses; True when every member has stopped."""
        for k in range(self.m):
            if self.stopped_at[k] is not None:
                continue
            if val[k] < self.best_loss[k]:
                self.best_loss[k], self.best_epoch[k] = val[k], epoch
                with torch.no_grad():
                    for name, p in self.params.items():
                        self.best[name][k] = p[k]
            sched = self.scheds[k]
            if sched is not None:
                self.opts[k].step()  # a no-op (no gradient) that keeps the scheduler's order check
                sched.step(val[k]) if self.train.schedule == "plateau" else sched.step()
            if epoch - self.best_epoch[k] >= self.train.patience:
                self.stopped_at[k], self.stopped_by[k] = epoch, "patience"
            elif _out_of_time(self.train, epoch, self.replay[k], elapsed):
                self.stopped_at[k], self.stopped_by[k] = epoch, "max_seconds"
        return all(s is not None for s in self.stopped_at)


def _stacked(task: Task, models: list[nn.Module], what: str) -> dict[str, torch.Tensor]:
    """Parameters (or buffers) of all members stacked along a new first axis.

    Like ``torch.func.stack_module_state``, without requiring one Python class (a task may
    define its module class inside ``build_model``): names and shapes must agree.
    """
    named = [dict(getattr(m, what)()) for m in models]
    ref = {k: v.shape for k, v in named[0].items()}
    for seed_named in named[1:]:
        got = {k: v.shape for k, v in seed_named.items()}
        if got != ref:
            raise ConfigError(
                f"task '{task.name}': members trained together need the same {what[6:]} "
                f"(names and shapes), got {sorted(ref.items())} and {sorted(got.items())}"
            )
    return {k: torch.stack([n[k].detach() for n in named]) for k in ref}


def _stack_data(parts: list[dict], dev: Any) -> tuple[dict[str, torch.Tensor], bool]:
    """One dict of tensors: shared (n, ...) when all members use the same data, else (M, n, ...)."""
    if all(p is parts[0] for p in parts):
        return to_device(parts[0], dev), True
    return {k: torch.stack([p[k] for p in parts]).to(dev) for k in parts[0]}, False


def _batch(data: dict, idx: torch.Tensor, shared: bool) -> dict[str, torch.Tensor]:
    """Rows ``idx`` (M, B) of every member's data, as (M, B, ...)."""
    if shared:
        return {k: v[idx] for k, v in data.items()}
    rows = torch.arange(idx.shape[0], device=idx.device)[:, None]
    return {k: v[rows, idx] for k, v in data.items()}


def _val_losses(stack: _Stack, data: dict, shared: bool, batch_size: int) -> list[float]:
    """Per-member mean validation loss over consecutive batches (as ``train_member``)."""
    n = len(data["target"]) if shared else data["target"].shape[1]
    total = torch.zeros(stack.m, dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, n, batch_size):
            sl = slice(start, start + batch_size)
            part = {k: (v[sl] if shared else v[:, sl]) for k, v in data.items()}
            size = min(batch_size, n - start)
            total += stack.losses(part, shared).detach().double().cpu() * size
    return (total / n).tolist()


def _check_finite(task: Task, seeds: Sequence[int], epoch: int, tr: list, va: list) -> None:
    bad = [s for s, a, b in zip(seeds, tr, va, strict=True) if not math.isfinite(a + b)]
    if bad:
        raise ExecutionError(
            f"task '{task.name}' seeds {bad} epoch {epoch}: non-finite loss (trained together "
            "with torch.func.vmap); lower TrainSpec.lr"
        )


def _epoch(stack: _Stack, data: dict, shared: bool, gens: list, batch_size: int) -> list[float]:
    """One epoch of shuffled batches (each member its own order); mean train loss per member."""
    n = len(data["target"]) if shared else data["target"].shape[1]
    dev = data["target"].device
    perms = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(dev)
    total = torch.zeros(stack.m, dtype=torch.float64)
    for start in range(0, n - batch_size + 1, batch_size):
        batch = _batch(data, perms[:, start : start + batch_size], shared)  # (M, B, ...)
        losses = stack.losses(batch, shared=False)
        losses.sum().backward()  # members are independent: each gets its own gradient
        stack.adamw_step()
        total += losses.detach().double().cpu()
    return (total / max(1, n // batch_size)).tolist()


def _results(
    task: Task, models: list[nn.Module], stack: _Stack, parts: list, history: list, run: tuple
) -> list[TrainResult]:
    """Load every member's best weights into its own module and score it (on the CPU)."""
    arch, train, seeds, last_epoch, seconds = run
    out = []
    for k, (model, seed) in enumerate(zip(models, seeds, strict=True)):
        model.load_state_dict({n: v[k].cpu() for n, v in stack.best.items()}, strict=False)
        model.eval()
        # the L-BFGS polish is per member (its line search is not batched): train_member's own
        val_loss, polished = polish(task, model, *parts[k], train, stack.best_loss[k])
        metrics = dict(task.score(model, parts[k][1]))
        if hasattr(model, "latent_activations"):
            model.latent_activations = None  # type: ignore[assignment]
        metrics.update(
            val_loss=val_loss,
            epochs=stack.stopped_at[k] or last_epoch,
            best_epoch=stack.best_epoch[k],
            polished=float(polished),
            seconds=seconds,
        )
        rows = [h[k] for h in history][: int(metrics["epochs"])]
        out.append(TrainResult(model, metrics, seed, arch, train, rows, stack.stopped_by[k]))
    return out


def train_members_vmap(
    task: Task,
    arch: ArchSpec,
    train: TrainSpec,
    seeds: Sequence[int],
    *,
    device: str = "cpu",
    replay_epochs: Sequence[int | None] | None = None,
) -> list[TrainResult]:
    """Train the members ``seeds`` of one architecture together (stacked params, ``vmap``).

    Each member gets what :func:`~ensemble_lens.models.train.train_member` would give it
    (initial weights, data, batch order, schedule, early stopping, best weights) up to
    floating-point reduction order; see the module docstring for what differs.

    Parameters
    ----------
    task : Task
        The task providing data, model, loss and score; ``task.loss`` must only call the
        model and read its attributes (the built-in tasks do).
    arch : ArchSpec
        Architecture shared by all members.
    train : TrainSpec
        Training settings shared by all members.
    seeds : sequence of int
        One member per seed.
    device : {"cpu", "cuda", "auto"}
        Where the stacked members train; the returned models are on the CPU.
    replay_epochs : sequence of (int or None), optional
        One per seed: the recorded epoch count of a member that ``max_seconds`` stopped,
        trained exactly (the clock is not read for it), or None (see
        :func:`~ensemble_lens.models.train.train_member`).

    Returns
    -------
    list of TrainResult
        One per seed, in order; ``metrics["seconds"]`` is the wall time of the whole group.

    Raises
    ------
    ConfigError
        ``batch_size`` exceeds ``n_train``, ``seeds`` is empty, ``replay_epochs`` has not one
        entry per seed, or one is outside ``1..train.epochs``.
    ExecutionError
        A member's loss became non-finite (the error names its seed).
    """
    check_batch_size(task, train)
    if not seeds:
        raise ConfigError(f"task '{task.name}': train_members_vmap needs at least one seed")
    replay = list(replay_epochs) if replay_epochs is not None else [None] * len(seeds)
    if len(replay) != len(seeds):
        raise ConfigError(
            f"task '{task.name}': replay_epochs needs one entry per seed ({len(seeds)}), "
            f"got {len(replay)}"
        )
    for s, r in zip(seeds, replay, strict=True):
        check_replay(task, train, s, r)
    dev = resolve_device(device)
    start = time.perf_counter()
    with _torch_settings():
        cache: dict[int, tuple] = {}
        parts = [
            cache.setdefault(
                s if train.data_seed is None else train.data_seed, split_data(task, train, s)
            )
            for s in seeds
        ]
        models = [task.build_model(arch, s) for s in seeds]
        stack = _Stack(task, models, train, dev, replay)
        data_tr, shared = _stack_data([p[0] for p in parts], dev)
        data_va, _ = _stack_data([p[1] for p in parts], dev)
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        history: list[list[dict[str, float]]] = []
        epoch = 0
        for epoch in range(1, train.epochs + 1):
            tr = _epoch(stack, data_tr, shared, gens, train.batch_size)
            va = _val_losses(stack, data_va, shared, train.batch_size)
            _check_finite(task, seeds, epoch, tr, va)
            history.append(
                [
                    {"epoch": epoch, "train_loss": a, "val_loss": b}
                    for a, b in zip(tr, va, strict=True)
                ]
            )
            if stack.end_epoch(epoch, va, time.perf_counter() - start):
                break
        run = (arch, train, list(seeds), epoch, time.perf_counter() - start)
        results = _results(task, models, stack, parts, history, run)
    log.info(
        "task %s: %d members trained together (vmap, %s) in %.1f s",
        task.name,
        len(seeds),
        dev,
        run[-1],
    )
    return results
