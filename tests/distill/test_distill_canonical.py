import numpy as np
import sympy
from force_law import DX, NAMES, TRUTH, M, R, force, make_inputs

from ensemble_lens.distill import (
    canonicalize,
    prune_terms,
    refit_affine,
    round_constants,
    rounded_form,
    snap_number,
    tidy,
)
from ensemble_lens.distill._expr import complexity, evaluate


def test_snap_number_prefers_small_rationals_then_rounds():
    assert snap_number(2.50017) == sympy.Rational(5, 2)
    assert snap_number(-0.333331) == sympy.Rational(-1, 3)
    assert snap_number(-3.0000004) == -3
    assert str(snap_number(1.23456)) == "1.235"
    assert str(snap_number(123456.7)) == "1.235e+5"  # never more digits than rounding
    assert snap_number(1.66671) == sympy.Rational(5, 3)
    # a fraction as long as the number is an accident of rounding, not a constant of the law
    assert str(snap_number(35.545)) == "35.55"  # not 391/11
    assert str(snap_number(6.2727)) == "6.273"  # not 69/11
    assert str(snap_number(1.602, digits=2)) == "1.6"  # not 8/5
    assert str(snap_number(9.877)) == "9.877"  # not 79/8 = 9.875


def test_round_constants_rounds_exponents_to_integers():
    expr = sympy.Float(2.4999999) * M * R ** sympy.Float(-3.0000001)
    assert round_constants(expr) == sympy.Rational(5, 2) * M / R**3


def test_tidy_cancels_and_never_grows():
    x = sympy.Symbol("x")
    assert tidy((2 * x**2 + 2 * x) / (x + 1)) == 2 * x
    messy = 1.5 * M * DX / R**3 + 0.0 * R
    assert complexity(tidy(messy)) <= complexity(messy)


def test_prune_removes_tiny_additive_term_and_keeps_real_ones():
    X = make_inputs(300, 5)
    y = force(X)
    expr = 2.5 * TRUTH + 1e-4 * DX * R + 0.3 * M
    pruned, n = prune_terms(expr, X, y, NAMES, rel_tol=0.02)
    assert n == 1
    assert pruned.has(M / R**3 * DX) and not pruned.has(DX * R)
    assert pruned.has(0.3 * M)  # contributes ~0.13 of std(y): far above 2 %


def test_prune_removes_small_softening_inside_a_denominator():
    X = make_inputs(300, 6)
    y = force(X)
    expr = M * DX / (R**3 + 1e-5)
    pruned, n = prune_terms(expr, X, y, NAMES)
    assert n == 1 and pruned == TRUTH


def test_refit_affine_restores_scale_and_offset():
    X = make_inputs(200, 7)
    y = 3.0 * force(X) + 1.0
    out = refit_affine(TRUTH, X, y, NAMES)
    assert np.max(np.abs(evaluate(out, X, NAMES) - y)) < 1e-9
    assert sorted(round(float(c), 9) for c in out.atoms(sympy.Float)) == [1.0, 3.0]


def test_refit_affine_drops_a_negligible_offset():
    X = make_inputs(200, 7)
    y = 3.0 * force(X) + 1e-4
    (scale,) = refit_affine(TRUTH, X, y, NAMES).atoms(sympy.Float)
    assert abs(float(scale) - 3.0) < 1e-9


def test_canonicalize_prunes_then_rounds_and_keeps_exact_form_unrounded():
    X = make_inputs(300, 8)
    y = 2.5 * force(X)
    raw = 2.5000123 * TRUTH + 1e-4 * DX + 1e-6
    canon = canonicalize(raw, X, y, NAMES)
    assert canon.display == sympy.Rational(5, 2) * TRUTH
    assert canon.n_pruned >= 1
    assert canon.exact.atoms(sympy.Float)  # the exact form still carries fitted floats
    assert abs(float((canon.exact / TRUTH).subs({M: 1, DX: 1, R: 1})) - 2.5) < 1e-9


def test_a_term_the_refit_leaves_negligible_is_pruned():
    """The first pass keeps ``1.0*sigma`` (with the other constants where they stand it
    matters); refitting every constant drives it to almost nothing (it read
    ``36.91 - 2.621e-15*sigma``); the second pass removes it."""
    Y, s = sympy.symbols("Y sigma")
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 5, (500, 2))
    y = X[:, 0] / (2 * (1 + X[:, 1]))
    raw = Y * (1.0 * s + 36.0) / (80.0 * s + 72.0)
    assert prune_terms(raw, X, y, ["Y", "sigma"])[1] == 0
    canon = canonicalize(raw, X, y, ["Y", "sigma"])
    assert str(canon.display) == "Y/(2*(sigma + 1))" and canon.n_pruned >= 1


def test_rounded_form_leaves_no_float_one_after_cancelling():
    c = 2.34712
    assert rounded_form(c * DX * M / (c * M + c * R)) == DX * M / (M + R)


def test_denominators_are_written_monic():
    """A ratio's free scale is fixed by the constant term of each denominator sum: the law
    reads as written, and every constant left is determined by the data."""
    s, e, chi, x = sympy.symbols("sigma epsilon chi x")
    shown = rounded_form(0.5071 * s / (e * (0.5062 * chi + 0.509)))
    assert shown == sympy.Float("0.9963", 4) * s / (e * (sympy.Float("0.9945", 4) * chi + 1))
    # a long fitted constant moves before rounding could make it look exact (1956)
    Y = sympy.Symbol("Y")
    assert str(rounded_form(978.7 * Y / (1958.3 * s + 1956.2))) == "0.5003*Y/(1.001*sigma + 1)"
    # a constant that rounds to a short exact number stays, and so does a form that would grow
    assert rounded_form(1 / (x - 2.0)) == 1 / (x - 2)
    assert str(rounded_form(2.0 * x / (3.0 - x) + 1.5)) == "2*x/(3 - x) + 3/2"
    # a sum with no constant term is turned so that the signs read positive where they can
    c, v, w = sympy.symbols("c v omega_0")
    assert str(rounded_form(-c * w / (-c + v))) == "c*omega_0/(c - v)"
    assert str(rounded_form(-1.5 * w / (v + c) ** 3)) == "-3*omega_0/(2*(c + v)**3)"
    assert str(rounded_form(w / (v - c))) == "omega_0/(-c + v)"  # half, the product positive
    # and its free scale is fixed by its largest fitted coefficient
    lead = sympy.Float(-0.03822)
    shown = rounded_form(lead * c * w / (lead * c + sympy.Float(0.03821) * v))
    assert str(shown) == "c*omega_0/(c - 0.9997*v)"
