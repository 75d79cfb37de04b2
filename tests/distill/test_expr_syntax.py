"""Formulas are read off their syntax tree (``read_syntax``): a user's law and a formula
read back from a store alike, and neither is ever run."""

import pytest
import sympy

from ensemble_lens.distill._expr import parse_written
from ensemble_lens.errors import TaskError
from ensemble_lens.tasks.formula import parse_formula


def test_a_written_formula_reads_back_with_every_name_a_symbol_and_every_digit() -> None:
    E, N, s = sympy.symbols("E N sigma")
    assert parse_written("E*N + 17/8") == E * N + sympy.Rational(17, 8)
    (c,) = parse_written("0.0038359373016272165*sigma").atoms(sympy.Float)
    assert str(c) == "0.0038359373016272165"  # not rounded to a double's 17 digits
    assert parse_written("Abs(sigma)**(1/3) + Min(sigma, N)") == (
        sympy.Abs(s) ** sympy.Rational(1, 3) + sympy.Min(s, N)
    )
    assert parse_written("sigma^2") == s**2


@pytest.mark.parametrize(
    "text",
    [
        "__import__('pathlib').Path({marker!r}).touch()",
        "sigma.__class__.__mro__[-1].__subclasses__()",
        "[open({marker!r}, 'w') for x in (1,)]",
    ],
)
def test_no_formula_text_is_run(tmp_path, text: str) -> None:
    marker = str(tmp_path / "ran")
    with pytest.raises(ValueError, match="unsupported syntax"):
        parse_written(text.format(marker=marker))
    with pytest.raises(TaskError, match="unsupported syntax"):
        parse_formula(text.format(marker=marker), ["sigma"])
    assert not (tmp_path / "ran").exists()
