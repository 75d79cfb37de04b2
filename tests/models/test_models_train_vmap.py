"""train_members_vmap: the stacked (torch.func) path against the per-member path, on CPU.

Tolerance: both paths run the same float32 arithmetic except for reduction order (bmm vs mm)
and one extra rounding in the vectorised AdamW update; after 24-48 AdamW steps the weights of
the tiny members below agree to 1e-5 absolute (measured 6e-8 at lr 3e-3, 7e-7 at lr 0.03;
at lr 0.3 they reach 2e-5: a large step amplifies the first rounding difference),
losses to 1e-5 relative.
"""

from __future__ import annotations

import pytest
import torch

from ensemble_lens.errors import BackendUnavailableError, ConfigError
from ensemble_lens.models import ArchSpec, TrainSpec
from ensemble_lens.models.train import resolve_device, train_member
from ensemble_lens.models.train_vmap import train_members_vmap
from ensemble_lens.tasks import get_task

ARCH = ArchSpec(family="bottleneck", width=8, depth=2, activation="silu", latent_dim=2)
TRAIN = TrainSpec(epochs=3, batch_size=32, lr=3e-3, n_train=256, n_val=64, patience=5)
ATOL = 1e-5


def _max_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max(float((sa[k] - sb[k]).abs().max()) for k in sa)


def _compare(task, arch, train, seeds):
    ref = [train_member(task, arch, train, s) for s in seeds]
    vm = train_members_vmap(task, arch, train, seeds)
    assert [r.seed for r in vm] == list(seeds)
    for a, b in zip(ref, vm, strict=True):
        assert _max_diff(a.model, b.model) < ATOL
        assert b.metrics["val_loss"] == pytest.approx(a.metrics["val_loss"], rel=1e-5)
        assert b.metrics["val_r2"] == pytest.approx(a.metrics["val_r2"], abs=1e-5)
        for key in ("epochs", "best_epoch"):
            assert b.metrics[key] == a.metrics[key]
        assert len(b.history) == len(a.history)
        for ra, rb in zip(a.history, b.history, strict=True):
            assert rb["train_loss"] == pytest.approx(ra["train_loss"], rel=1e-5)
    return ref, vm


def test_same_seeds_same_initial_params_then_same_training():
    task = get_task("bottleneck")
    zero = TRAIN.model_copy(update={"epochs": 1, "lr": 1e-12})
    _, vm = _compare(task, ARCH, zero, [0, 1, 2])
    init = [task.build_model(ARCH, s) for s in (0, 1, 2)]
    for model, res in zip(init, vm, strict=True):
        assert _max_diff(model, res.model) < 1e-9  # lr ~ 0: still the initial weights
    _compare(task, ARCH, TRAIN, [0, 1, 2, 5])


def test_members_differ_and_per_member_data_seeds_plateau_schedule_l1():
    """data_seed None: each member its own data; plateau lr per member; L1 on the latent."""
    task = get_task("bottleneck")
    arch = ARCH.model_copy(update={"l1": 1e-3})
    train = TRAIN.model_copy(update={"data_seed": None, "schedule": "plateau", "epochs": 4})
    _, vm = _compare(task, arch, train, [3, 4])
    assert _max_diff(vm[0].model, vm[1].model) > 1e-3


def test_early_stopping_is_per_member():
    task = get_task("bottleneck")
    train = TRAIN.model_copy(update={"epochs": 8, "patience": 1, "lr": 0.01, "schedule": "none"})
    ref, _ = _compare(task, ARCH, train, [0, 1, 2, 3])
    assert len({r.metrics["epochs"] for r in ref}) > 1, "pick settings where members stop apart"


def test_graphnet_vmap_matches():
    task = get_task("gravity")
    arch = ArchSpec(family="graphnet", width=8, depth=1, activation="relu", latent_dim=4)
    train = TRAIN.model_copy(update={"epochs": 2, "n_train": 64, "n_val": 16, "batch_size": 16})
    _compare(task, arch, train, [0, 1])


def test_errors():
    task = get_task("bottleneck")
    with pytest.raises(ConfigError, match="batch_size <= n_train, got batch_size 512"):
        train_members_vmap(task, ARCH, TRAIN.model_copy(update={"batch_size": 512}), [0])
    with pytest.raises(ConfigError, match="needs at least one seed"):
        train_members_vmap(task, ARCH, TRAIN, [])
    with pytest.raises(ConfigError, match=r"execution\.device: expected 'cpu', 'cuda' or 'auto'"):
        resolve_device("tpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailableError, match="'cuda' asked for, but torch"):
            train_member(task, ARCH, TRAIN, 0, device="cuda")


def test_clock_stops_are_recorded_and_replayed_per_member():
    """max_seconds stops the group after epoch 1; a member given replay_epochs trains exactly
    that far (the clock is not read for it) while the others still follow the clock."""
    task = get_task("bottleneck")
    clocked = TRAIN.model_copy(update={"epochs": 6, "max_seconds": 1e-9})
    stopped = train_members_vmap(task, ARCH, clocked, [0, 1])
    assert [(r.metrics["epochs"], r.stopped_by) for r in stopped] == [(1, "max_seconds")] * 2
    mixed = train_members_vmap(task, ARCH, clocked, [0, 1], replay_epochs=[4, None])
    assert [(r.metrics["epochs"], r.stopped_by) for r in mixed] == [
        (4, "max_seconds"),
        (1, "max_seconds"),
    ]
    alone = train_members_vmap(task, ARCH, clocked, [0], replay_epochs=[4])
    assert _max_diff(alone[0].model, mixed[0].model) < ATOL
    free = train_members_vmap(task, ARCH, TRAIN, [0])
    assert free[0].stopped_by == "epochs"


def test_replay_epochs_need_one_valid_entry_per_seed():
    task = get_task("bottleneck")
    with pytest.raises(ConfigError, match=r"replay_epochs needs one entry per seed \(2\), got 1"):
        train_members_vmap(task, ARCH, TRAIN, [0, 1], replay_epochs=[2])
    with pytest.raises(ConfigError, match="seed 1: replay_epochs must be between 1 and"):
        train_members_vmap(task, ARCH, TRAIN, [0, 1], replay_epochs=[None, 9])
