"""scripts/bench_feynman.py end to end on one equation with tiny budgets: a real ensemble, a
real consensus, real searches; rows are files and a rerun skips them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "scripts" / "bench_feynman.py"
TINY = [
    "--members", "2", "--n", "600", "--epochs", "4", "--probe", "300", "--sr-seeds", "0",
    "--population", "40", "--generations", "4", "--max-points", "100",
]  # fmt: skip


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=600
    )


def _bench():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import bench_feynman
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return bench_feynman


def test_reads_the_table_with_its_ranges():
    eqs = {e["name"]: e for e in _bench().read_equations()}
    assert len(eqs) == 100
    assert eqs["I.12.2"]["variables"] == {
        "q1": [1.0, 5.0], "q2": [1.0, 5.0], "epsilon": [1.0, 5.0], "r": [1.0, 5.0]
    }  # fmt: skip
    # the table says 2 variables here; the named ones count
    assert list(eqs["I.18.12"]["variables"]) == ["r", "F", "theta"]


@pytest.mark.slow
def test_one_equation_one_row_resumable(tmp_path):
    out = tmp_path / "bench"
    done = _run("--equations", "I.12.1", "--noise", "0.1", "--out", str(out), *TINY)
    assert done.returncode == 0, done.stderr[-3000:]
    row_file = out / "rows" / "I.12.1__noise0.1.json"
    row = json.loads(row_file.read_text())
    assert row["equation"] == "I.12.1" and row["noise"] == 0.1 and row["members"] == 2
    for route in ("ensemble", "direct", "single"):
        assert 0.0 <= row[route]["rate"] <= row[route]["rate_held_out_only"] <= 1.0
        (seed,) = row[route]["seeds"]  # every seed's formula and both verdicts
        assert seed["seed"] == 0 and seed["exact"] <= seed["exact_held_out"]
        assert row[route]["rate"] == float(seed["exact"])
    assert row["direct"]["formula"] and row["direct"]["r2_test"] is not None
    assert json.loads((out / "rows.json").read_text())["rows"] == [row]
    assert not (out / "stores" / "I.12.1__noise0.1.zarr").exists()
    # a rerun reads the row back instead of running it
    stamp = row_file.stat().st_mtime_ns
    again = _run("--equations", "I.12.1", "--noise", "0.1", "--out", str(out), *TINY)
    assert again.returncode == 0 and row_file.stat().st_mtime_ns == stamp
    # --collect gathers the rows written so far into the table, running nothing
    table = _run("--collect", "--out", str(out))
    assert table.returncode == 0 and "| I.12.1 | 0.1 |" in table.stdout
    assert "noise 0.1 (1 equations): ensemble" in table.stdout


def test_unknown_equation_is_one_line():
    done = _run("--equations", "I.99.9", "--out", "unused")
    assert done.returncode != 0
    assert "--equations: unknown equation 'I.99.9'" in done.stderr


def test_a_formula_exact_on_one_range_only_is_not_exact_everywhere():
    import sympy

    from ensemble_lens.distill import exact_recovery

    bench = _bench()
    theta = sympy.Symbol("theta")
    law = sympy.exp(-(theta**2) / 2)
    near = 0.2837 * theta + 8.414 * sympy.exp(-1.145 * theta) * sympy.cos(1.279 * theta - 4.378)
    X = np.linspace(1, 3, 200)[:, None]
    X_ext = np.linspace(0.667, 4, 200)[:, None]
    assert exact_recovery(near, law, X=X, names=["theta"])  # the held-out rule alone: passes

    class Found:  # what distill_component returns, as far as the verdict reads it
        exact_recovery, exact_expr = True, near

    assert not bench.exact_everywhere(Found, law, ["theta"], X_ext)
    Found.exact_expr = -1.149 + 5.838 * sympy.exp(-0.4998 * theta**2)
    assert bench.exact_everywhere(Found, law, ["theta"], X_ext)
