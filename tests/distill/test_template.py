"""Templates: formulas equal up to constants, per-member constant fits, the shared form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy

from ensemble_lens.distill.periodic import FourierBackend, MemberComponents, member_components
from ensemble_lens.distill.shared import shared_templates
from ensemble_lens.distill.template import fit_template, folded_frequency, make_template
from ensemble_lens.errors import ShapeError

a, b, r, x, y = sympy.symbols("a b r x y")


def test_same_form_different_constants_is_one_template():
    t1 = make_template(2.1 * sympy.cos(0.5 * a))
    t2 = make_template(1.3 * sympy.sin(0.7 * a) + 0.2)
    t3 = make_template(sympy.cos(a))
    assert t1.key == t2.key == t3.key
    assert len(t1.slots) == 4


@pytest.mark.parametrize(
    ("e1", "e2"),
    [
        (2.5 * x * y / r**3, 0.7 * x * y / r**2),
        (sympy.cos(0.5 * a), sympy.exp(0.5 * a)),
        (0.3 * x + 1.2 * y**2, 0.3 * x + 1.2 * y**3),
        (x * y, x + y),
    ],
)
def test_different_forms_are_different_templates(e1, e2):
    assert make_template(e1).key != make_template(e2).key


def test_exp_argument_has_no_redundant_offset():
    t = make_template(2.1 * x * sympy.exp(-0.97 * r) / r**2)
    assert len(t.slots) == 3  # scale, decay, offset of the whole formula
    assert t.key == make_template(-5 * x * sympy.exp(-2 * r) / r**2 + 1).key


def test_fit_template_recovers_member_constants():
    rng = np.random.default_rng(0)
    X = rng.uniform(0.5, 3.0, size=(400, 2))
    y_true = 3.0 * X[:, 0] * np.exp(-0.7 * X[:, 1]) / X[:, 1] ** 2 + 0.4
    t = make_template(x * sympy.exp(-1.0 * r) / r**2)
    fit = fit_template(t, X[:300], y_true[:300], ["x", "r"], X_test=X[300:], y_test=y_true[300:])
    decay = next(s.name for s in t.slots if t.init[s.name] == -1.0)
    assert fit.constants[decay] == pytest.approx(-0.7, abs=1e-6)
    assert fit.r2_test == pytest.approx(1.0, abs=1e-9)


def test_frequency_slot_found_from_every_start_of_z_p():
    p = 23
    A = np.tile(np.arange(p, dtype=float), 8)[:, None]
    y_true = 2.0 * np.cos(2 * np.pi * 9 * A[:, 0] / p + 1.1) + 0.3
    t = make_template(1.0 * sympy.cos(0.5 * a), periodic={"a": p})
    fit = fit_template(t, A, y_true, ["a"], X_test=A, y_test=y_true)
    assert list(fit.frequencies.values()) == [pytest.approx(9.0, abs=1e-6)]
    # without the declared period, the start at 0.5 finds a local minimum only
    plain = fit_template(
        make_template(1.0 * sympy.cos(0.5 * a)),
        A,
        y_true,
        ["a"],
        X_test=A,
        y_test=y_true,
        n_random=0,
    )
    assert plain.r2_test < 0.5


@pytest.mark.parametrize(
    ("omega", "k"),
    [
        (2 * math.pi * 4 / 23, 4.0),
        (-2 * math.pi * 4 / 23, 4.0),
        (2 * math.pi * 19 / 23, 4.0),
        (2 * math.pi * 27 / 23, 4.0),
    ],
)
def test_folded_frequency(omega, k):
    assert folded_frequency(omega, 23) == pytest.approx(k)


def test_fit_template_shape_error():
    t = make_template(1.0 * x)
    with pytest.raises(ShapeError, match=r"fit_template: expected X \(sample, 2\)"):
        fit_template(
            t,
            np.zeros((5, 1)),
            np.zeros(5),
            ["x", "r"],
            X_test=np.zeros((5, 1)),
            y_test=np.zeros(5),
        )


def _periodic_members(ks, p=23, n=400, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, p, size=(n, 2)).astype(float)
    out = {}
    for m, kk in enumerate(ks):
        cols = [np.cos(2 * np.pi * k * X[:, 0] / p + rng.uniform(0, 6)) for k in kk]
        mixing = np.linalg.qr(rng.normal(size=(8, len(kk))))[0].T  # orthonormal rows
        acts = np.column_stack(cols) @ mixing
        out[f"m{m}"] = acts + noise * rng.normal(size=acts.shape)
    return X, out


def test_member_components_find_each_members_key_frequencies():
    X, acts = _periodic_members([(3, 8), (5, 11)])
    fit = np.arange(len(X)) < 300
    comps = {
        m: member_components(v, X, ["a", "b"], fit, periodic={"a": 23, "b": 23}, max_components=2)
        for m, v in acts.items()
    }
    assert comps["m0"].basis == "fourier"
    assert sorted(comps["m0"].labels) == ["a:k=3", "a:k=8"]
    assert sorted(comps["m1"].labels) == ["a:k=11", "a:k=5"]
    plain = member_components(acts["m0"], X, ["a", "b"], fit, max_components=2)
    assert plain.basis == "pca" and plain.values.shape == (len(X), 2)


def test_member_components_shape_error():
    with pytest.raises(ShapeError, match="member_components: expected acts"):
        member_components(np.zeros((10, 3)), np.zeros((12, 2)), ["a", "b"], np.ones(12, bool))


def test_fourier_backend_finds_the_cosine():
    p = 23
    A = np.random.default_rng(1).integers(0, p, size=(300, 1)).astype(float)
    y_true = 1.7 * np.cos(2 * np.pi * 6 * A[:, 0] / p - 0.4)
    front = FourierBackend({"a": p, "b": p}).fit(A, y_true, ["a"], seed=0, time_budget=1)
    first = front[0]
    assert first.loss == pytest.approx(0.0, abs=1e-20)
    assert first.expr.free_symbols == {a}
    t = make_template(first.expr, periodic={"a": p})
    assert t.key == make_template(sympy.cos(a)).key
    assert next(iter(t.init.values())) == pytest.approx(2 * np.pi * 6 / p)


def test_shared_template_with_member_specific_frequencies():
    ks = [(3, 8), (5, 11), (2, 9)]
    X, acts = _periodic_members(ks)
    fit = np.arange(len(X)) < 300
    periodic = {"a": 23, "b": 23}
    comps = {
        m: member_components(v, X, ["a", "b"], fit, periodic=periodic, max_components=2)
        for m, v in acts.items()
    }
    res = shared_templates(
        comps,
        X,
        ["a", "b"],
        fit,
        periodic=periodic,
        backend=FourierBackend(periodic),
    )
    assert res.verdict == "shared form"
    best = res.best
    assert best.support == 1.0
    assert best.template.key == make_template(sympy.cos(a)).key
    for m, kk in zip(acts, ks, strict=True):
        assert sorted(round(k) for k in best.frequencies[m]) == sorted(kk)
    assert set(best.constant_spread()) == {s.name for s in best.template.slots}


def test_no_shared_form_on_noise():
    rng = np.random.default_rng(3)
    X = rng.integers(0, 23, size=(300, 2)).astype(float)
    fit = np.arange(300) < 200
    comps = {
        f"m{i}": MemberComponents(rng.normal(size=(300, 1)), ["pc0"], np.ones(1), "pca")
        for i in range(3)
    }
    res = shared_templates(
        comps,
        X,
        ["a", "b"],
        fit,
        periodic={"a": 23},
        backend=FourierBackend({"a": 23}),
    )
    assert res.verdict == "no shared form"
    assert res.best is None
    assert all(v["pc0"] is None for v in res.member_formulas.values())


def _quadratic_members(n=400, seed=5):
    """Three members whose one component is ``c_k x^2 + d_k`` (own constants)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 1))
    fit = np.arange(n) < 3 * n // 4
    comps = {
        f"m{k}": MemberComponents(
            (c * X[:, 0] ** 2 + d + 1e-3 * rng.normal(size=n))[:, None], ["pc0"], np.ones(1), "pca"
        )
        for k, (c, d) in enumerate([(1.0, 0.2), (2.5, -0.4), (0.7, 1.1)])
    }
    return X, fit, comps


