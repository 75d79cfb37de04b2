"""Three small networks for (a + b) mod p, plain torch (no ensemble_lens import).

Each embeds both operands with one table ``E`` and has a layer named ``hidden`` where the two
operands meet:

* ``clock``: ``hidden = (A E[a]) * (B E[b])``, a multiplicative (bilinear) interaction;
* ``pizza``: ``hidden = ReLU(W [E[a], E[b]])``, an MLP on the concatenated embeddings;
* ``summed``: ``hidden = ReLU(W (E[a] + E[b]))``, an MLP on the summed embeddings.
"""

import torch
from torch import nn


class Clock(nn.Module):
    def __init__(self, p: int, dim: int = 16, width: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(p, dim)
        self.left, self.right = nn.Linear(dim, width), nn.Linear(dim, width)
        self.hidden = nn.Identity()
        self.out = nn.Linear(width, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.embed(x.long())
        return self.out(self.hidden(self.left(e[:, 0]) * self.right(e[:, 1])))


class Pizza(nn.Module):
    def __init__(self, p: int, dim: int = 16, width: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(p, dim)
        self.mix = nn.Linear(2 * dim, width)
        self.hidden = nn.ReLU()
        self.out = nn.Linear(width, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.embed(x.long())
        return self.out(self.hidden(self.mix(e.reshape(len(x), -1))))


class Summed(nn.Module):
    def __init__(self, p: int, dim: int = 16, width: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(p, dim)
        self.mix = nn.Linear(dim, width)
        self.hidden = nn.ReLU()
        self.out = nn.Linear(width, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.embed(x.long())
        return self.out(self.hidden(self.mix(e[:, 0] + e[:, 1])))


KINDS = {"clock": Clock, "pizza": Pizza, "summed": Summed}


def make(kind: str, p: int, dim: int = 16, width: int = 64) -> nn.Module:
    return KINDS[kind](p, dim, width)
