"""Unit-level tools: Hungarian matching, universality scores, clustering of units."""

from __future__ import annotations

import numpy as np
import pytest

from ensemble_lens.align import cluster_units, match_units_across, universality_scores
from ensemble_lens.errors import DroppedUnitsWarning, ShapeError

N_SHARED = 3


@pytest.fixture(scope="module")
def unit_ensemble():
    """Five networks whose units are permuted, rescaled, sign-flipped noisy copies of three
    shared features plus private units. Returns (networks, is_shared masks, feature ids)."""
    rng = np.random.default_rng(11)
    F = rng.normal(size=(1500, N_SHARED))
    nets, shared, feature = [], [], []
    for k in range(5):
        d = 8 + k
        units = np.c_[F + 0.2 * rng.normal(size=F.shape), rng.normal(size=(1500, d - N_SHARED))]
        perm = rng.permutation(d)
        signs = rng.choice([-1.0, 1.0], size=d)
        nets.append(units[:, perm] * signs * rng.uniform(0.5, 2.0, size=d))
        shared.append(perm < N_SHARED)
        feature.append(np.where(perm < N_SHARED, perm, -1))
    return nets, shared, feature


def test_matching_recovers_a_permutation():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 6))
    perms = [np.arange(6)] + [rng.permutation(6) for _ in range(3)]
    nets = [X[:, p] * rng.uniform(0.5, 2, size=6) + 0.1 * rng.normal(size=(1000, 6)) for p in perms]
    m = match_units_across(nets)
    for p, a in zip(perms, m.assignment, strict=True):
        np.testing.assert_array_equal(a, np.argsort(p))
    assert m.reference == "model0"
    assert np.all(m.mean_correlation > 0.98)
    np.testing.assert_allclose(m.correlation[0], 1.0)


def test_matching_signs_and_unequal_widths(unit_ensemble):
    nets, _, feature = unit_ensemble
    m = match_units_across({f"n{k}": x for k, x in enumerate(nets)}, reference="n4", absolute=True)
    ref_feature = feature[4]
    for k in range(4):  # narrower networks: some reference units stay unmatched (-1)
        a = m.assignment[k]
        assert np.sum(a == -1) == nets[4].shape[1] - nets[k].shape[1]
        for i in np.flatnonzero(ref_feature >= 0):
            assert feature[k][a[i]] == ref_feature[i]
            assert abs(m.correlation[k][i]) > 0.9
        assert np.all(m.correlation[k][a == -1] == 0.0)
    with pytest.raises(ShapeError, match=r"reference: expected one of the networks"):
        match_units_across(nets, reference="nope")
    with pytest.raises(ShapeError, match=r"reference: expected an index below 5, got 7"):
        match_units_across(nets, reference=7)


def test_universality_is_higher_for_shared_units(unit_ensemble):
    nets, shared, _ = unit_ensemble
    u = universality_scores(nets, seed=3)
    for k in range(5):
        assert u.score[k][shared[k]].min() > 0.2
        assert np.abs(u.score[k][~shared[k]]).max() < 0.1
        assert np.all(u.max_correlation[k][shared[k]] > 0.9)
        assert np.all(u.baseline[k][shared[k]] < u.max_correlation[k][shared[k]] - 0.2)
    again = universality_scores(nets, seed=3)
    np.testing.assert_array_equal(again.score[2], u.score[2])
    assert not np.array_equal(universality_scores(nets, seed=4).baseline[2], u.baseline[2])


def test_clustering_finds_the_shared_features(unit_ensemble):
    nets, _, feature = unit_ensemble
    c = cluster_units(nets, threshold=0.5, min_fraction=0.6)
    assert c.shared.sum() == N_SHARED
    assert list(c.n_models[:N_SHARED]) == [5, 5, 5]
    for cl in range(N_SHARED):
        members = c.members(cl)
        assert len(members) == 5
        feats = {feature[int(name[5:])][u] for name, u in members}
        assert len(feats) == 1 and feats != {-1}
    assert np.all(c.n_models[N_SHARED:] == 1)
    assert c.size.sum() == sum(x.shape[1] for x in nets)
    with pytest.raises(ValueError, match=r"threshold and min_fraction: expected numbers in"):
        cluster_units(nets, threshold=0.0)


def test_cluster_needs_min_fraction_of_networks(unit_ensemble):
    nets, _, _ = unit_ensemble
    rng = np.random.default_rng(0)
    # a feature carried by only two of five networks is a cluster but not a shared one
    extra = rng.normal(size=(1500, 1))
    partial = [
        np.c_[x, extra + 0.1 * rng.normal(size=extra.shape)] if k < 2 else x
        for k, x in enumerate(nets)
    ]
    c = cluster_units(partial, threshold=0.5, min_fraction=0.5)
    two = np.flatnonzero(c.n_models == 2)
    assert two.size == 1 and not c.shared[two[0]]


def test_constant_units_warn_and_never_match():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    dead = np.c_[X, np.ones(200)]
    with pytest.warns(
        DroppedUnitsWarning, match=r"constant units treated as uncorrelated .*'model1': 1"
    ):
        m = match_units_across([np.c_[X, rng.normal(size=200)], dead])
    assert m.correlation[1][3] == 0.0