@pytest.mark.parametrize("saturates", [False, True])
def test_template_is_judged_by_the_extrapolation_rule(saturates):
    """Members that hold the law beyond the fitted range give a shared form; members that
    saturate there (as networks do) give "no shared form" with the extrapolation flag, by the
    rule of the consensus formulas."""
    X, fit, comps = _quadratic_members()
    Xe = np.linspace(1.5, 2.5, 50)[:, None]

    def extrapolation(y):
        # the member's own values beyond the range: the same law, or nearly flat
        c, d = np.polyfit(X[fit, 0] ** 2, y[fit], 1)
        ye = c * (1 + 0.1 * Xe[:, 0]) + d if saturates else c * Xe[:, 0] ** 2 + d
        return Xe, ye

    res = shared_templates(comps, X, ["x"], fit, backend="sparse", extrapolation=extrapolation)
    best = res.best
    assert best.support == 1.0 and best.r2_test > 0.99
    assert set(best.member_r2_extrapolation) == {"m0", "m1", "m2"}
    if saturates:
        assert res.verdict == "no shared form" and not best.is_result
        assert best.flags == ["extrapolation"] and best.r2_extrapolation < 0
        assert "extrapolation R^2" in res.reason
    else:
        assert res.verdict == "shared form" and best.is_result and best.flags == []
        assert best.r2_extrapolation > 0.99 and res.reason is None


def test_template_below_min_support_is_not_a_result():
    X, fit, comps = _quadratic_members()
    rng = np.random.default_rng(0)
    for k in range(3, 7):  # four members that carry noise: support 3/7
        comps[f"m{k}"] = MemberComponents(rng.normal(size=(len(X), 1)), ["pc0"], np.ones(1), "pca")
    res = shared_templates(comps, X, ["x"], fit, backend="sparse")
    best = res.best
    assert best.support == pytest.approx(3 / 7)
    assert not best.is_result and best.flags == ["support"]
    assert res.verdict == "no shared form" and "support 0.43 is below 0.5" in res.reason
