"""The networks of this example, as their owner wrote them: plain torch, no ensemble_lens."""

import torch
from torch import nn


class Net(nn.Module):
    """x (n, 3) -> a 4-unit ``latent`` layer -> a linear read-out: the prediction of u."""

    def __init__(self, width: int = 64, latent: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(3, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh()
        )
        self.latent = nn.Linear(width, latent)
        self.head = nn.Linear(latent, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.latent(self.body(x)))


def make(width: int = 64, latent: int = 4) -> Net:
    """The factory ensemble_lens calls to rebuild a network before loading its state_dict."""
    return Net(width, latent)
