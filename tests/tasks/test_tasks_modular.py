"""Modular addition: data, model, errors, and members that generalise with their own
Fourier frequencies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ensemble_lens.distill.periodic import fourier_power
from ensemble_lens.errors import TaskError
from ensemble_lens.models.spec import ArchSpec
from ensemble_lens.models.train import train_member
from ensemble_lens.tasks import get_task, list_tasks


def test_registered_and_described():
    assert "modular" in list_tasks()
    task = get_task("modular", p=13)
    info = task.describe()
    assert info["p"] == 13 and info["periodic_inputs"] == {"a": 13, "b": 13}
    assert "cos" in info["template"] and task.latents == {}


def test_data_are_distinct_pairs_with_the_right_answer():
    task = get_task("modular", p=11)
    data = task.make_data(121, seed=3)
    pairs = data["x"].numpy().astype(int)
    assert len({tuple(p) for p in pairs}) == 121
    assert (data["target"].numpy() == pairs.sum(1) % 11).all()
    tr = task.default_train
    assert tr.n_train + tr.n_val == 121 and tr.batch_size == tr.n_train


def test_probe_module_gives_the_first_operand_embedding():
    task = get_task("modular", p=7)
    model = task.build_model(task.default_arch, seed=0)
    probe = torch.from_numpy(task.sample_probe(20, seed=0))
    out = task.probe_module(model)(probe)
    assert out.shape == (20, task.default_arch.latent_dim)
    assert torch.equal(out, model.embed.weight[probe[:, 0].long()])
    assert "embed" in dict(task.probe_module(model).named_modules())


def test_errors():
    with pytest.raises(TaskError, match="expected an integer modulus p >= 3, got 2"):
        get_task("modular", p=2)
    with pytest.raises(TaskError, match="train_fraction"):
        get_task("modular", train_fraction=1.0)
    task = get_task("modular", p=5)
    with pytest.raises(
        TaskError, match=r"n_train \+ n_val <= p\^2 = 25 \(distinct pairs\), got 30"
    ):
        task.make_data(30, seed=0)
    arch = ArchSpec(family="graphnet", width=8, depth=1, activation="relu", latent_dim=4)
    with pytest.raises(TaskError, match="expected arch family 'modular', got 'graphnet'"):
        task.build_model(arch, seed=0)


@pytest.mark.slow
def test_members_generalise_with_their_own_key_frequencies():
    task = get_task("modular", p=23)
    train = task.default_train.model_copy(update={"epochs": 600, "patience": 600})
    tops = []
    for seed in (0, 1):
        res = train_member(task, task.default_arch, train, seed)
        assert res.metrics["val_acc"] >= 0.9
        E = res.model.embed.weight.detach().numpy().astype(np.float64)
        power = fourier_power(E)[1:]
        top = set((np.argsort(-power)[:3] + 1).tolist())
        # sparse in frequency: 5 of the 11 frequencies carry > 70 % (uniform: 45 %)
        assert power[np.argsort(-power)[:5]].sum() > 0.7 * power.sum()
        tops.append(top)
    assert tops[0] != tops[1]
