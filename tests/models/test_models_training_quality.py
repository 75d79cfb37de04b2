"""One honest short training run per model family: accuracy and a readable latent.

Budgets are reduced from the tasks' defaults (which reach R^2 >= 0.99); thresholds leave
room for that. Latent checks hook ``task.latent_layer`` inside ``task.probe_module``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from ensemble_lens.models import ArchSpec, TrainSpec, train_member
from ensemble_lens.tasks import get_task


def _latent(task, model, probe: np.ndarray) -> np.ndarray:
    module = task.probe_module(model)
    layer = dict(module.named_modules())[task.latent_layer]
    out = []
    handle = layer.register_forward_hook(lambda mod, args, output: out.append(output))
    try:
        with torch.no_grad():
            module(torch.from_numpy(probe))
    finally:
        handle.remove()
    return out[0].numpy().astype(np.float64)


def _linear_r2(z: np.ndarray, truth: dict[str, np.ndarray]) -> float:
    """Worst R^2 of an affine fit of each truth latent from the latent activations."""
    design = np.c_[z, np.ones(len(z))]
    scores = []
    for y in truth.values():
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        scores.append(1 - ((design @ coef - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())
    return min(scores)


def _train(name: str, arch_kw: dict, train_kw: dict):
    task = get_task(name)
    arch = task.default_arch.model_copy(update=arch_kw)
    train = TrainSpec(**{**task.default_train.model_dump(), **train_kw})
    result = train_member(task, ArchSpec(**arch.model_dump()), train, seed=0)
    probe = task.sample_probe(2000, seed=11)
    return task, result, _latent(task, result.model, probe), task.truth(probe)


@pytest.mark.slow
def test_gravity_graphnet_learns_forces_as_messages():
    _, res, z, truth = _train(
        "gravity",
        {"width": 64, "depth": 2, "latent_dim": 8},
        {"n_train": 3000, "n_val": 500, "epochs": 8, "batch_size": 32, "lr": 3e-3},
    )
    assert res.metrics["val_r2"] > 0.95
    assert _linear_r2(z, truth) > 0.9


@pytest.mark.slow
def test_pair_energy_latent_is_the_gauge_fixed_energy():
    _, res, z, truth = _train(
        "pair_energy",
        {"width": 32, "depth": 2},
        {"n_train": 1500, "n_val": 300, "epochs": 6, "batch_size": 32},
    )
    assert res.metrics["val_r2"] > 0.9
    assert _linear_r2(z, truth) > 0.95


def test_siamese_encoding_is_monotone_in_the_energy():
    _, res, z, truth = _train(
        "harmonic", {"width": 32}, {"n_train": 4096, "n_val": 1024, "epochs": 8}
    )
    assert res.metrics["val_r2"] > 0.95
    assert abs(spearmanr(z[:, 0], truth["energy"]).statistic) > 0.98


@pytest.mark.slow
def test_bottleneck_is_a_linear_image_of_both_latents():
    _, res, z, truth = _train(
        "bottleneck",
        {"width": 32},
        {"n_train": 3000, "n_val": 500, "epochs": 15, "batch_size": 64},
    )
    assert res.metrics["val_r2"] > 0.95
    assert _linear_r2(z, truth) > 0.95
