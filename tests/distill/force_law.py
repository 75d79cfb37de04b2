"""Synthetic force-law data for the distill tests: inputs m, dx, r and the truth m*dx/r**3."""

from __future__ import annotations

import numpy as np
import sympy

NAMES = ["m", "dx", "r"]
M, DX, R = sympy.symbols(NAMES)
TRUTH = M * DX / R**3


def make_inputs(n: int, seed: int, r_range: tuple[float, float] = (0.8, 2.0)) -> np.ndarray:
    """(n, 3) inputs: mass in [0.5, 2], signed offset in [-2, 2], distance in ``r_range``."""
    rng = np.random.default_rng(seed)
    return np.column_stack(
        [rng.uniform(0.5, 2.0, n), rng.uniform(-2.0, 2.0, n), rng.uniform(*r_range, n)]
    )


def force(X: np.ndarray) -> np.ndarray:
    """The truth m * dx / r**3 at the rows of X."""
    return X[:, 0] * X[:, 1] / X[:, 2] ** 3
