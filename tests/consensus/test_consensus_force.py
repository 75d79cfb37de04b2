"""End to end on a force-like message: consensus, then the equivariant input-basis map."""

from __future__ import annotations

import numpy as np
from synth_ensembles import well_conditioned

from ensemble_lens.align import input_basis_map
from ensemble_lens.consensus import find_consensus


def test_consensus_of_messages_maps_back_onto_the_force():
    """Every 'network' stores a linear image of f = s(r) (dx, dy) and of r, plus private
    signals (Cranmer et al. 2020); consensus keeps three components and the input-basis map,
    built from (dx, dy) alone, turns them into components proportional to fx and fy."""
    rng = np.random.default_rng(21)
    n = 1500
    d = rng.uniform(-2, 2, size=(n, 2))
    r = np.sqrt(np.sum(d**2, axis=1))
    f = (1.0 / (r**2 + 0.5))[:, None] * d
    nets = []
    for _ in range(5):
        width = int(rng.integers(8, 14))
        src = np.c_[f, r - r.mean(), 0.5 * rng.normal(size=(n, width - 3))]
        nets.append(src @ well_conditioned(width, rng) + 0.02 * rng.normal(size=(n, width)))
    split = np.where(np.arange(n) % 3 == 0, "test", "fit")
    ds = find_consensus(nets, split=split, n_null=30, variance_keep=0.999)
    assert int(ds["is_consensus"].sum()) == 3
    consensus = ds["components"].sel(component=ds["is_consensus"])
    inputs = np.c_[r, d]
    out = input_basis_map(consensus, inputs, input_names=["r", "dx", "dy"])
    for j, name in enumerate(("dx", "dy")):
        assert np.corrcoef(out.components.sel(component=name), f[:, j])[0, 1] > 0.995
    assert out.misalignment < 0.01
