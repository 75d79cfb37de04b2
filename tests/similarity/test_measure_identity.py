"""One measure, one answer: aliases equal their standardized names, regression-type names
read in one direction, per-network work is done once per network, inputs are strict, and
results record what they computed."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import xarray as xr
from scipy.spatial.distance import pdist

from ensemble_lens.errors import (
    DroppedUnitsWarning,
    GradientDetachedWarning,
    NonFiniteError,
    ShapeError,
)
from ensemble_lens.similarity import layer_correspondence, measure, measure_names, pairwise
from ensemble_lens.similarity._aliases import ALIASES, FUNCTIONS
from ensemble_lens.similarity._table import FAMILIES


def _nets(seed=0, n=48, widths=(5, 7, 6)):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4))
    return {
        f"m{k}": np.tanh(z @ rng.normal(size=(4, d))) + 0.3 * rng.normal(size=(n, d))
        for k, d in enumerate(widths)
    }


_SLOW = {"imd": "imd_score", "geometry_score": "gs"}  # seconds per network: names only


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_alias_equals_its_standardized_name(alias):
    nets = _nets(1)
    m = measure(alias)
    std = measure(m.name)
    assert m.name == std.name and m.name != alias
    assert (m.shares, m.direction, m.kind) == (std.shares, std.direction, std.kind)
    if alias in _SLOW:
        assert m.name == _SLOW[alias] and m.options == std.options
        return
    x, y = nets["m0"], nets["m1"]
    assert m(x, y) == std(x, y)
    a, b = pairwise(nets, alias), pairwise(nets, m.name)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.attrs["method"] == b.attrs["method"] and a.attrs["metric"] == m.name
    assert a.attrs["requested"] == alias


def test_functions_resolve_to_the_alias_of_their_name_and_options_become_parameters():
    nets = _nets(2)
    for fn, alias in FUNCTIONS.items():
        assert pairwise(nets, fn).attrs["metric"] == measure(alias).name
        x, y = nets["m0"], nets["m2"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert fn(x, y) == pytest.approx(measure(alias)(x, y), abs=1e-12), alias
    assert (
        measure("rbf_cka", sigma_fraction=0.4).name
        == "cka-kernel=(rbf-frac=0.4)-hsic=gretton-score"
    )
    assert measure("rbf_cka", sigma=2.0, debiased=True).name == (
        "cka-kernel=(rbf-sigma=2.0)-hsic=song-score"
    )
    assert measure("linear_cka", debiased=True).name == "cka-kernel=linear-hsic=song-score"
    assert measure("svcca", n_components=3).name == "svcca-dim=3-score"
    assert measure("mutual_knn", k=5).name == "mutual_knn-topk=5-metric=cosine"
    assert measure("shape_distance", alpha=0.5).name == (
        "shape_metric-alpha=0.5-scale=mean-distance=angular"
    )
    # a family's own parameters passed as keywords join the name (and keep its fast path)
    m = measure("mutual_knn-topk=10", k=5)
    assert m.name == "mutual_knn-topk=5" and m.prepare is not None


def _regression_names():
    names = [n for f in FAMILIES.values() if f.group == "regression" for n in f.listed]
    names = [n for n in names if n != "pls"]  # bare pls is google/svcca's symmetric statistic
    return [
        *names,
        "linear_regression-reverse",
        "ridge-lambda=1-r2-reverse",
        "pls-pearsonr-reverse",
    ]


def test_every_regression_name_has_a_direction_and_the_full_network_predicts_the_subset():
    rng = np.random.default_rng(3)
    full = rng.normal(size=(120, 8))
    sub = full[:, :3] @ rng.normal(size=(3, 3))  # a linear image of part of the full network
    names = _regression_names()
    assert len(names) >= 17
    for name in names:
        m = measure(name)
        fwd, back = m(full, sub), m(sub, full)
        if m.direction == "row predicts column":
            assert fwd > back + 0.1, (name, fwd, back)
            assert fwd > 0.9, (name, fwd)
        else:
            assert m.direction == "column predicts row", name
            assert back > fwd + 0.1, (name, fwd, back)
    assert measure("pls").direction == "symmetric"


@pytest.mark.parametrize(
    "name", ["linear_regression", "ridge-pearsonr-cv=5folds-reverse", "linear_predictivity"]
)
def test_pairwise_entry_is_the_single_pair_value_in_the_stated_direction(name):
    rng = np.random.default_rng(4)
    full = rng.normal(size=(60, 6))
    nets = {
        "full": full,
        "sub": full[:, :2] @ rng.normal(size=(2, 2)),
        "other": rng.normal(size=(60, 3)),
    }
    out = pairwise(nets, name)
    m = measure(name)
    for i, a in enumerate(nets):
        for j, b in enumerate(nets):
            if i != j:
                assert out.values[i, j] == pytest.approx(m(nets[a], nets[b]), abs=1e-10)
    assert out.attrs["direction"] == m.direction


def test_batched_families_do_their_per_network_work_once():
    nets = {m: np.abs(v) for m, v in _nets(5, n=40).items()}  # rates for the poisson RDM
    k = len(nets)
    batched = ("cka", "rsa", "mutual_knn", "linear_regression", "ridge", "cca", "svcca", "pwcca",
               "shape_metric", "aligned_cosine_similarity", "aligned_cossim")  # fmt: skip
    for name, _ in measure_names():
        m = measure(name)
        if m.family.key not in batched or m.shares == "none":
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = pairwise(nets, name)
        assert out.attrs["method"] in ("moments", "prepared"), name
        assert out.attrs["states"] == k, (name, out.attrs["states"])
    # names that used to loop over pairs now share their per-network work
    for name in ("rsa", "mutual_knn", "linear_regression", "ridge-lambda=1-r2-cv=5folds-reverse",
        "ridge-pearsonr-cv=5folds-reverse", "cca-squared_score", "pwcca-score", "bures_distance",
                 "linear_cka_debiased", "aligned_cossim", "aligned_cosine_similarity",
                 "shape_metric-alpha=0.5-distance=euclidean"):  # fmt: skip
        assert measure(name).shares != "none", name


def test_strict_inputs():
    x = np.random.default_rng(6).normal(size=(30, 3))
    with pytest.raises(ShapeError, match=r"X: expected a 2-D \(sample, unit\) array, got a 1-D"):
        measure("cca-score")(x[:, 0], x)
    with pytest.raises(ShapeError, match=r"network 'a': expected a 2-D .* pass x\[:, None\]"):
        pairwise({"a": x[:, 0], "b": x}, "cka")
    bad = xr.DataArray(x, dims=("time", "neuron"))
    with pytest.raises(ShapeError, match=r"Y: expected an xarray.DataArray with dims \('sample'"):
        measure("procrustes-score")(x, bad)
    with pytest.raises(ShapeError, match=r"network 'b': expected an xarray.DataArray with dims"):
        pairwise({"a": x, "b": bad}, "linear_cka")
    nan = x.copy()
    nan[2, 1] = np.nan
    with pytest.raises(NonFiniteError, match="Y: 1 non-finite values"):
        measure("rsa")(x, nan)
    assert issubclass(NonFiniteError, ValueError) and not issubclass(NonFiniteError, ShapeError)
    ok = xr.DataArray(x.T, dims=("unit", "sample"))  # named dims in any order are fine
    assert measure("procrustes-score")(x, ok) == pytest.approx(1.0)


def test_requires_grad_is_detached_with_a_note():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(7).normal(size=(30, 3))
    t = torch.tensor(x, requires_grad=True)
    with pytest.warns(GradientDetachedWarning, match="detached tensors that require grad") as rec:
        out = pairwise({"a": t, "b": x}, "cka-kernel=linear-hsic=gretton-score")
    assert len(rec) == 1 and rec[0].filename == __file__
    assert "detached" in out.attrs["notes"] and "'a'" in out.attrs["notes"]
    with pytest.warns(GradientDetachedWarning, match=r"require grad .*: X$"):
        measure("rsa")(t, x)


def test_result_metadata_also_through_layers():
    rng = np.random.default_rng(8)
    nested = {m: {ly: rng.normal(size=(40, 4)) for ly in ("l1", "l2")} for m in ("a", "b")}
    out = pairwise(nested, "rbf_cka", layers=["l1", "l2"], sigma_fraction=0.4)
    assert out.attrs["metric"] == "cka-kernel=(rbf-frac=0.4)-hsic=gretton-score"
    params = json.loads(out.attrs["parameters"])
    assert params["frac"] == 0.4 and params["kernel"] == "rbf"
    assert out.attrs["direction"] == "symmetric" and out.attrs["version"]
    assert out.attrs["requested"] == "rbf_cka"
    corr = layer_correspondence(out)
    assert corr.attrs["metric"] == out.attrs["metric"]
    # what the per-network work resolved: the median-heuristic sigma of every network
    sigmas = json.loads(out.attrs["resolved"])
    x = nested["b"]["l2"]
    ref = 0.4 * np.sqrt(np.median(pdist(x, "sqeuclidean")))
    assert sigmas["b/l2"]["sigma"] == pytest.approx(ref, rel=1e-12) and len(sigmas) == 4


def test_svcca_records_the_components_each_network_kept():
    nets = _nets(11)
    out = pairwise(nets, "svcca-var=0.9-score")
    kept = json.loads(out.attrs["resolved"])
    for m, x in nets.items():
        lam = np.linalg.svd(x - x.mean(0), compute_uv=False) ** 2
        assert kept[m]["components"] == int(np.searchsorted(np.cumsum(lam) / lam.sum(), 0.9) + 1)


def test_layer_correspondence_takes_the_direction_of_asymmetric_measures():
    rng = np.random.default_rng(9)
    z = rng.normal(size=(80, 6))
    nested = {
        m: {"l1": z[:, :4] @ rng.normal(size=(4, 4)), "l2": z @ rng.normal(size=(6, 6))}
        for m in ("a", "b", "c")
    }
    sim = pairwise(nested, "linear_regression", layers=["l1", "l2"])
    with pytest.raises(ShapeError, match=r"direction: .* is not symmetric \(row predicts column\)"):
        layer_correspondence(sim)
    fwd = layer_correspondence(sim, direction="row")
    back = layer_correspondence(sim, direction="column")
    assert fwd.attrs["direction"] == "row" and back.attrs["direction"] == "column"
    # l2 (everything) predicts l1 perfectly: as predictor (row), l1's best target is l2's...
    assert not np.array_equal(fwd["best"].values, back["best"].values)


def test_a_similarity_result_saved_in_the_store_reads_back_with_its_metadata(tmp_path):
    from ensemble_lens.errors import StoreError
    from ensemble_lens.record.store import open_store

    nets = _nets(10, n=40)
    store = open_store(tmp_path / "s.zarr", mode="w")
    store.write_probe(np.zeros((40, 1), np.float32), names=["x"])
    for m, x in nets.items():
        store.write_activations(m, "h", x.astype(np.float32))
    rbf = pairwise((store, "h"), "rbf_cka", sigma_fraction=0.4)
    reg = pairwise((store, "h"), "linear_regression")
    assert store.write_similarity("h", rbf) == "cka-kernel=(rbf-frac=0.4)-hsic=gretton-score"
    store.write_similarity("h", reg)
    back = open_store(tmp_path / "s.zarr").read_similarity("h", "rbf_cka")  # as it was asked
    np.testing.assert_array_equal(back.values, rbf.values)
    assert back.attrs == rbf.attrs and json.loads(back.attrs["parameters"])["frac"] == 0.4
    again = store.read_similarity("h", "linear_regression")
    assert again.attrs["direction"] == "row predicts column"
    with pytest.raises(StoreError, match=r"layer 'h' has similarity results \["):
        store.read_similarity("h")
    with pytest.raises(StoreError, match="write_similarity: expected a pairwise result"):
        store.write_similarity("h", rbf.values)


def test_a_single_pair_call_warns_once_in_the_one_format_at_the_callers_line():
    from ensemble_lens.errors import DroppedUnitsWarning
    from ensemble_lens.similarity import linear_cka

    x, y = _nets(12)["m0"].copy(), _nets(12)["m1"].copy()
    x[:, 0], y[:, 1], y[:, 2] = 1.0, 2.0, 3.0
    # the derived distance reads the inputs twice (score, then norms): still one warning
    for call in (lambda: measure("cca-distance=euclidean")(x, y), lambda: linear_cka(x, y)):
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            call()
        dropped = [r for r in rec if issubclass(r.category, DroppedUnitsWarning)]
        assert [str(r.message) for r in dropped] == [
            "dropped constant (dead) units: 'X' 1 of 5, 'Y' 2 of 7"
        ]
        assert dropped[0].filename == __file__


def test_a_single_value_is_a_float_with_the_same_metadata_as_a_matrix():
    import copy
    import dataclasses
    import pickle

    from ensemble_lens.similarity import ResultInfo, Score

    nets = _nets(13)
    x, y = nets["m0"], nets["m1"].copy()
    y[:, 2] = 5.0  # a constant unit: dropped, and recorded
    with pytest.warns(DroppedUnitsWarning):
        s = measure("rbf_cka", sigma_fraction=0.5)(x, y)
    # a float in every use
    assert isinstance(s, Score) and isinstance(s, float) and isinstance(s.info, ResultInfo)
    assert s == float(s) and 0 < s < 1 and f"{s:.4f}" == f"{float(s):.4f}"
    assert repr(s) == repr(float(s)) and hash(s) == hash(float(s))
    assert json.loads(json.dumps({"v": s}))["v"] == float(s)
    assert np.asarray([s, s]).dtype == np.float64 and np.float64(s) == float(s)
    assert type(s + 1) is float and type(2 * s) is float  # derived numbers are plain floats
    import statistics

    assert type(statistics.mean([s, s])) is float and statistics.mean([s, s]) == s
    assert type(Score(0.25)) is float  # no info: a plain float
    for back in (pickle.loads(pickle.dumps(s)), copy.deepcopy(s)):
        assert back == s and back.info == s.info
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.info.metric = "other"  # type: ignore[misc]
    # the same fields as the DataArray of the same pair, from one source
    with pytest.warns(DroppedUnitsWarning):
        mat = pairwise({"X": x, "Y": y}, "rbf_cka", sigma_fraction=0.5)
    attrs = s.info.attrs()
    assert set(attrs) == set(mat.attrs) == {f.name for f in dataclasses.fields(ResultInfo)}
    for key in ("metric", "requested", "kind", "direction", "parameters", "version"):
        assert attrs[key] == mat.attrs[key], key
    assert s.info.metric == "cka-kernel=(rbf-frac=0.5)-hsic=gretton-score"
    assert s.info.requested == "rbf_cka" and s.info.method == "pair"
    assert s.info.parameters["frac"] == 0.5 and s.info.direction == "symmetric"
    assert s.info.dropped_units == {"Y": (1, y.shape[1])}
    assert json.loads(mat.attrs["dropped_units"]) == {"Y": [1, y.shape[1]]}
    # what each input's work resolved: the sigma used, as the matrix records it per network
    sig = json.loads(mat.attrs["resolved"])
    assert s.info.resolved["X"]["sigma"] == pytest.approx(sig["X"]["sigma"], rel=1e-12)
    assert s.info.resolved["Y"]["sigma"] == pytest.approx(sig["Y"]["sigma"], rel=1e-12)
    assert s == pytest.approx(mat.values[0, 1], rel=1e-12)


def test_a_single_value_records_components_kept_direction_and_detached_inputs():
    nets = _nets(14)
    x, y = nets["m0"], nets["m2"]
    s = measure("svcca-var=0.9-score")(x, y)
    for key, a in (("X", x), ("Y", y)):
        lam = np.linalg.svd(a - a.mean(0), compute_uv=False) ** 2
        want = int(np.searchsorted(np.cumsum(lam) / lam.sum(), 0.9) + 1)
        assert s.info.resolved[key] == {"components": want}
    r = measure("linear_regression")(x, y)
    assert r.info.direction == "row predicts column" and r.info.resolved == {}
    assert measure("linear_regression-reverse")(x, y).info.direction == "column predicts row"
    torch = pytest.importorskip("torch")
    t = torch.tensor(x, requires_grad=True)
    with pytest.warns(GradientDetachedWarning):
        d = measure("procrustes-distance=angular")(t, y)
    assert d.info.notes == ("detached tensors that required grad: X",)
    assert d.info.kind == "distance" and d.info.requested == "procrustes-distance=angular"


@pytest.mark.parametrize(
    ("name", "combines", "selves"),
    [
        ("procrustes-distance=euclidean", 3, 0),  # a distance: its diagonal is 0, not computed
        ("rsa-rdm=correlation-compare=tau_b", 3, 3),  # the diagonal from each network's sort
        ("cka-kernel=linear-hsic=lange-score", 6, 0),  # a similarity: diagonal computed
    ],
)
def test_pairwise_computes_no_diagonal_entry_it_knows(name, combines, selves):
    from dataclasses import replace

    nets = _nets(15, n=30)  # 3 networks
    m = measure(name)
    calls = {"combine": 0, "self": 0}

    def combine(a, b):
        calls["combine"] += 1
        return m.combine(a, b)

    def self_value(a):
        calls["self"] += 1
        return m.self_value(a)

    counted = replace(m, combine=combine, self_value=m.self_value and self_value)
    out = pairwise(nets, counted, n_jobs=1)
    assert (calls["combine"], calls["self"]) == (combines, selves)
    for i, a in enumerate(nets):
        assert out.values[i, i] == (0.0 if m.kind == "distance" else m(nets[a], nets[a]))
