import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import sympy
from force_law import DX, NAMES, TRUTH, M, R, force

from ensemble_lens.distill import distill_component, distill_components, select
from ensemble_lens.distill.distill import Scored, accuracy_tolerance
from ensemble_lens.errors import ExecutionError, ShapeError


def test_noise_target_gives_no_formula(splits):
    rng = np.random.default_rng(5)
    Xf, Xt = splits["fit"], splits["test"]
    res = distill_component(
        Xf,
        rng.normal(size=len(Xf)),
        NAMES,
        X_test=Xt,
        y_test=rng.normal(size=len(Xt)),
        backend="sparse",
        seed=0,
        truths={"force_x": TRUTH},
    )
    assert res.expr is None and res.r2_test < 0.5 and "min_r2" in res.reason
    record = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert record["expression"] is None and record["srepr"] is None
    assert record["exact_recovery"] is False and record["truth_name"] is None
    assert record["support"] is None and record["member_r2"] == {}


def test_sparse_pipeline_recovers_exactly_and_refits_scale(splits):
    Xf, Xt = splits["fit"], splits["test"]
    res = distill_component(
        Xf,
        -4 * force(Xf) + 2,
        NAMES,
        X_test=Xt,
        y_test=-4 * force(Xt) + 2,
        backend="sparse",
        backend_options={"max_degree": 5},
        seed=0,
        truths={"m_r": M * R, "force_x": TRUTH},
    )
    assert res.expr == -4 * TRUTH + 2
    assert res.exact_recovery is True and res.truth_name == "force_x"
    assert res.r2_extrapolation is None and res.support is None


@pytest.mark.slow
def test_unmatched_formula_names_the_closest_truth_without_claiming_recovery(splits):
    Xf, Xt = splits["fit"], splits["test"]
    y = lambda X: force(X) + 0.5 * X[:, 1]  # noqa: E731
    res = distill_component(
        Xf,
        y(Xf),
        NAMES,
        X_test=Xt,
        y_test=y(Xt),
        backend="sparse",
        seed=0,
        truths={"m_r": M * R, "force_x": TRUTH},
    )
    assert res.expr is not None and res.r2_test > 0.999
    assert res.truth_name == "force_x" and res.exact_recovery is False


def test_selection_takes_the_simplest_candidate_near_the_best():
    x = sympy.Symbol("x")
    scored = [
        Scored(x, x, 1, 1.0, 0.60),
        Scored(x**2, x**2, 3, 0.1, 0.991),
        Scored(x**2 + x, x**2 + x, 5, 0.09, 0.999),
    ]
    assert select(scored, r2_tolerance=0.01).complexity == 3
    assert select(scored, r2_tolerance=0.001).complexity == 5


def test_a_simpler_formula_with_far_more_error_than_a_nearly_exact_one_is_another_law():
    # a 3-D screened force's x component: dx*m_j/r**3 (test R^2 0.9911) is within 0.01 of
    # dx*m_j*exp(-r)/r**2 (0.99997) but has 300x its error; 0.9999 against 0.99996 is the
    # same law written shorter (an overfit longer formula gains nothing)
    x = sympy.Symbol("x")
    wrong, law, longer = x**3, sympy.exp(-x) / x**2, sympy.exp(-x) / x**2 + x / 1000
    assert select([Scored(wrong, wrong, 7, 0.003, 0.9911), Scored(law, law, 11, 3e-5, 0.99997)],
                  r2_tolerance=0.01).complexity == 11  # fmt: skip
    assert select([Scored(law, law, 11, 1e-4, 0.9999), Scored(longer, longer, 16, 4e-5, 0.99996)],
                  r2_tolerance=0.01).complexity == 11  # fmt: skip
    assert accuracy_tolerance(0.99, 0.01) == 0.01 and accuracy_tolerance(0.99997) == 0.001
    assert accuracy_tolerance(0.9995) == pytest.approx(0.005)


def test_distill_components_runs_inline_and_on_an_executor_alike(splits):
    Xf, Xt = splits["fit"], splits["test"]
    Y = lambda X: np.column_stack([force(X), X[:, 0] * X[:, 2] ** 2])  # noqa: E731
    kwargs = dict(
        X_test=Xt,
        Y_test=Y(Xt),
        backend="sparse",
        seed=10,
        components=["fx", "q"],
        truths={"force_x": TRUTH, "q": M * R**2},
        layer="edge.2",
    )
    inline = distill_components(Xf, Y(Xf), NAMES, **kwargs)
    with ThreadPoolExecutor(max_workers=2) as pool:
        pooled = distill_components(Xf, Y(Xf), NAMES, executor=pool, **kwargs)
    assert [r.component for r in inline] == ["fx", "q"]
    assert [r.seed for r in inline] == [10, 11]
    assert [r.truth_name for r in inline] == ["force_x", "q"]
    assert all(r.exact_recovery for r in inline)
    assert [r.expr for r in pooled] == [r.expr for r in inline]


def test_distill_components_passes_member_scores_per_component(splits):
    Xf, Xt = splits["fit"], splits["test"]
    t = force(Xt)
    members = np.stack([np.column_stack([t, -t]), np.column_stack([2 * t, DX_col(Xt)])])
    out = distill_components(
        Xf,
        np.column_stack([force(Xf), -force(Xf)]),
        NAMES,
        X_test=Xt,
        Y_test=np.column_stack([t, -t]),
        member_scores=members,
        backend="sparse",
    )
    assert [r.support for r in out] == [1.0, 0.5]
    assert set(out[0].member_r2) == {"member0", "member1"}


def DX_col(X):
    return X[:, 1]


class _FailingExecutor:
    def submit(self, fn, *args, **kwargs):
        class _Future:
            def result(self):
                raise RuntimeError("worker lost")

        return _Future()


