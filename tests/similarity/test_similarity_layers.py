"""Layers x models: every (model, layer) pair, the layer-correspondence test, the heatmap."""

from __future__ import annotations

import numpy as np
import pytest

from ensemble_lens.errors import ShapeError
from ensemble_lens.similarity import (
    layer_correspondence,
    linear_cka,
    measure,
    pairwise,
    plot_similarity,
)


def _study(seed=0, n=150, models=3, depth=4):
    """Networks whose layer l is a noisy linear map of a shared layer-l signal."""
    rng = np.random.default_rng(seed)
    signals = [rng.normal(size=(n, 3)) for _ in range(depth)]
    out = {}
    for m in range(models):
        out[f"net{m}"] = {
            f"l{i}": signals[i] @ rng.normal(size=(3, 4 + i + m))
            + 0.1 * rng.normal(size=(n, 4 + i + m))
            for i in range(depth)
        }
    return out


def test_layer_pairwise_dict_and_correspondence():
    study = _study()
    layers = ["l0", "l1", "l2", "l3"]
    sim = pairwise(study, "cka-kernel=linear-hsic=gretton-score", layers=layers)
    assert sim.dims == ("model", "layer", "model_", "layer_")
    assert sim.shape == (3, 4, 3, 4)
    ref = linear_cka(study["net0"]["l2"], study["net1"]["l3"])
    assert sim.sel(model="net0", layer="l2", model_="net1", layer_="l3").item() == pytest.approx(
        ref, abs=1e-12
    )
    corr = layer_correspondence(sim)
    assert corr["overall"].item() == pytest.approx(1.0)
    assert list(corr["best"].sel(model="net0", model_="net2").values) == layers
    # asymmetric measures fill the full (model, layer) x (model, layer) matrix
    asym = pairwise(study, "ridge-lambda=0.1-r2-cv=3folds", layers=["l1", "l3"])
    m = measure("ridge-lambda=0.1-r2-cv=3folds")
    for a, b in (("net0", "net2"), ("net2", "net0")):
        want = m(study[a]["l3"], study[b]["l1"])
        assert asym.sel(model=a, layer="l3", model_=b, layer_="l1").item() == pytest.approx(
            want, abs=1e-12
        )
    dist = layer_correspondence(pairwise(study, "procrustes-distance=angular", layers=layers))
    assert dist["overall"].item() == pytest.approx(1.0)
    # a swapped layer pair in one model is found and counted
    swapped = sim.copy()
    v = swapped.values
    v[1, [0, 1], :, :] = v[1, [1, 0], :, :].copy()
    v[:, :, 1, [0, 1]] = v[:, :, 1, [1, 0]].copy()
    corr = layer_correspondence(swapped)
    assert corr["best"].sel(model="net0", layer="l0", model_="net1").item() == "l1"
    # l0 and l1 are wrong for the 4 ordered pairs involving net1 out of 6
    np.testing.assert_allclose(corr["accuracy"].values, [2 / 6, 2 / 6, 1, 1])


def test_layer_pairwise_store(tmp_path):
    from ensemble_lens.record.store import open_store

    study = _study(1, n=80, models=2, depth=2)
    store = open_store(tmp_path / "s.zarr", mode="w")
    store.write_probe(np.zeros((80, 1), np.float32), names=["x"])
    for m, layers in study.items():
        for ly, x in layers.items():
            store.write_activations(m, ly, x.astype(np.float32))
    sim = pairwise(store, "rsa-rdm=correlation-compare=spearman", layers=["l0", "l1"])
    ref = measure("rsa-rdm=correlation-compare=spearman")(
        study["net0"]["l1"].astype(np.float32), study["net1"]["l0"].astype(np.float32)
    )
    assert sim.sel(model="net0", layer="l1", model_="net1", layer_="l0").item() == pytest.approx(
        ref, abs=1e-10
    )
    with pytest.raises(ShapeError, match="model 'net0': no layer\\(s\\) \\['l9'\\]"):
        pairwise(store, "linear_cka", layers=["l0", "l9"])
    with pytest.raises(ShapeError, match="expected a dict \\{layer: array\\}"):
        pairwise({"a": np.zeros((5, 2))}, "linear_cka", layers=["l0"])


def test_heatmap_prints_four_digits(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    study = _study(2, n=60, models=2, depth=3)
    sim = pairwise(study, "linear_cka", layers=["l0", "l1", "l2"])
    ax = plot_similarity(sim, model="net0", model_="net1")
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 9 and all(len(t.split(".")[1]) == 4 for t in texts)
    flat = pairwise({"a": study["net0"]["l0"], "b": study["net1"]["l0"]}, "linear_cka")
    ax2 = plot_similarity(flat)
    ax2.figure.savefig(tmp_path / "m.png")
    assert (tmp_path / "m.png").stat().st_size > 0
    with pytest.raises(ShapeError, match="needs model= and model_="):
        plot_similarity(sim)
