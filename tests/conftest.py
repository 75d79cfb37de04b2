"""Shared fixtures: small real stores on disk."""

from __future__ import annotations

import numpy as np
import pytest

from ensemble_lens.record.store import open_store


@pytest.fixture
def probe_store(tmp_path):
    """A fresh store with a 1000-sample, 3-variable probe."""
    store = open_store(tmp_path / "study.zarr", mode="w")
    x = np.random.default_rng(0).normal(size=(1000, 3)).astype(np.float32)
    store.write_probe(x, ["a", "b", "c"], truth={"ab": x[:, 0] * x[:, 1]})
    return store


@pytest.fixture
def cpu_hog():
    """Start busy-loop processes beside the test (a busy machine on demand): call it with the
    number of processes; each is ended, by its own pid, when the test ends."""
    import subprocess
    import sys

    procs: list[subprocess.Popen] = []

    def start(n: int = 2) -> None:
        for _ in range(n):
            procs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))

    yield start
    for p in procs:
        p.kill()
        p.wait()
