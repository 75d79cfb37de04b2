"""scripts/bench_feynman.py end to end on one equation with tiny budgets: a real ensemble, a
real consensus, real searches; rows are files and a rerun skips them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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


def test_reads_the_table_with_its_ranges():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import bench_feynman
    finally:
        sys.path.remove(str(SCRIPT.parent))
    eqs = {e["name"]: e for e in bench_feynman.read_equations()}
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
        assert 0.0 <= row[route]["rate"] <= 1.0
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
