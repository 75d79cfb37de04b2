"""Conserved-quantity tasks for siamese networks (Wetzel et al.): "same trajectory?".

Each training example is a pair of states from one trajectory (an energy level set, or one
similarity class of matrices). A shared encoder is trained with a contrastive InfoNCE loss
(:func:`~ensemble_lens.models.siamese.info_nce`): the partner of each state must be found among
the other pairs of the batch. The encoding must then be conserved along trajectories and
separate different ones: an invertible (for one latent: monotone) function of the conserved
quantities, hence ``latent_kind="monotone"``.

Score: ``val_r2`` is :func:`~ensemble_lens.models.siamese.pair_agreement`, the fraction of
encoding variance shared by the two states of a pair (1 for an exactly conserved encoding, 0
for unrelated states); ``val_acc`` is the top-1 partner-matching accuracy among 256 pairs
(limited by trajectories with nearly equal invariants, so well below 1 even when perfect).
"""

from __future__ import annotations

import abc
from typing import cast

import numpy as np
import sympy
import torch

from ensemble_lens.errors import TaskError
from ensemble_lens.models.siamese import SiameseNet, info_nce, matching_accuracy, pair_agreement
from ensemble_lens.models.spec import ArchSpec, TrainSpec
from ensemble_lens.tasks.base import Task, latent_penalty


