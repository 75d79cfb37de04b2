"""Property tests: invariances that must hold for any data."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ortho_group

from ensemble_lens.align import GeneralizedProcrustes, MultisetCCA


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), K=st.integers(2, 5), d=st.integers(2, 7))
def test_rotated_copies_have_zero_procrustes_disparity(seed, K, d):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, d)) * np.linspace(3.0, 1.0, d)
    nets = [X @ ortho_group.rvs(d, random_state=rng) for _ in range(K)]
    gpa = GeneralizedProcrustes(variance_keep=1.0, tol=1e-12).fit(nets)
    assert gpa.disparity_ < 1e-10
    members = gpa.transform(nets)
    for m in members[1:]:
        np.testing.assert_allclose(m, members[0], atol=1e-8)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), K=st.integers(2, 4))
def test_maxvar_spectrum_is_invariant_to_invertible_maps(seed, K):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(120, 2))
    nets = [np.c_[z, rng.normal(size=(120, 3))] for _ in range(K)]
    mixed = [x @ (np.eye(5) + 0.3 * rng.normal(size=(5, 5))) for x in nets]
    a = MultisetCCA(variance_keep=1.0, ridge=0.0, n_components=4).fit(nets)
    b = MultisetCCA(variance_keep=1.0, ridge=0.0, n_components=4).fit(mixed)
    np.testing.assert_allclose(a.maxvar_eigenvalues_, b.maxvar_eigenvalues_, atol=1e-7)
    assert np.all(a.maxvar_eigenvalues_ <= K + 1e-9)
