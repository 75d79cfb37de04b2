"""Bottleneck regression tasks (two-latent bottleneck and Kepler orbits)."""

from __future__ import annotations

import numpy as np
import pytest

from ensemble_lens.errors import TaskError
from ensemble_lens.models.spec import ArchSpec
from ensemble_lens.tasks import get_task


def test_bottleneck_truth_and_targets_hand_computed():
    task = get_task("bottleneck")
    x = np.array([[0.5, 2.0, 1.0, 1.0]])
    truth = task.truth(x)
    assert truth["u"][0] == 1.0 and truth["v"][0] == 2.0
    np.testing.assert_allclose(task._targets(x), [[3.0, -1.0, np.sin(3.0), 2.0, 2.0]])


def test_kepler_circular_orbit_invariants():
    task = get_task("kepler")
    # circular orbit of radius 2: v = sqrt(1/2); E = -1/4, L = 2 v
    v = np.sqrt(0.5)
    truth = task.truth(np.array([[2.0, 0.0, 0.0, v, 2.0]]))
    np.testing.assert_allclose(truth["energy"], -0.25)
    np.testing.assert_allclose(truth["angular_momentum"], 2 * v)
    targets = task._targets(np.array([[2.0, 0.0, 0.0, v, 2.0]]))
    np.testing.assert_allclose(targets, [[2.0, 2 * v, 2.0, 2.0]], atol=1e-6)


def test_kepler_states_lie_on_the_drawn_orbits():
    task = get_task("kepler")
    probe = task.sample_probe(2000, seed=0).astype(np.float64)
    np.testing.assert_allclose(probe[:, 4], np.hypot(probe[:, 0], probe[:, 1]), rtol=1e-6)
    truth = task.truth(probe)
    a = -1 / (2 * truth["energy"])
    ecc = np.sqrt(np.clip(1 + 2 * truth["energy"] * truth["angular_momentum"] ** 2, 0, None))
    assert a.min() >= 0.8 - 1e-3 and a.max() <= 2.0 + 1e-3
    assert ecc.max() <= 0.5 + 1e-3
    assert (truth["angular_momentum"] < 0).mean() == pytest.approx(0.5, abs=0.05)
    extra = task.truth(task.sample_probe(500, seed=0, extrapolate=True).astype(np.float64))
    assert (-1 / (2 * extra["energy"])).min() >= 2.0 - 1e-3


@pytest.mark.parametrize("name", ["bottleneck", "kepler"])
def test_model_layout_and_probe_module(name):
    task = get_task(name)
    arch = ArchSpec(family="bottleneck", width=8, depth=1, activation="gelu", latent_dim=2)
    model = task.build_model(arch, seed=0)
    data = task.make_data(6, seed=0)
    assert model(data).shape == data["target"].shape
    module = task.probe_module(model)
    assert task.latent_layer in dict(module.named_modules())
    assert task.sample_probe(4, 0).shape == (4, len(task.input_names))
    with pytest.raises(TaskError, match=f"task '{name}': expected arch family 'bottleneck'"):
        task.build_model(arch.model_copy(update={"family": "mlp"}), seed=0)


def test_bottleneck_extrapolation_range_is_wider():
    task = get_task("bottleneck")
    assert np.abs(task.sample_probe(200, 0)).max() <= 1.0
    assert np.abs(task.sample_probe(200, 0, extrapolate=True)).max() > 1.0
