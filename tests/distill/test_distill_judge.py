import numpy as np
import pytest
import sympy
from force_law import DX, NAMES, TRUTH, M, R, force, make_inputs

from ensemble_lens.distill import exact_recovery, gradient_agreement, knn_gradient, r2, support
from ensemble_lens.errors import ShapeError


@pytest.fixture(scope="module")
def X():
    return make_inputs(500, 11)


def test_exact_recovery_accepts_affine_images_of_the_truth():
    assert exact_recovery(3 * TRUTH + 1, TRUTH)
    assert exact_recovery(TRUTH - 7, TRUTH)
    assert exact_recovery(-TRUTH / 2, TRUTH)


def test_exact_recovery_rejects_other_formulas():
    assert not exact_recovery(TRUTH + DX, TRUTH)
    assert not exact_recovery(M * DX / R**2, TRUTH)
    assert not exact_recovery(sympy.exp(TRUTH), TRUTH)  # monotone, but not affine
    assert not exact_recovery(sympy.Integer(4), TRUTH)


def test_exact_recovery_tolerates_float_constants_near_rationals(X):
    fitted = 2.5000007 * M * DX * R ** sympy.Float(-3.0) - 1.3e-7
    assert exact_recovery(fitted, TRUTH, X=X, names=NAMES)
    assert not exact_recovery(fitted + 0.05 * DX, TRUTH, X=X, names=NAMES)


def test_exact_recovery_symbolic_check_catches_a_tiny_exact_term():
    # numerically within 1e-3, but both sides are exact and the symbolic check says no
    assert not exact_recovery(TRUTH + sympy.Rational(1, 10**6) * DX, TRUTH)


def test_exact_recovery_needs_names_with_X(X):
    with pytest.raises(ShapeError, match="names are required with X"):
        exact_recovery(TRUTH, TRUTH, X=X)


def test_r2_is_one_for_the_truth_and_lower_for_a_wrong_law(X):
    y = force(X)
    assert r2(TRUTH, X, y, NAMES) == pytest.approx(1.0)
    assert r2(M * DX / R, X, y, NAMES) < 0.8


def test_r2_of_a_formula_that_blows_up_is_minus_infinity():
    X = make_inputs(50, 3)
    X[0, 2] = 0.0
    assert r2(DX / R, X, X[:, 1], NAMES) == -np.inf


def test_r2_rejects_mismatched_inputs(X):
    with pytest.raises(ShapeError, match="expected one name per input column"):
        r2(TRUTH, X, force(X), ["m", "dx"])
    with pytest.raises(ShapeError, match="X has 500 samples but y has 499"):
        r2(TRUTH, X, force(X)[:-1], NAMES)
    with pytest.raises(ShapeError, match="target is constant"):
        r2(TRUTH, X, np.ones(500), NAMES)
    with pytest.raises(ShapeError, match=r"symbols \['q'\] that are not input variables"):
        r2(sympy.Symbol("q") * M, X, force(X), NAMES)


def test_gradient_agreement_is_high_for_monotone_transforms(X):
    t = force(X)
    assert gradient_agreement(TRUTH, X, NAMES, y=np.exp(0.5 * t)) > 0.97
    assert gradient_agreement(TRUTH, X, NAMES, y=-np.tanh(t)) > 0.97


def test_gradient_agreement_is_low_for_an_unrelated_function(X):
    y = np.sin(3 * X[:, 0]) + X[:, 2]
    assert gradient_agreement(TRUTH, X, NAMES, y=y) < 0.5


def test_gradient_agreement_with_exact_gradients_is_one(X):
    m, dx, r = X.T
    grad = np.column_stack([dx / r**3, m / r**3, -3 * m * dx / r**4])
    assert gradient_agreement(sympy.log(1 + sympy.exp(TRUTH)), X, NAMES, y_grad=grad) == (
        pytest.approx(1.0)
    )


def test_gradient_agreement_of_a_constant_formula_is_zero(X):
    assert gradient_agreement(sympy.Integer(2), X, NAMES, y=force(X)) == 0.0


