"""Judging without a truth: seeds, drop-one-member stability, extrapolation, member skill.

The consensus Datasets here are built by hand (the layout of docs/CONTRACTS.md "Consensus
results") so that the answer is known; the search is the real sparse backend.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import xarray as xr

from ensemble_lens.distill import DistillSettings, distill_consensus
from ensemble_lens.distill.extrapolation import REFERENCE_CONSENSUS
from ensemble_lens.distill.verdict import (
    NO_TRUTH,
    drop_one_member,
    extrapolation_failure,
    front_knee,
    knee_failure,
    support_failure,
)

x1, x2 = sympy.symbols("x1 x2")
SETTINGS = DistillSettings(backend="sparse", seeds=(0, 1))


def _study(law, n=600, n_ext=150, members=4, noise=1e-3, seed=0, ext_range=(1.5, 2.5)):
    """Inputs, split labels and a one-component consensus Dataset whose members hold ``law``
    (with small independent noise); the last ``n_ext`` samples lie beyond the fitted range."""
    rng = np.random.default_rng(seed)
    X = np.r_[rng.uniform(-1, 1, (n, 2)), rng.uniform(*ext_range, (n_ext, 2))]
    split = np.array(
        ["fit"] * (n * 3 // 4) + ["test"] * (n - n * 3 // 4) + ["extrapolation"] * n_ext
    )
    y = law(X)
    M = np.stack([y + noise * rng.normal(size=len(y)) for _ in range(members)])[:, :, None]
    ds = xr.Dataset(
        {
            "components": (("sample", "component"), M.mean(0)),
            "member_scores": (("model", "sample", "component"), M),
            "variance": (("component",), [1.0]),
            "is_consensus": (("component",), [True]),
        },
        coords={"model": [f"s{k}" for k in range(members)], "component": [0]},
    )
    return ds, X, split


def test_without_truth_a_law_is_judged_by_seeds_members_and_extrapolation():
    ds, X, split = _study(lambda X: 1.5 * X[:, 0] * X[:, 1] + 0.5 * X[:, 1])
    (rec,) = distill_consensus(ds, X, ["x1", "x2"], split, layer="h", settings=SETTINGS).records
    assert sympy.sympify(rec["expression"]).free_symbols == {x1, x2}
    assert rec["ground_truth"] is False and rec["truth_note"] == NO_TRUTH
    assert rec["exact_recovery"] is None and rec["truth_name"] is None
    assert rec["is_result"] is True and rec["flags"] == []
    assert rec["seed_agreement"] == 1.0 and rec["seeds_agreeing"] == [0, 1]
    assert rec["r2_extrapolation"] > 0.999  # the members' own values beyond the fitted range
    assert rec["stable"] is True and set(rec["drop_one_r2"]) == {"s0", "s1", "s2", "s3"}
    assert "bootstrap_agreement" not in rec  # off by default: no extra searches
    assert rec["constants"]["pinned"]
    values = sorted(c["median"] for c in rec["constants"]["constants"])
    np.testing.assert_allclose(values, [0.5, 1.5], atol=0.01)
    assert rec["constants"]["extrapolation_reference"] == REFERENCE_CONSENSUS
    assert rec["exact_recovery_best"] is None  # no truth to judge against


def test_with_truth_the_record_judges_the_best_supported_constants_too():
    ds, X, split = _study(lambda X: 1.5 * X[:, 0] * X[:, 1] + 0.5 * X[:, 1])
    truths = {"u": 3 * x1 * x2 + x2}
    (rec,) = distill_consensus(
        ds, X, ["x1", "x2"], split, layer="h", settings=SETTINGS, truths=truths
    ).records
    assert rec["exact_recovery"] is True and rec["exact_recovery_best"] is True
    assert all(c["verdict"] == "pinned" for c in rec["constants"]["constants"])
    assert rec["truth_verdict"] == "exact"  # the headline, from the networks' constants
    assert rec["constants_truth"]["form_r2"] > 0.999


def test_a_formula_that_fails_beyond_the_range_is_not_a_result():
    # members saturate outside [-1, 1]; inside, tanh(x1 / 4) is a straight line to 1e-3
    ds, X, split = _study(lambda X: np.tanh(X[:, 0] / 4) + 0.0 * X[:, 1], ext_range=(6, 9))
    (rec,) = distill_consensus(ds, X, ["x1", "x2"], split, layer="h", settings=SETTINGS).records
    assert rec["r2_test"] > 0.99 and rec["r2_extrapolation"] < 0
    assert rec["expression"] is None and rec["rejected_expression"] is not None
    assert rec["is_result"] is False and "extrapolation" in rec["flags"]
    assert "not presented as a result" in rec["reason"]


def test_unskilled_members_stop_the_layer_short_of_formulas():
    ds, X, split = _study(lambda X: X[:, 0])
    ds.attrs.update(
        member_skill="unskilled",
        member_skill_reason="0 of 4 members predict their own targets",
        members_skilled=[],
        members_unskilled=["s0", "s1", "s2", "s3"],
        median_val_r2=-0.01,
    )
    (rec,) = distill_consensus(ds, X, ["x1", "x2"], split, layer="h", settings=SETTINGS).records
    assert rec["expression"] is None and rec["is_result"] is False
    assert rec["reason"].startswith("0 of 4 members predict their own targets")
    assert rec["members_unskilled"] == ["s0", "s1", "s2", "s3"]


def test_dropping_the_one_member_that_carries_the_curvature_is_flagged():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (300, 1))
    members = np.stack([X[:, 0], X[:, 0], X[:, 0], 3 * X[:, 0] ** 2])
    expr = sympy.Float(0.7) * x1 + sympy.Float(0.5) * x1**2
    out = drop_one_member(expr, X, members, list("abcd"), ["x1"], tolerance=0.02)
    assert out["stable"] is True  # the form with refitted constants explains every mean
    lone = drop_one_member(sympy.Float(0.7) * x1, X, members, list("abcd"), ["x1"], tolerance=0.02)
    assert lone["stable"] is False
    assert lone["drop_one_r2"]["d"] > lone["drop_one_reference_r2"] > lone["drop_one_r2"]["a"]
    assert (
        drop_one_member(expr, X, members[:2], list("ab"), ["x1"], tolerance=0.02)["stable"] is None
    )


@pytest.mark.parametrize(
    ("r2_test", "r2_ext", "fails"),
    [(0.99, 0.6, False), (0.99, 0.48, True), (0.99, -0.1, True), (0.4, 0.0, False),
     (0.99, None, False)],
)  # fmt: skip
def test_far_below_means_negative_or_more_than_the_drop(r2_test, r2_ext, fails):
    assert (extrapolation_failure(r2_test, r2_ext, 0.5) is not None) is fails


def test_a_probe_that_does_not_fit_the_consensus_is_one_clear_error():
    from ensemble_lens.errors import ShapeError

    ds, X, split = _study(lambda X: X[:, 0])
    with pytest.raises(ShapeError, match=r"expected inputs X of shape \(750, variable\)"):
        distill_consensus(ds, X[:10], ["x1", "x2"], split, layer="h")
    with pytest.raises(ShapeError, match=r"one name per input column \(2\), got 1 names"):
        distill_consensus(ds, X, ["x1"], split, layer="h")
    with pytest.raises(ShapeError, match=r"split labels of shape \(750,\), got \(3,\)"):
        distill_consensus(ds, X, ["x1", "x2"], split[:3], layer="h")
    with pytest.raises(ShapeError, match="no 'test' sample"):
        distill_consensus(ds, X, ["x1", "x2"], np.full(750, "fit"), layer="h")


def test_extrapolation_target_is_the_closest_truth_or_the_mixture():
    from ensemble_lens.distill import Extrapolation

    rng = np.random.default_rng(5)
    u, v, ue, ve = (rng.normal(size=300) for _ in range(4))
    ext = Extrapolation(X=np.zeros((300, 1)), truth_test={"u": u, "v": v}, truth={"u": ue, "v": ve})
    Y = np.c_[5 * u - 1, 2 * u + 3 * v + 1, 5 * u + 0.01 * v]
    got = ext.targets(Y)
    np.testing.assert_allclose(got[:, 0], 5 * ue - 1, atol=1e-9)
    np.testing.assert_allclose(got[:, 1], 2 * ue + 3 * ve + 1, atol=1e-9)
    np.testing.assert_allclose(got[:, 2], 5 * ue, atol=0.05)  # a trace of v is not a mixture


def test_members_are_put_on_the_consensus_scale_keeping_their_differences():
    from ensemble_lens.distill.verdict import on_consensus_scale

    y = np.random.default_rng(2).normal(size=200)
    members = np.stack([3 * y + 1, 3.3 * y + 1, 2.7 * y + 1])  # aligned frame: 3x, offset 1
    got = on_consensus_scale(members, (y - y.mean()) / y.std())
    np.testing.assert_allclose(got.mean(0), (y - y.mean()) / y.std(), atol=1e-9)
    np.testing.assert_allclose(np.std(got, axis=1) / np.std(got[0]), [1, 1.1, 0.9], rtol=1e-9)


def test_a_formula_the_members_do_not_carry_is_not_a_result():
    # the consensus holds the law exactly, but each member's own component is mostly its own
    # noise: the formula explains the average, not what the members carry (support 0)
    ds, X, split = _study(lambda X: X[:, 0] * X[:, 1], noise=3.0)
    y = X[:, 0] * X[:, 1]
    ds["components"] = (("sample", "component"), y[:, None])
    (rec,) = distill_consensus(ds, X, ["x1", "x2"], split, layer="h", settings=SETTINGS).records
    assert rec["r2_test"] > 0.99 and rec["support"] < 0.5
    assert rec["is_result"] is False and "support" in rec["flags"]
    assert rec["expression"] is None and rec["rejected_expression"] is not None
    assert rec["reason"].startswith(f"support {rec['support']:.2f} is below 0.5")
    kept = DistillSettings(backend="sparse", seeds=(0, 1), min_support=0.0)
    (rec,) = distill_consensus(ds, X, ["x1", "x2"], split, layer="h", settings=kept).records
    assert rec["is_result"] is True  # the threshold is the study's to set


@pytest.mark.parametrize(
    ("support", "fails"), [(0.0, True), (0.49, True), (0.5, False), (1.0, False), (None, False)]
)
def test_support_below_the_share_fails(support, fails):
    assert (support_failure(support, 0.5) is not None) is fails


@pytest.mark.slow
def test_member_bootstrap_finds_the_form_again_or_flags_it():
    boot = DistillSettings(backend="sparse", seeds=(0,), bootstrap=4)
    ds, X, split = _study(lambda X: 1.5 * X[:, 0] * X[:, 1] + 0.5 * X[:, 1])
    (rec,) = distill_consensus(ds, X, ["x1", "x2"], split, layer="h", settings=boot).records
    assert rec["bootstrap_resamples"] == 4 and rec["bootstrap_agreement"] == 1.0
    assert rec["bootstrap_forms"] == 1 and "bootstrap" not in rec["flags"]
    # each member holds the shared law plus a term of its own: the mean of all four has
    # every term, most resamples miss one
    ds, X, split = _study(lambda X: X[:, 0] * X[:, 1])
    own = [X[:, 0] ** 2, X[:, 1] ** 2, X[:, 0], X[:, 1]]
    M = ds["member_scores"].values + 0.6 * np.stack(own)[:, :, None]
    ds["member_scores"] = (("model", "sample", "component"), M)
    ds["components"] = (("sample", "component"), M.mean(0))
    (rec,) = distill_consensus(ds, X, ["x1", "x2"], split, layer="h", settings=boot).records
    assert rec["bootstrap_agreement"] < 0.8 and rec["bootstrap_forms"] > 1
    assert "bootstrap" in rec["flags"] and "member resamples" in rec["bootstrap_note"]


def _front(sizes, r2s):
    return [{"complexity": c, "loss": 1.0 - r} for c, r in zip(sizes, r2s, strict=True)]


def test_front_knee_is_the_steepest_step_up_to_the_chosen_formula():
    # a law: the error drops 480x when the formula reaches the law's size (3 nodes more)
    law = _front([3, 4, 7, 12], [0.05, 0.67, 0.9993, 0.9994])
    assert front_knee(law, 7) == pytest.approx(np.log(0.33 / 0.0007) / 3)
    assert knee_failure(front_knee(law, 7), 0.5) is None
    # a smooth fit: every node buys a little (the shuffled-target null of the README)
    sizes = [3, 4, 7, 13, 20, 26, 29, 31, 33, 36, 40]
    r2s = [0.163, 0.287, 0.472, 0.591, 0.776, 0.900, 0.922, 0.953, 0.976, 0.983, 0.985]
    knee = front_knee(_front(sizes, r2s), 36)
    assert 0.3 < knee < 0.4
    assert knee_failure(knee, 0.5).startswith("no knee on the search front (steepest step 0.3")
    assert knee_failure(knee, 0.0) is None  # switched off
    assert front_knee(law[:1], 3) is None and front_knee(law, None) is None  # nothing to measure
    assert front_knee(law, 4) == pytest.approx(np.log(0.95 / 0.33))  # steps beyond do not count


@pytest.mark.slow
def test_a_formula_without_a_knee_is_not_a_result():
    ds, X, split = _study(lambda X: 1.5 * X[:, 0] * X[:, 1] + 0.5 * X[:, 1])
    (rec,) = distill_consensus(ds, X, ["x1", "x2"], split, layer="h", settings=SETTINGS).records
    assert rec["is_result"] is True and rec["knee"] > 2  # a law: a sharp knee
    strict = DistillSettings(backend="sparse", seeds=(0, 1), min_knee=50.0)
    (rec,) = distill_consensus(ds, X, ["x1", "x2"], split, layer="h", settings=strict).records
    assert rec["is_result"] is False and rec["flags"] == ["no_knee"]
    assert rec["expression"] is None and rec["reason"].startswith("no knee")
