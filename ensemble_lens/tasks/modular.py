"""Modular addition ``(a + b) mod p`` with one-hot inputs: a known-answer task for templates.

Members are small MLPs with a learned embedding ``E`` (``p x latent_dim``) shared by both
operands: ``logits = MLP([E[a], E[b]])``. Trained with weight decay on part of the ``p^2``
pairs, each seed generalises by representing its operands with Fourier features
``cos(2 pi k a / p + phi)`` of a few key frequencies ``k`` of its own (Nanda et al. 2023;
Gromov 2023). The latent layer is the embedding of the first operand, ``E[a]``: every unit is
a function of the integer ``a`` alone.

There is no single ground-truth formula: the law the members share is a *template*
(:attr:`ModularAdditionTask.truth_template`, ``A cos(2 pi k a / p + phi) + c``) with member
specific constants. ``latents`` is therefore empty, ``periodic_inputs`` declares ``a`` and
``b`` periodic with period ``p`` (the Fourier basis over Z_p of
:mod:`ensemble_lens.distill.template`), and ``sr_functions`` offers ``cos`` and ``sin``.

Validation reports ``val_acc`` (accuracy on the held-out pairs) and ``val_r2``: the pooled
R^2 of the predicted class probabilities against the one-hot answers (1 for a perfect,
confident classifier, about 0 for chance).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import sympy
import torch
from torch import nn

from ensemble_lens.errors import TaskError
from ensemble_lens.models.mlp import build_mlp
from ensemble_lens.models.spec import ArchSpec, TrainSpec
from ensemble_lens.tasks.base import Task, r2_score


class ModularMLP(nn.Module):
    """``logits = MLP([E[a], E[b]])`` with one embedding ``E`` (layer ``"embed"``).

    ``forward(batch)`` takes ``batch["x"]`` ``(B, 2)`` (integer-valued floats) and returns
    ``(B, p)`` logits.
    """

    def __init__(self, arch: ArchSpec, p: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(p, arch.latent_dim)
        self.mlp = build_mlp(
            2 * arch.latent_dim, p, width=arch.width, depth=arch.depth, act=arch.activation
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = batch["x"].long()
        e = self.embed(x)  # (B, 2, latent_dim)
        return self.mlp(e.reshape(len(x), -1))


class _FirstOperand(nn.Module):
    """Probe module: ``(n, 2)`` probe rows to the embedding of the first operand."""

    def __init__(self, embed: nn.Embedding) -> None:
        super().__init__()
        self.embed = embed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x[:, 0].long())


class ModularAdditionTask(Task):
    """``(a + b) mod p`` as classification over ``p`` classes.

    Parameters
    ----------
    p : int
        The modulus (>= 3). Small primes (23, 31) train in seconds on one thread.
    train_fraction : float
        Share of the ``p^2`` pairs used for training; the rest are the validation split (the
        config's ``n_train`` / ``n_val`` are overridden so the splits never overlap).
    """

    name = "modular"
    input_names = ("a", "b")
    latent_kind = "vector"
    latent_layer = "embed"
    sr_functions = ("cos", "sin")
    a_sym: ClassVar[sympy.Symbol] = sympy.Symbol("a")

    def __init__(self, p: int = 23, train_fraction: float = 0.8) -> None:
        if int(p) != p or p < 3:
            raise TaskError(f"task 'modular': expected an integer modulus p >= 3, got {p!r}")
        if not 0.05 <= train_fraction <= 0.95:
            raise TaskError(
                f"task 'modular': expected 0.05 <= train_fraction <= 0.95, got {train_fraction}"
            )
        self.p = int(p)
        self.train_fraction = float(train_fraction)
        self.latents = {}
        self.periodic_inputs = {"a": self.p, "b": self.p}
        k, phi, amp, off = sympy.symbols("k phi A c")
        self.truth_template = amp * sympy.cos(2 * sympy.pi * k * self.a_sym / self.p + phi) + off
        n_train = round(self.train_fraction * self.p**2)
        self.default_arch = ArchSpec(
            family="modular", width=64, depth=1, activation="relu", latent_dim=16
        )
        self.default_train = TrainSpec(
            epochs=1000,
            batch_size=n_train,
            lr=1e-2,
            n_train=n_train,
            n_val=self.p**2 - n_train,
            patience=1000,
            weight_decay=1.0,
            schedule="none",
        )

    def sample_probe(self, n: int, seed: int, *, extrapolate: bool = False) -> np.ndarray:
        """``(n, 2)`` float32 integer pairs uniform on Z_p x Z_p (Z_p has no outside:
        ``extrapolate`` samples the same set)."""
        rng = np.random.default_rng(seed)
        return rng.integers(0, self.p, size=(n, 2)).astype(np.float32)

    def make_data(self, n: int, seed: int) -> dict[str, torch.Tensor]:
        """The ``p^2`` pairs in a seeded order (the trainer takes the first ``n_train`` for
        training, the rest for validation); ``n`` must not exceed ``p^2``."""
        if n > self.p**2:
            raise TaskError(
                f"task 'modular' p={self.p}: expected n_train + n_val <= p^2 = {self.p**2} "
                f"(distinct pairs), got {n}"
            )
        grid = np.stack(np.meshgrid(np.arange(self.p), np.arange(self.p), indexing="ij"), -1)
        pairs = grid.reshape(-1, 2)[np.random.default_rng(seed).permutation(self.p**2)[:n]]
        return {
            "x": torch.from_numpy(pairs.astype(np.float32)),
            "target": torch.from_numpy((pairs.sum(1) % self.p).astype(np.int64)),
        }

    def build_model(self, arch: ArchSpec, seed: int) -> torch.nn.Module:
        """A :class:`ModularMLP` (family ``"modular"``)."""
        if arch.family != "modular":
            raise TaskError(f"task 'modular': expected arch family 'modular', got {arch.family!r}")
        torch.manual_seed(seed)
        return ModularMLP(arch, self.p)

    def probe_module(self, model: torch.nn.Module) -> torch.nn.Module:
        """``(n, 2)`` probe rows to ``E[a]`` (layer ``"embed"``)."""
        return _FirstOperand(model.embed)  # type: ignore[arg-type]

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy of the logits against the class ``(a + b) mod p``."""
        return nn.functional.cross_entropy(model(batch), batch["target"])

    def score(self, model: torch.nn.Module, data: dict[str, torch.Tensor]) -> dict[str, float]:
        """``val_acc``, ``val_r2`` (probabilities against one-hot answers) and ``val_mse``."""
        with torch.no_grad():
            prob = torch.softmax(model(data), dim=-1).numpy().astype(np.float64)
        target = data["target"].numpy()
        onehot = np.eye(self.p)[target]
        return {
            "val_acc": float((prob.argmax(1) == target).mean()),
            "val_r2": r2_score(onehot, prob),
            "val_mse": float(np.mean((prob - onehot) ** 2)),
        }

    def describe(self) -> dict[str, object]:
        """The base summary plus ``p``, the periodic inputs and the truth template."""
        out = super().describe()
        out.update(
            p=self.p, periodic_inputs=self.periodic_inputs, template=str(self.truth_template)
        )
        return out
