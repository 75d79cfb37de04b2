"""The bases formulas are searched in: sparse disentangling and the equivariant map's inputs."""

import re

import numpy as np
import pytest

from ensemble_lens.pipeline.distill_stage import major_components, sparse_basis


def _corr(a, b):
    return abs(np.corrcoef(a, b)[0, 1])


def test_sparse_basis_separates_mixed_latents():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(2000, 4))
    u, v = X[:, 0] * X[:, 1], X[:, 2] ** 2 + X[:, 3] ** 2
    Y = np.c_[u, v] @ np.array([[0.8, -0.6], [0.5, 0.9]]) + 1e-4 * rng.normal(size=(2000, 2))
    Z = Y @ sparse_basis(Y, X)
    corr = np.array([[_corr(Z[:, j], t) for t in (u, v)] for j in range(2)])
    assert (corr.max(axis=1) > 0.9999).all()
    assert set(corr.argmax(axis=1)) == {0, 1}  # one component per latent


def _kepler_mixture():
    """Kepler inputs (x, y, vx, vy, r), energy, angular momentum, and a 2-d mixture of both."""
    rng = np.random.default_rng(1)
    xy = rng.uniform(0.5, 2, size=(2000, 2)) * rng.choice([-1, 1], size=(2000, 2))
    vel = rng.normal(size=(2000, 2))
    r = np.hypot(xy[:, 0], xy[:, 1])
    energy = 0.5 * (vel**2).sum(1) - 1 / r
    ang = xy[:, 0] * vel[:, 1] - xy[:, 1] * vel[:, 0]
    Y = np.c_[energy, ang] @ np.array([[1.0, 0.7], [-0.4, 1.2]])
    return np.c_[xy, vel, r], energy, ang, Y


def test_sparse_basis_with_a_redundant_input():
    """Kepler-like: r next to x, y makes the monomial library collinear."""
    X, energy, ang, Y = _kepler_mixture()
    Z = Y @ sparse_basis(Y, X)
    best = sorted(max(_corr(Z[:, j], t) for j in range(2)) for t in (energy, ang))
    assert best[0] > 0.999


def test_sparse_basis_gives_up_on_what_the_library_cannot_express():
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, size=(1500, 2))
    Y = np.c_[np.sin(8 * X[:, 0]) * np.cos(7 * X[:, 1]), np.sign(X[:, 0] * X[:, 1])]
    assert sparse_basis(Y, X) is None


def test_major_components_take_the_variance_holding_few():
    assert list(major_components(np.array([0.01, 0.5, 0.45]), 2)) == [1, 2]
    assert list(major_components(np.array([0.49, 0.45, 0.03, 0.02, 0.01]), 2)) == [0, 1, 2]
    assert list(major_components(np.array([0.9, 0.1]), 2)) == [0, 1]  # never fewer than asked


def test_task_primitives_reach_the_backend_unless_the_study_names_its_own():
    from ensemble_lens.pipeline.distill_stage import backend_options
    from ensemble_lens.tasks import get_task

    pendulum, gravity = get_task("pendulum"), get_task("gravity")
    assert pendulum.sr_functions == ("cos",)
    assert pendulum.describe()["sr_functions"] == ["cos"]
    assert backend_options("operon", {}, pendulum) == {"functions": ["cos"]}
    assert backend_options("pysr", {"niterations": 5}, pendulum) == {
        "niterations": 5,
        "unary_operators": ["cos"],
    }
    # the study's own choice wins; the sparse library takes no primitives; none without a task
    assert backend_options("operon", {"functions": ["exp"]}, pendulum) == {"functions": ["exp"]}
    assert backend_options("sparse", {}, pendulum) is None
    assert backend_options("operon", {}, gravity) is None
    assert backend_options("operon", {"max_length": 20}, None) == {"max_length": 20}


def test_operon_with_the_task_primitive_finds_a_cosine_law():
    from ensemble_lens.distill import distill_component
    from ensemble_lens.pipeline.distill_stage import backend_options
    from ensemble_lens.tasks import get_task

    rng = np.random.default_rng(3)
    X = np.c_[rng.uniform(-2, 2, 600), rng.uniform(-1.5, 1.5, 600)]
    y = X[:, 1] ** 2 / 2 - np.cos(X[:, 0])
    task = get_task("pendulum")
    res = distill_component(
        X[:400],
        y[:400],
        ["theta", "omega"],
        X_test=X[400:],
        y_test=y[400:],
        backend_options=backend_options(
            "operon", {"population_size": 300, "generations": 50}, task
        ),
        truths=task.latents,
        seed=1,
    )
    assert res.r2_test > 0.999
    assert "cos" in str(res.expr)


def test_sparse_basis_refuses_a_basis_whose_components_correlate():
    """The guard against a collapsed basis (two components turned into near copies of one
    quantity, seen with Kepler members trained on 10 % of the data): any correlation between
    the new components beyond ``max_corr`` gives None, and the aligned components are used."""
    X, _, _, Y = _kepler_mixture()
    R = sparse_basis(Y, X)
    leak = abs(np.corrcoef((Y @ R).T)[0, 1])
    assert leak < 0.95  # the default accepts a clean basis
    assert sparse_basis(Y, X, max_corr=leak / 2) is None


