"""find_consensus: the shared components of a synthetic ensemble, the null, the contract."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import xarray as xr
from synth_ensembles import canonical_correlations, mixed_ensemble, well_conditioned

from ensemble_lens.consensus import consensus_table, find_consensus, validation_weights
from ensemble_lens.errors import ShapeError

N, N_FIT, N_NULL = 1500, 900, 40
SPLIT = np.where(np.arange(N) < N_FIT, "fit", "test")


@pytest.fixture(scope="module")
def ensemble():
    return mixed_ensemble(K=6, n=N, seed=1)


@pytest.fixture(scope="module")
def result(ensemble):
    _, nets = ensemble
    named = {f"seed{k}": x for k, x in enumerate(nets)}
    # 0.999: the default 0.99 can drop a weak PC that still carries part of a shared latent
    return find_consensus(named, split=SPLIT, n_null=N_NULL, seed=0, variance_keep=0.999)


def test_dataset_follows_the_contract(result):
    assert set(result.data_vars) == {
        "components",
        "member_scores",
        "sharedness",
        "variance",
        "null_threshold",
        "member_support",
        "member_weight",
        "support",
        "is_consensus",
    }
    c = result.sizes["component"]
    dims = {name: result[name].dims for name in result.data_vars}
    assert dims == {
        "components": ("sample", "component"),
        "member_scores": ("model", "sample", "component"),
        "sharedness": ("component",),
        "variance": ("component",),
        "null_threshold": ("component",),
        "member_support": ("model", "component"),
        "member_weight": ("model",),
        "support": ("component",),
        "is_consensus": ("component",),
    }
    assert result.sizes == {"sample": N, "component": c, "model": 6}
    assert list(result.model.values) == [f"seed{k}" for k in range(6)]
    assert result["member_support"].dtype == bool and result["is_consensus"].dtype == bool
    for key in ("n_components_kept", "p_support", "null_method"):
        assert key in result.attrs
    assert result.attrs["null_method"] == "permutation"
    np.testing.assert_allclose(result["member_weight"].values, 1 / 6)
    assert result.attrs["member_weighting"] == "equal"
    np.testing.assert_allclose(result["components"].std(axis=0), 1.0, rtol=1e-10)


def test_finds_exactly_the_shared_components(ensemble, result):
    z, _ = ensemble
    assert int(result["is_consensus"].sum()) == 3
    assert result.attrs["n_components_kept"] == 3
    assert result["is_consensus"].values[:3].all()  # sorted by sharedness
    assert np.all(np.diff(result["sharedness"].values) <= 0)
    np.testing.assert_allclose(result["support"].values[:3], 1.0)
    assert np.all(result["support"].values[3:] < 0.8)
    assert np.all(result["sharedness"].values[:3] > 0.9)
    assert np.all(result["sharedness"].values[3:] < result["null_threshold"].values[3:])
    comps = result["components"].values[:, :3]
    assert canonical_correlations(comps[N_FIT:], z[N_FIT:]).min() > 0.95
    for k in range(6):
        member = result["member_scores"].values[k, N_FIT:, :3]
        assert canonical_correlations(member, z[N_FIT:]).min() > 0.9


def test_null_ensemble_has_no_consensus():
    rng = np.random.default_rng(5)
    nulls = [rng.normal(size=(N, int(rng.integers(10, 31)))) for _ in range(6)]
    ds = find_consensus(nulls, split=SPLIT, n_null=N_NULL, seed=1)
    assert int(ds["is_consensus"].sum()) == 0
    assert ds.attrs["n_components_kept"] == 0
    assert np.all(ds["support"].values < 0.8)


def test_procrustes_method_finds_the_shared_components():
    z, nets = mixed_ensemble(K=5, n=N, seed=2)
    # Procrustes keeps the highest-variance PCs: give the shared latents most of the variance
    nets = [np.c_[4 * z, x] for x in nets]
    ds = find_consensus(nets, split=SPLIT, method="procrustes", n_components=5, n_null=N_NULL)
    assert int(ds["is_consensus"].sum()) == 3
    assert ds.attrs["method"] == "procrustes"


def test_shared_but_negligible_variance_is_not_consensus():
    rng = np.random.default_rng(8)
    z = rng.normal(size=(N, 1))
    nets = []
    for _ in range(5):
        src = np.c_[rng.normal(size=(N, 9)), 0.05 * z + 1e-3 * rng.normal(size=(N, 1))]
        nets.append(src @ well_conditioned(10, rng))
    ds = find_consensus(nets, split=SPLIT, variance_keep=1.0, n_null=N_NULL)
    assert ds["sharedness"].values[0] > 0.95  # every network agrees on it ...
    assert ds["variance"].values[0] < 0.01  # ... but it carries almost no variance
    assert int(ds["is_consensus"].sum()) == 0
    kept = find_consensus(nets, split=SPLIT, variance_keep=1.0, n_null=N_NULL, min_variance=0.0)
    assert int(kept["is_consensus"].sum()) == 1


def test_untrained_null_rejects_what_untrained_networks_share(ensemble):
    z, nets = ensemble
    rng = np.random.default_rng(4)
    # "untrained" networks that still carry the shared latents (e.g. input-driven structure)
    untrained = [np.c_[z, rng.normal(size=(N, 8))] @ well_conditioned(11, rng) for _ in range(4)]
    ds = find_consensus(nets, split=SPLIT, n_null=10, untrained=untrained)
    assert ds.attrs["null_method"] == "permutation+untrained"
    assert (ds["untrained_r2"].values[:3] > 0.95).all()
    assert int(ds["is_consensus"].sum()) == 0
    # untrained networks that carry only the first latent: the other two stay consensus. The
    # three shared latents tie in canonical correlation, so the aligned basis may mix a little
    # of z1/z2 into the mostly-z0 component; that learned part can keep it, which is correct
    partial = [
        np.c_[z[:, :1], rng.normal(size=(N, 8))] @ well_conditioned(9, rng) for _ in range(4)
    ]
    ds = find_consensus(nets, split=SPLIT, n_null=10, untrained=partial)
    kept = ds["components"].values[:, ds["is_consensus"].values]
    assert kept.shape[1] >= 2
    assert (canonical_correlations(kept, z[:, 1:]) > 0.95).all()
    assert not (ds["is_consensus"] & (ds["learned_share"] < 0.02)).any()
    fresh = [rng.normal(size=(N, 12)) for _ in range(4)]
    ds = find_consensus(nets, split=SPLIT, n_null=10, untrained=fresh)
    assert (ds["untrained_r2"].values[:3] < 0.1).all()
    assert int(ds["is_consensus"].sum()) == 3


def test_untrained_null_keeps_a_learned_remainder_of_an_input_passthrough():
    # spring-like: trained networks carry f = x + 0.3 (x^2 - 1), untrained ones carry x and
    # their own nonlinear junk. Untrained networks reproduce ~96% of f (over 0.9 of what the
    # trained ones do: the reproduction test alone drops it), but the remainder is shared by
    # every trained network and by nothing untrained, so f is learned
    rng = np.random.default_rng(11)
    x = rng.normal(size=(N, 1))
    f = x + 0.3 * (x**2 - 1)
    nets = [
        np.c_[f, rng.normal(size=(N, 6))] @ well_conditioned(7, rng)
        + 0.02 * rng.normal(size=(N, 7))
        for _ in range(5)
    ]

    def untrained_net():
        junk = np.tanh(x * rng.normal(size=(1, 3)) + rng.normal(size=(1, 3)))
        return np.c_[x, junk, rng.normal(size=(N, 4))] @ well_conditioned(8, rng)

    untrained = [untrained_net() for _ in range(5)]
    ds = find_consensus(nets, split=SPLIT, n_null=10, untrained=untrained)
    assert int(ds["is_consensus"].sum()) == 1
    assert ds["untrained_r2"].values[0] >= 0.9 * ds["trained_r2"].values[0]
    assert ds["learned_share"].values[0] > 0.02
    assert ds["learned_agreement"].values[0] > ds.attrs["untrained_threshold"]
    assert bool(ds["is_learned"].values[0])
    table = consensus_table(ds).splitlines()
    assert table[0].split()[-4:] == ["untrained", "r2", "remainder", "agr"]
    assert table[1].split()[5:] == [
        "yes",
        f"{ds['untrained_r2'].values[0]:.3f}",
        f"{ds['learned_agreement'].values[0]:.3f}",
    ]
    # with the learned-residual test switched off only the reproduction test remains
    off = find_consensus(nets, split=SPLIT, n_null=10, untrained=untrained, min_learned_share=0.99)
    assert int(off["is_consensus"].sum()) == 0
    # fewer than 3 untrained networks: no calibration for the residual test, reproduction only
    two = find_consensus(nets, split=SPLIT, n_null=10, untrained=untrained[:2])
    assert two.attrs["untrained_threshold"] == 1.0
    assert int(two["is_consensus"].sum()) == 0


def test_executor_and_boolean_split_give_the_same_result(ensemble, result):
    _, nets = ensemble
    named = {f"seed{k}": x for k, x in enumerate(nets)}
    with ThreadPoolExecutor(2) as ex:
        ds = find_consensus(
            named, split=np.arange(N) < N_FIT, n_null=N_NULL, variance_keep=0.999, executor=ex
        )
    xr.testing.assert_allclose(ds, result)


def test_sample_ids_come_from_xarray_inputs():
    _, nets = mixed_ensemble(K=3, n=300, seed=3)
    ids = np.arange(300) * 10
    arrays = [xr.DataArray(x, dims=("sample", "unit"), coords={"sample": ids}) for x in nets]
    ds = find_consensus(arrays, split=np.arange(300) < 200, n_null=5)
    np.testing.assert_array_equal(ds.sample.values, ids)


def test_consensus_table(result):
    text = consensus_table(result)
    lines = text.splitlines()
    assert lines[0].split() == [
        "component",
        "sharedness",
        "variance",
        "null",
        "thr",
        "support",
        "consensus",
    ]
    assert len(lines) == 1 + result.sizes["component"]
    assert [line.split()[-1] for line in lines[1:]].count("yes") == 3
    assert lines[1].split()[0] == "0" and lines[1].split()[-1] == "yes"


def _graded_ensemble(noise: list[float], n: int = N, seed: int = 3):
    """Networks carrying one shared latent z, each with its own private units and its own
    level of noise on z (a better or worse trained member)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    nets = []
    for s in noise:
        src = np.c_[z + s * rng.normal(size=n), rng.normal(size=(n, 5))]
        nets.append(src @ well_conditioned(6, rng))
    return z, nets


