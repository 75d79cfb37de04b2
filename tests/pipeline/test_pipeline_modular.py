"""Trained end to end: small MLPs on (a + b) mod 17 through ``run_study``; the templates
stage must report the shared Fourier form with each member's own key frequencies, checked
against the Fourier power of each member's stored embedding."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import ensemble_lens as el
from ensemble_lens.distill.periodic import fourier_power
from ensemble_lens.distill.template import make_template

P, SEEDS = 17, [0, 1, 2, 3]


def _config() -> dict:
    return {
        "name": "modular-small",
        "task": {"name": "modular", "params": {"p": P, "train_fraction": 0.9}},
        "probe": {"n": 400, "seed": 0, "n_extrapolation": 0},
        "ensemble": {"seeds": SEEDS, "untrained_null": False, "train": {"epochs": 800}},
        "similarity": {"metrics": ["linear_cka"]},
        "consensus": {"n_null": 5},
        "distill": {"enabled": False},
        "templates": {"enabled": True, "max_components": 3},
        "groups": {"enabled": True, "n_perm": 99},
        "execution": {"scheduler": "serial"},
    }


def _top_frequencies(acts: np.ndarray, a: np.ndarray, n: int) -> set[int]:
    """The ``n`` frequencies k with the most power in a member's embedding table."""
    table = np.stack([acts[a == v].mean(0) for v in range(P)])
    return set((np.argsort(-fourier_power(table)[1:])[:n] + 1).tolist())


@pytest.mark.slow
def test_trained_modular_members_share_the_fourier_form_with_their_own_frequencies(tmp_path):
    res = el.run_study(_config(), store=tmp_path / "study.zarr")
    store = res.store
    rec = store.study_attrs()["templates"]["embed"]
    tmpl = rec["templates"]
    assert tmpl["verdict"] == "shared form", tmpl["reason"]
    best = tmpl["best"]
    assert best["key"] == make_template(sympy.cos(sympy.Symbol("a"))).key
    assert best["is_result"] and best["support"] >= 0.75 and best["r2_test"] >= 0.9
    a = store.probe().sel(variable="a")["inputs"].values.astype(int)
    found = {}
    for m, ks in best["frequencies"].items():
        if not ks:
            continue
        assert np.allclose(ks, np.round(ks), atol=0.1)  # integer frequencies of Z_17
        acts = np.asarray(store.activations(m, "embed").values, np.float64)
        found[m] = {round(k) for k in ks}
        assert found[m] <= _top_frequencies(acts, a, 4), (m, found[m])
    assert len(found) >= 3 and len({frozenset(v) for v in found.values()}) > 1
    assert rec["groups"]["similarity"]["n_groups"] == 1
    html = res.report.read_text()
    assert "Verdict: shared form." in html and "Each member's frequencies k" in html
