"""CKA: known answers, invariances, parity with HSIC on explicit Gram matrices, the bias trap."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ortho_group

from ensemble_lens.errors import ShapeError
from ensemble_lens.similarity import kernel_cka, linear_cka, measure, pairwise, rbf_cka


def _hsic_ref(k, ell):
    n = k.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    return np.trace(k @ h @ ell @ h) / (n - 1) ** 2


def _hsic_unbiased_ref(k, ell):
    """Song et al. (2012), eq. 5, written from the paper."""
    n = k.shape[0]
    kt, lt = k - np.diag(np.diag(k)), ell - np.diag(np.diag(ell))
    one = np.ones(n)
    term = np.trace(kt @ lt) + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
    term -= 2.0 / (n - 2) * one @ kt @ lt @ one
    return term / (n * (n - 3))


def _cka_ref(k, ell, hsic):
    return hsic(k, ell) / np.sqrt(hsic(k, k) * hsic(ell, ell))


def _pair(seed, n=40, d1=6, d2=4):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d1)) + 2.0
    y = np.tanh(x[:, :d2] @ rng.normal(size=(d2, d2))) + 0.3 * rng.normal(size=(n, d2))
    return x, y


@pytest.mark.parametrize("debiased", [False, True])
def test_linear_cka_matches_gram_definition(debiased):
    x, y = _pair(0)
    hsic = _hsic_unbiased_ref if debiased else _hsic_ref
    ref = _cka_ref(x @ x.T, y @ y.T, hsic)
    assert linear_cka(x, y, debiased=debiased) == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("debiased", [False, True])
def test_rbf_cka_matches_gram_definition(debiased):
    x, y = _pair(1)
    sigma = 1.7

    def gram(a):
        d2 = ((a[:, None, :] - a[None, :, :]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * sigma**2))

    hsic = _hsic_unbiased_ref if debiased else _hsic_ref
    ref = _cka_ref(gram(x), gram(y), hsic)
    assert rbf_cka(x, y, sigma=sigma, debiased=debiased) == pytest.approx(ref, abs=1e-12)


def test_rbf_cka_median_heuristic():
    x, y = _pair(2)

    def gram(a, frac):
        d2 = ((a[:, None, :] - a[None, :, :]) ** 2).sum(-1)
        med = np.median(d2[np.triu_indices(len(a), 1)])
        return np.exp(-d2 / (2 * frac**2 * med))

    ref = _cka_ref(gram(x, 0.8), gram(y, 0.8), _hsic_ref)
    assert rbf_cka(x, y) == pytest.approx(ref, abs=1e-12)
    ref4 = _cka_ref(gram(x, 0.4), gram(y, 0.4), _hsic_ref)
    assert rbf_cka(x, y, sigma_fraction=0.4) == pytest.approx(ref4, abs=1e-12)


def test_self_and_invariances():
    x, y = _pair(3)
    q = ortho_group.rvs(6, random_state=1)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, 3.0 * x @ q - 7.0) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, y) == pytest.approx(linear_cka(2 * x @ q + 1, y), abs=1e-12)
    assert rbf_cka(x, y) == pytest.approx(rbf_cka(5 * x @ q + 1, y), abs=1e-10)
    assert linear_cka(x, x, debiased=True) == pytest.approx(1.0, abs=1e-12)
    # not invariant to general invertible maps
    a = np.diag([10.0, 1, 1, 1, 1, 0.1])
    assert abs(linear_cka(x, y) - linear_cka(x @ a, y)) > 1e-3


def test_bias_trap_independent_wide_inputs():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 512)), rng.normal(size=(20, 512))
    assert linear_cka(x, y) > 0.85
    assert abs(linear_cka(x, y, debiased=True)) < 0.15


@settings(deadline=None, max_examples=25)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(5, 25),
    d1=st.integers(1, 6),
    d2=st.integers(1, 6),
)
def test_property_range_and_symmetry(seed, n, d1, d2):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, d1)), rng.normal(size=(n, d2))
    v = linear_cka(x, y)
    assert -1e-12 <= v <= 1 + 1e-12
    assert v == pytest.approx(linear_cka(y, x), abs=1e-12)
    r = rbf_cka(x, y)
    assert -1e-12 <= r <= 1 + 1e-12


def test_errors():
    x, y = _pair(4)
    with pytest.raises(ShapeError, match="at least 4 samples, got 3"):
        linear_cka(x[:3], y[:3], debiased=True)
    with pytest.raises(ShapeError, match="sigma: expected a positive kernel width"):
        rbf_cka(x, y, sigma=0.0)
    with pytest.raises(ShapeError, match="X has 40 samples but Y has 39"):
        linear_cka(x, y[:39])


def test_rbf_cka_is_kernel_cka_and_legacy_pairwise_shares_grams():
    x, y = _pair(5)
    assert rbf_cka(x, y) == kernel_cka(x, y, "rbf", "gretton", frac=0.8)
    assert rbf_cka(x, y, sigma=2.0, debiased=True) == kernel_cka(x, y, "rbf", "song", sigma=2.0)
    assert rbf_cka(x[:3], y[:3]) == pytest.approx(_cka_ref(*_rbf3(x, y), _hsic_ref), abs=1e-12)
    rng = np.random.default_rng(1)
    nets = {f"m{i}": rng.normal(size=(30, 3 + i)) for i in range(4)}
    for kw in ({}, {"sigma": 1.5, "debiased": True}):
        da = pairwise(nets, "rbf_cka", **kw)
        ref = [[rbf_cka(nets[a], nets[b], **kw) for b in nets] for a in nets]
        np.testing.assert_allclose(da.values, ref, atol=1e-14)
    assert measure("rbf_cka").shares == "gram"


def _rbf3(x, y):
    """RBF Grams of three samples, median heuristic with fraction 0.8, by loops."""
    out = []
    for a in (x[:3], y[:3]):
        d2 = np.array([[np.sum((p - q) ** 2) for q in a] for p in a])
        s2 = 0.8**2 * np.median([d2[0, 1], d2[0, 2], d2[1, 2]])
        out.append(np.exp(-d2 / (2 * s2)))
    return out


def test_kernel_state_keeps_what_it_resolved_through_pickling():
    """States cross process boundaries on a process executor; the sigma used goes with them."""
    import pickle

    from ensemble_lens.similarity.kernels import kernel_state

    x = np.random.default_rng(0).normal(size=(20, 3))
    st = kernel_state(x, "rbf")
    back = pickle.loads(pickle.dumps(st))
    np.testing.assert_array_equal(back, st)
    assert back.info == st.info and st.info["sigma"] > 0