class SiameseTask(Task):
    """Base of the siamese tasks; subclasses implement :meth:`sample_pairs`."""

    latent_kind = "monotone"
    equivariant_vector = None
    temperature = 0.05
    latent_layer = "latent"
    #: a null ensemble pairs each state with another trajectory's (target holds only ids)
    target_keys = ("b",)
    default_arch = ArchSpec(family="siamese", width=64, depth=2, activation="silu", latent_dim=1)
    default_train = TrainSpec(
        epochs=25, batch_size=256, lr=3e-3, n_train=12800, n_val=2048, patience=6
    )

    @abc.abstractmethod
    def sample_pairs(
        self, n: int, seed: int, *, extrapolate: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Two states of each of ``n`` trajectories: ``(n, n_vars)`` float64 each."""

    def sample_probe(self, n: int, seed: int, *, extrapolate: bool = False) -> np.ndarray:
        """One state of each of ``n`` trajectories; ``(n, n_vars)`` float32."""
        a, _ = self.sample_pairs(n, seed, extrapolate=extrapolate)
        return a.astype(np.float32)

    def make_data(self, n: int, seed: int) -> dict[str, torch.Tensor]:
        """``a``, ``b`` (n, n_vars) state pairs; ``target`` (n,) int64 trajectory ids."""
        a, b = self.sample_pairs(n, seed)
        return {
            "a": torch.from_numpy(a.astype(np.float32)),
            "b": torch.from_numpy(b.astype(np.float32)),
            "target": torch.arange(n),
        }

    def build_model(self, arch: ArchSpec, seed: int) -> torch.nn.Module:
        """A :class:`~ensemble_lens.models.siamese.SiameseNet` (family ``"siamese"``)."""
        if arch.family != "siamese":
            raise TaskError(
                f"task '{self.name}': expected arch family 'siamese', got {arch.family!r}"
            )
        torch.manual_seed(seed)
        return SiameseNet(arch, len(self.input_names))

    def probe_module(self, model: torch.nn.Module) -> torch.nn.Module:
        """The encoder ``model.encoder``: ``(n, n_vars)`` to ``(n, latent_dim)``."""
        return cast(torch.nn.Module, model.encoder)

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """InfoNCE (standardised encodings, ``temperature``) over the batch plus the L1 penalty.

        The other pairs of the batch are the negatives.
        """
        return info_nce(model(batch), self.temperature) + latent_penalty(model)

    def score(self, model: torch.nn.Module, data: dict[str, torch.Tensor]) -> dict[str, float]:
        """``val_r2`` (pair agreement) and ``val_acc`` (partner matching); see module doc."""
        with torch.no_grad():
            z = model(data).numpy()
        return {"val_r2": pair_agreement(z), "val_acc": matching_accuracy(z)}


def _energy_range(extrapolate: bool, train: tuple, extra: tuple) -> tuple[float, float]:
    return extra if extrapolate else train


class HarmonicTask(SiameseTask):
    """Harmonic oscillator ``H = (v^2 + x^2) / 2``; energies in [0.1, 2] ([2, 4] extrapolated).

    States of a trajectory: ``x = sqrt(2H) cos(phi)``, ``v = sqrt(2H) sin(phi)``, phases
    uniform (time-uniform along the orbit).
    """

    name = "harmonic"
    input_names = ("x", "v")
    latents = {  # noqa: RUF012
        "energy": (sympy.Symbol("v") ** 2 + sympy.Symbol("x") ** 2) / 2
    }

    def sample_pairs(self, n, seed, *, extrapolate=False):
        rng = np.random.default_rng(seed)
        low, high = _energy_range(extrapolate, (0.1, 2.0), (2.0, 4.0))
        amp = np.sqrt(2 * rng.uniform(low, high, size=(n, 1)))
        phase = rng.uniform(0, 2 * np.pi, size=(n, 2))
        states = np.stack([amp * np.cos(phase), amp * np.sin(phase)], axis=-1)
        return states[:, 0], states[:, 1]


class PendulumTask(SiameseTask):
    """Pendulum ``H = omega^2 / 2 - cos(theta)``; librations with H in [-0.9, 0.5].

    Extrapolation: H in [0.5, 0.95] (larger swings, still below the separatrix H = 1). States
    of a trajectory: ``theta = theta_max sin(psi)`` with ``psi`` uniform and
    ``omega = sign(cos psi) sqrt(2 (H + cos theta))`` (close to time-uniform).
    """

    name = "pendulum"
    input_names = ("theta", "omega")
    sr_functions = ("cos",)
    latents = {  # noqa: RUF012
        "energy": sympy.Symbol("omega") ** 2 / 2 - sympy.cos(sympy.Symbol("theta"))
    }

    def sample_pairs(self, n, seed, *, extrapolate=False):
        rng = np.random.default_rng(seed)
        low, high = _energy_range(extrapolate, (-0.9, 0.5), (0.5, 0.95))
        energy = rng.uniform(low, high, size=(n, 1))
        psi = rng.uniform(0, 2 * np.pi, size=(n, 2))
        theta = np.arccos(-energy) * np.sin(psi)
        omega = np.sign(np.cos(psi)) * np.sqrt(np.clip(2 * (energy + np.cos(theta)), 0, None))
        states = np.stack([theta, omega], axis=-1)
        return states[:, 0], states[:, 1]


class MatrixInvariantsTask(SiameseTask):
    """2x2 matrices under similarity ``P A P^-1``: invariants trace and determinant.

    A class is drawn as ``A0`` with entries uniform in [-1, 1] ([-1.6, 1.6] extrapolated); its
    states are ``P A0 P^-1`` with ``P = R(alpha) diag(s1, +-s2) R(beta)``, ``s`` log-uniform in
    [0.5, 2] (reflections included, so the orientation of rotation-like matrices is not an
    extra invariant). Variables ``a11, a12, a21, a22`` (row-major).
    """

    name = "matrix_invariants"
    input_names = ("a11", "a12", "a21", "a22")
    default_arch = ArchSpec(family="siamese", width=64, depth=2, activation="silu", latent_dim=2)

    def __init__(self) -> None:
        a11, a12, a21, a22 = (sympy.Symbol(v) for v in self.input_names)
        self.latents = {"trace": a11 + a22, "det": a11 * a22 - a12 * a21}

    @staticmethod
    def _conjugate(a0: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n = len(a0)
        alpha, beta = rng.uniform(0, 2 * np.pi, size=(2, n))
        s = np.exp(rng.uniform(np.log(0.5), np.log(2.0), size=(n, 2)))
        s[:, 1] *= rng.choice([-1.0, 1.0], size=n)

        def rot(t):
            c, si = np.cos(t), np.sin(t)
            return np.stack([np.stack([c, -si], -1), np.stack([si, c], -1)], -2)

        p = rot(alpha) @ (s[:, :, None] * np.eye(2)) @ rot(beta)
        return (p @ a0 @ np.linalg.inv(p)).reshape(n, 4)

    def sample_pairs(self, n, seed, *, extrapolate=False):
        rng = np.random.default_rng(seed)
        bound = 1.6 if extrapolate else 1.0
        a0 = rng.uniform(-bound, bound, size=(n, 2, 2))
        return self._conjugate(a0, rng), self._conjugate(a0, rng)
