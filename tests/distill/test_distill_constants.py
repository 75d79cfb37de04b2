"""Constants refitted across members: known answers for pinned, varying and unpinned ones."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from ensemble_lens.distill.constants import constants_across_members, form_key, template

r, dx, m, x = sympy.symbols("r dx m x")
NAMES = ["r", "dx", "m"]


def _inputs(n=600, seed=0, r_range=(0.5, 3.0)):
    rng = np.random.default_rng(seed)
    return np.c_[rng.uniform(*r_range, n), rng.uniform(-1, 1, n), rng.uniform(0.5, 2, n)]


def _screened(X, k=2.0, L=1.0):
    return k * X[:, 1] * X[:, 2] * np.exp(-X[:, 0] / L) / X[:, 0] ** 2


def test_template_slots_constants_but_keeps_exponents():
    t = template(sympy.Float(2.165) * dx * m * sympy.exp(sympy.Float(-0.968) * r) / r**2)
    assert t.values == (2.165, -0.968)
    assert t.expr.has(r**-2) or "r**2" in str(t.expr)
    assert template(sympy.sqrt(x) / 2).values == (0.5,)  # the coefficient, not the root
    assert template(dx / r**3).slots == ()


def test_form_key_is_equal_up_to_constants_only():
    a = sympy.Float(2.1) * dx * sympy.exp(sympy.Float(-0.9) * r)
    b = sympy.Float(1.7) * dx * sympy.exp(sympy.Float(-1.2) * r)
    assert form_key(a) == form_key(b)
    assert form_key(a) != form_key(sympy.Float(2.1) * dx * sympy.exp(sympy.Float(-0.9) * r**2))


def test_constants_every_member_shares_are_pinned_with_the_true_values():
    X, rng = _inputs(), np.random.default_rng(1)
    members = np.stack([_screened(X) + 1e-3 * rng.normal(size=len(X)) for _ in range(6)])
    expr = sympy.Float(2.165) * dx * m * sympy.exp(sympy.Float(-0.968) * r) / r**2
    Xe = _inputs(200, 2, r_range=(3.0, 4.0))
    out = constants_across_members(
        expr, X, members.mean(0), members, [f"s{k}" for k in range(6)], NAMES,
        X_extrap=Xe, y_extrap=_screened(Xe),
    )  # fmt: skip
    k, decay = out["constants"]
    assert out["interval"] == "min-max" and out["members"] == 6 and out["pinned"]
    assert k["verdict"] == decay["verdict"] == "pinned"
    assert abs(k["median"] - 2.0) < 0.01 and abs(decay["median"] + 1.0) < 0.01
    assert k["low"] <= k["median"] <= k["high"]
    assert abs(decay["extrapolation"] + 1.0) < 1e-3
    assert set(out["member_values"]) == {f"s{k}" for k in range(6)}


def test_a_decay_each_member_sets_its_own_way_varies_across_members():
    X = _inputs()
    members = np.stack([_screened(X, L=L) for L in (0.7, 1.0, 1.4, 2.0)])
    expr = sympy.Float(2.0) * dx * m * sympy.exp(sympy.Float(-1.0) * r) / r**2
    out = constants_across_members(expr, X, members.mean(0), members, list("abcd"), NAMES)
    decay = out["constants"][1]
    assert decay["verdict"] == "varies across members" and not out["pinned"]
    assert decay["low"] < -1.3 and decay["high"] > -0.6


def test_two_constants_that_only_act_as_a_product_are_not_pinned():
    X = _inputs()
    y = 3.0 * X[:, 1]
    expr = sympy.Mul(sympy.Float(1.5), sympy.Float(2.0) * dx, evaluate=False)
    out = constants_across_members(expr, X, y, np.stack([y, y, y]), list("abc"), NAMES)
    assert len(out["constants"]) == 2
    assert all(c["verdict"] == "not pinned by the data" for c in out["constants"])
    assert out["condition"] is None or out["condition"] > 1e6


def test_a_formula_without_constants_has_nothing_to_refit():
    X = _inputs()
    out = constants_across_members(dx / r**2, X, X[:, 1], X[None, :, 1], ["a"], NAMES)
    assert out["constants"] == [] and out["pinned"]


def test_members_on_another_branch_of_a_wave_are_reported_on_one_branch():
    """A member whose component is the same wave with the opposite sign (an aligned component's
    sign is arbitrary) refits to -A; canonical form makes it A with the phase shifted by pi."""
    rng = np.random.default_rng(2)
    X = np.c_[rng.uniform(-3, 3, 500)]
    wave = 1.5 * np.cos(2.0 * X[:, 0] + 0.4)
    members = np.stack([wave, wave, -wave]) + 1e-3 * rng.normal(size=(3, 500))
    expr = sympy.Float(1.5) * sympy.cos(sympy.Float(2.0) * x + sympy.Float(0.4))
    out = constants_across_members(expr, X, wave, members, ["s0", "s1", "s2"], ["x"])
    values = np.array(list(out["member_values"].values()))
    amp, phase, freq = (int(np.argmin(np.abs(values[0] - v))) for v in (1.5, 0.4, 2.0))
    np.testing.assert_allclose(values[:, amp], 1.5, atol=0.01)  # one amplitude, not +-1.5
    np.testing.assert_allclose(values[:, freq], 2.0, atol=0.01)
    np.testing.assert_allclose(values[:2, phase], 0.4, atol=0.01)
    assert values[2, phase] == pytest.approx(0.4 - np.pi, abs=0.01)  # -cos(u) = cos(u - pi)
    assert out["constants"][amp]["relative_width"] < 0.05
