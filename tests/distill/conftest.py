"""Fixtures for the distill tests (data helpers live in force_law.py)."""

from __future__ import annotations

import numpy as np
import pytest
from force_law import make_inputs


@pytest.fixture(scope="module")
def splits() -> dict[str, np.ndarray]:
    """Fit (400), test (200) and extrapolation (200, larger r) inputs."""
    return {
        "fit": make_inputs(400, 0),
        "test": make_inputs(200, 1),
        "extrap": make_inputs(200, 2, r_range=(2.0, 3.0)),
    }
