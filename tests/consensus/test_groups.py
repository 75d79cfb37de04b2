"""Groups of networks from the K x K similarity, with the member-effect permutation null."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from ensemble_lens.consensus.groups import find_groups, groups_from_labels
from ensemble_lens.errors import ShapeError
from ensemble_lens.similarity import linear_cka

N = 400


def _latents(kind: str, rng: np.random.Generator, X: np.ndarray) -> np.ndarray:
    if kind == "A":
        return np.column_stack([X[:, 0] * X[:, 1], np.sin(2 * X[:, 2]), X[:, 3] ** 2])
    return np.column_stack([np.cos(X[:, 0]), X[:, 1] * X[:, 2], np.abs(X[:, 3])])


def _cka_matrix(kinds, noises, seed=0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, 4))
    acts = []
    for kind, noise in zip(kinds, noises, strict=True):
        L = _latents(kind, rng, X)
        acts.append(L @ rng.normal(size=(3, 12)) + noise * rng.normal(size=(N, 12)))
    S = np.array([[linear_cka(a, b) for b in acts] for a in acts])
    names = [f"seed{i}" for i in range(len(acts))]
    return xr.DataArray(S, dims=("model", "model_"), coords={"model": names, "model_": names})


def test_homogeneous_ensemble_is_one_group_despite_uneven_members():
    # one member much noisier than the rest: a member effect, not a group
    S = _cka_matrix("AAAAAAAA", [0.1, 0.2, 0.5, 1.0, 0.3, 0.1, 2.0, 0.4])
    g = find_groups(S, n_perm=199, seed=1)
    assert g.n_groups == 1
    assert g.p_value > 0.05
    assert "one group" in g.reason


@pytest.mark.parametrize("kinds", ["AAAABBBB", "AAAAABBB", "ABABABAB"])
def test_mixed_ensemble_gives_two_groups(kinds):
    S = _cka_matrix(kinds, [0.3] * len(kinds))
    g = find_groups(S, n_perm=199, seed=1)
    assert g.n_groups == 2
    assert g.p_value <= 0.05
    want = [[f"seed{i}" for i, k in enumerate(kinds) if k == kk] for kk in dict.fromkeys(kinds)]
    assert g.group_members() == want
    assert g.to_dict()["sizes"] == [len(w) for w in want]


def test_three_groups_from_a_distance_matrix():
    labels = np.repeat([0, 1, 2], 4)
    D = np.where(labels[:, None] == labels[None, :], 0.1, 1.0)
    D = D + 0.02 * np.random.default_rng(0).random(D.shape)
    np.fill_diagonal(D, 0.0)
    g = find_groups(D, kind="distance", n_perm=199)
    assert g.n_groups == 3
    assert list(g.labels) == list(labels)


def test_too_few_members_is_one_group_untested():
    g = find_groups(np.eye(3), n_perm=10)
    assert g.n_groups == 1 and g.p_value is None
    assert "too few" in g.reason


def test_bad_matrix_errors():
    with pytest.raises(
        ShapeError, match=r"expected a square \(model, model\) matrix, got \(3, 4\)"
    ):
        find_groups(np.zeros((3, 4)))
    bad = np.eye(4)
    bad[0, 1] = np.nan
    with pytest.raises(ShapeError, match="non-finite"):
        find_groups(bad)


def test_groups_from_labels():
    g = groups_from_labels(["a", "b", "c"], ["t1", "t2", "t1"], "template")
    assert g.group_members() == [["a", "c"], ["b"]]
    assert g.to_dict()["method"] == "template"
