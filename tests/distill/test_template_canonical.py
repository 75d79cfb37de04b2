"""The shared template in canonical form, with real template fits (scipy least squares from
the project's starts): phases folded (sin, not cos with a -pi/2 phase), amplitudes
non-negative, and parsimony between templates of nearly equal support."""

import numpy as np
import pytest
import sympy

from ensemble_lens.distill.constants import form_key
from ensemble_lens.distill.periodic import MemberComponents
from ensemble_lens.distill.shared import TemplateResult, _folded, _judge, _ranked
from ensemble_lens.distill.template import fold_phases, make_template

x1, x2, a, b = sympy.symbols("x1 x2 a b")
JUDGE = {"max_extrapolation_drop": 0.5, "min_support": 0.5}


def _comps(Y):
    return {f"m{k}": MemberComponents(y[:, None], ["pc0"], np.ones(1), "pca") for k, y in
            enumerate(Y)}  # fmt: skip


def _judged(expr, comps, X, fit, names, periodic=None):
    res = _judge(TemplateResult(make_template(expr, periodic=periodic), ["m0/pc0"]), comps, X,
                 fit, names, 0.9, 0)  # fmt: skip
    res.judge(**JUDGE)
    return res


def test_members_sine_laws_give_a_sine_template_with_positive_amplitudes():
    """Four members' components a_k sin(b_k x1) x2, two of them with the other sign."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(400, 3))
    fit = np.arange(400) < 300
    amps, freqs = [0.8, 1.0, 1.2, 0.9], [1.8, 2.0, 2.2, 1.9]
    Y = np.stack([k * np.sin(w * X[:, 0]) * X[:, 1] for k, w in zip(amps, freqs, strict=True)])
    Y[[1, 3]] *= -1  # a member's component is a projection: its sign is the basis's
    comps, names = _comps(Y + 1e-3 * rng.normal(size=Y.shape)), ["x1", "x2", "x3"]
    # the member's own formula, as a search writes it: cos with a quarter-turn phase
    res = _judged(-1.0 * x2 * sympy.cos(2.0 * x1 + 1.5708) + 0.01, comps, X, fit, names)
    assert str(res.template) == "c2*x2*cos(c0*x1 + c1) + c3" and res.support == 1.0
    best = _folded(res, comps, X, fit, names, 0.9, 0, None, **JUDGE)
    assert str(best.template) == "c2*x2*sin(c0*x1) + c3"
    got = [(c[0]["c2"], c[0]["c0"]) for c in best.constants.values()]
    np.testing.assert_allclose(got, list(zip(amps, freqs, strict=True)), rtol=1e-3)
    assert best.support == 1.0 and best.is_result


def test_a_phase_the_members_do_not_share_is_not_folded():
    t = make_template(1.0 * x2 * sympy.sin(2.0 * x1) + 0.1)
    assert fold_phases(t, [{"c1": -1.5708}, {"c1": 0.7}]) is None
    assert fold_phases(t, [{"c1": -1.5708}, {"c1": -1.2}]) is None  # beyond the tolerance
    assert str(fold_phases(t, [{"c1": 3.1405}, {"c1": -3.1410}])) == "-c2*x2*cos(c0*x1) + c3"
    assert fold_phases(t, []) is None


def test_negative_amplitude_of_a_wave_times_an_input_is_made_positive():
    t = make_template(1.0 * x2 * sympy.sin(2.0 * x1) + 0.1)
    c = t.canonical({"c0": 2.0, "c1": 1.5708, "c2": -1.0, "c3": 0.1})
    assert c["c2"] == 1.0 and c["c1"] == pytest.approx(-1.5708, abs=1e-4)


def test_parsimony_prefers_the_clean_joint_wave_over_spurious_terms():
    p = 23
    A = np.stack(np.meshgrid(np.arange(p), np.arange(p), indexing="ij"), -1).reshape(-1, 2)
    fit = np.random.default_rng(0).random(len(A)) < 0.7
    w = 2 * np.pi / p
    Y = [np.cos(w * k * (A[:, 0] + A[:, 1]) + ph) for k, ph in
         [(3, 0.2), (5, 1.0), (7, -0.4), (4, 2.0), (9, 0.0)]]  # fmt: skip
    Y.append(np.cos(w * 6 * (A[:, 0] + A[:, 1])) + 0.6 * np.cos(w * 2 * A[:, 0]))
    comps, names, per = _comps(np.stack(Y)), ["a", "b"], {"a": p, "b": p}
    clean = _judged(1.0 * sympy.cos(w * 3 * a + w * 3 * b), comps, A, fit, names, per)
    spurious = _judged(
        sympy.cos(w * 3 * (a + b)) + 0.5 * sympy.cos(w * 2 * a) + 0.1 * sympy.cos(w * b),
        comps, A, fit, names, per,
    )  # fmt: skip
    assert spurious.support == 1.0 and clean.support == pytest.approx(5 / 6)
    assert _ranked([spurious, clean], 6)[0] is clean
    assert _ranked([spurious, clean], 6, p_support=0.8)[0] is clean
    assert _ranked([spurious, clean], 6, p_support=0.9)[0] is spurious  # the shared form stays
    # a simpler template two members short does not win on parsimony
    clean.support = 4 / 6
    assert _ranked([spurious, clean], 6)[0] is spurious


def test_form_key_drops_a_leading_factor_near_one_and_folds_phases():
    dy, r = sympy.symbols("dy r")
    assert form_key(1.002 * dy * (r**-2 + 0.5)) == form_key(dy * (r**-2 + 0.5))
    assert form_key(1.3 * dy * (r**-2 + 0.5)) != form_key(dy * (r**-2 + 0.5))
    assert form_key(2.0 * sympy.cos(1.5 * x1 - 1.5708)) == form_key(2.0 * sympy.sin(1.5 * x1))
