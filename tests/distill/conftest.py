"""Synthetic force-law data for the distill tests: inputs m, dx, r and the truth m*dx/r**3."""

from __future__ import annotations

import numpy as np
import pytest
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


@pytest.fixture(scope="module")
def splits() -> dict[str, np.ndarray]:
    """Fit (400), test (200) and extrapolation (200, larger r) inputs."""
    return {
        "fit": make_inputs(400, 0),
        "test": make_inputs(200, 1),
        "extrap": make_inputs(200, 2, r_range=(2.0, 3.0)),
    }