def test_executor_failures_name_the_component(splits):
    Xf, Xt = splits["fit"], splits["test"]
    with pytest.raises(ExecutionError, match=r"distilling component 'fx' failed.*worker lost"):
        distill_components(
            Xf,
            force(Xf)[:, None],
            NAMES,
            X_test=Xt,
            Y_test=force(Xt)[:, None],
            components=["fx"],
            executor=_FailingExecutor(),
            backend="sparse",
        )


def test_distill_inputs_are_validated(splits):
    Xf, Xt = splits["fit"], splits["test"]
    with pytest.raises(ShapeError, match=r"truth 'bad'.*symbols \['z'\]"):
        distill_component(
            Xf,
            force(Xf),
            NAMES,
            X_test=Xt,
            y_test=force(Xt),
            truths={"bad": sympy.Symbol("z")},
            backend="sparse",
        )
    with pytest.raises(ShapeError, match="Y_fit has 1 components, Y_test 2"):
        distill_components(
            Xf,
            force(Xf)[:, None],
            NAMES,
            X_test=Xt,
            Y_test=np.column_stack([force(Xt)] * 2),
            backend="sparse",
        )
    with pytest.raises(ShapeError, match=r"test split.*X has 200 samples but y has 199"):
        distill_component(Xf, force(Xf), NAMES, X_test=Xt, y_test=force(Xt)[:-1])
    # a name a formula cannot hold fails here, not after the search wrote "lambda*dx"
    with pytest.raises(ShapeError, match=r"fit split\): variable 'lambda' cannot name a formula"):
        distill_component(Xf, force(Xf), ["lambda", *NAMES[1:]], X_test=Xt, y_test=force(Xt))


def test_gradient_agreement_uses_given_gradients(splits):
    Xf, Xt = splits["fit"], splits["test"]
    m, dx, r = Xt.T
    grad = np.column_stack([dx / r**3, m / r**3, -3 * m * dx / r**4])
    res = distill_component(
        Xf, force(Xf), NAMES, X_test=Xt, y_test=force(Xt), y_grad_test=grad, backend="sparse"
    )
    assert res.gradient_agreement == pytest.approx(1.0)
    assert DX in res.expr.free_symbols


def test_gradient_selection_prefers_the_law_over_its_monotone_warp():
    """For a monotone latent, the simplest formula with the truth's gradient directions wins
    over a more complex one that imitates the warp's values."""
    import numpy as np
    import sympy

    from ensemble_lens.distill.backends import Candidate
    from ensemble_lens.distill.distill import score_front, select, select_by_gradient

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(800, 2))
    x, v = sympy.symbols("x v")
    energy = X[:, 0] ** 2 + X[:, 1] ** 2
    y = np.tanh(1.5 * energy)  # the network's monotone warp of the energy
    law = x**2 + v**2
    imitation = 1.4 * x**2 + 1.4 * v**2 - 0.45 * x**4 - 0.45 * v**4 - 0.9 * x**2 * v**2
    front = [Candidate(law, 7, 0.0), Candidate(imitation, 25, 0.0)]
    scored = score_front(front, X, y, X, y, ["x", "v"], prune_tol=0.0, digits=4)
    assert select(scored, r2_tolerance=0.01).complexity > 7  # R^2 picks the imitation
    grad = np.stack([2 * X[:, 0], 2 * X[:, 1]], axis=1) * (1 - y**2)[:, None]
    chosen = select_by_gradient(scored, X, ["x", "v"], grad, 0.5, 0.01, 0)
    from ensemble_lens.distill import exact_recovery

    assert exact_recovery(chosen.exact, law, X=X, names=["x", "v"])
    assert chosen.complexity < select(scored, r2_tolerance=0.01).complexity


def test_members_that_agree_closely_set_the_precision_of_selection():
    # members carry the law to ~1e-6: a simpler formula 1e-4 off it is another law, although
    # it is within the default floor (a tenth of the 0.01 tolerance) of the best
    from ensemble_lens.distill.distill import precision_floor

    rng = np.random.default_rng(0)
    t = rng.uniform(1, 3, 400)
    law = np.exp(-(t**2) / 2)
    close = np.stack([law + 1e-3 * np.std(law) * rng.normal(size=t.size) for _ in range(4)])
    loose = np.stack([law + 0.1 * np.std(law) * rng.normal(size=t.size) for _ in range(4)])
    floor = precision_floor(close, law, 0.01)
    assert 5e-6 < floor < 2e-5  # ten times the members' median 1 - R^2 (1e-6)
    assert precision_floor(loose, law, 0.01) == 0.001  # looser than the default: the default
    assert precision_floor(close[:1], law, 0.01) == 0.001  # one network: nothing to compare
    assert precision_floor(None, law, 0.01) == 0.001
    x = sympy.Symbol("x")
    near, exact = sympy.exp(sympy.cos(x)), sympy.exp(-(x**2) / 2)
    scored = [Scored(near, near, 5, 1e-4, 0.99989), Scored(exact, exact, 7, 1e-7, 0.9999999)]
    assert select(scored, r2_tolerance=0.01).complexity == 5  # the default floor: 1e-3
    assert select(scored, r2_tolerance=0.01, floor=floor).complexity == 7
    assert accuracy_tolerance(0.9999999, 0.01, floor) == pytest.approx(floor)
    # members trained on the same rows share an error they agree on; a flexible look-alike
    # fits it (1e-7) closer than the law does (7e-6): within ten times their agreement, the
    # law, simpler, is chosen
    shared = Scored(near, near, 14, 1e-7, 0.9999999)
    law_refit = Scored(exact, exact, 7, 7e-6, 0.999993)
    assert select([shared, law_refit], r2_tolerance=0.01, floor=floor).complexity == 7
