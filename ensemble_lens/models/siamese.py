"""Siamese encoder trained contrastively on pairs of states (Wetzel et al.).

Two states of the same trajectory (orbit, similarity class) form a positive pair; the other
pairs of the batch are the negatives. The encoder output (layer ``"latent"`` of
``model.encoder``) must then take equal values on a trajectory and separate trajectories: an
invertible function of the conserved quantities.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ensemble_lens.models.mlp import build_mlp
from ensemble_lens.models.spec import ArchSpec


class SiameseNet(nn.Module):
    """Shared encoder applied to both states of a pair.

    Parameters
    ----------
    arch : ArchSpec
        Encoder sizes; ``latent_dim`` is the encoding size.
    n_in : int
        State variables.

    Notes
    -----
    ``forward(batch)`` takes ``batch["a"]`` and ``batch["b"]``, both ``(B, n_in)``, and returns
    the encodings ``(B, 2, latent_dim)`` (``[:, 0]`` for ``a``, ``[:, 1]`` for ``b``).
    """

    def __init__(self, arch: ArchSpec, n_in: int) -> None:
        super().__init__()
        self.l1 = arch.l1
        self.encoder = build_mlp(
            n_in,
            arch.latent_dim,
            width=arch.width,
            depth=arch.depth,
            act=arch.activation,
            out_name="latent",
        )
        self.latent_activations: torch.Tensor | None = None

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Encodings ``(B, 2, latent_dim)`` of the two states of every pair."""
        z = torch.stack([self.encoder(batch["a"]), self.encoder(batch["b"])], dim=1)
        self.latent_activations = z
        return z


def info_nce(z: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """Symmetric InfoNCE loss of standardised pair encodings.

    Every encoding dimension is standardised over the batch (both states of every pair), so a
    single dimension cannot discriminate trajectories with unbounded precision: with several
    conserved quantities the encoder must use all of them.

    Parameters
    ----------
    z : torch.Tensor
        ``(B, 2, k)`` encodings; row ``i`` of ``z[:, 0]`` is the positive of row ``i`` of
        ``z[:, 1]``, every other row a negative.
    temperature : float
        Logits are ``-|u_a_i - u_b_j|^2 / temperature`` for standardised encodings ``u``.

    Returns
    -------
    torch.Tensor
        Scalar: cross-entropy of the logits against the diagonal, averaged over both
        directions.
    """
    flat = z.reshape(-1, z.shape[-1])
    u = (z - flat.mean(0)) / (flat.std(0) + 1e-6)
    logits = -torch.cdist(u[:, 0], u[:, 1]).pow(2) / temperature
    labels = torch.arange(len(z))
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def pair_agreement(z: np.ndarray) -> float:
    """Fraction of encoding variance shared by the two states of a pair (an R^2 analogue).

    ``1 - mean |z_a - z_b|^2 / (2 * total variance of z)``: 1 when the encoding is exactly
    conserved along trajectories, about 0 when the two states are unrelated.

    Parameters
    ----------
    z : np.ndarray
        ``(B, 2, k)`` encodings.
    """
    z = np.asarray(z, dtype=np.float64)
    flat = z.reshape(-1, z.shape[-1])
    total = float(flat.var(axis=0).sum())
    if total == 0.0:
        return 0.0
    return 1.0 - float(((z[:, 0] - z[:, 1]) ** 2).sum(-1).mean()) / (2.0 * total)


def matching_accuracy(z: np.ndarray, block: int = 256) -> float:
    """Top-1 accuracy of finding each state's partner among ``block`` candidates.

    Parameters
    ----------
    z : np.ndarray
        ``(B, 2, k)`` encodings; consecutive blocks of ``block`` pairs are scored separately.
    """
    z = np.asarray(z, dtype=np.float64)
    hits, total = 0, 0
    for start in range(0, len(z), block):
        za, zb = z[start : start + block, 0], z[start : start + block, 1]
        dist = ((za[:, None, :] - zb[None, :, :]) ** 2).sum(-1)
        hits += int((dist.argmin(axis=1) == np.arange(len(za))).sum())
        total += len(za)
    return hits / total
