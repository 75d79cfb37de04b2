"""A task written as a formula: named variables with ranges, a law, a noise level.

``FormulaTask("q1*q2/(4*pi*epsilon*r**2)", {"q1": [1, 5], "q2": [1, 5], "epsilon": [1, 5],
"r": [1, 5]}, noise=0.01)`` is a known-answer task like the built-in ones:

- the inputs are drawn uniformly from the ranges with a seeded generator; rows where the law
  is not finite (``sqrt`` of a negative, ``arcsin`` beyond 1) are drawn again;
- the training target is the law plus Gaussian noise of standard deviation ``noise`` times the
  standard deviation of the clean targets of the data set (the rows the networks are given:
  their training and validation splits); the probe and every score use the noise-free law;
- the truth (``latents``) is the parsed sympy expression, so exact recovery is judged as for
  the built-in tasks;
- the networks train on standardised targets: centred and scaled by the mean and standard
  deviation of a fixed reference draw of the noisy targets (:attr:`target_scale`, the same
  for every member);
- the default network is a bottleneck MLP whose bottleneck has the target's width (one unit),
  read out by a linear head. The recorded layer, ``"output"``, is the network's prediction
  with that standardisation undone: the target's own units, which every member shares, so
  the consensus is searched there (basis ``"units"`` of
  :func:`~ensemble_lens.distill.basis.searched_basis`), where the law carries no offset or
  scale of ours (``latent_kind`` ``"scalar"``); its encoder first maps each variable's
  training range onto ``[-1, 1]`` (a fixed layer,
  :class:`~ensemble_lens.models.bottleneck.InputScale`), and it trains for
  200 epochs then polishes with full-batch L-BFGS (``TrainSpec.polish``): the consensus is
  only as exact as its members, and these two take a smooth law from ~1e-4 to ~1e-6
  relative error on noise-free data;
- the extrapolation range of a variable is its training range widened by ``extrapolation``
  (default 1.5) around its centre; a range that is non-negative (non-positive) stays so, its
  near end moving at most to ``low / factor`` (``high / factor``). A mapping gives ranges
  explicitly (variables it leaves out use the rule with the default factor).

The formula is parsed without evaluating any code: its Python syntax tree is walked and only
numbers, the declared variables, ``pi``, ``+ - * / **`` and the functions of
:data:`FUNCTIONS` are accepted. Importing this module loads numpy and sympy only.

Examples
--------
>>> task = FormulaTask("m*g*z", {"m": [1, 5], "g": [1, 5], "z": [1, 5]}, noise=0.01)
>>> task.latents
{'y': g*m*z}
>>> task.sample_probe(4, seed=0).shape
(4, 3)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy

from ensemble_lens.distill._expr import is_formula_name, read_syntax
from ensemble_lens.distill.backends import DEFAULT_FUNCTIONS
from ensemble_lens.errors import TaskError
from ensemble_lens.models.spec import ArchSpec, TrainSpec
from ensemble_lens.tasks.base import Task

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

__all__ = ["FUNCTIONS", "FormulaTask", "extrapolation_ranges", "parse_formula"]

#: functions a formula may call (numpy-style aliases included)
FUNCTIONS: dict[str, Any] = {
    "sqrt": sympy.sqrt,
    "exp": sympy.exp,
    "log": sympy.log,
    "ln": sympy.log,
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "asin": sympy.asin,
    "arcsin": sympy.asin,
    "acos": sympy.acos,
    "arccos": sympy.acos,
    "atan": sympy.atan,
    "arctan": sympy.atan,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "tanh": sympy.tanh,
    "abs": sympy.Abs,
}
_CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.pi}
_MAX_DRAWS = 50  # rounds of redrawing rows where the law is not finite


def parse_formula(text: str, variables: Any) -> sympy.Expr:
    """Parse ``text`` into a sympy expression of the declared ``variables``, evaluating nothing.

    Parameters
    ----------
    text : str
        Python syntax: numbers, variable names, ``pi``, ``+ - * / **``, unary minus and calls
        of :data:`FUNCTIONS` with one argument.
    variables : iterable of str
        The declared variable names.

    Raises
    ------
    TaskError
        Not a formula, a name that is neither declared nor ``pi``, an unknown function or any
        other syntax (attributes, subscripts, comparisons). ``^`` is a power, like ``**``.

    Examples
    --------
    >>> parse_formula("arcsin(n*sin(t))", ["n", "t"])
    asin(n*sin(t))
    """
    declared = {str(v): sympy.Symbol(str(v)) for v in variables}
    if not isinstance(text, str) or not text.strip():
        raise TaskError(f"formula: expected a non-empty string, got {text!r}")

    def name(n: str) -> sympy.Expr:
        if n in declared:
            return declared[n]
        if n in _CONSTANTS:
            return _CONSTANTS[n]
        known = ", ".join(declared) or "none"
        raise TaskError(f"formula {text!r}: unknown variable {n!r} (declared: {known})")

    def function(fname: str, n_args: int) -> Any:
        if fname not in FUNCTIONS:
            raise TaskError(
                f"formula {text!r}: unknown function {fname!r} (known: {', '.join(FUNCTIONS)})"
            )
        if n_args != 1:
            raise TaskError(f"formula {text!r}: {fname}() takes exactly one argument")
        return FUNCTIONS[fname]

    def number(value: int | float, literal: str) -> sympy.Expr:
        # a law's numbers are exact: 0.5 is 1/2
        return sympy.Rational(repr(value)) if isinstance(value, float) else sympy.Integer(value)

    return read_syntax(
        text, name=name, function=function, number=number,
        error=lambda message: TaskError(f"formula {text!r}: {message}"),
    )  # fmt: skip


def _check_range(key: str, value: Any) -> tuple[float, float]:
    """A ``[low, high]`` pair of finite numbers with ``low < high``."""
    if isinstance(value, str | bytes) or not hasattr(value, "__len__") or len(value) != 2:
        raise TaskError(f"{key}: expected a range [low, high], got {value!r}")
    try:
        low, high = float(value[0]), float(value[1])
    except (TypeError, ValueError) as err:
        raise TaskError(f"{key}: expected numbers [low, high], got {value!r}") from err
    if not (math.isfinite(low) and math.isfinite(high)):
        raise TaskError(f"{key}: expected finite bounds, got {value!r}")
    if low >= high:
        what = "empty" if low == high else "inverted"
        raise TaskError(f"{key}: range {value!r} is {what}; expected low < high")
    return low, high


def _check_variables(variables: Any) -> dict[str, tuple[float, float]]:
    if not isinstance(variables, Mapping) or not variables:
        raise TaskError(f"variables: expected a mapping of names to [low, high], got {variables!r}")
    out = {}
    for name, rng in variables.items():
        if not is_formula_name(name):
            raise TaskError(f"variables: {name!r} is not a valid variable name")
        if name in FUNCTIONS or name in _CONSTANTS:
            raise TaskError(f"variables.{name}: {name!r} is a function or constant of formulas")
        out[name] = _check_range(f"variables.{name}", rng)
    return out


def extrapolation_ranges(
    ranges: Mapping[str, tuple[float, float]], extrapolation: float | Mapping[str, Any] = 1.5
) -> dict[str, tuple[float, float]]:
    """Extrapolation range of every variable: explicit, or the documented widening rule.

    A training range ``[low, high]`` with centre ``c`` and half-width ``h`` becomes
    ``[c - f h, c + f h]``; when ``low >= 0`` the lower end is at least ``low / f`` (a
    non-negative variable stays non-negative, and a positive one positive), and when
    ``high <= 0`` the upper end is at most ``high / f``.

    Parameters
    ----------
    ranges : mapping of str to (low, high)
        Training ranges.
    extrapolation : float or mapping
        The factor ``f >= 1``, or explicit ``{name: [low, high]}`` (others: ``f = 1.5``).

    Examples
    --------
    >>> extrapolation_ranges({"r": (1.0, 5.0), "x": (-1.0, 1.0)}, 2.0)
    {'r': (0.5, 7.0), 'x': (-2.0, 2.0)}
    """
    explicit: Mapping[str, Any] = {}
    factor = 1.5
    if isinstance(extrapolation, Mapping):
        explicit = extrapolation
        unknown = sorted(set(explicit) - set(ranges))
        if unknown:
            raise TaskError(
                f"extrapolation: unknown variable {unknown[0]!r} (declared: {', '.join(ranges)})"
            )
    else:
        try:
            factor = float(extrapolation)
        except (TypeError, ValueError) as err:
            raise TaskError(
                f"extrapolation: expected a factor >= 1 or a mapping of ranges, got "
                f"{extrapolation!r}"
            ) from err
        if not (math.isfinite(factor) and factor >= 1.0):
            raise TaskError(f"extrapolation: expected a factor >= 1, got {extrapolation!r}")
    out = {}
    for name, (low, high) in ranges.items():
        if name in explicit:
            out[name] = _check_range(f"extrapolation.{name}", explicit[name])
            continue
        centre, half = (low + high) / 2, (high - low) / 2
        new_low, new_high = centre - factor * half, centre + factor * half
        if low >= 0:
            new_low = max(new_low, low / factor)
        if high <= 0:
            new_high = min(new_high, high / factor)
        out[name] = (new_low, new_high)
    return out


class FormulaTask(Task):
    """A known-answer task given as a formula string, variable ranges and a noise level.

    Parameters
    ----------
    formula : str
        The law, in Python syntax (see :func:`parse_formula`).
    variables : mapping of str to [low, high]
        The inputs, in order, with their uniform training ranges.
    noise : float
        Standard deviation of the Gaussian noise on the training targets, as a fraction of the
        clean targets' standard deviation (0: none).
    n : int
        Training examples per member (``default_train.n_train``; the validation split is a
        fifth of it, at least 200 rows).
    extrapolation : float or mapping
        Factor of the extrapolation rule, or explicit ranges (see
        :func:`extrapolation_ranges`).
    output : str
        Name of the law's latent (the truth's key), e.g. ``"F"``.

    Raises
    ------
    TaskError
        One line naming the bad key: a bad formula, an undeclared name, an empty or inverted
        range, a negative noise, a law that is not finite or constant on the ranges.
    """

    name = "formula"
    latent_kind = "scalar"
    equivariant_vector = None
    latent_layer = "output"
    #: the general default set, never the functions of the formula itself (that would tell
    #: the search the answer)
    sr_functions = DEFAULT_FUNCTIONS

    def __init__(
        self,
        formula: str,
        variables: Mapping[str, Any],
        *,
        noise: float = 0.0,
        n: int = 10000,
        extrapolation: float | Mapping[str, Any] = 1.5,
        output: str = "y",
    ) -> None:
        self.ranges = _check_variables(variables)
        self.formula = formula
        self.expr = parse_formula(formula, self.ranges)
        if not isinstance(noise, int | float) or not (math.isfinite(noise) and noise >= 0):
            raise TaskError(f"noise: expected a finite fraction >= 0, got {noise!r}")
        if not isinstance(n, int) or isinstance(n, bool) or n < 10:
            raise TaskError(f"n: expected an integer number of examples >= 10, got {n!r}")
        if not isinstance(output, str) or not output.isidentifier():
            raise TaskError(f"output: expected a name, got {output!r}")
        self.noise, self.n, self.output = float(noise), n, output
        self.extrapolation = extrapolation
        self.extrapolation_ranges = extrapolation_ranges(self.ranges, extrapolation)
        self.input_names = tuple(self.ranges)
        self.latents = {output: self.expr}
        self._fn = sympy.lambdify(self.probe_symbols(), self.expr, modules="numpy")
        self.default_arch = ArchSpec(
            family="bottleneck", width=64, depth=2, activation="silu", latent_dim=1
        )
        self.default_train = TrainSpec(
            epochs=200,
            batch_size=128,
            lr=3e-3,
            n_train=n,
            n_val=max(200, n // 5),
            patience=30,
            polish=200,
        )
        self._check_law()

    # ------------------------------------------------------------------ the law
    def law(self, x: np.ndarray) -> np.ndarray:
        """The noise-free law on inputs ``(n, n_vars)``: ``(n,)`` float64 (NaN where undefined)."""
        cols = [np.asarray(x[:, k], dtype=np.float64) for k in range(x.shape[1])]
        with np.errstate(all="ignore"):
            y = np.asarray(self._fn(*cols), dtype=np.float64)
        return np.array(np.broadcast_to(y, (len(x),)))

    def _check_law(self) -> None:
        """The law must be finite on most of the ranges and vary on them."""
        x = self._uniform(np.random.default_rng(0), 2000, self.ranges)
        y = self.law(x)
        ok = np.isfinite(y)
        if ok.mean() < 0.1:
            raise TaskError(
                f"formula {self.formula!r}: not finite on {1 - ok.mean():.0%} of the variable "
                "ranges; expected a law defined on (most of) them"
            )
        if np.ptp(y[ok]) <= 1e-12 * max(1.0, float(np.abs(y[ok]).max())):
            raise TaskError(f"formula {self.formula!r}: constant on the variable ranges")

    @staticmethod
    def _uniform(
        rng: np.random.Generator, n: int, ranges: Mapping[str, tuple[float, float]]
    ) -> np.ndarray:
        low = np.array([r[0] for r in ranges.values()])
        high = np.array([r[1] for r in ranges.values()])
        return rng.uniform(low, high, size=(n, len(low)))

    def _draw(self, n: int, seed: int, ranges: Mapping[str, tuple[float, float]]) -> np.ndarray:
        """``(n, n_vars)`` float64 uniform rows on which the law is finite (seeded)."""
        rng = np.random.default_rng(seed)
        rows: list[np.ndarray] = []
        have = 0
        for _ in range(_MAX_DRAWS):
            x = self._uniform(rng, max(n - have, 16), ranges)
            x = x[np.isfinite(self.law(x))]
            rows.append(x)
            have += len(x)
            if have >= n:
                return np.concatenate(rows)[:n]
        raise TaskError(
            f"formula {self.formula!r}: too few rows where it is finite on the ranges {ranges}"
        )

    # ------------------------------------------------------------------ Task interface
    def sample_probe(self, n: int, seed: int, *, extrapolate: bool = False) -> np.ndarray:
        """``(n, n_vars)`` float32 inputs from the training or the extrapolation ranges."""
        ranges = self.extrapolation_ranges if extrapolate else self.ranges
        return self._draw(n, seed, ranges).astype(np.float32)

    def make_data(self, n: int, seed: int) -> dict[str, torch.Tensor]:
        """``x`` (n, n_vars) and ``target`` (n, 1): the law plus the noise (:meth:`training_data`),
        standardised by :attr:`target_scale` (an affine map, so the latent stays an affine
        image of the law)."""
        import torch

        x, noisy = self.training_data(n, seed)
        mean, std = self.target_scale
        target = ((noisy - mean) / std)[:, None]
        return {
            "x": torch.from_numpy(x.astype(np.float32)),
            "target": torch.from_numpy(target.astype(np.float32)),
        }

    @functools.cached_property
    def target_scale(self) -> tuple[float, float]:
        """``(mean, std)`` of the noisy targets of a fixed reference draw (``n`` rows, seed 0):
        the one standardisation of every member's targets, undone by the recorded layer."""
        _, y = self.training_data(self.n, 0)
        return float(y.mean()), float(y.std()) or 1.0

    def training_data(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows of :meth:`make_data` in the law's own units: inputs ``(n, n_vars)`` and the
        noisy target ``(n,)``, float64 (what a direct search on the same data sees)."""
        x = self._draw(n, seed, self.ranges)
        y = self.law(x)
        std = float(y.std()) or 1.0
        return x, y + self.noise * std * np.random.default_rng([seed, 1]).standard_normal(n)

    def build_model(self, arch: ArchSpec, seed: int) -> torch.nn.Module:
        """A bottleneck MLP (family ``"bottleneck"``) with one linear output."""
        import torch

        from ensemble_lens.models.bottleneck import BottleneckNet

        if arch.family != "bottleneck":
            raise TaskError(
                f"task '{self.name}': expected arch family 'bottleneck', got {arch.family!r}"
            )
        torch.manual_seed(seed)
        low, high = zip(*self.ranges.values(), strict=True)
        return BottleneckNet(arch, len(self.input_names), 1, 0, input_range=(low, high))

    def probe_module(self, model: torch.nn.Module) -> torch.nn.Module:
        """``(n, n_vars)`` to the prediction in the target's units: modules ``"encoder"`` (its
        bottleneck is ``"encoder.latent"``), ``"head"`` (the linear head, standardised units)
        and ``"output"`` (:attr:`target_scale` undone)."""
        from collections import OrderedDict

        from torch import nn

        from ensemble_lens.models.bottleneck import OutputScale

        mean, std = self.target_scale
        layers = [("encoder", model.encoder), ("head", model.linear_head)]
        return nn.Sequential(OrderedDict([*layers, ("output", OutputScale(std, mean))]))

    def describe(self) -> dict[str, Any]:
        """The base summary plus the formula, ranges, noise and extrapolation ranges."""
        return {
            **super().describe(),
            "formula": self.formula,
            "ranges": {k: list(v) for k, v in self.ranges.items()},
            "extrapolation_ranges": {k: list(v) for k, v in self.extrapolation_ranges.items()},
            "noise": self.noise,
        }

    def __repr__(self) -> str:
        return f"FormulaTask({self.formula!r}, inputs={self.input_names}, noise={self.noise})"
