"""One real pyoperon search (seeded, short budget) shared by the assertions below."""

import json

import numpy as np
import pytest
import sympy
from force_law import NAMES, TRUTH, M, R, force

from ensemble_lens.distill import FormulaResult, distill_component, exact_recovery

pytest.importorskip("pyoperon")


@pytest.fixture(scope="module")
def result(splits) -> FormulaResult:
    Xf, Xt, Xe = splits["fit"], splits["test"], splits["extrap"]
    rng = np.random.default_rng(0)
    t = force(Xt)
    members = np.stack(
        [a * t + b + 0.01 * t.std() * rng.normal(size=len(t)) for a, b in [(2.5, 0), (-1, 2)]]
        + [rng.normal(size=len(t))]
    )
    return distill_component(
        Xf,
        2.5 * force(Xf),
        NAMES,
        X_test=Xt,
        y_test=2.5 * t,
        backend="operon",
        seed=3,
        X_extrap=Xe,
        y_extrap=2.5 * force(Xe),
        truths={"m_r": M * R, "force_x": TRUTH},
        member_scores=members,
        member_ids=["a", "b", "noise"],
        component=1,
        layer="edge.2",
    )


def test_operon_recovers_the_force_law_exactly(result):
    assert result.expr == sympy.Rational(5, 2) * TRUTH
    assert result.exact_recovery is True and result.truth_name == "force_x"
    assert exact_recovery(result.exact_expr, TRUTH)


def test_operon_result_is_judged(result):
    assert result.r2_test > 0.9999 and result.r2_extrapolation > 0.9999
    assert result.gradient_agreement > 0.95
    assert result.support == pytest.approx(2 / 3)
    assert result.member_r2["noise"] < 0.1 < 0.99 < result.member_r2["a"]


def test_operon_front_is_reported_simplest_first(result):
    complexities = [f["complexity"] for f in result.front]
    assert complexities == sorted(complexities) and len(complexities) >= 2
    assert result.complexity in complexities
    assert min(f["loss"] for f in result.front) < 1e-8


def test_formula_record_has_the_contract_keys_and_is_json(result):
    record = result.to_dict()
    assert set(record) == {
        "component",
        "layer",
        "expression",
        "srepr",
        "latex",
        "complexity",
        "r2_test",
        "r2_extrapolation",
        "gradient_agreement",
        "support",
        "member_r2",
        "exact_recovery",
        "truth_name",
        "front",
        "backend",
        "seed",
        "seconds",
        "search_budget",
        "selection_floor",
        "dimensionless_groups",
    }
    # two of three members agree with the component to ~1e-4: ten times that is the default
    assert record["selection_floor"] == pytest.approx(1e-3, rel=0.3)
    assert record["search_budget"]["by"] == "work"  # no time budget: the same on any load
    assert record["search_budget"]["generations"] == 100
    back = json.loads(json.dumps(record, allow_nan=False))
    assert back["expression"] == "5*dx*m/(2*r**3)" and back["backend"] == "operon"
    assert sympy.parse_expr(back["expression"]) == result.expr
    assert eval(back["srepr"], vars(sympy)) == result.expr
    assert back["seed"] == 3 and back["layer"] == "edge.2" and back["component"] == 1