def _sparse_results(X, Y, names, truths=None):
    """Sparse-backend formulas of the columns of Y (first 2/3 fit, rest test), three members
    that are Y plus a little noise, and the Split of the reduction."""
    from ensemble_lens.distill import distill_components
    from ensemble_lens.pipeline.distill_stage import Split

    rng = np.random.default_rng(5)
    n = 2 * len(X) // 3
    members = np.stack([Y[n:] + 1e-3 * rng.normal(size=Y[n:].shape) for _ in range(3)])
    options = {"backend": "sparse", "truths": truths, "member_ids": ["m0", "m1", "m2"]}
    first = distill_components(
        X[:n], Y[:n], names, X_test=X[n:], Y_test=Y[n:], member_scores=members, **options
    )
    return first, Split(X[:n], X[n:], Y[:n], Y[n:], members), options


@pytest.mark.slow
def test_an_invariant_written_through_another_is_reduced_modulo_it():
    """Networks that encode trace and the discriminant ``tr^2 - 4 det`` encode the invariants;
    the discriminant is reduced modulo the trace's formula to the simpler ``det``."""
    import sympy

    from ensemble_lens.pipeline.distill_stage import reduce_modulo_others

    rng = np.random.default_rng(2)
    names = ["a11", "a12", "a21", "a22"]
    X = rng.uniform(-1, 1, size=(1200, 4))
    tr, det = X[:, 0] + X[:, 3], X[:, 0] * X[:, 3] - X[:, 1] * X[:, 2]
    Y = np.c_[1.5 * tr + 0.2, 0.8 * (tr**2 - 4 * det) + 0.3]
    a11, a12, a21, a22 = sympy.symbols(names)
    truths = {"trace": a11 + a22, "det": a11 * a22 - a12 * a21}
    first, split, options = _sparse_results(X, Y, names, truths)
    assert [r.truth_name for r in first] == ["trace", "det"]
    assert first[0].exact_recovery and not first[1].exact_recovery  # the discriminant

    out = reduce_modulo_others(first, split, names, **options)
    assert out[0] is first[0]  # the trace is not a function of the discriminant: kept
    red = out[1]
    assert red.reduced_modulo == ["0"] and red.unreduced_expr == first[1].expr
    assert red.truth_name == "det" and red.exact_recovery
    assert red.unreduced_truth_name == "det" and red.unreduced_exact_recovery is False
    assert red.complexity < first[1].complexity and red.support == 1.0
    assert red.seed == first[1].seed and red.backend == "sparse"
    # component = formula + modulo part, on the test split
    from ensemble_lens.distill._expr import evaluate

    rebuilt = evaluate(red.expr + red.modulo_expr, split.X_test, names)
    np.testing.assert_allclose(rebuilt, split.Y_test[:, 1], atol=1e-3)
    # shown as a multiple of tr^2 (the trace's formula without its constant, factored)
    assert re.fullmatch(r"0\.8\d*\*\(a11 \+ a22\)\*\*2", str(red.modulo_expr))
    assert red.r2_test > 0.9999


def test_two_components_are_not_reduced_modulo_each_other():
    from ensemble_lens.pipeline.distill_stage import reduce_modulo_others

    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, size=(900, 2))
    # u = x + y + x**2 and v = u + x*y: each is the other plus or minus x*y, and either
    # reduction is simpler; the first one found (u modulo v) locks v
    u = X[:, 0] + X[:, 1] + X[:, 0] ** 2
    first, split, options = _sparse_results(X, np.c_[u, u + X[:, 0] * X[:, 1]], ["x", "y"])
    out = reduce_modulo_others(first, split, ["x", "y"], **options)
    assert [r.reduced_modulo for r in out] == [["1"], None]
    assert len(out[0].expr.free_symbols) == 2 and out[0].complexity <= 5
    assert out[1] is first[1]
    # a formula that fits poorly is no generator: u stays, v is reduced modulo u instead
    first[1].r2_test = 0.5
    again = reduce_modulo_others(first, split, ["x", "y"], **options)
    assert [r.reduced_modulo for r in again] == [None, ["0"]]


def test_polynomial_reduction_only_where_it_cancels():
    import sympy

    from ensemble_lens.distill.reduce import polynomial_reduction

    x, y, r = sympy.symbols("x y r")
    names = ["x", "y", "r"]
    X = np.random.default_rng(4).uniform(0.5, 1.5, size=(500, 3))
    # nothing of x*y is a multiple of (x + y) or its square
    assert polynomial_reduction(2 * x * y + y**3, [x + y], names, X) is None
    # not polynomials: 1/r
    assert polynomial_reduction(x**2 - 1 / r, [x], names, X) is None
    assert polynomial_reduction(x**2 + y, [1 / r], names, X) is None
    # noisy constants: a 1 % mismatch of x**2 still cancels (CANCEL_TOL), and the other
    # formula's constant offset does not get in the way
    red = polynomial_reduction(1.01 * x**2 + 2 * x * y + y**2 + 3 * y**3, [x + y + 0.3], names, X)
    assert red.monomials == [y**3] and red.generators == [sympy.expand((x + y) ** 2)]
    assert red.sources == [(0, 0)]
