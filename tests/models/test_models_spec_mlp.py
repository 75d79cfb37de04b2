"""ArchSpec/TrainSpec validation and the named-layer MLP builder."""

from __future__ import annotations

import pydantic
import pytest
import torch

from ensemble_lens.errors import ConfigError
from ensemble_lens.models.mlp import activation, build_mlp
from ensemble_lens.models.spec import ArchSpec, TrainSpec


def test_specs_forbid_unknown_keys_and_bad_values():
    with pytest.raises(pydantic.ValidationError, match="extra"):
        ArchSpec(family="x", width=4, depth=1, activation="relu", latent_dim=2, heads=3)
    with pytest.raises(pydantic.ValidationError, match="activation"):
        ArchSpec(family="x", width=4, depth=1, activation="swish", latent_dim=2)
    with pytest.raises(pydantic.ValidationError, match="greater than or equal to 0"):
        TrainSpec(epochs=-1, batch_size=4, lr=1e-3, n_train=10, n_val=5, patience=2)
    with pytest.raises(pydantic.ValidationError, match="target_shuffle"):
        TrainSpec(epochs=1, batch_size=4, lr=1e-3, n_train=10, n_val=5, patience=2,
                  target_shuffle="some")  # fmt: skip
    spec = TrainSpec(epochs=1, batch_size=4, lr=1e-3, n_train=10, n_val=5, patience=2)
    assert spec.schedule == "cosine" and spec.data_seed == 0 and spec.max_seconds is None
    assert TrainSpec.model_validate(spec.model_dump()) == spec


def test_build_mlp_names_and_shapes():
    mlp = build_mlp(3, 2, width=5, depth=2, act="tanh", out_name="latent")
    assert [n for n, _ in mlp.named_children()] == [
        "hidden0",
        "act0",
        "hidden1",
        "act1",
        "latent",
    ]
    assert isinstance(mlp.act0, torch.nn.Tanh)
    assert mlp(torch.zeros(7, 3)).shape == (7, 2)
    assert [n for n, _ in build_mlp(3, 2, width=5, depth=0, act="relu").named_children()] == ["out"]


def test_unknown_activation_raises_config_error():
    with pytest.raises(ConfigError, match=r"activation: expected one of .* got 'swish'"):
        activation("swish")
