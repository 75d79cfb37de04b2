"""Constants judged against a ground truth without refitting the formula on it: a decay that
every member holds 2-4 % low is a network bias, one the members hold right but the formula
has wrong is a search miss, and a formula of another form is not compared."""

import numpy as np
import sympy

from ensemble_lens.distill.constants import constants_across_members
from ensemble_lens.distill.judge import exact_recovery
from ensemble_lens.distill.truth import (
    BIAS,
    EXACT,
    MISS,
    OTHER_FORM,
    constants_against_truth,
    truth_verdict,
)

r, dx, m = sympy.symbols("r dx m")
NAMES = ["r", "dx", "m"]
TRUTH = m * dx * sympy.exp(-r) / r**2


def _inputs(n=800, seed=0):
    rng = np.random.default_rng(seed)
    return np.c_[rng.uniform(0.5, 3.0, n), rng.uniform(-1, 1, n), rng.uniform(0.5, 2, n)]


def _members(X, decays, noise=1e-3, seed=1):
    rng = np.random.default_rng(seed)
    law = X[:, 1] * X[:, 2] / X[:, 0] ** 2
    return np.stack([2 * law * np.exp(-k * X[:, 0]) + noise * rng.normal(size=len(X))
                     for k in decays])  # fmt: skip


def _judge(expr, members, X):
    c = constants_across_members(expr, X, members.mean(0), members, list("abcd"), NAMES)
    out = constants_against_truth(expr, c, TRUTH, X, NAMES)
    rec = {"exact_recovery": exact_recovery(expr, TRUTH, X=X, names=NAMES),
           "constants_truth": out}  # fmt: skip
    return out, truth_verdict(rec)


def test_every_member_holding_a_low_decay_is_a_network_bias():
    X = _inputs()
    members = _members(X, [0.965, 0.97, 0.972, 0.975])
    expr = 2.0 * dx * m * sympy.exp(-0.97 * r) / r**2
    out, headline = _judge(expr, members, X)
    assert out["verdict"] == BIAS and headline == BIAS
    decay = next(c for c in out["constants"] if c["judged"])
    assert abs(decay["truth"] + 1) < 1e-6 and 0.02 < decay["relative_error"] < 0.04
    assert decay["members_hold_off_value"] is True and decay["high"] < -0.96
    scale = next(c for c in out["constants"] if not c["judged"])
    assert scale["truth"] is None  # a scale is the component's basis, not the law


def test_members_right_and_the_formula_wrong_is_a_search_miss():
    X = _inputs()
    members = _members(X, [0.95, 0.99, 1.01, 1.05])  # spread around the truth
    expr = 2.0 * dx * m * sympy.exp(-0.96 * r) / r**2  # the search's value, 4 % low
    c = constants_across_members(expr, X, members.mean(0), members, list("abcd"), NAMES)
    c["constants"][1]["value"] = -0.96  # the formula's own value, as the search wrote it
    out = constants_against_truth(expr, c, TRUTH, X, NAMES)
    assert out["verdict"] == MISS and out["off"] == ["_c1"]


def test_right_constants_are_exact_and_another_form_is_not_compared():
    X = _inputs()
    members = _members(X, [1.0] * 4)
    out, headline = _judge(2.0 * dx * m * sympy.exp(-1.003 * r) / r**2, members, X)
    assert out["verdict"] == EXACT and headline == EXACT and out["off"] == []
    other = 2.0 * dx * m * sympy.exp(-1.0 * r) / r**3
    out, headline = _judge(other, members, X)
    assert out["verdict"] == OTHER_FORM and out["form_r2"] < 0.999
    assert headline == "not recovered"


def test_no_truth_no_verdict():
    assert truth_verdict({"exact_recovery": None, "constants_truth": None}) is None
    assert constants_against_truth(dx * m / r**2, None, TRUTH, _inputs(50), NAMES) is None
