"""Tasks in any dimension (the n-body family in 3-D) and tasks that declare their SR needs."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch

from ensemble_lens.errors import TaskError
from ensemble_lens.models.spec import ArchSpec, TrainSpec
from ensemble_lens.models.train import train_member
from ensemble_lens.tasks import get_task
from ensemble_lens.tasks.nbody import NBodyTask


def test_gravity_in_3d_truth_and_accelerations_hand_computed():
    task = get_task("gravity", dim=3, n_bodies=2)
    assert task.input_names == ("dx", "dy", "dz", "r", "m_i", "m_j")
    assert task.equivariant_vector == ("dx", "dy", "dz")
    assert sorted(task.latents) == ["fx", "fy", "fz"]
    # sender of mass 2 at (2, 3, 6) from the receiver: r = 7, m_j d / r^3 = 2 (2, 3, 6) / 343
    truth = task.truth(np.array([[2.0, 3.0, 6.0, 7.0, 1.0, 2.0]]))
    np.testing.assert_allclose(
        [truth[k][0] for k in ("fx", "fy", "fz")], [4 / 343, 6 / 343, 12 / 343]
    )
    pos = np.array([[[0.0, 0.0, 0.0], [0.0, 0.0, 2.0]]])
    acc = task.accelerations(pos, np.array([[1.0, 3.0]]))
    np.testing.assert_allclose(acc, [[[0, 0, 0.75], [0, 0, -0.25]]])


def test_3d_samplers_keep_the_separation_and_the_2d_latents_are_unchanged():
    task = get_task("spring", dim=3, n_bodies=3)
    pos, node = task.sample_systems(50, seed=0)
    assert pos.shape == (50, 3, 3) and node.shape == (50, 3)
    d = pos[:, :, None] - pos[:, None]
    r = np.sqrt((d**2).sum(-1)) + np.eye(3) * 1e9
    assert r.min() >= task.min_separation
    probe = task.sample_probe(100, seed=1)
    assert probe.shape == (100, 6)
    np.testing.assert_allclose(probe[:, 3], np.linalg.norm(probe[:, :3], axis=1), rtol=1e-5)
    dx, dy, r_ = sympy.symbols("dx dy r")
    assert get_task("gravity").latents["fx"] == sympy.Symbol("m_j") * dx / r_**3
    assert get_task("spring").latents["fy"] == (r_ - 1) * dy / r_


def test_3d_graph_net_learns_gravity_a_little():
    task = get_task("gravity", dim=3, n_bodies=3)
    arch = ArchSpec(family="graphnet", width=32, depth=2, activation="silu", latent_dim=6)
    train = TrainSpec(epochs=4, batch_size=32, lr=3e-3, n_train=800, n_val=200, patience=4)
    result = train_member(task, arch, train, seed=0)
    batch = task.make_data(4, seed=5)
    assert result.model(batch).shape == (4, 3, 3)
    latent = task.probe_module(result.model)(torch.from_numpy(task.sample_probe(10, 0)))
    assert latent.shape == (10, 6)
    assert result.metrics["val_r2"] > 0.0


def test_bad_dimension_and_a_user_law_without_pair_law():
    with pytest.raises(TaskError, match="expected dim 2 or 3, got 4"):
        get_task("gravity", dim=4)

    class OldStyle(NBodyTask):
        name = "old"
        latents = {"fx": sympy.Symbol("dx"), "fy": sympy.Symbol("dy")}  # noqa: RUF012

    assert OldStyle().input_names == ("dx", "dy", "r", "m_i", "m_j")
    with pytest.raises(TaskError, match="dim 3 needs a pair_law"):
        OldStyle(dim=3)


def test_a_user_n_body_law_in_3d_by_its_pair_law():
    class Yukawa(NBodyTask):
        name = "yukawa"
        pair_law = sympy.Symbol("m_j") * sympy.exp(-sympy.Symbol("r")) / sympy.Symbol("r")
        sr_functions = ("exp",)

    task = Yukawa(dim=3)
    x = task.sample_probe(20, seed=0).astype(np.float64)
    truth = task.truth(x)
    np.testing.assert_allclose(truth["fz"], x[:, 5] * np.exp(-x[:, 3]) / x[:, 3] * x[:, 2])


@pytest.mark.slow
def test_a_3d_gravity_study_searches_the_three_component_input_basis(tmp_path):
    from ensemble_lens.pipeline.runner import run_study

    cfg = {
        "name": "g3",
        "task": {"name": "gravity", "params": {"dim": 3, "n_bodies": 3}},
        "probe": {"n": 1500, "n_extrapolation": 300},
        "ensemble": {
            "seeds": [0, 1, 2],
            "architectures": [{"width": 48, "depth": 2, "latent_dim": 8}],
            "train": {"epochs": 12, "n_train": 4000, "n_val": 500},
            "untrained_null": False,
        },
        "consensus": {"n_null": 5},
        "distill": {"backend": "operon", "options": {"population_size": 300, "generations": 40}},
        "execution": {"scheduler": "serial"},
    }
    result = run_study(
        cfg, store=tmp_path / "s.zarr", stages=["probe", "train", "compare", "consensus", "distill"]
    )
    assert result.store.probe_names == ("dx", "dy", "dz", "r", "m_i", "m_j")
    formulas = result.formulas
    assert [f["component"] for f in formulas] == ["dx-component", "dy-component", "dz-component"]
    assert all(f["basis"] == "equivariant" for f in formulas)
    assert all(f["r2_test"] > 0.8 for f in formulas)


def test_screened_task_truth_and_primitives_in_3d():
    task = get_task("screened", dim=3, n_bodies=2, decay_length=2.0)
    assert task.sr_functions == ("exp",) and sorted(task.latents) == ["fx", "fy", "fz"]
    # sender of mass 2 at (2, 3, 6): r = 7, m_j exp(-r / 2) d / r^2
    truth = task.truth(np.array([[2.0, 3.0, 6.0, 7.0, 1.0, 2.0]]))
    s = 2.0 * np.exp(-3.5) / 49.0
    np.testing.assert_allclose([truth[k][0] for k in ("fx", "fy", "fz")], [2 * s, 3 * s, 6 * s])
    pos = np.array([[[0.0, 0.0, 0.0], [0.0, 0.0, 2.0]]])
    acc = task.accelerations(pos, np.array([[1.0, 3.0]]))  # receiver 0 pulled up by mass 3
    np.testing.assert_allclose(acc[0, 0], [0, 0, 3 * np.exp(-1.0) * 2 / 4])
    r, mj = sympy.symbols("r m_j")
    assert get_task("screened").latents["fx"] == mj * sympy.exp(-r) * sympy.Symbol("dx") / r**2
    with pytest.raises(TaskError, match="decay_length > 0"):
        get_task("screened", decay_length=0)
