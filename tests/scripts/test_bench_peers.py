"""scripts/bench_peers.py: the GEMM floor it measures is the products of the measure (every
network's centred cross-product with every other), in the route's precision, and a floor
side runs in its own process like the peers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "scripts" / "bench_peers.py"


@pytest.fixture
def peers():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import bench_peers

        yield bench_peers
    finally:
        sys.path.remove(str(SCRIPT.parent))
        bench_peers.PRECISION[0] = "float64"


def test_floor_computes_every_centred_cross_product(peers):
    nets = peers.make_data(4, 300, 6)
    got = peers.floor_side("shape", nets)
    for i in range(4):
        for j in range(4):
            xc, yc = nets[i] - nets[i].mean(0), nets[j] - nets[j].mean(0)
            assert got[i, j] == pytest.approx(np.trace(xc.T @ yc), rel=1e-10)
    peers.PRECISION[0] = "float32"
    low = peers.floor_side("shape", nets)
    assert 0 < np.abs(low - got).max() / np.abs(got).max() < 1e-5  # float32 products


def test_a_floor_side_runs_in_its_own_process():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(SCRIPT), "--child", "floor", "--only", "shape", "--tiny",
           "--name", "procrustes-distance=angular", "--precision", "float32"]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["seconds"] >= 0 and out["cpu"] >= 0 and "sample" in out
