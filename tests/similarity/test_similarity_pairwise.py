"""pairwise: moments-based values equal the single-pair functions; tiling; executors; tests."""

from __future__ import annotations

import json
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import xarray as xr

from ensemble_lens.errors import (
    DroppedUnitsWarning,
    IllConditionedWarning,
    MeasureParameterError,
    ShapeError,
    UnknownMeasureError,
)
from ensemble_lens.similarity import (
    linear_cka,
    linear_predictivity,
    mean_cca,
    mutual_knn,
    pairwise,
    pairwise_permutation_test,
    procrustes_similarity,
    pwcca,
    shape_distance,
    svcca,
)


def _nets(seed=0, n=300, widths=(5, 8, 6, 7)):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4))
    return {
        f"net{k}": np.tanh(z @ rng.normal(size=(4, d))) + 0.5 * rng.normal(size=(n, d)) + k
        for k, d in enumerate(widths)
    }


CASES = [
    ("linear_cka", linear_cka, {}),
    ("mean_cca", mean_cca, {}),
    ("mean_cca", mean_cca, {"ridge": 0.2, "n_components": 3}),
    ("svcca", svcca, {"keep_variance": 0.9}),
    ("pwcca", pwcca, {}),
    ("pwcca", pwcca, {"symmetric": True}),
    ("procrustes_similarity", procrustes_similarity, {}),
    ("shape_distance", shape_distance, {"alpha": 0.0}),
    ("shape_distance", shape_distance, {"alpha": 0.5}),
]


def _reference(nets, fn, kw):
    arrs = list(nets.values())
    return np.array([[fn(a, b, **kw) for b in arrs] for a in arrs])


@pytest.mark.parametrize(("metric", "fn", "kw"), CASES)
@pytest.mark.parametrize("max_bytes", [2**30, 8 * 14**2])
def test_moments_path_equals_single_pair(metric, fn, kw, max_bytes):
    nets = _nets()
    out = pairwise(nets, metric, max_bytes=max_bytes, n_jobs=2, **kw)
    assert out.dims == ("model", "model_") and out.attrs["method"] == "moments"
    assert list(out.coords["model"].values) == list(nets)
    ref = _reference(nets, fn, kw)
    off = ~np.eye(len(nets), dtype=bool)
    np.testing.assert_allclose(out.values[off], ref[off], rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.diag(out.values), np.diag(ref), rtol=0, atol=1e-6)


def test_orientation_of_asymmetric_measures():
    nets = _nets(seed=1, widths=(3, 9))
    out = pairwise(nets, "pwcca")
    assert out.values[0, 1] == pytest.approx(pwcca(nets["net0"], nets["net1"]), abs=1e-10)
    assert out.values[1, 0] == pytest.approx(pwcca(nets["net1"], nets["net0"]), abs=1e-10)
    assert abs(out.values[0, 1] - out.values[1, 0]) > 1e-3
    lp = pairwise(nets, "linear_predictivity", ridge=0.1)
    assert lp.attrs["method"] == "pairs"
    ref = linear_predictivity(nets["net1"], nets["net0"], ridge=0.1)
    assert lp.values[1, 0] == pytest.approx(ref, abs=1e-12)


def test_loop_metrics_and_executor():
    nets = _nets(seed=2, n=120)
    ref = _reference(nets, mutual_knn, {"k": 5})
    with ThreadPoolExecutor(2) as ex:
        out = pairwise(nets, "mutual_knn", executor=ex, k=5)
        deb = pairwise(list(nets.values()), "linear_cka", executor=ex, debiased=True)
        mom = pairwise(nets, "mean_cca", executor=ex, chunk_size=16)
    np.testing.assert_allclose(out.values, ref, atol=1e-12)
    assert deb.attrs["method"] == "prepared" and list(deb.coords["model"].values) == list("0123")
    a, b = nets["net0"], nets["net2"]
    assert deb.values[0, 2] == pytest.approx(linear_cka(a, b, debiased=True), abs=1e-12)
    assert mom.values[0, 2] == pytest.approx(mean_cca(a, b), abs=1e-10)


def test_callable_metric_and_xarray_store_like_inputs():
    nets = _nets(seed=3, n=60)
    arrs = {k: xr.DataArray(v, dims=("sample", "unit")) for k, v in nets.items()}
    out = pairwise(arrs, lambda x, y: float(x.shape[1] * y.shape[1]))
    assert out.values[1, 2] == 8 * 6