def test_member_weights_lean_the_consensus_on_the_precise_members():
    noise = [0.05, 0.6, 0.6, 0.6, 0.6]
    z, nets = _graded_ensemble(noise)
    equal = find_consensus(nets, split=SPLIT, n_null=5)
    precision = [1 / s**2 for s in noise]
    weighted = find_consensus(nets, split=SPLIT, n_null=5, member_weights=precision)
    w = np.array(precision) / sum(precision)

    def r2_with_truth(ds):
        top = ds["components"].values[:, 0]
        return np.corrcoef(top, z)[0, 1] ** 2

    # five members averaged: noise variance 0.05**2 + 4 * 0.36 over 25 -> R^2 ~ 0.95;
    # precision-weighted: close to the one precise member (~0.997)
    assert r2_with_truth(equal) < 0.97
    assert r2_with_truth(weighted) > 0.99
    np.testing.assert_allclose(
        weighted["member_weight"].values, np.array(precision) / sum(precision)
    )
    assert weighted.attrs["member_weighting"] == "weighted"
    assert weighted.attrs["n_effective_members"] == pytest.approx(1 / np.sum(w**2))
    assert 1.0 < weighted.attrs["n_effective_members"] < 1.1 < equal.attrs["n_effective_members"]
    # which components are consensus does not depend on the weights
    np.testing.assert_array_equal(equal["is_consensus"].values, weighted["is_consensus"].values)
    np.testing.assert_array_equal(equal["support"].values, weighted["support"].values)
    assert consensus_table(weighted).splitlines()[-1].startswith("member weights: model0 0.9")


