"""MultisetCCA's iterative solver (Lanczos on T^T C T, no P x P matrix) against the dense one."""

from __future__ import annotations

import numpy as np
import pytest
from synth_ensembles import canonical_correlations, well_conditioned

from ensemble_lens.align import MultisetCCA


def graded_ensemble(K: int, n: int, widths: tuple[int, int], seed: int = 0):
    """K networks carrying 3 shared latents with graded noise (distinct MAXVAR eigenvalues)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    nets = []
    for _ in range(K):
        d = int(rng.integers(*widths))
        carried = z + rng.normal(size=(n, 3)) * np.array([0.1, 0.4, 0.8])
        src = np.c_[carried, rng.normal(size=(n, d - 3))]
        nets.append(src @ well_conditioned(d, rng))
    return z, nets


@pytest.mark.parametrize("K", [2, 7, 15])
def test_iterative_equals_dense_on_small_k(K):
    _, nets = graded_ensemble(K, 1500, (5, 12), seed=K)
    dense = MultisetCCA(n_components=4, solver="dense").fit(nets)
    itr = MultisetCCA(n_components=4, solver="iterative").fit(nets)
    assert (dense.solver_, itr.solver_) == ("dense", "iterative")
    np.testing.assert_allclose(itr.maxvar_eigenvalues_, dense.maxvar_eigenvalues_, rtol=1e-10)
    for a, b in zip(dense.W_, itr.W_, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-7 * np.abs(a).max())
    np.testing.assert_allclose(itr.shared_scores_, dense.shared_scores_, atol=1e-7)
    np.testing.assert_allclose(
        itr.canonical_correlations_, dense.canonical_correlations_, atol=1e-10
    )


def test_auto_goes_iterative_for_many_networks_and_recovers_the_latents():
    z, nets = graded_ensemble(260, 800, (8, 10), seed=1)
    gcca = MultisetCCA(n_components=3, variance_keep=0.999).fit(nets)
    assert sum(gcca.n_components_per_model_) > 2000 and gcca.solver_ == "iterative"
    cc = canonical_correlations(gcca.shared_scores_, z)
    assert cc.min() > 0.99
    assert np.all(np.diff(gcca.maxvar_eigenvalues_) < 0)


def test_dense_path_is_kept_when_all_components_are_asked_for():
    _, nets = graded_ensemble(2, 500, (4, 5))
    gcca = MultisetCCA(n_components=8, variance_keep=1.0, solver="iterative").fit(nets)
    assert gcca.solver_ == "dense"  # Lanczos needs k < P


def test_unknown_solver_is_an_error():
    _, nets = graded_ensemble(2, 200, (4, 6))
    with pytest.raises(
        ValueError, match="solver: expected 'auto', 'dense' or 'iterative', got 'x'"
    ):
        MultisetCCA(solver="x").fit(nets)  # type: ignore[arg-type]
