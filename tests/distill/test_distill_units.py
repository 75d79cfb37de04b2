"""The "units" basis: a layer whose units every member shares (a regression output) is
searched in those units, so a law reaches the search without the consensus' centring and
scaling; hidden layers, whose units each member orders and scales its own way, are not."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy

from ensemble_lens import run_study
from ensemble_lens.distill._expr import evaluate
from ensemble_lens.distill.basis import searched_basis, shared_units, units_map


def _law(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(seed).uniform(1, 3, size=(n, 2))
    return x, np.exp(-(x[:, 0] ** 2) / 2) / np.sqrt(2 * np.pi) + 0.1 * x[:, 1]


def test_outputs_share_units_and_hidden_layers_do_not() -> None:
    _, y = _law()
    rng = np.random.default_rng(1)
    outputs = [(y + 1e-3 * y.std() * rng.standard_normal(len(y)))[:, None] for _ in range(4)]
    mean = shared_units(outputs)
    assert mean is not None and np.allclose(mean[:, 0], y, atol=3e-3 * y.std())
    # the same quantity in each member's own scale and offset: not shared units
    assert shared_units([a * (1 + k) - k for k, a in enumerate(outputs)]) is None
    # two units each member orders its own way
    two = np.c_[y, y**2]
    assert shared_units([two, two[:, ::-1]]) is None
    assert shared_units([two, two]) is not None
    assert shared_units([two, two[:, :1]]) is None  # widths differ
    assert shared_units([]) is None
    assert shared_units([two]) is None  # one member shares nothing


def test_the_consensus_is_mapped_back_onto_the_units_members_share() -> None:
    x, y = _law()
    rows = np.ones(len(y), bool)
    rows[-100:] = False  # e.g. extrapolation rows: mapped, not fitted
    Y = (-(y - y.mean()) / y.std())[:, None]  # centred, scaled, turned over
    M = np.stack([Y, 1.01 * Y])
    A, b = units_map(Y, y[:, None], rows)
    np.testing.assert_allclose(Y @ A + b, y[:, None], atol=1e-10)
    units = np.where(rows, y, np.nan)[:, None]  # unknown where not fitted
    labels, Ys, Ms, basis = searched_basis(None, Y, M, x, ["a", "b"], np.ones(1), rows, units)
    assert (basis, labels) == ("units", ["u0"])
    np.testing.assert_allclose(Ys[:, 0], y, atol=1e-9)
    np.testing.assert_allclose(Ms[0], Ys, atol=1e-9)  # members mapped by the same map
    assert Ms[1, :, 0] == pytest.approx(1.01 * Ys[:, 0] - 0.01 * b[0], abs=1e-9)
    # units the subspace does not reproduce, or a different count of them: the usual bases
    other = np.sin(3 * x[:, :1])
    assert units_map(Y, other, rows) is None
    assert units_map(Y, np.c_[y, y], rows) is None
    assert searched_basis(None, Y, M, x, ["a", "b"], np.ones(1), rows, other)[3] == "aligned"


def test_a_formula_study_writes_its_law_in_the_targets_units(tmp_path) -> None:
    """End to end: members trained on a formula task record their prediction in the target's
    units, and the formula the study writes is the law itself, with no offset or scale of the
    consensus (before, ``2*x*y + 3`` came back as ``c1*x*y + c2`` for the centred latent)."""
    cfg = {
        "name": "units",
        "task": {"formula": "2*x*y + 3", "variables": {"x": [1, 2], "y": [1, 2]}, "n": 2000},
        "probe": {"n": 600, "n_extrapolation": 200},
        "ensemble": {"seeds": [0, 1, 2], "train": {"epochs": 40, "polish": 50}},
        "consensus": {"n_null": 5},
        "distill": {"backend": "sparse", "seeds": [0]},
        "execution": {"scheduler": "serial"},
        "store": str(tmp_path / "u.zarr"),
    }
    result = run_study(cfg)
    results = json.loads(result.report.with_name("results.json").read_text())
    (rec,) = [r for r in results["formulas"] if r.get("expression")]
    assert rec["basis"] == "units" and rec["layer"] == "output"
    expr = sympy.sympify(rec["expression"])
    xs = np.random.default_rng(3).uniform(1, 2, size=(200, 2))
    got = evaluate(expr, xs, ["x", "y"])
    law = 2 * xs[:, 0] * xs[:, 1] + 3
    # the law in its own units: no affine map needed
    assert np.max(np.abs(got - law)) < 0.01 * law.std(), rec["expression"]