def test_member_weights_do_not_change_the_untrained_null():
    z, nets = _graded_ensemble([0.05, 0.6, 0.6, 0.6, 0.6])
    rng = np.random.default_rng(8)
    # twins carrying a warped copy of the latent: the untrained test has numbers to compare
    twins = [
        np.c_[np.tanh(z), rng.normal(size=(N, 5))] @ well_conditioned(6, rng) for _ in range(3)
    ]
    kw = {"split": SPLIT, "n_null": 5, "untrained": twins}
    equal = find_consensus(nets, **kw)
    weighted = find_consensus(nets, member_weights=[400, 3, 3, 3, 3], **kw)
    for name in ("trained_r2", "untrained_r2", "learned_agreement", "is_learned", "is_consensus"):
        np.testing.assert_array_equal(equal[name].values, weighted[name].values)
    assert not np.allclose(equal["components"].values, weighted["components"].values)


def test_a_member_that_does_not_support_a_component_has_no_weight_in_it():
    z, nets = _graded_ensemble([0.05, 0.3, 0.3, 0.3])
    rng = np.random.default_rng(9)
    nets.append(rng.normal(size=(N, 6)))  # a member that learned nothing
    ds = find_consensus(nets, split=SPLIT, n_null=5, member_weights=[1, 1, 1, 1, 1000])
    assert bool(ds["is_consensus"].values[0]) and not bool(ds["member_support"].values[4, 0])
    # it would dominate the mean with its weight of 0.996; left out, the component is the
    # equal mean of the four others (noise 0.05, 0.3, 0.3, 0.3: R^2 with z about 0.98)
    assert np.corrcoef(ds["components"].values[:, 0], z)[0, 1] ** 2 > 0.97
    even = find_consensus(nets, split=SPLIT, n_null=5)
    np.testing.assert_allclose(ds["components"].values[:, 0], even["components"].values[:, 0])


