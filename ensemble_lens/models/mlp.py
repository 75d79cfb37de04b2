"""MLP builder with stable, named layers.

Layer names inside the returned ``nn.Sequential``: ``hidden0, act0, hidden1, act1, ...`` for
the hidden layers and ``out_name`` (default ``"out"``) for the final linear layer, so that a
latent layer can be addressed by name (e.g. ``"latent"``) by recording hooks.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ensemble_lens.errors import ConfigError

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}


def activation(name: str) -> nn.Module:
    """A fresh activation module for ``"relu" | "silu" | "tanh" | "gelu"``."""
    try:
        return _ACTIVATIONS[name]()
    except KeyError as err:
        raise ConfigError(
            f"activation: expected one of {sorted(_ACTIVATIONS)}, got {name!r}"
        ) from err


def build_mlp(
    n_in: int,
    n_out: int,
    *,
    width: int,
    depth: int,
    act: str,
    out_name: str = "out",
) -> nn.Sequential:
    """Build ``n_in -> width (x depth hidden layers) -> n_out``.

    Parameters
    ----------
    n_in, n_out : int
        Input and output features.
    width : int
        Units per hidden layer.
    depth : int
        Number of hidden layers (0 gives a single linear layer).
    act : str
        Activation name (see :func:`activation`).
    out_name : str
        Name of the final linear layer.

    Returns
    -------
    nn.Sequential
        Maps ``(..., n_in)`` to ``(..., n_out)``.
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    prev = n_in
    for k in range(depth):
        layers[f"hidden{k}"] = nn.Linear(prev, width)
        layers[f"act{k}"] = activation(act)
        prev = width
    layers[out_name] = nn.Linear(prev, n_out)
    return nn.Sequential(layers)
