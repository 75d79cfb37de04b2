"""Bottleneck regression tasks: two hidden quantities forced through a 2-unit bottleneck.

The model (:class:`~ensemble_lens.models.bottleneck.BottleneckNet`) encodes the inputs into a
``latent_dim``-unit bottleneck (layer ``"latent"`` of ``model.encoder``), then predicts the
first ``n_linear`` targets with a *linear* head and the rest with an MLP decoder. The linear
targets are two independent linear combinations of the latents, so a 2-unit bottleneck that
fits them must be an affine image of the latent pair: ``latent_kind="vector"`` here means
"a linear image of the latents" (no equivariant input vector).

Targets are returned as ``(n, n_targets)`` float32; ``val_r2`` is the pooled R^2 over them.
"""

from __future__ import annotations

import abc
from typing import cast

import numpy as np
import sympy
import torch

from ensemble_lens.errors import TaskError
from ensemble_lens.models.bottleneck import BottleneckNet
from ensemble_lens.models.spec import ArchSpec, TrainSpec
from ensemble_lens.tasks.base import Task


class _BottleneckBase(Task):
    """Shared data/model code; subclasses implement ``sample_probe`` and ``_targets``."""

    latent_kind = "vector"
    equivariant_vector = None
    latent_layer = "latent"
    n_linear = 2
    default_arch = ArchSpec(family="bottleneck", width=64, depth=2, activation="silu", latent_dim=2)
    default_train = TrainSpec(
        epochs=40, batch_size=128, lr=3e-3, n_train=12000, n_val=2000, patience=8
    )

    @abc.abstractmethod
    def _targets(self, x: np.ndarray) -> np.ndarray:
        """``(n, n_targets)`` float64 targets; the first ``n_linear`` are linear in latents."""

    def make_data(self, n: int, seed: int) -> dict[str, torch.Tensor]:
        """``x`` (n, n_vars) inputs and ``target`` (n, n_targets)."""
        x = self.sample_probe(n, seed)
        y = self._targets(x.astype(np.float64))
        return {"x": torch.from_numpy(x), "target": torch.from_numpy(y.astype(np.float32))}

    def build_model(self, arch: ArchSpec, seed: int) -> torch.nn.Module:
        """A :class:`~ensemble_lens.models.bottleneck.BottleneckNet` (family ``"bottleneck"``)."""
        if arch.family != "bottleneck":
            raise TaskError(
                f"task '{self.name}': expected arch family 'bottleneck', got {arch.family!r}"
            )
        n_out = self._targets(self.sample_probe(2, 0).astype(np.float64)).shape[1]
        torch.manual_seed(seed)
        return BottleneckNet(arch, len(self.input_names), self.n_linear, n_out - self.n_linear)

    def probe_module(self, model: torch.nn.Module) -> torch.nn.Module:
        """The encoder ``model.encoder``: ``(n, n_vars)`` to ``(n, latent_dim)``."""
        return cast(torch.nn.Module, model.encoder)


class BottleneckTask(_BottleneckBase):
    """Inputs ``x1..x4`` uniform in [-1, 1] ([-1.5, 1.5] extrapolated).

    Latents ``u = x1 x2`` and ``v = x3^2 + x4^2``; targets ``[u + v, u - v]`` (linear head) and
    ``[sin(3u), v^2 / 2, u v]`` (decoder).
    """

    name = "bottleneck"
    input_names = ("x1", "x2", "x3", "x4")

    def __init__(self) -> None:
        x1, x2, x3, x4 = (sympy.Symbol(v) for v in self.input_names)
        self.latents = {"u": x1 * x2, "v": x3**2 + x4**2}

    def sample_probe(self, n: int, seed: int, *, extrapolate: bool = False) -> np.ndarray:
        """``(n, 4)`` float32 uniform inputs."""
        bound = 1.5 if extrapolate else 1.0
        return np.random.default_rng(seed).uniform(-bound, bound, size=(n, 4)).astype(np.float32)

    def _targets(self, x: np.ndarray) -> np.ndarray:
        u = x[:, 0] * x[:, 1]
        v = x[:, 2] ** 2 + x[:, 3] ** 2
        return np.stack([u + v, u - v, np.sin(3 * u), v**2 / 2, u * v], axis=1)


class KeplerTask(_BottleneckBase):
    """Kepler two-body problem (GM = 1) in the relative coordinates ``(x, y, vx, vy)``.

    The distance ``r = |(x, y)|`` is given as a fifth (redundant) variable, as ``r`` is for
    the graph-network edges.

    States are drawn on bound orbits: semi-major axis ``a`` in [0.8, 2] ([2, 3] extrapolated),
    eccentricity in [0, 0.5], random orientation, sense of rotation and mean anomaly (uniform in
    time). Latents: energy ``E = v^2/2 - 1/r`` and angular momentum ``L = x vy - y vx``.
    Regression through a 2-unit bottleneck (chosen over a siamese set-up: it trains in seconds
    and exposes both latents linearly): targets ``[8 E + 4, L]`` (linear head) and the
    pericentre and apocentre distances ``a (1 -+ e)`` (decoder), which need both ``E`` and
    ``L^2``.
    """

    name = "kepler"
    input_names = ("x", "y", "vx", "vy", "r")
    default_arch = ArchSpec(
        family="bottleneck", width=128, depth=3, activation="silu", latent_dim=2
    )

    def __init__(self) -> None:
        x, y, vx, vy, r = (sympy.Symbol(v) for v in self.input_names)
        self.latents = {
            "energy": (vx**2 + vy**2) / 2 - 1 / r,
            "angular_momentum": x * vy - y * vx,
        }

    def sample_probe(self, n: int, seed: int, *, extrapolate: bool = False) -> np.ndarray:
        """``(n, 5)`` float32 states ``(x, y, vx, vy, r)`` on random bound orbits."""
        rng = np.random.default_rng(seed)
        a = rng.uniform(*((2.0, 3.0) if extrapolate else (0.8, 2.0)), size=n)
        e = rng.uniform(0.0, 0.5, size=n)
        anomaly = rng.uniform(0, 2 * np.pi, size=n)
        ecc = anomaly.copy()
        for _ in range(30):  # Newton on Kepler's equation M = E - e sin E
            ecc -= (ecc - e * np.sin(ecc) - anomaly) / (1 - e * np.cos(ecc))
        rate = a**-1.5 / (1 - e * np.cos(ecc))
        b = a * np.sqrt(1 - e**2)
        sense = rng.choice([-1.0, 1.0], size=n)
        px, py = a * (np.cos(ecc) - e), sense * b * np.sin(ecc)
        vx, vy = -a * np.sin(ecc) * rate, sense * b * np.cos(ecc) * rate
        w = rng.uniform(0, 2 * np.pi, size=n)
        c, s = np.cos(w), np.sin(w)
        x, y = c * px - s * py, s * px + c * py
        out = np.stack([x, y, c * vx - s * vy, s * vx + c * vy, np.hypot(x, y)], 1)
        return out.astype(np.float32)

    def _targets(self, x: np.ndarray) -> np.ndarray:
        t = self.truth(x)
        energy, ang = t["energy"], t["angular_momentum"]
        a = -1 / (2 * energy)
        ecc = np.sqrt(np.clip(1 + 2 * energy * ang**2, 0, None))
        return np.stack([8 * energy + 4, ang, a * (1 - ecc), a * (1 + ecc)], axis=1)
