"""Siamese conserved-quantity tasks: pairs share the invariants, scores and losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ensemble_lens.errors import TaskError
from ensemble_lens.models.siamese import info_nce, matching_accuracy, pair_agreement
from ensemble_lens.models.spec import ArchSpec
from ensemble_lens.tasks import get_task

SIAMESE = ["harmonic", "pendulum", "matrix_invariants"]


@pytest.mark.parametrize("name", SIAMESE)
def test_both_states_of_a_pair_share_the_invariants(name):
    task = get_task(name)
    a, b = task.sample_pairs(200, seed=0)
    assert not np.allclose(a, b)
    ta, tb = task.truth(a), task.truth(b)
    for key in task.latents:
        np.testing.assert_allclose(ta[key], tb[key], atol=1e-9)
        assert np.std(ta[key]) > 0.1


def test_harmonic_and_pendulum_truth_hand_computed():
    np.testing.assert_allclose(get_task("harmonic").truth(np.array([[3.0, 4.0]]))["energy"], 12.5)
    pend = get_task("pendulum").truth(np.array([[np.pi, 2.0], [0.0, 0.0]]))["energy"]
    np.testing.assert_allclose(pend, [3.0, -1.0])


def test_matrix_invariants_truth_hand_computed():
    truth = get_task("matrix_invariants").truth(np.array([[1.0, 2.0, 3.0, 4.0]]))
    assert truth["trace"][0] == 5.0 and truth["det"][0] == -2.0


@pytest.mark.parametrize(
    ("name", "key", "train_max", "extra_min"),
    [("harmonic", "energy", 2.0, 2.0), ("pendulum", "energy", 0.5, 0.5)],
)
def test_extrapolation_energies_lie_beyond_training(name, key, train_max, extra_min):
    task = get_task(name)
    assert task.truth(task.sample_probe(300, 0))[key].max() <= train_max + 1e-5
    assert task.truth(task.sample_probe(300, 0, extrapolate=True))[key].min() >= extra_min - 1e-5


def test_matrix_extrapolation_is_wider():
    task = get_task("matrix_invariants")
    spread = np.ptp(task.truth(task.sample_probe(2000, 0))["det"])
    assert np.ptp(task.truth(task.sample_probe(2000, 0, extrapolate=True))["det"]) > spread


def test_make_data_layout_and_probe_module():
    task = get_task("harmonic")
    data = task.make_data(10, seed=0)
    assert data["a"].shape == data["b"].shape == (10, 2)
    torch.testing.assert_close(data["target"], torch.arange(10))
    arch = ArchSpec(family="siamese", width=8, depth=1, activation="tanh", latent_dim=1)
    model = task.build_model(arch, seed=0)
    assert model(data).shape == (10, 2, 1)
    assert task.latent_layer in dict(task.probe_module(model).named_modules())
    with pytest.raises(TaskError, match="expected arch family 'siamese', got 'graphnet'"):
        task.build_model(arch.model_copy(update={"family": "graphnet"}), seed=0)


def test_pair_agreement_and_matching_known_answers():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(500, 1, 2)).repeat(2, axis=1)
    assert pair_agreement(z) == pytest.approx(1.0)
    assert matching_accuracy(z) == 1.0
    unrelated = rng.normal(size=(4000, 2, 2))
    assert abs(pair_agreement(unrelated)) < 0.05
    assert pair_agreement(np.zeros((5, 2, 1))) == 0.0


def test_info_nce_prefers_conserved_encodings():
    rng = np.random.default_rng(0)
    good = torch.tensor(rng.normal(size=(64, 1, 2)).repeat(2, axis=1), dtype=torch.float32)
    bad = torch.tensor(rng.normal(size=(64, 2, 2)), dtype=torch.float32)
    assert float(info_nce(good)) < 0.5 < float(info_nce(bad))
    # invariant to the scale and offset of the encoding (it is standardised)
    torch.testing.assert_close(info_nce(3 * bad + 1), info_nce(bad), rtol=1e-4, atol=1e-4)
