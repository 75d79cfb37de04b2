"""The batched pair evaluator of the moments path: singular values from the Gram route equal
the SVD's (falling back to the SVD for rank-deficient pairs), and pairwise through it equals
the single-pair functions, also for wide (n < d) and rotated-copy networks."""

from __future__ import annotations

import numpy as np
import pytest

from ensemble_lens.similarity import pairwise, procrustes_similarity, shape_distance
from ensemble_lens.similarity._batched import singular_values


def test_gram_route_equals_svd_and_falls_back_when_rank_deficient():
    rng = np.random.default_rng(0)
    well = rng.normal(size=(3, 40, 30))
    low = rng.normal(size=(2, 40, 3)) @ rng.normal(size=(2, 3, 30))  # rank 3 of 30
    stack = np.concatenate([well, low, np.zeros((1, 40, 30))])
    got = singular_values(stack)
    ref = np.linalg.svd(stack, compute_uv=False)
    assert got.shape == ref.shape == (6, 30)
    rel = np.abs(got.sum(axis=1) - ref.sum(axis=1)) / np.maximum(ref.sum(axis=1), 1e-300)
    assert (rel < 1e-13).all()
    # the rank-deficient pairs went through the SVD: their tiny values are the SVD's, not the
    # ~sqrt(eps) * s_max of sqrt(eigvalsh(M^T M))
    np.testing.assert_array_equal(got[3:5], ref[3:5])
    np.testing.assert_array_equal(got[5], 0.0)
    assert singular_values(np.zeros((2, 0, 4))).shape == (2, 0)


def test_wide_side_uses_the_smaller_gram():
    m = np.random.default_rng(1).normal(size=(2, 5, 60))
    np.testing.assert_allclose(
        singular_values(m), np.linalg.svd(m, compute_uv=False), rtol=1e-13, atol=0
    )
    np.testing.assert_allclose(
        singular_values(m.transpose(0, 2, 1)), np.linalg.svd(m, compute_uv=False), rtol=1e-13
    )


@pytest.mark.parametrize(
    ("metric", "fn", "kw"),
    [
        ("procrustes_similarity", procrustes_similarity, {}),
        ("shape_distance", shape_distance, {"alpha": 1.0}),
        ("shape_distance", shape_distance, {"alpha": 0.5}),
    ],
)
def test_pairwise_equals_single_pair_on_wide_and_rotated_networks(metric, fn, kw):
    rng = np.random.default_rng(2)
    z = rng.normal(size=(30, 5))
    nets = {f"w{k}": np.tanh(z @ rng.normal(size=(5, 40 + k))) for k in range(3)}  # n < d
    q, _ = np.linalg.qr(rng.normal(size=(40, 40)))
    nets["rot"] = 3.0 * nets["w0"] @ q + 1.0  # a rotated, scaled, shifted copy of w0
    nets["full"] = rng.normal(size=(30, 12))
    out = pairwise(nets, metric, n_jobs=2, **kw).values
    arrs = list(nets.values())
    ref = np.array([[fn(a, b, **kw) for b in arrs] for a in arrs])
    off = ~np.eye(len(arrs), dtype=bool)
    # angles compared as cosines: arccos turns a 1e-16 round-off at cos = 1 (the rotated
    # copy) into ~1e-8, in the single-pair function as much as here
    np.testing.assert_allclose(np.cos(out[off]), np.cos(ref[off]), rtol=0, atol=1e-12)
