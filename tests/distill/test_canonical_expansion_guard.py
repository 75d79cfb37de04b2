"""tidy does not hand sympy.simplify a power of a sum holding a function (trigsimp expands and
factors it: minutes on one small formula that a formula-task search returned)."""

from __future__ import annotations

import sympy

from ensemble_lens.distill.canonical import _expands_functions, tidy


def test_a_power_of_a_sum_with_a_function_is_not_simplified():
    t = sympy.Symbol("theta")
    inner = sympy.Float(0.0523) * t + sympy.sin((sympy.Float(0.228) * t - 1.264) ** 2) - 0.2296
    expr = sympy.Float(0.99997) * inner**4 + sympy.Float(4.8e-6)
    assert _expands_functions(expr)
    assert tidy(expr) == expr  # returned as it is (and at once), not simplified for minutes


def test_other_formulas_are_still_simplified():
    x, y = sympy.symbols("x y")
    assert not _expands_functions(sympy.sin(x) ** 2 + (x + y) ** 3)
    assert not _expands_functions((x + sympy.sin(y)) ** 2)
    assert tidy((2 * x**2 + 2 * x) / (x + 1)) == 2 * x
    assert tidy(sympy.sin(x) ** 2 + sympy.cos(x) ** 2 + x) == x + 1
