"""Symbolic-regression engines behind one protocol, each returning a Pareto front.

``operon`` (default, pyoperon), ``sparse`` (sequentially thresholded least squares over a
monomial library, see :mod:`ensemble_lens.distill.sparse`) and ``pysr`` (PySR/Julia, optional).
Every backend returns its whole accuracy/complexity front as :class:`Candidate` objects; the
caller picks from it (:mod:`ensemble_lens.distill.distill`), never the engine's own choice.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import sympy

from ..errors import BackendUnavailableError, ConfigError
from ._candidate import Candidate, make_candidate, pareto_front, subsample
from ._expr import evaluate, symbols_for
from .sparse import SparseLibraryBackend

logger = logging.getLogger(__name__)

BackendName = Literal["operon", "sparse", "pysr"]

#: the default unary primitives (pyoperon names) for a law of unknown form, offered beyond
#: ``+ - * /`` and squares: what the laws of physics tables need (square roots, exponentials
#: and logarithms, trigonometric functions and arcsin). Formula tasks search with it; a task's
#: own ``sr_functions`` or a study's ``distill.functions`` replace it.
DEFAULT_FUNCTIONS: tuple[str, ...] = ("sqrt", "exp", "log", "sin", "cos", "asin")


@runtime_checkable
class SRBackend(Protocol):
    """A symbolic-regression engine: data in, Pareto front of candidates out."""

    name: str

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        names: Sequence[str],
        *,
        seed: int,
        time_budget: float | None,
    ) -> list[Candidate]:
        """Search formulas ``y ~ f(X)``.

        Parameters
        ----------
        X : ndarray, shape (sample, variable), float64
        y : ndarray, shape (sample,), float64
        names : sequence of str
            One name per column of ``X``; formulas use ``sympy.Symbol(name)``.
        seed : int
            All randomness of the search.
        time_budget : float or None
            Seconds the search may take (a soft limit for some engines), or None: the search
            is bounded by its work budget only (generations, iterations), so the same data
            and seed give the same front on a busy or an idle machine.

        Returns
        -------
        list of Candidate
            The Pareto front, sorted by increasing complexity (and decreasing loss).
        """
        ...


# --------------------------------------------------------------------------------------------
# Operon

_BINARY: dict[str, Callable[..., sympy.Expr]] = {
    "Add": lambda *a: sympy.Add(*a),
    "Mul": lambda *a: sympy.Mul(*a),
    "Sub": lambda *a: -a[0] if len(a) == 1 else a[0] - sympy.Add(*a[1:]),
    "Div": lambda *a: 1 / a[0] if len(a) == 1 else a[0] / sympy.Mul(*a[1:]),
    "Aq": lambda a, b: a / sympy.sqrt(1 + b**2),
    "Pow": lambda a, b: a**b,
    "Powabs": lambda a, b: sympy.Abs(a) ** b,
    "Fmin": lambda *a: sympy.Min(*a),
    "Fmax": lambda *a: sympy.Max(*a),
}
_UNARY: dict[str, Callable[[sympy.Expr], sympy.Expr]] = {
    "Square": lambda a: a**2,
    "Exp": sympy.exp,
    "Log": sympy.log,
    "Logabs": lambda a: sympy.log(sympy.Abs(a)),
    "Log1p": lambda a: sympy.log(1 + a),
    "Sqrt": sympy.sqrt,
    "Sqrtabs": lambda a: sympy.sqrt(sympy.Abs(a)),
    "Cbrt": sympy.cbrt,
    "Abs": sympy.Abs,
    "Sin": sympy.sin,
    "Cos": sympy.cos,
    "Tan": sympy.tan,
    "Sinh": sympy.sinh,
    "Cosh": sympy.cosh,
    "Tanh": sympy.tanh,
    "Asin": sympy.asin,
    "Acos": sympy.acos,
    "Atan": sympy.atan,
    "Floor": sympy.floor,
    "Ceil": sympy.ceiling,
}


def operon_tree_to_sympy(tree: Any, symbol_of_hash: dict[int, sympy.Symbol]) -> sympy.Expr:
    """Convert an operon tree (postfix nodes) to sympy with full-precision constants.

    In operon's postfix order the first operand of a node is the subtree just before it, so
    the operands pop off a stack in order. Variable nodes carry a weight (``w * x``).
    """
    stack: list[sympy.Expr] = []
    for node in tree.Nodes:
        kind = node.Type.name
        if kind == "Constant":
            stack.append(sympy.Float(float(node.Value)))
        elif kind == "Variable":
            weight = float(node.Value)
            sym = symbol_of_hash[node.HashValue]
            stack.append(sym if weight == 1.0 else sympy.Float(weight) * sym)
        else:
            args = [stack.pop() for _ in range(node.Arity)]
            if kind in _BINARY:
                stack.append(_BINARY[kind](*args))
            elif kind in _UNARY:
                stack.append(_UNARY[kind](args[0]))
            else:
                raise ValueError(f"operon node type {kind!r} has no sympy translation")
    if len(stack) != 1:
        raise ValueError(f"malformed operon tree: {len(stack)} expressions left on the stack")
    return stack[0]


class OperonBackend:
    """Multi-objective genetic programming with pyoperon (NSGA-II on error and length).

    Parameters
    ----------
    population_size, generations : int
        Search size, the work budget: the run is deterministic for a seed (on one machine),
        unless ``time_budget`` seconds (None by default) cut it short.
    max_evaluations : int
        Operon's cap on fitness evaluations (pyoperon's default); a work budget as well.
    optimizer_iterations : int
        Levenberg-Marquardt iterations of constant optimisation per individual. pyoperon's
        default of 0 silently disables constant fitting; 5 recovers exact laws (e.g.
        ``2.5*m*dx/r**3`` from 500 points in ~7 s on one quiet core) at a fraction of the cost
        of 10.
    max_length : int
        Largest tree (nodes) considered.
    functions : sequence of str
        Extra primitives beyond ``add, sub, mul, div, square``: any of ``sqrt, exp, log, sin,
        cos, tanh, ...`` (pyoperon names).
    max_points : int
        Rows used by the search (seeded subsample); the optimiser's cost grows with it.
    n_threads : int
        pyoperon threads (1 per process is right when components run in parallel). Operon
        draws each offspring's random stream from the seed, not from the thread that makes
        it, so results do not depend on this (checked for 1 and 4 threads, busy and idle).
    """

    name = "operon"

    def __init__(
        self,
        *,
        population_size: int = 500,
        generations: int = 100,
        max_evaluations: int = 1_000_000,
        optimizer_iterations: int = 5,
        max_length: int = 30,
        functions: Sequence[str] = (),
        max_points: int = 500,
        n_threads: int = 1,
    ) -> None:
        self.population_size = population_size
        self.generations = generations
        self.max_evaluations = max_evaluations
        self.optimizer_iterations = optimizer_iterations
        self.max_length = max_length
        self.functions = tuple(functions)
        self.max_points = max_points
        self.n_threads = n_threads

    def _regressor(self, seed: int, time_budget: float | None) -> Any:
        try:
            from pyoperon.sklearn import SymbolicRegressor
        except ImportError as err:
            raise BackendUnavailableError(
                "the 'operon' backend needs pyoperon: pip install 'pyoperon>=0.4'"
            ) from err
        symbols = ",".join(("add", "sub", "mul", "div", "square", *self.functions))
        return SymbolicRegressor(
            allowed_symbols=f"{symbols},constant,variable",
            objectives=["r2", "length"],
            optimizer="lm",
            optimizer_iterations=self.optimizer_iterations,
            population_size=self.population_size,
            generations=self.generations,
            max_evaluations=self.max_evaluations,
            max_length=self.max_length,
            max_time=None if time_budget is None else max(1, math.ceil(time_budget)),
            n_threads=self.n_threads,
            random_state=seed,
        )

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        names: Sequence[str],
        *,
        seed: int,
        time_budget: float | None = None,
    ) -> list[Candidate]:
        """Run pyoperon and return its final non-dominated front (see :class:`SRBackend`)."""
        Xs, ys = subsample(X, y, self.max_points, seed)
        reg = self._regressor(seed, time_budget)
        start = time.perf_counter()
        reg.fit(Xs, ys)
        logger.info(
            "operon: %d generations on %d points in %.1f s, front of %d",
            reg.stats_["generations"],
            len(Xs),
            time.perf_counter() - start,
            len(reg.pareto_front_),
        )
        syms = symbols_for(names)
        symbol_of_hash = {h: syms[i] for i, h in enumerate(reg.variables_)}
        cands = []
        for entry in reg.pareto_front_:
            expr = operon_tree_to_sympy(entry["tree"], symbol_of_hash)
            if not _agrees_with_operon(expr, reg.evaluate_model(entry["tree"], Xs), Xs, names):
                # float32 cancellation (c*cos(1e-3*x) - c): expected, not a user problem
                logger.info("operon: skipped a model whose sympy form disagrees: %s", expr)
                continue
            cands.append(make_candidate(expr, X, y, names))
        return pareto_front(cands)


def _agrees_with_operon(
    expr: sympy.Expr, ref: np.ndarray, X: np.ndarray, names: Sequence[str]
) -> bool:
    """The sympy translation reproduces operon's own (float32) evaluation where it is finite."""
    pred = evaluate(expr, X, names)
    ok = np.isfinite(ref)
    scale = max(float(np.std(ref[ok])) if ok.any() else 0.0, 1e-12)
    return bool(np.all(np.abs(pred[ok] - ref[ok]) <= 1e-3 * scale + 1e-4 * np.abs(ref[ok])))


