"""Pair-interaction graph network on fully connected 2-D or 3-D systems (Cranmer et al. 2020).

Edge ``(i <- j)`` features, in this column order: ``dx, dy[, dz], r, f_i, f_j`` with
``d = x_j - x_i`` (sender ``j`` minus receiver ``i``), ``r = |d|`` and ``f`` a scalar node
feature (mass or charge). The edge MLP maps them to a message (the latent, layer ``"latent"``
inside ``model.edge``), messages are summed over senders, and the node MLP maps the summed
message (and, optionally, the receiver's own feature ``f_i``) to its acceleration.
"""

from __future__ import annotations

import torch
from torch import nn

from ensemble_lens.models.mlp import build_mlp
from ensemble_lens.models.spec import ArchSpec


def all_pairs(n_bodies: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Receiver and sender indices of every ordered pair ``i != j``.

    Returns
    -------
    recv, send : torch.Tensor
        ``(n_bodies * (n_bodies - 1),)`` int64, receiver-major order.
    """
    recv = [i for i in range(n_bodies) for j in range(n_bodies) if i != j]
    send = [j for i in range(n_bodies) for j in range(n_bodies) if i != j]
    return torch.tensor(recv), torch.tensor(send)


def edge_features(
    pos: torch.Tensor, node: torch.Tensor, recv: torch.Tensor, send: torch.Tensor
) -> torch.Tensor:
    """Edge features ``(dx, dy[, dz], r, f_i, f_j)`` for every ordered pair.

    Parameters
    ----------
    pos : torch.Tensor
        ``(batch, n_bodies, dim)`` positions.
    node : torch.Tensor
        ``(batch, n_bodies)`` scalar node feature.
    recv, send : torch.Tensor
        ``(n_edges,)`` receiver and sender indices.

    Returns
    -------
    torch.Tensor
        ``(batch, n_edges, dim + 3)``.
    """
    d = pos[:, send] - pos[:, recv]
    r = torch.sqrt((d * d).sum(-1, keepdim=True))
    return torch.cat([d, r, node[:, recv, None], node[:, send, None]], dim=-1)


class PairGraphNet(nn.Module):
    """Graph network ``acc_i = node([f_i,] sum_j edge(dx, dy, r, f_i, f_j))``.

    Parameters
    ----------
    arch : ArchSpec
        ``width``/``depth``/``activation`` of both MLPs, ``latent_dim`` message size,
        ``l1`` weight of the message L1 penalty.
    n_bodies : int
        Bodies per system.
    node_input : bool
        Also give the receiver's feature ``f_i`` to the node MLP (Cranmer et al.). It lets the
        network split a law ``g(f_i) * phi`` between edge and node models, so the message is
        a linear image of ``phi`` only up to a receiver-dependent gauge; off by default.
    dim : int
        Space dimension (2 or 3) of positions and accelerations.

    Notes
    -----
    ``forward(batch)`` takes ``batch["pos"]`` ``(B, n_bodies, dim)`` and ``batch["node"]``
    ``(B, n_bodies)`` and returns ``(B, n_bodies, dim)`` accelerations. The messages of the last
    call are kept in ``latent_activations`` ``(B, n_edges, latent_dim)`` for the L1 penalty.
    """

    recv: torch.Tensor
    send: torch.Tensor
    incidence: torch.Tensor

    def __init__(
        self, arch: ArchSpec, n_bodies: int, node_input: bool = False, dim: int = 2
    ) -> None:
        super().__init__()
        self.l1 = arch.l1
        self.node_input = node_input
        self.dim = dim
        self.edge = build_mlp(
            dim + 3,
            arch.latent_dim,
            width=arch.width,
            depth=arch.depth,
            act=arch.activation,
            out_name="latent",
        )
        self.node = build_mlp(
            int(node_input) + arch.latent_dim,
            dim,
            width=arch.width,
            depth=arch.depth,
            act=arch.activation,
        )
        recv, send = all_pairs(n_bodies)
        incidence = torch.zeros(n_bodies, len(recv))
        incidence[recv, torch.arange(len(recv))] = 1.0
        self.register_buffer("recv", recv, persistent=False)
        self.register_buffer("send", send, persistent=False)
        self.register_buffer("incidence", incidence, persistent=False)
        self.latent_activations: torch.Tensor | None = None

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Accelerations ``(B, n_bodies, dim)`` of every body."""
        node = batch["node"]
        msg = self.edge(edge_features(batch["pos"], node, self.recv, self.send))
        self.latent_activations = msg
        agg = torch.einsum("ne,bel->bnl", self.incidence, msg)
        if self.node_input:
            agg = torch.cat([node[..., None], agg], dim=-1)
        return self.node(agg)


class SymmetricPairEnergy(nn.Module):
    """Gauge-fixed symmetric pair energy ``E(r, m_i, m_j) = S(r, m_i, m_j) - S(r_ref, m_i, m_j)``.

    ``S(r, m_i, m_j) = (g(r, m_i, m_j) + g(r, m_j, m_i)) / 2`` for an MLP ``g``; subtracting
    its value at the reference distance ``r_ref`` removes the additive function of the masses
    that forces cannot determine, so ``E(r_ref, ., .) = 0``. Maps ``(n, 3)`` features
    ``(r, m_i, m_j)`` to ``(n, 1)``; the result passes through the identity layer ``latent``
    (hook it to record the pair energy once per call).

    Parameters
    ----------
    arch : ArchSpec
        Sizes of ``g``.
    r_ref : float
        Distance at which the pair energy is zero.
    """

    def __init__(self, arch: ArchSpec, r_ref: float) -> None:
        super().__init__()
        self.r_ref = r_ref
        self.mlp = build_mlp(3, 1, width=arch.width, depth=arch.depth, act=arch.activation)
        self.latent = nn.Identity()

    def _symmetric(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.mlp(x) + self.mlp(x[..., [0, 2, 1]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pair energies ``(n, 1)`` of ``(n, 3)`` features."""
        ref = torch.cat([torch.full_like(x[..., :1], self.r_ref), x[..., 1:]], dim=-1)
        return self.latent(self._symmetric(x) - self._symmetric(ref))


class PairEnergyNet(nn.Module):
    """Hamiltonian-style graph network: ``a_i = -(1 / m_i) dU/dx_i``, ``U = sum_{i<j} E_ij``.

    Parameters
    ----------
    arch : ArchSpec
        Sizes of the pair-energy MLP (``latent_dim`` must be 1).
    n_bodies : int
        Bodies per system.
    r_ref : float
        Distance at which the pair energy is zero (gauge).

    Notes
    -----
    ``forward(batch)`` takes ``batch["pos"]`` ``(B, n_bodies, 2)`` and ``batch["node"]``
    (masses, ``(B, n_bodies)``) and returns ``(B, n_bodies, 2)`` accelerations computed by
    autograd (with a differentiable graph in training mode, detached in eval mode).
    """

    first: torch.Tensor
    second: torch.Tensor

    def __init__(self, arch: ArchSpec, n_bodies: int, r_ref: float = 2.0) -> None:
        super().__init__()
        self.l1 = 0.0
        self.energy = SymmetricPairEnergy(arch, r_ref)
        pairs = torch.triu_indices(n_bodies, n_bodies, offset=1)
        self.register_buffer("first", pairs[0], persistent=False)
        self.register_buffer("second", pairs[1], persistent=False)
        self.latent_activations: torch.Tensor | None = None

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Accelerations ``(B, n_bodies, 2)``."""
        mass = batch["node"]
        with torch.enable_grad():
            pos = batch["pos"].detach().requires_grad_(True)
            d = pos[:, self.second] - pos[:, self.first]
            r = torch.sqrt((d * d).sum(-1, keepdim=True))
            feats = torch.cat([r, mass[:, self.first, None], mass[:, self.second, None]], -1)
            energy = self.energy(feats)
            (grad,) = torch.autograd.grad(energy.sum(), pos, create_graph=self.training)
        acc = -grad / mass[..., None]
        return acc if self.training else acc.detach()
