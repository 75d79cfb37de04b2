"""GeneralizedProcrustes: exact recovery of rotated copies, noisy recovery, maps, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group
from synth_ensembles import canonical_correlations, mixed_ensemble

from ensemble_lens.align import GeneralizedProcrustes
from ensemble_lens.errors import ShapeError


@pytest.fixture(scope="module")
def base() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.normal(size=(400, 6)) * np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])


@pytest.mark.parametrize("scale", [True, False])
def test_rotated_copies_align_exactly(base, scale):
    nets = [base @ ortho_group.rvs(6, random_state=k) for k in range(5)]
    if scale:  # rescaled copies too: unit-variance scaling removes the scale
        nets = [x * (k + 1) for k, x in enumerate(nets)]
    gpa = GeneralizedProcrustes(variance_keep=1.0, scale=scale).fit(nets)
    members = gpa.transform(nets)
    assert gpa.disparity_ < 1e-12
    for m in members[1:]:
        np.testing.assert_allclose(m, members[0], atol=1e-9)
    np.testing.assert_allclose(gpa.shared_scores_, members[0], atol=1e-9)
    for R in gpa.rotations_:
        np.testing.assert_allclose(R.T @ R, np.eye(6), atol=1e-10)


def test_isometric_embeddings_of_different_widths_align_exactly(base):
    rng = np.random.default_rng(2)
    nets = []
    for d in (6, 9, 14):
        E = ortho_group.rvs(d, random_state=rng)[:6]  # (6, d) orthonormal rows
        nets.append(base @ E + 3.0)
    gpa = GeneralizedProcrustes(variance_keep=1.0).fit(nets)
    assert gpa.n_components_ == 6
    assert [W.shape for W in gpa.W_] == [(6, 6), (9, 6), (14, 6)]
    members = gpa.transform(nets)
    np.testing.assert_allclose(members[2], members[0], atol=1e-9)
    # components come in decreasing consensus variance
    assert np.all(np.diff(members[0].var(axis=0)) < 0)


def test_noisy_rotated_copies_converge_close_to_truth(base):
    rng = np.random.default_rng(5)
    nets = [
        base @ ortho_group.rvs(6, random_state=rng) + 0.05 * rng.normal(size=base.shape)
        for _ in range(4)
    ]
    gpa = GeneralizedProcrustes(variance_keep=1.0, tol=1e-12).fit(nets)
    assert 0 < gpa.disparity_ < 1e-3
    assert gpa.n_iter_ >= 2
    members = gpa.transform(nets)
    assert np.corrcoef(members[0][:, 0], members[3][:, 0])[0, 1] > 0.999


def test_mixed_ensemble_shared_subspace_is_found_on_held_out_samples():
    z, nets = mixed_ensemble(K=4, n=2000, n_shared=3)
    # Procrustes is not affine invariant: give the shared latents the largest variance
    nets = [np.c_[5 * z, 0.5 * x] for x in nets]
    gpa = GeneralizedProcrustes(n_components=3).fit([x[:1500] for x in nets])
    for m in gpa.transform([x[1500:] for x in nets]):
        assert canonical_correlations(m, z[1500:]).min() > 0.99


def test_errors():
    rng = np.random.default_rng(0)
    nets = [rng.normal(size=(40, 3)), rng.normal(size=(41, 3))]
    with pytest.raises(
        ShapeError, match=r"model 'model0' has 40 samples but model 'model1' has 41"
    ):
        GeneralizedProcrustes().fit(nets)
    with pytest.raises(ValueError, match=r"n_components: expected a positive integer, got 0"):
        GeneralizedProcrustes(n_components=0).fit([nets[0], nets[0]])
