"""pairwise_block / permutation_block: every block equals the same entries of the full K x K
matrix of pairwise (moments, prepared and pair-by-pair measures, symmetric or not)."""

from __future__ import annotations

import numpy as np
import pytest

from ensemble_lens.errors import ShapeError
from ensemble_lens.similarity import pairwise, pairwise_permutation_test
from ensemble_lens.similarity.blocks import (
    block_moments,
    pair_index,
    pairwise_block,
    permutation_block,
)

METRICS = [
    "linear_cka",
    "mean_cca",
    "procrustes_similarity",
    "shape_distance",
    "pwcca",  # moments, not symmetric
    "procrustes-distance=angular",  # moments with an arccos output
    "cka-kernel=rbf-hsic=gretton-score",  # prepared, dot states
    "mutual_knn-topk=5",  # prepared
    "linear_regression-r2",  # prepared, not symmetric, combine_many
    "linear_predictivity",  # pair by pair, not symmetric
]

pytestmark = pytest.mark.filterwarnings("ignore::ensemble_lens.errors.DroppedUnitsWarning")


@pytest.fixture(scope="module")
def nets():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(120, 3))
    out = {}
    for i in range(6):
        d = 3 + i % 3
        x = np.tanh(z @ rng.normal(size=(3, d))) + 0.2 * rng.normal(size=(120, d))
        if i == 4:
            x[:, 0] = 1.0  # a dead unit: dropped the same way in blocks and in pairwise
        out[f"n{i}"] = x.astype(np.float32)
    return out


@pytest.mark.parametrize("metric", METRICS)
def test_blocks_equal_the_full_matrix(nets, metric):
    full = pairwise(nets, metric, n_jobs=1).values
    names = list(nets)
    groups = [names[:2], names[2:5], names[5:]]
    seen = np.zeros((6, 6), bool)
    for ga, rows in enumerate(groups):
        for cols in groups[ga:]:
            diagonal = cols is rows
            fwd, bwd, method = pairwise_block(
                {n: nets[n] for n in rows},
                None if diagonal else {n: nets[n] for n in cols},
                metric,
            )
            ri = [names.index(n) for n in rows]
            ci = [names.index(n) for n in cols]
            np.testing.assert_allclose(fwd, full[np.ix_(ri, ci)], rtol=0, atol=1e-12)
            np.testing.assert_allclose(bwd, full[np.ix_(ci, ri)], rtol=0, atol=1e-12)
            seen[np.ix_(ri, ci)] = seen[np.ix_(ci, ri)] = True
            assert method == pairwise(nets, metric, n_jobs=1).attrs["method"]
    assert seen.all()


def test_pair_index_is_the_position_in_the_tested_list():
    k = 5
    sym = [(i, j) for i in range(k) for j in range(k) if i < j]
    asym = [(i, j) for i in range(k) for j in range(k) if i != j]
    assert [pair_index(i, j, k, True) for i, j in sym] == list(range(len(sym)))
    assert [pair_index(i, j, k, False) for i, j in asym] == list(range(len(asym)))


@pytest.mark.parametrize("metric", ["linear_cka", "linear_predictivity"])
def test_permutation_blocks_equal_the_full_test(nets, metric):
    small = {n: nets[n] for n in ["n0", "n1", "n2", "n3"]}
    full = pairwise_permutation_test(small, metric, n_perm=9, seed=4).values
    names = list(small)
    for rows, cols in [(names[:2], None), (names[:2], names[2:]), (names[2:], None)]:
        fwd, bwd = permutation_block(
            {n: small[n] for n in rows},
            None if cols is None else {n: small[n] for n in cols},
            metric,
            positions=([names.index(n) for n in rows], [names.index(n) for n in cols or []]),
            k=4,
            n_perm=9,
            seed=4,
        )
        ci = [names.index(n) for n in (cols or rows)]
        ri = [names.index(n) for n in rows]
        np.testing.assert_array_equal(fwd, full[np.ix_(ri, ci)])
        np.testing.assert_array_equal(bwd, full[np.ix_(ci, ri)])


def test_a_network_both_row_and_column_is_refused(nets):
    with pytest.raises(ShapeError, match=r"networks \['n0'\] are both rows and columns"):
        pairwise_block({"n0": nets["n0"]}, {"n0": nets["n0"]}, "linear_cka")


@pytest.mark.parametrize("metric", ["linear_cka", "mean_cca", "shape_distance", "pwcca"])
def test_off_diagonal_moments_give_the_same_values(nets, metric):
    big = {**nets, "n5": nets["n5"].astype(np.float64) * 1e30 + 1e31}  # rescaled network
    rows = {k: big[k] for k in ["n0", "n4"]}
    cols = {k: big[k] for k in ["n1", "n2", "n5"]}
    full = pairwise(big, metric, n_jobs=1).values
    fwd, bwd, _ = pairwise_block(rows, cols, metric, moments=block_moments(rows, cols))
    ri, ci = [0, 4], [1, 2, 5]
    np.testing.assert_allclose(fwd, full[np.ix_(ri, ci)], rtol=0, atol=1e-12)
    np.testing.assert_allclose(bwd, full[np.ix_(ci, ri)], rtol=0, atol=1e-12)
