"""Canonical constants of a template: equivalent constants map to one representative and the
function does not change."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from ensemble_lens.distill.template import fit_template, make_template

a, x = sympy.symbols("a x")
P = 23
GRID = np.arange(P, dtype=float)[:, None]


def _eval(t, constants, X, names=("a",)):
    fn = sympy.lambdify([*t.slots, *(sympy.Symbol(n) for n in names)], t.expr, "numpy")
    c = [constants[s.name] for s in t.slots]
    return np.broadcast_to(fn(*c, *X.T), (len(X),))


COS = make_template(1.3 * sympy.cos(0.5 * a) + 0.1, periodic={"a": P})  # c2*cos(a*c0 + c1) + c3


def test_cos_template_symmetries_are_found_by_sympy():
    (sym,), orders = COS.symmetry
    assert str(COS) == "c2*cos(a*c0 + c1) + c3"
    assert (sym.amp, sym.phase, sym.coefs, sym.integer_coefs) == ("c2", "c1", ("c0",), ("c0",))
    assert sym.even and sym.antiperiodic and not sym.odd
    assert sym.period == pytest.approx(2 * math.pi)
    assert orders == ()


def test_equivalent_constants_of_a_wave_on_z_p_have_one_canonical_form():
    k, phi, amp = 4, 0.7, 1.5
    w = 2 * math.pi * k / P
    truth = {"c0": w, "c1": phi, "c2": amp, "c3": 0.2}
    variants = [
        {"c0": w, "c1": phi + math.pi, "c2": -amp, "c3": 0.2},  # cos(x + pi) = -cos(x)
        {"c0": w, "c1": phi - 4 * math.pi, "c2": amp, "c3": 0.2},  # phase mod 2 pi
        {"c0": -w, "c1": -phi, "c2": amp, "c3": 0.2},  # cos is even
        {"c0": w + 2 * math.pi, "c1": phi, "c2": amp, "c3": 0.2},  # omega mod 2 pi on integers
        {"c0": 2 * math.pi * (P - k) / P, "c1": -phi, "c2": amp, "c3": 0.2},  # k vs p - k
        {"c0": 2 * math.pi * (P - k) / P, "c1": math.pi - phi, "c2": -amp, "c3": 0.2},
    ]
    expected = _eval(COS, truth, GRID)
    for v in variants:
        np.testing.assert_allclose(_eval(COS, v, GRID), expected, atol=1e-9)  # same function
        got = COS.canonical(v)
        assert got == pytest.approx(truth, abs=1e-9)


def test_sine_formula_gets_the_phase_of_the_cosine_template():
    t = make_template(2.0 * sympy.sin(0.5 * a), periodic={"a": P})
    assert t.key == COS.key
    fitted = {"c0": -0.5, "c1": math.pi / 2, "c2": 2.0, "c3": 0.0}  # 2 cos(-0.5 a + pi/2)
    got = t.canonical(fitted)  # = 2 sin(0.5 a) = 2 cos(0.5 a - pi/2)
    assert got == pytest.approx({"c0": 0.5, "c1": -math.pi / 2, "c2": 2.0, "c3": 0.0})


def test_a_real_input_keeps_its_frequency_only_the_sign_is_free():
    t = make_template(1.0 * sympy.cos(7.0 * x) + 0.5)
    got = t.canonical({"c0": -7.0, "c1": 0.3, "c2": -1.0, "c3": 0.5})
    assert got == pytest.approx({"c0": 7.0, "c1": -0.3 + math.pi, "c2": 1.0, "c3": 0.5})


def test_terms_of_one_form_are_ordered_by_amplitude():
    t = make_template(2.0 * sympy.cos(0.5 * a + 0.3) + sympy.cos(0.9 * a) + 0.1, periodic={"a": P})
    (order,) = t.symmetry[1]
    assert len(order.terms) == 2
    small, big = {"w": 0.9, "p": 0.2, "A": 0.5}, {"w": 0.5, "p": -0.3, "A": 2.0}
    (s1, s2) = order.terms  # (amp, phase, freq) of each term
    c = {s1[0]: small["A"], s1[1]: small["p"], s1[2]: small["w"]}
    c |= {s2[0]: big["A"], s2[1]: big["p"], s2[2]: big["w"]}
    c[str(t.slots[-1])] = 0.1
    got = t.canonical(c)
    assert [got[n] for n in s1] == pytest.approx([2.0, -0.3, 0.5])
    assert [got[n] for n in s2] == pytest.approx([0.5, 0.2, 0.9])
    X = GRID
    np.testing.assert_allclose(_eval(t, got, X), _eval(t, c, X), atol=1e-12)


def test_odd_periodic_function_with_an_amplitude_flips_the_amplitude():
    t = make_template(2.0 * sympy.tan(0.3 * x + 0.1) + 0.0)
    (sym,), _ = t.symmetry
    assert sym.odd and not sym.even and not sym.antiperiodic
    assert sym.period == pytest.approx(math.pi)
    c = {sym.coefs[0]: -0.3, sym.phase: -0.1 + 2 * math.pi, sym.amp: -2.0}
    c |= {s.name: 0.0 for s in t.slots if s.name not in c}
    got = t.canonical(c)
    assert (got[sym.coefs[0]], got[sym.phase], got[sym.amp]) == pytest.approx((0.3, 0.1, 2.0))


def test_non_periodic_functions_have_no_symmetry():
    t = make_template(2.0 * sympy.exp(-0.5 * x) + sympy.tanh(0.3 * x + 0.2))
    assert t.symmetry == ((), ())


@settings(max_examples=60, deadline=None)
@given(
    w=st.floats(-20, 20),
    phi=st.floats(-20, 20),
    amp=st.floats(-5, 5).filter(lambda v: abs(v) > 1e-3),
)
def test_canonical_constants_keep_the_function_and_are_idempotent(w, phi, amp):
    c = {"c0": w, "c1": phi, "c2": amp, "c3": 0.3}
    got = COS.canonical(c)
    np.testing.assert_allclose(_eval(COS, got, GRID), _eval(COS, c, GRID), atol=1e-8)
    assert COS.canonical(got) == pytest.approx(got, abs=1e-9)
    assert got["c2"] > 0 and 0 <= got["c0"] <= math.pi + 1e-12
    assert -math.pi < got["c1"] <= math.pi + 1e-12


def test_fitted_members_report_one_cluster_of_amplitudes_and_their_own_phases():
    rng = np.random.default_rng(0)
    X = rng.integers(0, P, size=(600, 1)).astype(float)
    fit = np.arange(600) < 400
    for k, phi, amp in [(3, 2.5, 1.2), (7, -2.9, 0.8), (10, 0.4, 1.7)]:
        y = amp * np.cos(2 * math.pi * k * X[:, 0] / P + phi) + 0.05 * rng.normal(size=600)
        tf = fit_template(COS, X[fit], y[fit], ["a"], X_test=X[~fit], y_test=y[~fit])
        assert tf.r2_test > 0.98
        assert tf.constants["c2"] == pytest.approx(amp, rel=0.05)
        assert tf.constants["c1"] == pytest.approx(phi, abs=0.1)
        assert tf.frequencies["c0"] == pytest.approx(k, abs=0.02)


def test_the_overall_sign_of_a_member_component_is_free():
    from ensemble_lens.distill.template import make_template

    x1, x2 = sympy.symbols("x1 x2")
    t = make_template(1.0 * x2 * sympy.sin(2.0 * x1) + 0.1)
    assert t.sign == ("c3", "c2")
    plus, flipped = t.oriented({"c0": 2.0, "c1": -1.5708, "c2": 1.0, "c3": 0.1})
    assert not flipped and plus["c2"] > 0 and plus["c1"] == pytest.approx(-1.5708)
    minus, flipped = t.oriented({"c0": 2.0, "c1": 1.5708, "c2": 1.0, "c3": -0.1})  # -(plus)
    assert flipped and minus == pytest.approx(plus, abs=1e-4)
    assert t.canonical({"c0": 2.0, "c1": 1.5708, "c2": 1.0, "c3": -0.1})["c3"] == -0.1
    # a cosine law keeps phase 0 with either sign
    c, flipped = t.oriented({"c0": 2.0, "c1": 3.1416, "c2": 1.0, "c3": 0.0})
    assert flipped and c["c1"] == pytest.approx(0.0, abs=1e-4) and c["c2"] == 1.0