def test_member_weights_by_name_and_their_errors():
    _, nets = _graded_ensemble([0.1, 0.1, 0.1], n=600)
    split = np.where(np.arange(600) < 400, "fit", "test")
    named = dict(zip("abc", nets, strict=True))
    ds = find_consensus(named, split=split, n_null=2, member_weights={"c": 2, "a": 1, "b": 1})
    np.testing.assert_allclose(ds["member_weight"].values, [0.25, 0.25, 0.5])
    with pytest.raises(
        ValueError,
        match=r"member_weights: expected one weight per model .*"
        r"missing \['c'\], unknown \['d'\]",
    ):
        find_consensus(named, split=split, n_null=1, member_weights={"a": 1, "b": 1, "d": 1})
    with pytest.raises(ShapeError, match=r"member_weights: expected 3 weights .* got shape \(2,\)"):
        find_consensus(named, split=split, n_null=1, member_weights=[1, 2])
    with pytest.raises(ValueError, match=r"model 'b': expected a finite weight >= 0, got nan"):
        find_consensus(named, split=split, n_null=1, member_weights=[1, np.nan, 1])
    with pytest.raises(ValueError, match=r"member_weights: expected at least one positive weight"):
        find_consensus(named, split=split, n_null=1, member_weights=[0, 0, 0])
    for bad, shown in ((-1.0, "-1.0"), (np.inf, "inf")):
        with pytest.raises(
            ValueError, match=rf"model 'c': expected a finite weight >= 0, got {shown}"
        ):
            find_consensus(named, split=split, n_null=1, member_weights=[1, 1, bad])
    with pytest.raises(ValueError, match=r"model 'a': expected a number, got 'heavy'"):
        find_consensus(named, split=split, n_null=1, member_weights={"a": "heavy", "b": 1, "c": 1})
    with pytest.raises(ValueError, match=r"model 'b': expected a number, got True"):
        find_consensus(named, split=split, n_null=1, member_weights={"a": 1, "b": True, "c": 1})
    with pytest.raises(ValueError, match=r"missing \['model2'\], unknown \['2'\]"):
        find_consensus(nets, split=split, n_null=1, member_weights={"model0": 1, "model1": 1, 2: 1})


def test_validation_weights():
    w = validation_weights({"a": {"val_r2": 0.99}, "b": {"val_r2": 0.999}, "c": {"val_r2": 1.0}})
    np.testing.assert_allclose([w["a"], w["b"], w["c"]], [100, 1000, 1e6])
    assert validation_weights({"a": {"val_r2": 0.9}, "b": {"val_loss": 0.1}}) is None
    assert validation_weights({"a": {"val_r2": float("nan")}}) is None
    assert validation_weights({"a": None}) is None
    assert validation_weights({"a": {"val_r2": True}}) is None
    with pytest.raises(ValueError, match=r"floor: expected a positive error share, got 0"):
        validation_weights({"a": {"val_r2": 1.0}}, floor=0)


