"""The pair-energy task: autograd physics, gauge fixing and probe layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ensemble_lens.errors import TaskError
from ensemble_lens.models.spec import ArchSpec
from ensemble_lens.tasks import get_task

ARCH = ArchSpec(family="pair_energy", width=8, depth=1, activation="silu", latent_dim=1)


class ExactEnergy(nn.Module):
    """-m_i m_j / r plus a symmetric mass-only term the gauge fixing must remove."""

    def forward(self, x):
        r, mi, mj = x[..., 0:1], x[..., 1:2], x[..., 2:3]
        return -mi * mj / r + 5.0 * (mi + mj)


def test_truth_is_gauge_fixed_energy():
    task = get_task("pair_energy")
    probe = np.array([[2.0, 1.0, 3.0], [1.0, 2.0, 2.0]])
    np.testing.assert_allclose(task.truth(probe)["energy"], [0.0, 4 * (0.5 - 1.0)])
    assert str(get_task("pair_energy", r_ref=4.0).latents["energy"]) == "m_i*m_j*(1/4 - 1/r)"


def test_exact_pair_energy_gives_gravity_accelerations_and_truth():
    task = get_task("pair_energy")
    model = task.build_model(ARCH, seed=0).eval()
    model.energy.mlp = ExactEnergy()
    data = task.make_data(8, seed=1)
    torch.testing.assert_close(model(data), data["target"], rtol=1e-4, atol=1e-4)
    probe = task.sample_probe(40, seed=0)
    with torch.no_grad():
        latent = task.probe_module(model)(torch.from_numpy(probe)).numpy()[:, 0]
    np.testing.assert_allclose(latent, task.truth(probe)["energy"], rtol=1e-4, atol=1e-5)


def test_learned_energy_is_symmetric_in_the_masses():
    task = get_task("pair_energy")
    energy = task.probe_module(task.build_model(ARCH, seed=0))
    x = torch.tensor([[1.3, 0.7, 1.9]])
    torch.testing.assert_close(energy(x), energy(x[:, [0, 2, 1]]))
    assert task.latent_layer in dict(energy.named_modules())


def test_training_mode_keeps_graph_and_eval_detaches():
    task = get_task("pair_energy")
    model = task.build_model(ARCH, seed=0)
    data = task.make_data(4, seed=0)
    assert model.train()(data).requires_grad
    assert not model.eval()(data).requires_grad


def test_probe_is_r_and_masses_with_extrapolation():
    task = get_task("pair_energy")
    probe = task.sample_probe(100, seed=0)
    assert probe.shape == (100, 3) and task.input_names == ("r", "m_i", "m_j")
    assert probe[:, 1:].max() <= 2.0
    assert task.sample_probe(100, seed=0, extrapolate=True)[:, 1:].min() >= 2.0


def test_rejects_wrong_arch_and_r_ref():
    task = get_task("pair_energy")
    with pytest.raises(TaskError, match="expected arch family 'pair_energy' with latent_dim 1"):
        task.build_model(ARCH.model_copy(update={"latent_dim": 2}), seed=0)
    with pytest.raises(TaskError, match="expected r_ref > 0, got -1"):
        get_task("pair_energy", r_ref=-1)
