"""tidy does not hand sympy.simplify the small formulas it spends minutes on: a power of a sum
holding a function (trigsimp expands and factors it), a trigonometric function of a sum of many
terms (fu tries every split of it); both were returned by formula-task searches."""

from __future__ import annotations

import sympy

from ensemble_lens.distill.canonical import _expanded_terms, _simplify_is_costly, tidy


def test_a_power_of_a_sum_with_a_function_is_not_simplified():
    t = sympy.Symbol("theta")
    inner = sympy.Float(0.0523) * t + sympy.sin((sympy.Float(0.228) * t - 1.264) ** 2) - 0.2296
    expr = sympy.Float(0.99997) * inner**4 + sympy.Float(4.8e-6)
    assert _simplify_is_costly(expr)
    assert tidy(expr) == expr  # returned as it is (and at once), not simplified for minutes


def test_a_sine_of_a_long_sum_is_not_simplified():
    # returned by direct search on AI Feynman's I.6.2 at noise 0.01 (SR seed 5): sympy.simplify
    # ran for over 15 minutes in futrig on it; its argument expands into ten terms
    s, t = sympy.symbols("sigma theta")
    inner = (0.6945 * s - 0.6745 * t + 0.6169) * sympy.exp(-1.037 * s) + 0.263
    expr = 0.9978 * sympy.sin(inner**2)
    assert _expanded_terms(inner**2) >= len(sympy.expand(inner**2).args) == 10
    assert _simplify_is_costly(expr)
    assert tidy(expr) == expr
    # a sine of a short sum is simplified as before
    assert not _simplify_is_costly(sympy.sin(1.521 * t - 2.963) * sympy.exp(-1.932 * t))
    assert tidy(sympy.sin(s - t + 1) ** 2 + sympy.cos(s - t + 1) ** 2 + s) == s + 1


def test_other_formulas_are_still_simplified():
    x, y = sympy.symbols("x y")
    assert not _simplify_is_costly(sympy.sin(x) ** 2 + (x + y) ** 3)
    assert not _simplify_is_costly((x + sympy.sin(y)) ** 2)
    assert tidy((2 * x**2 + 2 * x) / (x + 1)) == 2 * x
    assert tidy(sympy.sin(x) ** 2 + sympy.cos(x) ** 2 + x) == x + 1
