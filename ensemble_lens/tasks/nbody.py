"""N-body pair-force tasks for the pair-interaction graph network (Cranmer et al. 2020).

Static 2-D or 3-D (``dim=3``) systems of ``n_bodies`` bodies: positions uniform in a square
(cube) with a minimum pair separation, a scalar node feature per body (mass, or charge +-1).
The target is every body's acceleration ``a_i = s(f_i) * sum_{j != i} phi(d_ij, f_i, f_j)``
where ``phi = pair_law(r, f_i, f_j) * d`` is the latent pair force
(:attr:`NBodyTask.pair_law`; the latents ``fx, fy[, fz]`` are its components) and ``s`` a
receiver factor (1 for gravity and springs, -1 for charges).

Sign convention: ``d = x_j - x_i`` points from the receiver ``i`` to the sender ``j``, so the
gravity latent ``m_j * d / r^3`` is the attraction of ``i`` towards ``j``.

Probe variables are edge features ``(dx, dy[, dz], r, f_i, f_j)`` of edges sampled from generated
systems (training distribution, or the extrapolation range: a 1.5x larger box and, for
gravity, masses in [2, 3] instead of [0.5, 2]). Because messages are summed before a nonlinear
node model that sees only the summed message (``node_input=False``, the default; the receiver
factor is a constant in every built-in law), the message is a linear image of ``phi``
(``latent_kind="vector"``); the latents turn with ``(dx, dy[, dz])``. With ``node_input=True``
(Cranmer et al.'s node model) the network may split ``phi`` between edge and node models,
e.g. send ``q_j d / r^3`` and multiply by ``q_i`` at the receiver: a receiver gauge.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import sympy
import torch

from ensemble_lens.errors import TaskError
from ensemble_lens.models.graphnet import PairGraphNet
from ensemble_lens.models.spec import ArchSpec, TrainSpec
from ensemble_lens.tasks.base import Task

_dx, _dy, _r = sympy.symbols("dx dy r")
_AXES = ("x", "y", "z")

_NBODY_ARCH = ArchSpec(
    family="graphnet", width=128, depth=3, activation="silu", latent_dim=16, l1=1e-2
)
_NBODY_TRAIN = TrainSpec(
    epochs=30, batch_size=64, lr=2e-3, n_train=15000, n_val=2000, patience=6, schedule="cosine"
)


class NBodyTask(Task):
    """Base of the pair-force tasks; subclasses set the force law and node features.

    Parameters
    ----------
    n_bodies : int
        Bodies per system (>= 2).
    box : float
        Half-width of the square positions are drawn from (training range).
    min_separation : float
        Systems with a closer pair are redrawn (keeps ``1/r^2`` forces bounded).
    node_input : bool
        Give the receiver's feature to the node model too (see
        :class:`~ensemble_lens.models.graphnet.PairGraphNet`; adds a receiver gauge).
    dim : int
        Space dimension, 2 or 3: the edge features, the equivariant vector
        (``dx, dy[, dz]``), the latents (``fx, fy[, fz]``), the samplers and the network's
        positions and accelerations follow it.

    A subclass sets :attr:`pair_law`, the scalar ``s(r, f_i, f_j)`` of the pair force
    ``phi = s * d`` (e.g. ``m_j / r**3``), and the task works in any ``dim``.
    """

    #: scalar factor of the pair force along ``d`` (sympy, in ``r`` and the node features)
    pair_law: sympy.Expr | None = None
    latent_kind = "vector"
    equivariant_vector = ("dx", "dy")
    latent_layer = "latent"
    feature: str = "m"  # node feature name: inputs are f"{feature}_i", f"{feature}_j"
    default_arch = _NBODY_ARCH
    default_train = _NBODY_TRAIN

    def __init__(
        self,
        *,
        n_bodies: int = 4,
        box: float = 1.5,
        min_separation: float = 0.5,
        node_input: bool = False,
        dim: int = 2,
    ):
        if dim not in (2, 3):
            raise TaskError(f"task '{self.name}': expected dim 2 or 3, got {dim}")
        if n_bodies < 2:
            raise TaskError(f"task '{self.name}': expected n_bodies >= 2, got {n_bodies}")
        if min_separation * 1.5 >= box:
            raise TaskError(
                f"task '{self.name}': min_separation {min_separation} too large for box {box}"
            )
        self.n_bodies = n_bodies
        self.box = box
        self.min_separation = min_separation
        self.node_input = node_input
        self.dim = dim
        axes = _AXES[:dim]
        self.equivariant_vector = tuple(f"d{a}" for a in axes)
        self.input_names = (*self.equivariant_vector, "r", f"{self.feature}_i", f"{self.feature}_j")
        if self.pair_law is not None:
            self.latents = {f"f{a}": self.pair_law * sympy.Symbol(f"d{a}") for a in axes}
        elif dim != 2:
            raise TaskError(
                f"task '{self.name}': dim {dim} needs a pair_law (its latents are written for 2-D)"
            )

    # -- to override ---------------------------------------------------------------
    def _node_features(self, rng: np.random.Generator, shape: tuple, extrapolate: bool):
        """Node features ``shape`` float64 (masses or charges)."""
        low, high = (2.0, 3.0) if extrapolate else (0.5, 2.0)
        return rng.uniform(low, high, size=shape)

    def _receiver_factor(self, node: np.ndarray) -> np.ndarray:
        """``s(f_i)`` multiplying the summed pair force; ``(n, n_bodies)``."""
        return np.ones_like(node)

    # -- sampling ------------------------------------------------------------------
    def sample_systems(
        self, n: int, seed: int, *, extrapolate: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` systems.

        Returns
        -------
        pos : np.ndarray
            ``(n, n_bodies, dim)`` float64 positions.
        node : np.ndarray
            ``(n, n_bodies)`` float64 node features.
        """
        rng = np.random.default_rng(seed)
        box = self.box * (1.5 if extrapolate else 1.0)
        chunks, have = [], 0
        while have < n:
            pos = rng.uniform(-box, box, size=(2 * n + 16, self.n_bodies, self.dim))
            d = pos[:, :, None, :] - pos[:, None, :, :]
            r = np.sqrt((d**2).sum(-1)) + np.eye(self.n_bodies) * 1e9
            ok = pos[r.min(axis=(1, 2)) >= self.min_separation]
            chunks.append(ok)
            have += len(ok)
        pos = np.concatenate(chunks)[:n]
        return pos, self._node_features(rng, (n, self.n_bodies), extrapolate)

    def _edges(self, pos: np.ndarray, node: np.ndarray) -> np.ndarray:
        """Edge features ``(n, n_edges, dim + 3)`` float64 in ``input_names`` order."""
        ii, jj = np.nonzero(~np.eye(self.n_bodies, dtype=bool))
        d = pos[:, jj] - pos[:, ii]
        r = np.sqrt((d**2).sum(-1))
        comps = [d[..., k] for k in range(self.dim)]
        return np.stack([*comps, r, node[:, ii], node[:, jj]], axis=-1)

    def sample_probe(self, n: int, seed: int, *, extrapolate: bool = False) -> np.ndarray:
        """Edge features of edges from ``ceil(n / n_edges)`` systems; ``(n, dim + 3)``
        float32."""
        n_edges = self.n_bodies * (self.n_bodies - 1)
        pos, node = self.sample_systems(-(-n // n_edges), seed, extrapolate=extrapolate)
        edges = self._edges(pos, node).reshape(-1, self.dim + 3)
        order = np.random.default_rng(seed + 1).permutation(len(edges))[:n]
        return edges[order].astype(np.float32)

    def accelerations(self, pos: np.ndarray, node: np.ndarray) -> np.ndarray:
        """Ground-truth accelerations ``(n, n_bodies, dim)`` float64 from the latents."""
        n, nb = node.shape
        edges = self._edges(pos, node)
        phi = self.truth(edges.reshape(-1, self.dim + 3))
        force = np.stack([phi[k] for k in self.latents], axis=-1).reshape(n, nb, nb - 1, self.dim)
        return self._receiver_factor(node)[..., None] * force.sum(axis=2)

    def make_data(self, n: int, seed: int) -> dict[str, torch.Tensor]:
        """``pos`` (n, n_bodies, dim), ``node`` (n, n_bodies), ``target`` (n, n_bodies, dim)."""
        pos, node = self.sample_systems(n, seed)
        acc = self.accelerations(pos, node)
        return {
            "pos": torch.from_numpy(pos.astype(np.float32)),
            "node": torch.from_numpy(node.astype(np.float32)),
            "target": torch.from_numpy(acc.astype(np.float32)),
        }

    # -- model -----------------------------------------------------------------------
    def build_model(self, arch: ArchSpec, seed: int) -> torch.nn.Module:
        """A :class:`~ensemble_lens.models.graphnet.PairGraphNet` (family ``"graphnet"``)."""
        if arch.family != "graphnet":
            raise TaskError(
                f"task '{self.name}': expected arch family 'graphnet', got {arch.family!r}"
            )
        torch.manual_seed(seed)
        return PairGraphNet(arch, self.n_bodies, node_input=self.node_input, dim=self.dim)

    def probe_module(self, model: torch.nn.Module) -> torch.nn.Module:
        """The edge MLP ``model.edge``: ``(n, dim + 3)`` edge features to ``(n, latent_dim)``."""
        return cast(torch.nn.Module, model.edge)


class GravityTask(NBodyTask):
    """Newtonian gravity (G = 1, unsoftened): ``a_i = sum_j m_j d / r^3``."""

    name = "gravity"
    pair_law = sympy.Symbol("m_j") / _r**3


class SpringTask(NBodyTask):
    """Unit springs of rest length 1 between all pairs: ``a_i = sum_j (r - 1) d / r``.

    Unit inertia: the masses ``m_i, m_j`` are given to the network but do not enter the law
    (distractor inputs), so the message is a linear image of the spring force without a
    receiver-mass gauge (with ``a_i = F_i / m_i`` the edge model could fold ``1/m_i`` into
    the message).
    """

    name = "spring"
    pair_law = (_r - 1) / _r


class ChargeTask(NBodyTask):
    """Coulomb forces between unit masses with charges +-1: ``a_i = -sum_j q_i q_j d / r^3``.

    The extrapolation range uses the 1.5x larger box only (charges stay +-1).
    """

    name = "charge"
    feature = "q"
    pair_law = sympy.Symbol("q_i") * sympy.Symbol("q_j") / _r**3

    def _node_features(self, rng: np.random.Generator, shape: tuple, extrapolate: bool):
        return rng.choice([-1.0, 1.0], size=shape)

    def _receiver_factor(self, node: np.ndarray) -> np.ndarray:
        return -np.ones_like(node)


class ScreenedTask(NBodyTask):
    """A screened (Yukawa-like) attraction: ``a_i = sum_j m_j exp(-r / L) d / r^2``.

    Outside the inverse-power grammar of the other n-body laws: the search needs ``exp``
    (declared in :attr:`sr_functions`), and the decay length ``L`` is a constant inside a
    non-linear function, which the constants-across-members step refits on every member and
    on the extrapolation range. Works in 2-D and 3-D (``dim``).

    Parameters
    ----------
    decay_length : float
        ``L`` > 0 (default 1).
    **kwargs
        Passed to :class:`NBodyTask` (``dim``, ``n_bodies``, ``box``, ...).
    """

    name = "screened"
    sr_functions = ("exp",)

    def __init__(self, *, decay_length: float = 1.0, **kwargs: Any) -> None:
        if not decay_length > 0:
            raise TaskError(f"task 'screened': expected decay_length > 0, got {decay_length}")
        self.decay_length = float(decay_length)
        length = sympy.Integer(1) if decay_length == 1 else sympy.Float(decay_length)
        self.pair_law = sympy.Symbol("m_j") * sympy.exp(-_r / length) / _r**2
        super().__init__(**kwargs)
