"""The Fourier basis over Z_p x Z_q: joint waves cos(2 pi (k1 a + k2 b) / p + phi) as member
components, as terms of the Fourier backend, and as templates whose frequencies keep their
relative sign (a + b against a - b)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy

from ensemble_lens.distill.periodic import FourierBackend, member_components, waves
from ensemble_lens.distill.template import fit_template, make_template

P = 23
PER = {"a": P, "b": P}
a, b = sympy.symbols("a b")


def _probe(n=700, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, P, size=(n, 2)).astype(float)
    return X, np.arange(n) < int(0.7 * n), rng


def _units(features: np.ndarray, rng, width=12, noise=0.02):
    mix = rng.normal(size=(features.shape[1], width))
    return features @ mix + noise * rng.normal(size=(len(features), width))


def _wave(X, k1, k2, phase=0.0):
    return 2 * np.pi * (k1 * X[:, 0] + k2 * X[:, 1]) / P + phase


def test_basis_counts_single_and_joint_waves():
    X, _, _ = _probe(50)
    basis = waves(X, ["a", "b"], PER)
    assert len(basis) == 2 * (P // 2) + (P // 2) * 2 * (P // 2)
    assert {w.label for w in basis} >= {"a:k=3", "b:k=11", "a,b:k=(4,-4)", "a,b:k=(1,11)"}
    assert len(waves(X, ["a", "b"], PER, joint=False)) == 2 * (P // 2)


def test_units_of_a_plus_b_and_a_minus_b_give_joint_components():
    X, fit, rng = _probe()
    feats = np.column_stack(
        [f(_wave(X, k1, k2)) for k1, k2 in [(3, 3), (3, -3)] for f in (np.cos, np.sin)]
    )
    mc = member_components(_units(feats, rng), X, ["a", "b"], fit, periodic=PER)
    assert mc.basis == "fourier"
    assert set(mc.labels[:2]) == {"a,b:k=(3,3)", "a,b:k=(3,-3)"}


def test_units_of_one_operand_keep_the_one_dimensional_basis():
    X, fit, rng = _probe()
    feats = np.column_stack([np.cos(_wave(X, 5, 0)), np.sin(_wave(X, 5, 0))])
    mc = member_components(_units(feats, rng), X, ["a", "b"], fit, periodic=PER)
    assert mc.basis == "fourier" and mc.labels[0] == "a:k=5"


def test_units_that_are_no_few_waves_fall_back_to_principal_components():
    X, fit, rng = _probe()
    mc = member_components(rng.normal(size=(len(X), 12)), X, ["a", "b"], fit, periodic=PER)
    assert mc.basis == "pca"


@pytest.mark.parametrize(("k1", "k2"), [(4, 4), (4, -4), (7, 2)])
def test_backend_writes_one_joint_term_and_the_template_keeps_the_sign(k1, k2):
    X, fit, rng = _probe()
    y = 1.7 * np.cos(_wave(X, k1, k2, 0.6)) + 0.3 + 0.01 * rng.normal(size=len(X))
    front = FourierBackend(PER).fit(X[fit], y[fit], ["a", "b"], seed=0, time_budget=1)
    one = min(front, key=lambda c: c.complexity)
    assert one.expr.free_symbols == {a, b}
    t = make_template(one.expr, periodic=PER)
    assert t.key == make_template(sympy.cos(0.1 * a + 0.2 * b + 0.3), periodic=PER).key
    # another member's wave, fitted from the screened grid of (k1, k2) starts
    y2 = 0.8 * np.cos(_wave(X, 9, -9 if k2 < 0 else 9, -2.0)) + 0.01 * rng.normal(size=len(X))
    tf = fit_template(t, X[fit], y2[fit], ["a", "b"], X_test=X[~fit], y_test=y2[~fit])
    assert tf.r2_test > 0.99
    ks = {t.frequencies[slot][0]: k for slot, k in tf.frequencies.items()}
    assert (abs(ks["a"]), abs(ks["b"])) == pytest.approx((9, 9), abs=0.01)
    assert np.sign(ks["a"] * ks["b"]) == np.sign(k2)  # a + b or a - b: the sign is kept
    amp = next(s.amp for s in t.symmetry[0])
    assert tf.constants[amp] == pytest.approx(0.8, rel=0.02)


def test_frequency_grid_starts_cover_every_pair():
    from ensemble_lens.distill.template_starts import _frequency_grids

    t = make_template(sympy.cos(0.1 * a + 0.2 * b + 0.3), periodic=PER)
    (grid,) = _frequency_grids(t)
    assert len(grid) == (P // 2) * (2 * (P // 2) + 1)
    assert {round(v * P / (2 * math.pi)) for g in grid for v in g.values()} >= {1, -11, 11}
