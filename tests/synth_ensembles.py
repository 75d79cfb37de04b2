"""Synthetic ensembles with known shared latents, for the alignment and consensus tests."""

from __future__ import annotations

import numpy as np
from scipy.stats import ortho_group


def well_conditioned(d: int, rng: np.random.Generator) -> np.ndarray:
    """Random invertible (d, d) mix with singular values in [0.5, 2]."""
    U, V = ortho_group.rvs(d, random_state=rng), ortho_group.rvs(d, random_state=rng)
    return U * rng.uniform(0.5, 2.0, size=d) @ V


def mixed_ensemble(
    *, K: int = 6, n: int = 3000, n_shared: int = 3, noise: float = 0.05, seed: int = 0
) -> tuple[np.ndarray, list[np.ndarray]]:
    """K networks of 10-30 units: invertible mixes of shared latents + private signals + noise."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, n_shared))
    nets = []
    for _ in range(K):
        d = int(rng.integers(10, 31))
        src = np.c_[z, rng.normal(size=(n, d - n_shared))]
        nets.append(src @ well_conditioned(d, rng) + noise * rng.normal(size=(n, d)))
    return z, nets


def canonical_correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Canonical correlations of two column sets (independent reference: QR + SVD)."""
    qa, _ = np.linalg.qr(a - a.mean(axis=0))
    qb, _ = np.linalg.qr(b - b.mean(axis=0))
    return np.linalg.svd(qa.T @ qb, compute_uv=False)
