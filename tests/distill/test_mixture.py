"""An average over different laws is not a law: members y_k = a_k sin(b_k x1) x2 with their
own a_k and b_k (x3 a distractor input), fitted for real (scipy least squares, the project's
template fits)."""

import numpy as np
import pytest
import sympy

from ensemble_lens.distill.constants import constants_across_members
from ensemble_lens.distill.mixture import (
    MIXTURE,
    law_slots,
    mark_mixtures,
    templates_failure,
    unneeded_inputs,
    varying_constants_failure,
)
from ensemble_lens.distill.periodic import MemberComponents
from ensemble_lens.distill.shared import TemplateResult, _judge
from ensemble_lens.distill.template import make_template

x1, x2, x3 = sympy.symbols("x1 x2 x3")
NAMES = ["x1", "x2", "x3"]
A = [0.8, 1.0, 1.2, 0.9, 1.1, 1.3]


def _members(bs, n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 3))
    Y = np.stack([a * np.sin(b * X[:, 0]) * X[:, 1] for a, b in zip(A, bs, strict=True)])
    return X, Y + 1e-3 * rng.normal(size=Y.shape)


def test_a_frequency_each_member_sets_itself_makes_the_formula_an_average():
    X, Y = _members([1.6, 1.8, 2.0, 2.2, 2.4, 2.6])
    mean = Y.mean(0)
    c = constants_across_members(1.05 * sympy.sin(2.1 * x1) * x2, X, mean, Y, list("abcdef"), NAMES)
    reason = varying_constants_failure(c)
    assert reason is not None and reason.startswith(MIXTURE)
    freq = next(r["name"] for r in c["constants"] if r["value"] == pytest.approx(2.1, rel=0.3))
    assert f"{freq} from" in reason
    # one law held by every member (only the amplitude, the member's scale, differs): a law
    X, Y = _members([2.0] * 6)
    c = constants_across_members(1.05 * sympy.sin(2.1 * x1) * x2, X, Y.mean(0), Y, list("abcdef"),
                                 NAMES)  # fmt: skip
    assert varying_constants_failure(c) is None
    assert varying_constants_failure(None) is None


def test_law_slots_leave_out_scale_offset_and_phase():
    e = sympy.sympify("c2*x2*cos(c0*x1 + c1) + c3")
    assert law_slots(e, ["c0", "c1", "c2", "c3"]) == ["c0"]


def test_a_distractor_the_members_do_not_need_is_found():
    X, Y = _members([1.6, 1.8, 2.0, 2.2, 2.4, 2.6])
    mixture = 1.05 * sympy.sin(2.1 * x1) * x2 - 0.05 * x3 - 0.3 * x1
    assert unneeded_inputs(mixture, X, Y, NAMES) == ["x3"]
    # members that do use x3 (a small but real term): needed
    Y3 = Y + 0.1 * X[:, 2]
    assert unneeded_inputs(mixture, X, Y3, NAMES) == []


def test_members_the_formula_does_not_explain_say_nothing_about_inputs():
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(300, 3))
    Y = np.stack([X[:, 0] * X[:, 1] + 3.0 * rng.normal(size=300) for _ in range(4)])
    assert unneeded_inputs(1.0 * x1 * x2 + 0.01 * x3, X, Y, NAMES) == []


def _templates(bs):
    X, Y = _members(bs)
    fit = np.arange(len(X)) < 300
    comps = {
        f"m{k}": MemberComponents(y[:, None], ["pc0"], np.ones(1), "pca") for k, y in enumerate(Y)
    }
    res = TemplateResult(make_template(1.0 * x2 * sympy.sin(2.0 * x1) + 0.1), ["m0/pc0"])
    res = _judge(res, comps, X, fit, NAMES, 0.9, 0)
    res.judge(max_extrapolation_drop=0.5, min_support=0.5)
    own = {m: {"pc0": str(sympy.Float(a) * sympy.sin(b * x1) * x2)} for m, a, b in
           zip(comps, A, bs, strict=True)}  # fmt: skip
    return {"verdict": "shared form", "best": res.to_dict(), "member_formulas": own}


def test_a_template_with_member_constants_rejects_the_subspace_formula():
    templates = _templates([1.6, 1.8, 2.0, 2.2, 2.4, 2.6])
    assert templates["best"]["support"] == 1.0
    rec = {"expression": "1.05*x2*sin(2.1*x1)", "is_result": True, "flags": []}
    (out,) = mark_mixtures([rec], templates)
    assert out["is_result"] is False and out["flags"] == ["mixture"]
    assert out["reason"].startswith(f"{MIXTURE}: the template") and out["expression"] is None
    assert out["rejected_expression"] == rec["expression"] and rec["is_result"] is True
    assert mark_mixtures([out], templates) == [out]  # idempotent


def test_a_template_with_one_law_keeps_the_formula_and_a_distractor_is_caught():
    templates = _templates([2.0] * 6)
    rec = {"expression": "1.05*x2*sin(2.0*x1)", "is_result": True, "flags": []}
    assert templates_failure(rec, templates) is None
    assert mark_mixtures([rec], None) == [rec]
    extra = {**rec, "expression": "1.05*x2*sin(2.0*x1) - 0.05*x3"}
    reason = templates_failure(extra, templates)
    assert reason is not None and "x3, which no member's own formula uses" in reason
