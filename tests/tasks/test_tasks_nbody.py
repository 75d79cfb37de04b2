"""Known answers of the n-body pair-force tasks and their graph network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ensemble_lens.errors import TaskError
from ensemble_lens.models.spec import ArchSpec
from ensemble_lens.tasks import get_task


def test_gravity_truth_hand_computed():
    task = get_task("gravity")
    # receiver at origin, sender of mass 2 at (3, 4): r = 5, m_j d / r^3 = 2 (3, 4) / 125
    probe = np.array([[3.0, 4.0, 5.0, 1.0, 2.0]], dtype=np.float32)
    truth = task.truth(probe)
    np.testing.assert_allclose(truth["fx"], [6 / 125], rtol=1e-6)
    np.testing.assert_allclose(truth["fy"], [8 / 125], rtol=1e-6)


def test_spring_and_charge_truth_hand_computed():
    probe = np.array([[0.0, 2.0, 2.0, 1.0, 3.0]])
    spring = get_task("spring").truth(probe)
    np.testing.assert_allclose([spring["fx"][0], spring["fy"][0]], [0.0, 1.0])  # (r-1) d/r
    charge = get_task("charge").truth(np.array([[0.0, 2.0, 2.0, -1.0, 1.0]]))
    np.testing.assert_allclose([charge["fx"][0], charge["fy"][0]], [0.0, -0.25])  # -d/8


def test_gravity_accelerations_of_two_bodies():
    task = get_task("gravity", n_bodies=2)
    pos = np.array([[[0.0, 0.0], [2.0, 0.0]]])
    mass = np.array([[1.0, 3.0]])
    acc = task.accelerations(pos, mass)
    # body 0 pulled towards body 1 by m_1 / r^2 = 3/4; body 1 towards body 0 by 1/4
    np.testing.assert_allclose(acc, [[[0.75, 0.0], [-0.25, 0.0]]])


def test_charge_like_charges_repel_and_spring_ignores_mass():
    charge = get_task("charge", n_bodies=2)
    acc = charge.accelerations(np.array([[[0.0, 0.0], [1.0, 0.0]]]), np.array([[1.0, 1.0]]))
    np.testing.assert_allclose(acc, [[[-1.0, 0.0], [1.0, 0.0]]])
    spring = get_task("spring", n_bodies=2)
    acc = spring.accelerations(np.array([[[0.0, 0.0], [3.0, 0.0]]]), np.array([[2.0, 1.0]]))
    np.testing.assert_allclose(acc, [[[2.0, 0.0], [-2.0, 0.0]]])  # (r - 1) = 2


@pytest.mark.parametrize("name", ["gravity", "spring", "charge"])
def test_probe_shape_names_and_extrapolation_range(name):
    task = get_task(name)
    probe = task.sample_probe(50, seed=0)
    assert probe.shape == (50, 5) and probe.dtype == np.float32
    np.testing.assert_allclose(probe[:, 2], np.hypot(probe[:, 0], probe[:, 1]), rtol=1e-6)
    assert probe[:, 2].min() >= task.min_separation - 1e-6
    assert probe[:, :2].max() <= 2 * task.box + 1e-6
    extra = task.sample_probe(2000, seed=0, extrapolate=True)
    assert extra[:, :2].max() > 2 * task.box  # larger box
    np.testing.assert_array_equal(probe, task.sample_probe(50, seed=0))
    assert not np.array_equal(probe, task.sample_probe(50, seed=1))


def test_gravity_extrapolation_uses_heavier_masses():
    task = get_task("gravity")
    assert task.sample_probe(500, 0)[:, 3:].max() <= 2.0
    assert task.sample_probe(500, 0, extrapolate=True)[:, 3:].min() >= 2.0


@pytest.mark.parametrize("name", ["gravity", "spring", "charge"])
def test_latents_turn_with_the_separation_vector(name):
    task = get_task(name)
    probe = task.sample_probe(20, seed=3).astype(np.float64)
    angle = 0.7
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    turned = probe.copy()
    turned[:, :2] = probe[:, :2] @ rot.T
    f = np.stack(list(task.truth(probe).values()), 1)
    g = np.stack(list(task.truth(turned).values()), 1)
    np.testing.assert_allclose(g, f @ rot.T, atol=1e-9)


def test_make_data_targets_match_accelerations():
    task = get_task("gravity")
    data = task.make_data(5, seed=2)
    assert data["pos"].shape == (5, 4, 2) and data["node"].shape == (5, 4)
    expected = task.accelerations(data["pos"].double().numpy(), data["node"].double().numpy())
    np.testing.assert_allclose(data["target"].numpy(), expected, rtol=1e-4, atol=1e-5)


def test_graphnet_probe_module_exposes_latent_layer():
    task = get_task("gravity")
    arch = ArchSpec(family="graphnet", width=8, depth=2, activation="relu", latent_dim=3)
    model = task.build_model(arch, seed=0)
    module = task.probe_module(model)
    names = dict(module.named_modules())
    assert task.latent_layer in names
    assert list(names) == ["", "hidden0", "act0", "hidden1", "act1", "latent"]
    out = module(torch.from_numpy(task.sample_probe(6, 0)))
    assert out.shape == (6, 3)
    pred = model(task.make_data(2, 0))
    assert pred.shape == (2, 4, 2)


def test_graphnet_messages_are_summed_over_senders():
    task = get_task("gravity", n_bodies=3)
    arch = ArchSpec(family="graphnet", width=8, depth=1, activation="tanh", latent_dim=2)
    model = task.build_model(arch, seed=0)
    data = task.make_data(1, seed=0)
    model(data)
    msg = model.latent_activations[0]  # (6 edges, 2), receiver-major
    agg = model.incidence @ msg
    torch.testing.assert_close(agg[0], msg[0] + msg[1])
    torch.testing.assert_close(agg[2], msg[4] + msg[5])


def test_node_input_feeds_the_receiver_feature_to_the_node_model():
    task = get_task("charge", node_input=True)
    arch = ArchSpec(family="graphnet", width=8, depth=1, activation="relu", latent_dim=3)
    model = task.build_model(arch, seed=0)
    assert model.node.hidden0.in_features == 4
    assert get_task("charge").build_model(arch, seed=0).node.hidden0.in_features == 3
    data = task.make_data(3, seed=0)
    assert model(data).shape == (3, 4, 2)


def test_build_model_rejects_wrong_family():
    arch = ArchSpec(family="siamese", width=8, depth=1, activation="relu", latent_dim=2)
    with pytest.raises(TaskError, match="task 'gravity': expected arch family 'graphnet'"):
        get_task("gravity").build_model(arch, seed=0)


def test_invalid_geometry_raises():
    with pytest.raises(TaskError, match=r"min_separation 1\.0 too large for box 1\.2"):
        get_task("spring", box=1.2, min_separation=1.0)