def test_errors(ensemble):
    _, nets = ensemble
    with pytest.raises(ShapeError, match=r"split: expected shape \(1500,\) like the activations"):
        find_consensus(nets, split=SPLIT[:10])
    with pytest.raises(
        ShapeError, match=r"split: expected only 'fit' and 'test' labels, got \['val'\]"
    ):
        find_consensus(nets, split=np.where(SPLIT == "fit", "fit", "val"))
    with pytest.raises(ShapeError, match=r"at least 3 fit and 3 test samples, got 1500 fit and 0"):
        find_consensus(nets, split=np.ones(N, dtype=bool))
    with pytest.raises(ShapeError, match=r"model 'a' has 1500 samples but model 'c' has 1499"):
        find_consensus({"a": nets[0], "b": nets[1], "c": nets[2][:-1]}, split=SPLIT)
    with pytest.raises(ShapeError, match=r"untrained: expected 1500 samples like the activations"):
        find_consensus(nets, split=SPLIT, n_null=1, untrained=[x[:-1] for x in nets[:2]])
    with pytest.raises(ValueError, match=r"n_null: expected a positive number of refits, got 0"):
        find_consensus(nets, split=SPLIT, n_null=0)
    with pytest.raises(ValueError, match=r"alpha: expected a number in \(0, 1\), got 1.5"):
        find_consensus(nets, split=SPLIT, alpha=1.5)
    with pytest.raises(ValueError, match=r"p_support: expected a number in \(0, 1\], got 0"):
        find_consensus(nets, split=SPLIT, p_support=0)
    with pytest.raises(ValueError, match=r"method: expected 'gcca' or 'procrustes', got 'pca'"):
        find_consensus(nets, split=SPLIT, method="pca")
    with pytest.raises(ValueError, match=r"max_untrained_r2: expected a number in \(0, 1\]"):
        find_consensus(nets, split=SPLIT, max_untrained_r2=0)
    with pytest.raises(ValueError, match=r"min_learned_share: expected a number in \[0, 1\)"):
        find_consensus(nets, split=SPLIT, min_learned_share=1.0)


def test_a_dead_untrained_network_is_left_out_not_an_error(ensemble, caplog):
    _, nets = ensemble
    rng = np.random.default_rng(6)
    twins = [rng.normal(size=(N, 8)) for _ in range(3)] + [np.zeros((N, 8))]
    with caplog.at_level("WARNING", logger="ensemble_lens.consensus.untrained"):
        ds = find_consensus(nets, split=SPLIT, n_null=5, untrained=twins)
    assert "dead at initialisation" in caplog.text
    assert int(ds["is_consensus"].sum()) == 3
    assert ds.attrs["untrained_threshold"] < 1.0  # three live twins still calibrate it


def test_extrapolation_samples_take_no_part_but_get_scores():
    _, nets = mixed_ensemble(K=4, n=N + 200, seed=3)
    _, twins = mixed_ensemble(K=3, n=N + 200, seed=4)
    split = np.r_[SPLIT, np.full(200, "extrapolation")]
    kw = {"n_null": 10, "seed": 0, "variance_keep": 0.999}
    with_ext = find_consensus(nets, split=split, untrained=twins, **kw)
    without = find_consensus(
        [x[:N] for x in nets], split=SPLIT, untrained=[u[:N] for u in twins], **kw
    )
    assert with_ext.sizes["sample"] == N + 200 and with_ext.attrs["n_extrapolation"] == 200
    assert with_ext.attrs["n_test"] == without.attrs["n_test"] == N - N_FIT
    np.testing.assert_array_equal(with_ext["is_consensus"], without["is_consensus"])
    for name in ("sharedness", "untrained_r2", "learned_agreement"):
        np.testing.assert_allclose(with_ext[name], without[name], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        with_ext["member_scores"][:, :N], without["member_scores"], rtol=1e-9, atol=1e-9
    )
    assert np.isfinite(with_ext["components"].values[N:]).all()
