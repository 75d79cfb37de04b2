"""Agreement and variance scores against independent definitions (loops, scikit-learn)."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LinearRegression

from ensemble_lens.consensus.scoring import member_agreement, variance_carried


def test_agreement_matches_a_leave_one_out_loop():
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(300, 4))
    scores = [shared * rng.uniform(0.5, 2, size=4) + rng.normal(size=(300, 4)) for _ in range(5)]
    got = member_agreement(scores)
    for k in range(5):
        others = np.mean([s for j, s in enumerate(scores) if j != k], axis=0)
        for c in range(4):
            want = np.corrcoef(scores[k][:, c], others[:, c])[0, 1]
            np.testing.assert_allclose(got[k, c], want, atol=1e-12)
    assert np.all(got > 0.3)


def test_agreement_of_a_constant_member_is_zero_not_nan():
    rng = np.random.default_rng(1)
    scores = [rng.normal(size=(50, 2)), rng.normal(size=(50, 2)), np.zeros((50, 2))]
    got = member_agreement(scores)
    assert np.all(np.isfinite(got)) and np.all(got[2] == 0.0)


def test_variance_carried_is_the_r2_of_reconstructing_all_units():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6)) + 5.0
    W = rng.normal(size=(6, 3))
    got = variance_carried([X], [W])[0]
    Xc = X - X.mean(axis=0)
    for c in range(3):
        s = (Xc @ W[:, c])[:, None]
        fit = LinearRegression().fit(s, X)
        want = 1 - np.sum((X - fit.predict(s)) ** 2) / np.sum(Xc**2)
        np.testing.assert_allclose(got[c], want, atol=1e-12)
    # the leading principal direction carries exactly the first eigenvalue's share
    vals, vecs = np.linalg.eigh(np.cov(X.T))
    top = variance_carried([X], [vecs[:, -1:]])[0, 0]
    np.testing.assert_allclose(top, vals[-1] / vals.sum(), atol=1e-12)
