"""train_member: determinism, early stopping, settings restored, checkpoints, errors."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from ensemble_lens.errors import ConfigError, ExecutionError, IngestError
from ensemble_lens.models import ArchSpec, TrainSpec, load_checkpoint, save_checkpoint
from ensemble_lens.models.train import train_member
from ensemble_lens.tasks import Task, get_task

TINY_ARCH = ArchSpec(family="bottleneck", width=8, depth=1, activation="silu", latent_dim=2)
TINY_TRAIN = TrainSpec(epochs=3, batch_size=32, lr=3e-3, n_train=256, n_val=64, patience=5)


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_same_seed_gives_bit_identical_weights_and_other_seed_differs():
    task = get_task("bottleneck")
    a = train_member(task, TINY_ARCH, TINY_TRAIN, seed=3)
    b = train_member(task, TINY_ARCH, TINY_TRAIN, seed=3)
    c = train_member(task, TINY_ARCH, TINY_TRAIN, seed=4)
    assert torch.equal(_weights(a.model), _weights(b.model))
    assert not torch.equal(_weights(a.model), _weights(c.model))
    assert a.state_dict_bytes() == b.state_dict_bytes()


def test_graphnet_training_is_deterministic():
    task = get_task("gravity")
    arch = ArchSpec(family="graphnet", width=8, depth=1, activation="relu", latent_dim=4)
    train = TINY_TRAIN.model_copy(update={"epochs": 2, "n_train": 64, "n_val": 16})
    a = train_member(task, arch, train, seed=0)
    b = train_member(task, arch, train, seed=0)
    assert torch.equal(_weights(a.model), _weights(b.model))


def test_metrics_history_progress_and_log(caplog):
    calls = []
    with caplog.at_level(logging.INFO, logger="ensemble_lens.models.train"):
        res = train_member(
            get_task("bottleneck"),
            TINY_ARCH,
            TINY_TRAIN,
            seed=0,
            progress=lambda epoch, row: calls.append((epoch, row["val_loss"])),
        )
    assert [c[0] for c in calls] == [1, 2, 3]
    assert {"val_r2", "val_loss", "epochs", "best_epoch", "seconds"} <= set(res.metrics)
    assert res.metrics["val_loss"] == min(v for _, v in calls)
    assert res.metrics["epochs"] == 3 and not res.model.training
    assert res.model.latent_activations is None
    assert "task bottleneck seed 0: val_r2" in caplog.text


def test_thread_count_and_determinism_flag_are_restored():
    torch.set_num_threads(2)
    train_member(get_task("bottleneck"), TINY_ARCH, TINY_TRAIN.model_copy(update={"epochs": 1}), 0)
    assert torch.get_num_threads() == 2
    assert not torch.are_deterministic_algorithms_enabled()


class _PlateauTask(Task):
    """A task whose validation loss never improves after epoch 1 (constant data)."""

    name = "plateau"
    input_names = ("x",)

    def sample_probe(self, n, seed, *, extrapolate=False):
        return np.zeros((n, 1), dtype=np.float32)

    def make_data(self, n, seed):
        return {"x": torch.zeros(n, 1), "target": torch.zeros(n, 1)}

    def build_model(self, arch, seed):
        torch.manual_seed(seed)
        return _Zero()

    def probe_module(self, model):
        return model


class _Zero(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, batch):
        return batch["x"] * self.w


class _NanTask(_PlateauTask):
    name = "nan"

    def make_data(self, n, seed):
        return {"x": torch.ones(n, 1), "target": torch.full((n, 1), float("nan"))}


def test_early_stopping_after_patience_epochs():
    train = TINY_TRAIN.model_copy(update={"epochs": 50, "patience": 2})
    res = train_member(_PlateauTask(), TINY_ARCH, train, seed=0)
    assert res.metrics["best_epoch"] == 1 and res.metrics["epochs"] == 3


def test_non_finite_loss_raises_execution_error():
    with pytest.raises(ExecutionError, match="task 'nan' seed 0 epoch 1: non-finite loss"):
        train_member(_NanTask(), TINY_ARCH, TINY_TRAIN, seed=0)


def test_plateau_and_constant_schedules_train():
    task = get_task("bottleneck")
    for schedule in ("plateau", "none"):
        train = TINY_TRAIN.model_copy(update={"schedule": schedule, "epochs": 2})
        assert np.isfinite(train_member(task, TINY_ARCH, train, seed=0).metrics["val_loss"])


def test_checkpoint_round_trip_gives_identical_outputs():
    task = get_task("matrix_invariants")
    arch = ArchSpec(family="siamese", width=8, depth=1, activation="tanh", latent_dim=2)
    model = task.build_model(arch, seed=5).eval()
    blob = save_checkpoint(model)
    loaded = load_checkpoint(task, arch, blob, seed=9)
    data = task.make_data(16, seed=1)
    with torch.no_grad():
        torch.testing.assert_close(loaded(data), model(data), rtol=0, atol=0)
    assert not loaded.training


def test_load_checkpoint_errors_name_the_task():
    task = get_task("bottleneck")
    blob = save_checkpoint(task.build_model(TINY_ARCH, seed=0))
    wider = TINY_ARCH.model_copy(update={"width": 16})
    with pytest.raises(IngestError, match="task 'bottleneck' arch bottleneck/16x1: checkpoint"):
        load_checkpoint(task, wider, blob)
    with pytest.raises(IngestError, match="checkpoint does not load"):
        load_checkpoint(task, TINY_ARCH, b"not a checkpoint")


def test_member_data_seed_none_uses_member_seed(monkeypatch):
    task = get_task("bottleneck")
    seen = []
    original = task.make_data
    monkeypatch.setattr(task, "make_data", lambda n, seed: seen.append(seed) or original(n, seed))
    train_member(task, TINY_ARCH, TINY_TRAIN.model_copy(update={"epochs": 1}), seed=7)
    train = TINY_TRAIN.model_copy(update={"epochs": 1, "data_seed": None})
    train_member(task, TINY_ARCH, train, seed=7)
    assert seen == [0, 7]


def test_batch_larger_than_training_split_raises_config_error():
    train = TINY_TRAIN.model_copy(update={"batch_size": 512})
    with pytest.raises(ConfigError, match="got batch_size 512 and n_train 256"):
        train_member(get_task("bottleneck"), TINY_ARCH, train, seed=0)


def test_max_seconds_stops_after_the_first_epoch():
    train = TINY_TRAIN.model_copy(update={"epochs": 20, "max_seconds": 1e-9})
    res = train_member(get_task("bottleneck"), TINY_ARCH, train, seed=0)
    assert res.metrics["epochs"] == 1 and res.stopped_by == "max_seconds"


def test_stopped_by_says_why_training_ended():
    task = get_task("bottleneck")
    assert train_member(task, TINY_ARCH, TINY_TRAIN, seed=0).stopped_by == "epochs"
    patient = TINY_TRAIN.model_copy(update={"epochs": 30, "lr": 1e-9, "patience": 1})
    assert train_member(task, TINY_ARCH, patient, seed=0).stopped_by in ("patience", "epochs")
    # the clock is not read after the last epoch: a member that ran every epoch is complete
    last = TINY_TRAIN.model_copy(update={"epochs": 1, "max_seconds": 1e-9})
    assert train_member(task, TINY_ARCH, last, seed=0).stopped_by == "epochs"


def test_replay_epochs_reproduces_a_member_stopped_by_the_clock():
    """A member the clock stopped (here: a slow epoch 3 under max_seconds) is trained again
    exactly as far by replay_epochs, whatever the clock says now: bit-identical weights."""
    import time

    task = get_task("bottleneck")
    clocked = TINY_TRAIN.model_copy(update={"epochs": 8, "max_seconds": 0.3})

    def slow(epoch, _row):
        if epoch == 3:
            time.sleep(0.4)  # the machine "got busy": the cap is passed by epoch 3 at the latest

    lost = train_member(task, TINY_ARCH, clocked, seed=2, progress=slow)
    reached = int(lost.metrics["epochs"])
    assert lost.stopped_by == "max_seconds" and 1 <= reached <= 3
    # now the clock would allow every epoch (no sleep) or none (1e-9 s): replay ignores it
    for cap in (1e6, 1e-9):
        again = train_member(
            task,
            TINY_ARCH,
            clocked.model_copy(update={"max_seconds": cap}),
            seed=2,
            replay_epochs=reached,
        )
        assert again.metrics["epochs"] == reached and again.stopped_by == "max_seconds"
        assert again.state_dict_bytes() == lost.state_dict_bytes()
    free = train_member(task, TINY_ARCH, clocked.model_copy(update={"max_seconds": None}), seed=2)
    assert free.metrics["epochs"] == 8 and free.stopped_by == "epochs"
    assert free.state_dict_bytes() != lost.state_dict_bytes()


@pytest.mark.parametrize("replay", [0, 4])
def test_replay_epochs_outside_the_configured_epochs_is_refused(replay):
    with pytest.raises(ConfigError, match=rf"replay_epochs must be between 1 and .*got {replay}"):
        train_member(get_task("bottleneck"), TINY_ARCH, TINY_TRAIN, seed=0, replay_epochs=replay)
