import importlib.util
import math
import re
import subprocess
import sys

import numpy as np
import pytest
import sympy
from force_law import DX, NAMES, M, R, force, make_inputs

from ensemble_lens.distill import (
    PYSR_RECIPE,
    Candidate,
    OperonBackend,
    PySRBackend,
    SparseLibraryBackend,
    SRBackend,
    distill_component,
    get_backend,
    pareto_front,
)
from ensemble_lens.distill.backends import operon_tree_to_sympy, search_budget
from ensemble_lens.distill.sparse import monomial_exponents
from ensemble_lens.errors import BackendUnavailableError, ConfigError, ShapeError


def test_backends_satisfy_the_protocol():
    for backend in (OperonBackend(), SparseLibraryBackend(), PySRBackend()):
        assert isinstance(backend, SRBackend)


def test_pareto_front_keeps_only_non_dominated_candidates():
    x = sympy.Symbol("x")
    cands = [
        Candidate(x, 1, 4.0),
        Candidate(2 * x, 3, 5.0),  # dominated by the first
        Candidate(x**2, 3, 1.0),
        Candidate(x**3, 3, 2.0),  # same complexity, worse loss
        Candidate(x + 1, 5, math.inf),  # non-finite
        Candidate(x**2 + x, 5, 0.5),
    ]
    front = pareto_front(cands)
    assert [(c.complexity, c.loss) for c in front] == [(1, 4.0), (3, 1.0), (5, 0.5)]


def test_operon_tree_translation_keeps_operand_order():
    op = pytest.importorskip("pyoperon")
    a, b = op.Node.Variable(2.0), op.Node.Variable(1.0)
    a.HashValue, b.HashValue = 11, 22
    syms = {11: M, 22: R}
    sub = op.Tree([a, b, op.Node.Sub()]).UpdateNodes()
    div = op.Tree([a, b, op.Node.Div()]).UpdateNodes()
    sq = op.Tree([op.Node.Constant(0.5), b, op.Node.Add(), op.Node.Square()]).UpdateNodes()
    assert operon_tree_to_sympy(sub, syms) == R - 2.0 * M  # operand 1 is the node just before
    assert operon_tree_to_sympy(div, syms) == R / (2.0 * M)
    assert operon_tree_to_sympy(sq, syms) == (R + 0.5) ** 2
    ex = op.Tree([b, op.Node.Exp(), a, op.Node.Sqrt(), op.Node.Mul()]).UpdateNodes()
    assert operon_tree_to_sympy(ex, syms) == sympy.sqrt(2.0 * M) * sympy.exp(R)


def test_importing_distill_loads_no_engine():
    code = (
        "import sys, ensemble_lens.distill;"
        "print(','.join(m for m in ('pyoperon', 'pysr', 'juliacall', 'torch', 'dask', 'sklearn')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_sparse_library_uses_negative_powers_only_away_from_zero():
    X = make_inputs(100, 1)
    exps = monomial_exponents(X, max_power=3, max_degree=5)
    assert exps[:, 2].min() == -3  # r is positive and bounded away from zero
    assert exps[:, 1].min() == 0  # dx changes sign
    assert np.all(np.abs(exps).sum(axis=1) <= 5)


def test_sparse_recovers_a_polynomial_ratio_law_exactly():
    X = make_inputs(300, 2)
    y = 1.5 * force(X) * X[:, 2] + 0.7 * X[:, 0] - 0.3
    front = SparseLibraryBackend().fit(X, y, NAMES, seed=0)
    best = min(front, key=lambda c: c.loss)
    target = (
        sympy.Rational(3, 2) * M * DX / R**2 + sympy.Rational(7, 10) * M - sympy.Rational(3, 10)
    )
    assert sympy.nsimplify(best.expr, tolerance=1e-8, rational=True) == target


def test_sparse_refuses_an_oversized_library():
    X = make_inputs(50, 3)
    with pytest.raises(ShapeError, match="more than max_library=10; lower max_degree"):
        SparseLibraryBackend(max_library=10).fit(X, force(X), NAMES, seed=0, time_budget=1)


@pytest.mark.skipif(importlib.util.find_spec("pysr") is not None, reason="pysr is installed")
def test_pysr_backend_without_pysr_raises_with_the_offline_recipe():
    with pytest.raises(BackendUnavailableError, match="JULIA_DEPOT_PATH") as info:
        get_backend("pysr")
    assert PYSR_RECIPE in str(info.value)
    assert "backend='operon'" in str(info.value)
    assert isinstance(info.value, ImportError)
    X = make_inputs(20, 0)
    with pytest.raises(BackendUnavailableError, match=re.escape("pip install 'pysr>=1.0'")):
        PySRBackend().fit(X, force(X), NAMES, seed=0, time_budget=1)


def test_get_backend_rejects_unknown_names():
    with pytest.raises(ConfigError, match="unknown symbolic-regression backend 'gplearn'"):
        get_backend("gplearn")  # type: ignore[arg-type]
    assert get_backend("sparse", max_degree=2).max_degree == 2


def test_operon_is_reproducible_for_a_seed():
    pytest.importorskip("pyoperon")
    X = make_inputs(200, 0)
    small = OperonBackend(population_size=100, generations=15)
    runs = [small.fit(X, force(X), NAMES, seed=7) for _ in range(2)]
    assert [str(c.expr) for c in runs[0]] == [str(c.expr) for c in runs[1]]
    assert all(
        isinstance(c.expr, sympy.Expr) and c.expr.free_symbols <= {M, DX, R} for c in runs[0]
    )


def test_searches_are_budgeted_by_work_unless_a_time_budget_is_given():
    """No time limit reaches the engine by default; the budget is recorded with the formula."""
    assert OperonBackend()._regressor(0, None).max_time is None
    assert OperonBackend()._regressor(0, 2.5).max_time == 3
    X = make_inputs(300, 0)
    y = force(X)
    kw = dict(X_test=X[200:], y_test=y[200:], backend="sparse")
    rec = distill_component(X[:200], y[:200], NAMES, **kw).to_dict()
    assert rec["search_budget"] == {"by": "work", "time_budget": None, "max_points": 2000}
    timed = distill_component(X[:200], y[:200], NAMES, time_budget=30.0, **kw).to_dict()
    assert timed["search_budget"]["by"] == "work and time"
    assert timed["search_budget"]["time_budget"] == 30.0
    operon = search_budget(OperonBackend(generations=7, n_threads=2), None)
    assert operon == {
        "by": "work",
        "time_budget": None,
        "population_size": 500,
        "generations": 7,
        "max_evaluations": 1_000_000,
        "optimizer_iterations": 5,
        "max_points": 500,
        "n_threads": 2,
    }


@pytest.mark.slow
def test_operon_gives_the_same_formulas_busy_or_idle_on_one_or_more_threads(cpu_hog):
    """The work budget makes the search independent of the machine's load: the same front
    (expressions and losses) idle, beside busy-loop processes, and on two threads."""
    pytest.importorskip("pyoperon")
    X = make_inputs(300, 1)
    y = force(X)

    def front(n_threads):
        engine = OperonBackend(population_size=200, generations=25, n_threads=n_threads)
        return [(str(c.expr), c.loss) for c in engine.fit(X, y, NAMES, seed=11)]

    idle = front(1)
    cpu_hog(3)
    assert front(1) == idle
    assert front(2) == idle
    assert len(idle) >= 2