# --------------------------------------------------------------------------------------------
# PySR

PYSR_RECIPE = (
    "The 'pysr' backend needs the pysr package and a Julia with SymbolicRegression.jl.\n"
    "Offline recipe:\n"
    "  1. On a machine with network: pip install 'pysr>=1.0' and run\n"
    '     python -c "import pysr"  (juliacall downloads Julia and installs\n'
    "     SymbolicRegression.jl into the Julia depot, ~/.julia by default).\n"
    "  2. Copy the Julia depot (and the juliaup/julia install juliacall used) to the offline\n"
    "     machine; set JULIA_DEPOT_PATH to the copied depot, PYTHON_JULIAPKG_OFFLINE=yes,\n"
    "     PYTHON_JULIAPKG_EXE to the julia binary and PYTHON_JULIAPKG_PROJECT to the copied\n"
    "     project (juliacall/juliapkg read these PYTHON_JULIA* variables at import).\n"
    '  3. Check with: python -c "import pysr" (must not try to download anything).\n'
    "Or use the default backend: backend='operon' (pyoperon, pure pip install)."
)


def import_pysr() -> Any:
    """Import ``pysr.PySRRegressor`` or raise :class:`BackendUnavailableError` with the recipe.

    juliacall is told to stay offline (``PYTHON_JULIAPKG_OFFLINE=yes`` unless the caller set
    it), so a missing Julia is an error with the recipe, never a download.
    """
    os.environ.setdefault("PYTHON_JULIAPKG_OFFLINE", "yes")
    try:
        from pysr import PySRRegressor
    except Exception as err:  # ImportError, or juliacall failing to find/install Julia
        raise BackendUnavailableError(
            f"cannot use backend 'pysr': {type(err).__name__}: {err}\n{PYSR_RECIPE}"
        ) from err
    return PySRRegressor


