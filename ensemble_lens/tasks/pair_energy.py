"""Pair-energy task: a Hamiltonian-style graph network learns the gravitational pair energy.

Same systems as :class:`~ensemble_lens.tasks.nbody.GravityTask` (4 bodies, masses in
[0.5, 2], unsoftened gravity with G = 1). The model
(:class:`~ensemble_lens.models.graphnet.PairEnergyNet`) sums a learned symmetric pair energy
``E(r, m_i, m_j)`` over unordered pairs and predicts accelerations ``-(1/m_i) dU/dx_i`` by
autograd. The latent is the pair energy ``-m_i * m_j / r`` up to a gauge.

Gauge: forces fix ``E`` only up to an additive symmetric function of the masses
``h(m_i, m_j)``. The model removes it by making the energy vanish at ``r = r_ref`` (default
2), so the truth is exactly ``m_i * m_j * (1/r_ref - 1/r)`` with unit scale (fixed by the
physics); ``latent_kind="scalar"`` (an affine image of the truth).
"""

from __future__ import annotations

from typing import cast

import numpy as np
import sympy
import torch

from ensemble_lens.errors import TaskError
from ensemble_lens.models.graphnet import PairEnergyNet
from ensemble_lens.models.spec import ArchSpec, TrainSpec
from ensemble_lens.tasks.base import Task
from ensemble_lens.tasks.nbody import GravityTask

_r, _mi, _mj = sympy.symbols("r m_i m_j")


class PairEnergyTask(Task):
    """Learn the pair energy ``-m_i m_j / r`` from accelerations.

    Parameters
    ----------
    n_bodies, box, min_separation
        As for :class:`~ensemble_lens.tasks.nbody.GravityTask`.
    r_ref : float
        Distance where the learned pair energy is pinned to zero.
    """

    name = "pair_energy"
    input_names = ("r", "m_i", "m_j")
    latent_kind = "scalar"
    equivariant_vector = None
    latent_layer = "latent"
    default_arch = ArchSpec(
        family="pair_energy", width=64, depth=3, activation="silu", latent_dim=1
    )
    default_train = TrainSpec(
        epochs=15, batch_size=64, lr=2e-3, n_train=6000, n_val=1000, patience=5
    )

    def __init__(
        self,
        *,
        n_bodies: int = 4,
        box: float = 1.5,
        min_separation: float = 0.5,
        r_ref: float = 2.0,
    ):
        if r_ref <= 0:
            raise TaskError(f"task '{self.name}': expected r_ref > 0, got {r_ref}")
        self.r_ref = r_ref
        self.latents = {"energy": _mi * _mj * (1 / sympy.nsimplify(r_ref) - 1 / _r)}
        self._gravity = GravityTask(n_bodies=n_bodies, box=box, min_separation=min_separation)
        self.n_bodies = n_bodies

    def sample_probe(self, n: int, seed: int, *, extrapolate: bool = False) -> np.ndarray:
        """``(r, m_i, m_j)`` of edges from gravity systems; ``(n, 3)`` float32.

        The extrapolation range is the gravity one (1.5x box, masses in [2, 3]).
        """
        edges = self._gravity.sample_probe(n, seed, extrapolate=extrapolate)
        return edges[:, 2:].copy()

    def make_data(self, n: int, seed: int) -> dict[str, torch.Tensor]:
        """``pos`` (n, n_bodies, 2), ``node`` masses (n, n_bodies), ``target`` accelerations."""
        return self._gravity.make_data(n, seed)

    def build_model(self, arch: ArchSpec, seed: int) -> torch.nn.Module:
        """A :class:`~ensemble_lens.models.graphnet.PairEnergyNet` (family ``"pair_energy"``)."""
        if arch.family != "pair_energy" or arch.latent_dim != 1:
            raise TaskError(
                f"task '{self.name}': expected arch family 'pair_energy' with latent_dim 1, "
                f"got {arch.family!r} with latent_dim {arch.latent_dim}"
            )
        torch.manual_seed(seed)
        return PairEnergyNet(arch, self.n_bodies, r_ref=self.r_ref)

    def probe_module(self, model: torch.nn.Module) -> torch.nn.Module:
        """The symmetric pair energy ``model.energy``: ``(n, 3)`` to ``(n, 1)``."""
        return cast(torch.nn.Module, model.energy)
