"""MultisetCCA: recovery of a shared subspace, parity with two-set CCA, invariances, errors."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from sklearn.decomposition import PCA
from synth_ensembles import canonical_correlations, mixed_ensemble, well_conditioned

from ensemble_lens.align import MultisetCCA
from ensemble_lens.errors import ShapeError

N_FIT = 2000


@pytest.fixture(scope="module")
def ensemble():
    return mixed_ensemble()


@pytest.fixture(scope="module")
def fitted(ensemble):
    _, nets = ensemble
    # 0.999: the default 0.99 may drop a weak PC that still carries part of a shared latent
    return MultisetCCA(n_components=6, variance_keep=0.999).fit([x[:N_FIT] for x in nets])


def test_shared_scores_span_the_true_latents(ensemble, fitted):
    z, _ = ensemble
    rho = canonical_correlations(fitted.shared_scores_[:, :3], z[:N_FIT])
    assert rho.min() > 0.99
    assert fitted.shared_scores_.shape == (N_FIT, 6)
    np.testing.assert_allclose(fitted.shared_scores_.std(axis=0, ddof=1), 1.0, rtol=1e-6)


def test_canonical_correlations_separate_shared_from_private(fitted):
    for corr in (fitted.canonical_correlations_, fitted.maxvar_correlations_):
        assert np.all(corr[:3] > 0.9)
        assert np.all(corr[3:] < 0.3)
    np.testing.assert_allclose(
        fitted.maxvar_correlations_, (fitted.maxvar_eigenvalues_ - 1) / 5, rtol=1e-12
    )
    assert np.all(np.diff(fitted.maxvar_eigenvalues_) <= 1e-12)


def test_transform_on_held_out_samples_recovers_latents(ensemble, fitted):
    z, nets = ensemble
    members = fitted.transform([x[N_FIT:] for x in nets])
    assert [m.shape for m in members] == [(len(z) - N_FIT, 6)] * 6
    for m in members:
        assert canonical_correlations(m[:, :3], z[N_FIT:]).min() > 0.95
    fit_scores = fitted.transform([x[:N_FIT] for x in nets])
    np.testing.assert_allclose(np.std(fit_scores[2], axis=0, ddof=1), 1.0, rtol=1e-2)


def test_maps_and_means_have_per_model_shapes(ensemble, fitted):
    _, nets = ensemble
    assert [W.shape for W in fitted.W_] == [(x.shape[1], 6) for x in nets]
    np.testing.assert_allclose(fitted.mean_[1], nets[1][:N_FIT].mean(axis=0), atol=1e-12)
    shared = fitted.transform_shared([x[:N_FIT] for x in nets])
    np.testing.assert_allclose(shared, fitted.shared_scores_, atol=1e-10)


def test_two_sets_match_classical_cca():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(800, 2))
    X = np.c_[z, rng.normal(size=(800, 3))] @ rng.normal(size=(5, 5))
    Y = np.c_[z[:, :1] + 0.5 * rng.normal(size=(800, 1)), rng.normal(size=(800, 3))]
    gcca = MultisetCCA(n_components=3, variance_keep=1.0, ridge=0.0).fit([X, Y])
    rho = canonical_correlations(X, Y)[:3]
    np.testing.assert_allclose(gcca.maxvar_eigenvalues_, 1 + rho, atol=1e-8)
    np.testing.assert_allclose(gcca.canonical_correlations_, rho, atol=1e-8)


def test_invariant_to_invertible_maps_of_a_network(ensemble):
    _, nets = ensemble
    nets = [x[:500] for x in nets[:3]]
    mixed = [nets[0] @ well_conditioned(nets[0].shape[1], np.random.default_rng(1)), *nets[1:]]
    a = MultisetCCA(variance_keep=1.0, ridge=0.0).fit(nets)
    b = MultisetCCA(variance_keep=1.0, ridge=0.0).fit(mixed)
    np.testing.assert_allclose(a.maxvar_eigenvalues_, b.maxvar_eigenvalues_, atol=1e-8)
    np.testing.assert_allclose(
        np.abs(a.transform(nets)[1]), np.abs(b.transform(mixed)[1]), atol=1e-6
    )


def test_pca_truncation_is_reported_like_sklearn():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(600, 8)) * np.array([10, 8, 6, 4, 0.1, 0.1, 0.1, 0.1])
    rank3 = rng.normal(size=(600, 3)) @ rng.normal(size=(3, 7))
    gcca = MultisetCCA(variance_keep=0.99, n_components=1).fit([X, rank3])
    ref = PCA().fit(X)
    p = int(np.searchsorted(np.cumsum(ref.explained_variance_ratio_), 0.99) + 1)
    assert gcca.n_components_per_model_ == [p, 3]
    np.testing.assert_allclose(gcca.explained_variance_[0], ref.explained_variance_[:p])
    capped = MultisetCCA(max_components=2, n_components=1).fit([X, rank3])
    assert capped.n_components_per_model_ == [2, 2]


def test_accepts_dicts_and_xarray():
    _, nets = mixed_ensemble(K=3, n=300)
    named = {f"seed{k}": xr.DataArray(x, dims=("sample", "unit")) for k, x in enumerate(nets)}
    gcca = MultisetCCA(n_components=2).fit(named)
    assert gcca.names_ == ["seed0", "seed1", "seed2"]
    out = gcca.transform(named)
    np.testing.assert_allclose(out[0], MultisetCCA(n_components=2).fit(nets).transform(nets)[0])


def test_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    _, nets = mixed_ensemble(K=3, n=300)
    out = MultisetCCA(n_components=2).fit_transform([torch.from_numpy(x) for x in nets])
    np.testing.assert_allclose(out[1], MultisetCCA(n_components=2).fit_transform(nets)[1])


def test_mismatched_samples_name_the_model():
    rng = np.random.default_rng(0)
    nets = {
        "a": rng.normal(size=(50, 4)),
        "b": rng.normal(size=(50, 3)),
        "c": rng.normal(size=(49, 4)),
    }
    with pytest.raises(ShapeError, match=r"model 'a' has 50 samples but model 'c' has 49"):
        MultisetCCA().fit(nets)
    with pytest.raises(ShapeError, match=r"model 'model0' has 50 samples but model 'model2'"):
        MultisetCCA().fit(list(nets.values())[:1] * 2 + [nets["c"]])


def test_transform_checks_networks_against_fit():
    rng = np.random.default_rng(0)
    nets = [rng.normal(size=(60, 4)), rng.normal(size=(60, 5))]
    gcca = MultisetCCA().fit(nets)
    with pytest.raises(ShapeError, match=r"model 'model1': expected 5 units like in fit, got 4"):
        gcca.transform([nets[0], nets[0]])
    with pytest.raises(ShapeError, match=r"expected 2 networks like in fit, got 1"):
        gcca.transform(nets[:1])
    with pytest.raises(ShapeError, match=r"expected at least 2 networks, got 1"):
        MultisetCCA().fit(nets[:1])
    with pytest.raises(ShapeError, match=r"expected a sequence or a dict"):
        MultisetCCA().fit(nets[0])


def test_invalid_parameters_raise():
    rng = np.random.default_rng(0)
    nets = [rng.normal(size=(60, 4)), rng.normal(size=(60, 5))]
    with pytest.raises(ValueError, match=r"n_components: expected 1..9"):
        MultisetCCA(n_components=10, variance_keep=1.0).fit(nets)
    with pytest.raises(ValueError, match=r"ridge: expected a non-negative number, got -1"):
        MultisetCCA(ridge=-1).fit(nets)
    with pytest.raises(ValueError, match=r"variance_keep: expected a number in \(0, 1\]"):
        MultisetCCA(variance_keep=1.5).fit(nets)
    with pytest.raises(ValueError, match=r"max_components: expected a positive integer, got 0"):
        MultisetCCA(max_components=0).fit(nets)
    with pytest.raises(ShapeError, match=r"model 'model1': every unit is constant"):
        MultisetCCA().fit([nets[0], np.ones((60, 3))])


def test_transform_takes_dicts_by_name():
    _, nets = mixed_ensemble(K=3, n=200)
    named = {"a": nets[0], "b": nets[1], "c": nets[2]}
    gcca = MultisetCCA(n_components=2).fit(named)
    shuffled = {"c": nets[2], "a": nets[0], "b": nets[1]}
    np.testing.assert_array_equal(gcca.transform(shuffled)[0], gcca.transform(named)[0])
    with pytest.raises(ShapeError, match=r"expected the networks \['a', 'b', 'c'\] like in fit"):
        gcca.transform({"a": nets[0], "b": nets[1], "x": nets[2]})