def test_knn_gradient_matches_a_linear_function():
    X = make_inputs(300, 4)
    y = X @ np.array([1.0, -2.0, 0.5])
    grad = knn_gradient(X, y)
    assert np.allclose(grad, np.array([1.0, -2.0, 0.5]) * X.std(axis=0), atol=1e-6)


def test_gradient_agreement_wants_exactly_one_reference(X):
    with pytest.raises(ShapeError, match="exactly one of y"):
        gradient_agreement(TRUTH, X, NAMES)
    with pytest.raises(ShapeError, match="y_grad must have X's shape"):
        gradient_agreement(TRUTH, X, NAMES, y_grad=np.ones((500, 2)))


def test_support_counts_members_explained_by_the_formula(X):
    rng = np.random.default_rng(0)
    t = force(X)
    members = np.stack(
        [
            a * t + b + 0.01 * np.std(t) * rng.normal(size=len(t))
            for a, b in [(1, 0), (-2, 3), (0.3, -1)]
        ]
        + [rng.normal(size=len(t))]
    )
    sup = support(TRUTH, members, X, NAMES, threshold=0.9)
    assert sup.fraction == pytest.approx(0.75)
    assert np.all(sup.member_r2[:3] > 0.99) and sup.member_r2[3] < 0.1


def test_support_checks_member_shape(X):
    with pytest.raises(ShapeError, match="must be \\(member, sample\\) with 500 samples"):
        support(TRUTH, np.ones((3, 20)), X, NAMES)


def test_exact_recovery_allows_the_constants_precision_but_keeps_structure():
    """Constants fitted to a network carry its precision: a Kepler energy whose coefficients
    are off in the third digit is the law once each may move by 2 %; a formula with a wrong
    extra term or a polynomial standing in for 1/r is not, and the strict check
    (const_tol=None) sees the difference."""
    import numpy as np
    import sympy

    from ensemble_lens.distill import exact_recovery

    vx, vy, r = sympy.symbols("vx vy r")
    truth = (vx**2 + vy**2) / 2 - 1 / r
    noisy = -3.019 * vx**2 - 3.017 * vy**2 - 2.287 + 6.015 / r
    wrong = -3.0 * vx**2 - 3.0 * vy**2 + 6.0 / r + 0.3 * vx
    poly = -1.155 * r - 3 * vx**2 - 2.994 * vy**2 + 0.9991 * (1.215 - 0.1738 * r) ** 16 + 2.951
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(size=(500, 2)), rng.uniform(0.5, 3, size=500)]
    names = ["vx", "vy", "r"]
    assert exact_recovery(noisy, truth, X=X, names=names)
    assert not exact_recovery(noisy, truth, X=X, names=names, const_tol=None)
    assert not exact_recovery(noisy, truth, X=X, names=names, const_tol=1e-4)
    assert not exact_recovery(wrong, truth, X=X, names=names)
    assert not exact_recovery(poly, truth, X=X, names=names)


def test_exact_recovery_does_not_hinge_on_rounding_boundaries():
    """Pair energy with its constants' ratio at 2.013 instead of 2: rounding each constant to
    2 digits gave 0.62 and 1.2 (a ratio of 1.94, "not exact") although the form is the law."""
    import numpy as np
    import sympy

    from ensemble_lens.distill import exact_recovery

    mi, mj, r = sympy.symbols("m_i m_j r")
    truth = mi * mj * (sympy.Rational(1, 2) - 1 / r)
    found = sympy.Rational(9, 7) * mi * mj * (0.619 - 1.246 / r) + 0.575
    rng = np.random.default_rng(1)
    X = np.c_[rng.uniform(0.5, 2, size=(400, 2)), rng.uniform(0.8, 3, size=400)]
    names = ["m_i", "m_j", "r"]
    assert exact_recovery(found, truth, X=X, names=names)
    assert not exact_recovery(found, truth, X=X, names=names, const_tol=None)
    # the same constants with a wrong power of r stay wrong
    assert not exact_recovery(found.subs(r, r**2), truth, X=X, names=names)
