"""scripts/feynman_byo.py: an equation of the table as a folder of networks trained outside the
project (plain torch state_dicts, a probe CSV, a study YAML with the law as the truth), then
the study on it; tiny budgets, real training and search."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "scripts" / "feynman_byo.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.mark.slow
def test_a_folder_of_outside_networks_is_judged_against_the_law(tmp_path):
    out = tmp_path / "byo"
    tiny = ["--members", "2", "--n", "600", "--epochs", "80", "--probe", "300", "--sr-seeds",
            "0", "--population", "40", "--generations", "8", "--max-points", "100"]  # fmt: skip
    done = _run("I.12.1", "--noise", "0.01", "--out", str(out), "--run", *tiny)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["s0", "s1"]
    cfg = yaml.safe_load((out / "study.yaml").read_text())
    assert cfg["probe"]["truth"] == {"F": "mu*Nn"} and cfg["probe"]["target"] == ["F"]
    nets = (out / "nets.py").read_text()  # the networks' own module: plain torch
    assert "import torch" in nets and not re.search(r"(from|import) ensemble_lens", nets)
    results = json.loads((out / "study.report" / "results.json").read_text())
    assert results["ground_truth"]["judged"] and results["ground_truth"]["truth_variables"] == ["F"]
    (rec,) = results["formulas"]
    assert rec["basis"] == "units" and rec["truth_name"] == "F"
    assert isinstance(rec["exact_recovery"], bool)
    assert f"output/u0: {rec['expression']}  exact {rec['exact_recovery']}" in done.stdout


def test_unknown_equation_is_one_line(tmp_path):
    done = _run("I.99.9", "--out", str(tmp_path / "x"))
    assert done.returncode != 0 and "unknown equation 'I.99.9'" in done.stderr
    assert not (tmp_path / "x").exists()


def test_the_target_column_never_takes_an_input_name():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import feynman_byo
    finally:
        sys.path.remove(str(SCRIPT.parent))
    # II.6.15a has an input y; the noisy target once shared that name, and the study then read
    # the input as each network's target
    assert feynman_byo.target_column(["x", "y", "z"], "Ef") == "Ef"
    assert feynman_byo.target_column(["x", "Ef"], "Ef") == "Ef_measured"
