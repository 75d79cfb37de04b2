"""A user-defined task, resolved from a config as "user_tasks:ProductTask" in pipeline tests."""

from __future__ import annotations

import numpy as np
import sympy

from ensemble_lens.models.spec import ArchSpec, TrainSpec
from ensemble_lens.tasks import Task


class ProductTask(Task):
    """y = x1 * x2 + x3 through a 2-unit bottleneck MLP: the latent holds x1*x2 and x3."""

    name = "product"
    input_names = ("x1", "x2", "x3")
    latent_kind = "vector"
    latent_layer = "latent"
    default_arch = ArchSpec(family="mlp", width=32, depth=2, activation="tanh", latent_dim=2)
    default_train = TrainSpec(
        epochs=12, batch_size=64, lr=5e-3, n_train=2000, n_val=400, patience=4
    )

    def __init__(self, scale: float = 1.0) -> None:
        x1, x2, x3 = sympy.symbols("x1 x2 x3")
        self.scale = scale
        self.latents = {"u": x1 * x2, "v": x3}

    def sample_probe(self, n, seed, *, extrapolate=False):
        lim = 2.0 if extrapolate else 1.0
        rng = np.random.default_rng(seed)
        return rng.uniform(-lim, lim, size=(n, 3)).astype(np.float32)

    def make_data(self, n, seed):
        import torch

        x = torch.from_numpy(self.sample_probe(n, seed))
        y = self.scale * (x[:, :1] * x[:, 1:2] + x[:, 2:3])
        return {"x": x, "target": y}

    def build_model(self, arch, seed):
        import torch
        from torch import nn

        torch.manual_seed(seed)

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.enc = nn.Sequential(
                    nn.Linear(3, arch.width),
                    nn.Tanh(),
                    nn.Linear(arch.width, arch.width),
                    nn.Tanh(),
                )
                self.latent = nn.Linear(arch.width, arch.latent_dim)
                self.dec = nn.Sequential(
                    nn.Linear(arch.latent_dim, arch.width), nn.Tanh(), nn.Linear(arch.width, 1)
                )

            def forward(self, batch):
                x = batch["x"] if isinstance(batch, dict) else batch
                return self.dec(self.latent(self.enc(x)))

        return Net()

    def probe_module(self, model):
        return model


def make_net(width: int = 8):
    """A factory for ingest tests: 3 inputs -> width -> 2."""
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(3, width), torch.nn.Tanh(), torch.nn.Linear(width, 2)
    )


def tiny_config(store, **over):
    """A fast study of the user task: 3 members, short training, sparse SR."""
    cfg = {
        "name": "tiny",
        "task": {"name": "user_tasks:ProductTask"},
        "probe": {"n": 600, "n_extrapolation": 200},
        "ensemble": {"seeds": [0, 1, 2], "untrained_null": False},
        "similarity": {"metrics": ["linear_cka", "procrustes_similarity"]},
        "consensus": {"n_null": 4},
        "distill": {"backend": "sparse"},
        "execution": {"scheduler": "serial"},
        "store": str(store),
    }
    for key, value in over.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return cfg


class NoiseTask(ProductTask):
    """The same inputs and network, but the target is pure noise: nothing to learn."""

    name = "noise"

    def make_data(self, n, seed):
        import torch

        x = torch.from_numpy(self.sample_probe(n, seed))
        gen = torch.Generator().manual_seed(seed + 999)
        return {"x": x, "target": torch.randn(n, 1, generator=gen)}


class TwoLawTask(ProductTask):
    """Two target laws mixed per member: a member of family ``law_u`` learns u = x1 * x2, one
    of family ``law_v`` learns v = x3^2 + x4^2, from the same inputs x1..x4, through a
    ``latent_dim``-unit bottleneck with a linear head (so its latent is an image of its law)."""

    name = "two_laws"
    input_names = ("x1", "x2", "x3", "x4")
    default_arch = ArchSpec(family="law_u", width=32, depth=2, activation="tanh", latent_dim=1)
    default_train = TrainSpec(
        epochs=15, batch_size=64, lr=5e-3, n_train=2000, n_val=400, patience=5
    )
    families = ("law_u", "law_v")

    def __init__(self) -> None:
        x1, x2, x3, x4 = sympy.symbols("x1 x2 x3 x4")
        self.latents = {"u": x1 * x2, "v": x3**2 + x4**2}

    def sample_probe(self, n, seed, *, extrapolate=False):
        lim = 1.3 if extrapolate else 1.0
        rng = np.random.default_rng(seed)
        return rng.uniform(-lim, lim, size=(n, 4)).astype(np.float32)

    def make_data(self, n, seed):
        import torch

        x = torch.from_numpy(self.sample_probe(n, seed))
        u, v = x[:, 0] * x[:, 1], x[:, 2] ** 2 + x[:, 3] ** 2
        return {"x": x, "target": torch.stack([u, v], dim=1)}

    def build_model(self, arch, seed):
        import torch
        from torch import nn

        if arch.family not in self.families:
            raise ValueError(f"task 'two_laws': expected a family in {self.families}")
        torch.manual_seed(seed)
        layers = [nn.Linear(4, arch.width), nn.Tanh()]
        for _ in range(arch.depth - 1):
            layers += [nn.Linear(arch.width, arch.width), nn.Tanh()]
        model = nn.Sequential()
        model.add_module("enc", nn.Sequential(*layers))
        model.add_module("latent", nn.Linear(arch.width, arch.latent_dim))
        model.add_module("head", nn.Linear(arch.latent_dim, 1))
        model.law = self.families.index(arch.family)
        return model

    def _own(self, model, data):
        x = data["x"] if isinstance(data, dict) else data
        return model(x), data["target"][:, model.law : model.law + 1]

    def loss(self, model, batch):
        import torch.nn.functional as F

        pred, target = self._own(model, batch)
        return F.mse_loss(pred, target)

    def score(self, model, data):
        import torch

        from ensemble_lens.tasks.base import r2_score

        with torch.no_grad():
            pred, target = self._own(model, data)
        return {"val_r2": r2_score(target.numpy(), pred.numpy())}