def test_dead_units_and_warnings_in_pairwise():
    nets = _nets(seed=4)
    nets["net1"][:, 0] = 2.0
    with pytest.warns(
        DroppedUnitsWarning, match=r"dropped constant \(dead\) units: 'net1' 1 of 8"
    ) as rec:
        out = pairwise(nets, "mean_cca")
    assert len(rec) == 1 and rec[0].filename == __file__  # one warning, at the caller's line
    assert json.loads(out.attrs["dropped_units"]) == {"net1": [1, 8]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = mean_cca(nets["net1"], nets["net3"])
    assert out.values[1, 3] == pytest.approx(ref, abs=1e-10)
    wide = {"a": np.random.default_rng(0).normal(size=(12, 8)), "b": np.ones((12, 1)).cumsum(0)}
    wide["b"] = np.hstack([wide["b"], wide["b"] ** 2, np.sin(wide["b"]), np.cos(wide["b"])])
    with pytest.warns(IllConditionedWarning, match="d1 \\+ d2 >= n"):
        pairwise(wide, "mean_cca")


def test_errors():
    nets = _nets(seed=5, n=30)
    with pytest.raises(
        UnknownMeasureError, match=r"unknown measure 'ckaa'; closest names: .*cka-kernel="
    ):
        pairwise(nets, "ckaa")
    with pytest.raises(
        MeasureParameterError,
        match=r"metric 'linear_cka' \(cka-kernel=linear-hsic=gretton-score\): invalid options",
    ):
        pairwise(nets, "linear_cka", alpha=0.5)
    nets["net2"] = nets["net2"][:29]
    with pytest.raises(ShapeError, match="network 'net2': expected 30 samples"):
        pairwise(nets, "linear_cka")


def test_pairwise_permutation_test():
    rng = np.random.default_rng(6)
    base = rng.normal(size=(40, 3))
    nets = {"a": base, "b": base @ rng.normal(size=(3, 3)), "c": rng.normal(size=(40, 3))}
    p = pairwise_permutation_test(nets, "linear_cka", n_perm=49, seed=1)
    assert p.values[0, 1] == pytest.approx(1 / 50) and p.values[1, 0] == p.values[0, 1]
    assert p.values[0, 2] > 0.05 and np.isnan(p.values[0, 0])
    with ThreadPoolExecutor(2) as ex:
        p2 = pairwise_permutation_test(nets, "linear_cka", n_perm=49, seed=1, executor=ex)
    np.testing.assert_array_equal(p.values, p2.values)
    pa = pairwise_permutation_test(nets, "pwcca", n_perm=9, seed=0)
    assert np.isfinite(pa.values[2, 0]) and np.isfinite(pa.values[0, 2])


def test_shared_moments_input():
    from ensemble_lens.similarity import compute_moments

    nets = _nets(seed=7)
    mom = compute_moments(nets)
    for metric in ("linear_cka", "procrustes_similarity", "shape_distance"):
        a, b = pairwise(mom, metric), pairwise(nets, metric)
        np.testing.assert_allclose(a.values, b.values, atol=1e-12, rtol=0)
    assert list(pairwise(mom, "mean_cca").coords["model_"].values) == list(nets)
    with pytest.raises(
        ShapeError,
        match="metric 'rsa' \\(rsa-rdm=correlation-compare=spearman\\) needs the activations",
    ):
        pairwise(mom, "rsa")


def test_store_layer_input(tmp_path):
    from ensemble_lens.record.store import open_store

    nets = _nets(seed=8, n=200, widths=(4, 6, 5))
    store = open_store(tmp_path / "s.zarr", mode="w")
    store.write_probe(np.zeros((200, 1), np.float32), names=["x"])
    f32 = {k: v.astype(np.float32) for k, v in nets.items()}
    for k, v in f32.items():
        store.write_activations(k, "h", v)
    for metric, fn in (("mean_cca", mean_cca), ("mutual_knn", mutual_knn)):
        out = pairwise((store, "h"), metric, chunk_size=32)
        assert list(out.coords["model"].values) == sorted(nets)
        ref = fn(f32["net0"].astype(np.float64), f32["net2"].astype(np.float64))
        assert out.sel(model="net0", model_="net2").item() == pytest.approx(ref, abs=1e-10)


def test_numpy_inputs_are_tiled_by_default(monkeypatch, caplog):
    """The moments pass over numpy inputs is tiled at IN_MEMORY_TILE_BYTES whatever max_bytes."""
    import importlib
    import logging

    pw_module = importlib.import_module("ensemble_lens.similarity.pairwise")
    nets = _nets(seed=2)
    whole = {m: pairwise(nets, m).values for m in ("mean_cca", "procrustes_similarity", "pwcca")}
    monkeypatch.setattr(pw_module, "IN_MEMORY_TILE_BYTES", 8 * 14**2)
    with caplog.at_level(logging.INFO, logger="ensemble_lens.similarity.pairwise"):
        for m, ref in whole.items():
            np.testing.assert_allclose(pairwise(nets, m).values, ref, rtol=0, atol=1e-12)
    assert "tiled in 2 groups" in caplog.text