class PySRBackend:
    """PySR (SymbolicRegression.jl) behind the :class:`SRBackend` protocol.

    Runs deterministically (``parallelism="serial"``, ``deterministic=True``, seeded; these
    keywords are PySR >= 1.0's) and reads the whole ``equations_`` table as the front.
    Raises :class:`BackendUnavailableError` with an offline recipe when pysr or Julia is
    missing.
    """

    name = "pysr"

    def __init__(
        self,
        *,
        niterations: int = 40,
        maxsize: int = 25,
        binary_operators: Sequence[str] = ("+", "-", "*", "/"),
        unary_operators: Sequence[str] = (),
        max_points: int = 1000,
    ) -> None:
        self.niterations = niterations
        self.maxsize = maxsize
        self.binary_operators = tuple(binary_operators)
        self.unary_operators = tuple(unary_operators)
        self.max_points = max_points

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        names: Sequence[str],
        *,
        seed: int,
        time_budget: float | None = None,
    ) -> list[Candidate]:
        """Run PySR and return its hall of fame as the front (see :class:`SRBackend`)."""
        regressor_cls = import_pysr()
        Xs, ys = subsample(X, y, self.max_points, seed)
        model = regressor_cls(
            niterations=self.niterations,
            maxsize=self.maxsize,
            binary_operators=list(self.binary_operators),
            unary_operators=list(self.unary_operators),
            timeout_in_seconds=None if time_budget is None else float(time_budget),
            random_state=seed,
            deterministic=True,
            parallelism="serial",
            progress=False,
            verbosity=0,
            temp_equation_file=True,
        )
        placeholders = [f"x{j}" for j in range(X.shape[1])]
        model.fit(Xs, ys, variable_names=placeholders)
        rename = {sympy.Symbol(p): s for p, s in zip(placeholders, symbols_for(names), strict=True)}
        cands = [
            make_candidate(sympy.sympify(expr).xreplace(rename), X, y, names)
            for expr in model.equations_["sympy_format"]
        ]
        return pareto_front(cands)


