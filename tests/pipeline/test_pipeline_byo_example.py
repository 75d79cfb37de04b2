"""examples/byo end to end, reduced: networks trained with plain torch, then the study from the
files alone, through the CLI in a fresh process whose path does not hold the user's module."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "byo"


@pytest.mark.slow
def test_example_recovers_the_law_from_the_files_alone(tmp_path):
    user = tmp_path / "lab"
    user.mkdir()
    for name in ("train.py", "mynets.py", "study.yaml"):
        shutil.copy(EXAMPLE / name, user / name)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    train = [sys.executable, "train.py", "--members", "4", "--epochs", "25", "--n-train", "2000"]
    subprocess.run(train, cwd=user, env=env, check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = subprocess.run(
        [sys.executable, "-m", "ensemble_lens.cli", "run", str(user / "study.yaml")],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((elsewhere / "runs" / "byo" / "study.report" / "results.json").read_text())
    found = [f for f in results["formulas"] if f.get("expression")]
    assert len(found) == 1
    formula = found[0]
    assert formula["support"] >= 0.75
    assert formula["exact_recovery"] is None  # no truth given: recovery is not judged
    x1, x2 = sympy.symbols("x1 x2")
    expr = sympy.sympify(formula["expression"])
    assert expr.free_symbols <= {x1, x2}
    grid = np.random.default_rng(0).uniform(-1.5, 1.5, (500, 2))
    f = sympy.lambdify((x1, x2), expr, "numpy")(grid[:, 0], grid[:, 1])
    law = grid[:, 0] * np.exp(-grid[:, 1])
    assert abs(np.corrcoef(f, law)[0, 1]) > 0.999
