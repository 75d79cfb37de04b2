"""The L-BFGS polish after the Adam epochs (``TrainSpec.polish``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ensemble_lens.models import train_member
from ensemble_lens.models.bottleneck import InputScale
from ensemble_lens.models.train_vmap import train_members_vmap
from ensemble_lens.tasks import FormulaTask


def _task(noise: float = 0.0) -> FormulaTask:
    return FormulaTask("exp(-x**2/2)*y", {"x": [1, 3], "y": [2, 6]}, noise=noise, n=1500)


def _error(task: FormulaTask, model: torch.nn.Module) -> float:
    """1 - R^2 of the best affine image of the latent against the clean law."""
    x = task.sample_probe(2000, seed=5)
    with torch.no_grad():
        z = task.probe_module(model)(torch.from_numpy(x)).numpy()[:, 0].astype(np.float64)
    y = task.law(x.astype(np.float64))
    a = np.c_[z, np.ones_like(z)]
    r = y - a @ np.linalg.lstsq(a, y, rcond=None)[0]
    return float(np.mean(r**2) / np.var(y))


def test_polish_lowers_the_error_of_a_smooth_fit_and_is_deterministic():
    task = _task()
    adam = task.default_train.model_copy(update={"epochs": 40, "polish": 0})
    polished = adam.model_copy(update={"polish": 100})
    plain = train_member(task, task.default_arch, adam, seed=0)
    first = train_member(task, task.default_arch, polished, seed=0)
    again = train_member(task, task.default_arch, polished, seed=0)
    assert plain.metrics["polished"] == 0.0 and first.metrics["polished"] == 1.0
    assert first.metrics["val_loss"] < 0.5 * plain.metrics["val_loss"]
    assert _error(task, first.model) < 0.5 * _error(task, plain.model)
    assert first.state_dict_bytes() == again.state_dict_bytes()
    assert next(first.model.parameters()).dtype == torch.float32


def test_a_polish_that_does_not_lower_the_validation_loss_is_put_back():
    # pure noise: whatever L-BFGS fits on the training rows does not carry to validation
    task = _task(noise=0.0)
    spec = task.default_train.model_copy(
        update={"epochs": 3, "polish": 30, "target_shuffle": "shared"}
    )
    base = train_member(task, task.default_arch, spec.model_copy(update={"polish": 0}), seed=1)
    result = train_member(task, task.default_arch, spec, seed=1)
    assert result.metrics["polished"] == 0.0
    assert result.metrics["val_loss"] == base.metrics["val_loss"]
    assert result.state_dict_bytes() == base.state_dict_bytes()


def test_vmap_members_are_polished_like_single_members():
    task = _task()
    spec = task.default_train.model_copy(update={"epochs": 20, "polish": 50})
    results = train_members_vmap(task, task.default_arch, spec, [0, 1])
    plain = train_members_vmap(
        task, task.default_arch, spec.model_copy(update={"polish": 0}), [0, 1]
    )
    for r, p in zip(results, plain, strict=True):
        assert r.metrics["polished"] == 1.0
        assert r.metrics["val_loss"] < p.metrics["val_loss"]


def test_formula_networks_see_their_inputs_on_minus_one_to_one():
    task = _task()
    model = task.build_model(task.default_arch, seed=0)
    scale = dict(model.encoder.named_children())["scale"]
    assert isinstance(scale, InputScale)
    x = torch.tensor([[1.0, 2.0], [3.0, 6.0], [2.0, 4.0]])
    assert torch.allclose(scale(x), torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]))
    assert {"encoder.scale.centre", "encoder.scale.radius"} <= set(model.state_dict())


@pytest.mark.parametrize("bad", [-1, 1.5])
def test_polish_must_be_a_count(bad):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="polish"):
        _task().default_train.model_copy(update={"polish": bad}).model_validate(
            {**_task().default_train.model_dump(), "polish": bad}
        )