# --------------------------------------------------------------------------------------------

#: engine settings that bound a search's work (recorded with every formula)
_WORK_KEYS = (
    "population_size",
    "generations",
    "max_evaluations",
    "optimizer_iterations",
    "niterations",
    "max_points",
    "n_threads",
)


def search_budget(engine: SRBackend, time_budget: float | None) -> dict[str, Any]:
    """What bounded a search, as recorded with its formulas: ``by`` (``"work"``, or
    ``"work and time"`` when a ``time_budget`` in seconds was set: then the result may depend
    on the machine's load), ``time_budget`` and the engine's work settings it has of
    ``generations``, ``population_size``, ``max_evaluations``, ``optimizer_iterations``,
    ``niterations``, ``max_points``, ``n_threads``.

    Examples
    --------
    >>> search_budget(OperonBackend(generations=50), None)["by"], OperonBackend().n_threads
    ('work', 1)
    """
    work = {k: getattr(engine, k) for k in _WORK_KEYS if hasattr(engine, k)}
    by = "work" if time_budget is None else "work and time"
    return {"by": by, "time_budget": time_budget, **work}


def get_backend(name: BackendName, **opts: Any) -> SRBackend:
    """Build a backend by name: ``"operon"`` (default engine), ``"sparse"`` or ``"pysr"``.

    Keyword options go to the backend's constructor. ``"pysr"`` is checked at once so that a
    missing Julia fails before any work starts.

    Raises
    ------
    ConfigError
        For an unknown name.
    BackendUnavailableError
        When the engine is not installed (with an install recipe).

    Examples
    --------
    >>> get_backend("sparse", max_degree=3).name
    'sparse'
    """
    factories: dict[str, Callable[..., SRBackend]] = {
        "operon": OperonBackend,
        "sparse": SparseLibraryBackend,
        "pysr": PySRBackend,
    }
    if name not in factories:
        raise ConfigError(
            f"unknown symbolic-regression backend {name!r}; expected one of {sorted(factories)}"
        )
    if name == "pysr":
        import_pysr()
    return factories[name](**opts)
