"""Groups are separated clusters, not a continuum: members whose frequency b_k spreads
smoothly over a range are one population (a two-group cut of them beats the permutation null,
yet members across it are as near as members within a side), while two clusters of b_k are
two groups. Members are random nonlinear layers of the features of y = sin(b_k x1) x2."""

import numpy as np
import pytest

from ensemble_lens.consensus.groups import dunn_index, find_groups
from ensemble_lens.similarity import pairwise


def _members(bs) -> dict[str, np.ndarray]:
    X = np.random.default_rng(0).uniform(-2, 2, (2000, 3))
    out = {}
    for i, b in enumerate(bs):
        rng = np.random.default_rng(i)
        F = np.c_[
            np.sin(b * X[:, 0]) * X[:, 1], np.cos(b * X[:, 0]), 0.1 * X[:, 2], np.tanh(X[:, 0])
        ]
        out[f"m{i}"] = np.tanh(F @ rng.normal(size=(4, 16))) + 0.01 * rng.normal(size=(2000, 16))
    return out


@pytest.mark.parametrize("metric", ["linear_cka", "mutual_knn"])
def test_a_continuum_of_frequencies_is_one_group(metric):
    g = find_groups(pairwise(_members(np.linspace(1.2, 2.8, 8)), metric), n_perm=199, alpha=0.025)
    assert g.p_value <= 0.025  # the cut beats the null ...
    assert g.n_groups == 1 and "continuum" in g.reason  # ... but is not separated
    assert g.dunn is not None and g.dunn <= 1.0


@pytest.mark.parametrize("metric", ["linear_cka", "mutual_knn"])
def test_two_clusters_of_frequencies_are_two_groups(metric):
    bs = [1.6, 1.65, 1.7, 2.5, 2.55, 2.6]
    g = find_groups(pairwise(_members(bs), metric), n_perm=199, alpha=0.025)
    assert g.group_members() == [["m0", "m1", "m2"], ["m3", "m4", "m5"]]
    assert g.dunn > 1.0 and "Dunn index" in g.reason and g.to_dict()["dunn"] == g.dunn


def test_dunn_index_of_a_line_cut_in_two_is_below_one():
    pos = np.arange(6.0)
    D = np.abs(pos[:, None] - pos[None, :])
    assert dunn_index(D, np.repeat([0, 1], 3)) == pytest.approx(1 / 2)
    assert dunn_index(D, np.arange(6)) == float("inf")
