"""The compare stage in blocks: same Dataset as the single-pass stage it replaced, a memory
bound that sets the block size, and resume per block (stale blocks are never reused)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from ensemble_lens import open_store
from ensemble_lens.config import load_config
from ensemble_lens.errors import ConfigError
from ensemble_lens.pipeline.compare import BlockPlan, block_bytes, plan_blocks, run_block
from ensemble_lens.pipeline.stages import StageContext, stage_similarity
from ensemble_lens.similarity import compute_moments, measure, pairwise, pairwise_permutation_test
from ensemble_lens.similarity._meta import MEASURE_KEYS

pytestmark = pytest.mark.filterwarnings("ignore::ensemble_lens.errors.EnsembleLensWarning")

METRICS = [
    "linear_cka",
    "mean_cca",
    "shape_distance",
    "pwcca",  # not symmetric, from moments
    "linear_predictivity",  # not symmetric, pair by pair
    "cka-kernel=rbf-hsic=gretton-score",  # per-network Gram states
    "linear_cka_debiased",
]


def _store(path, k=7, n=120):
    store = open_store(path, mode="w")
    store.write_probe(np.zeros((n, 1), np.float32), names=["x"])
    rng = np.random.default_rng(5)
    z = rng.normal(size=(n, 3))
    for i in range(k):
        d = 3 + i % 3
        x = np.tanh(z @ rng.normal(size=(3, d))) + 0.3 * rng.normal(size=(n, d))
        if i == 5:
            x[:, 1] = 0.5  # a dead unit
        store.write_activations(f"m{i}", "h", x.astype(np.float32))
    return store


def _ctx(store, executor=None, **similarity):
    from ensemble_lens.execution import SerialExecutor

    cfg = load_config({"name": "blocks", "similarity": {"metrics": METRICS, **similarity}})
    return StageContext(cfg=cfg, store=store, task=None, executor=executor or SerialExecutor())


def _todays_path(store, scfg) -> xr.Dataset:
    """The stage before blocks: every member in the driver, one pairwise call per metric."""
    data = {m: store.activations(m, "h") for m in store.complete_models}
    shared = compute_moments(data)
    out = {}
    for metric in scfg.metrics:
        name, kw = (
            ("linear_cka", {"debiased": True}) if metric.endswith("_debiased") else (metric, {})
        )
        moments = metric != "linear_cka_debiased" and measure(metric).moment is not None
        out[metric] = pairwise(shared if moments else data, name, **kw)
        if scfg.n_perm:
            out[f"{metric}_pvalue"] = pairwise_permutation_test(
                data, name, n_perm=scfg.n_perm, seed=scfg.seed, **kw
            )
    return xr.Dataset(out)


def _assert_same(got: xr.Dataset, want: xr.Dataset) -> None:
    assert sorted(got.data_vars) == sorted(want.data_vars)
    for var in want.data_vars:
        assert list(got[var].coords["model"].values) == list(want[var].coords["model"].values)
        # the measure's description is the same; per-call facts (dropped units, states...)
        # are pairwise's alone
        assert set(MEASURE_KEYS) <= set(got[var].attrs), var
        assert got[var].attrs == {k: want[var].attrs[k] for k in got[var].attrs}, var
        np.testing.assert_allclose(got[var].values, want[var].values, rtol=0, atol=1e-12)


@pytest.mark.slow
def test_blocks_equal_the_single_pass_stage(tmp_path):
    store = _store(tmp_path / "s.zarr")
    ctx = _ctx(store, block_memory="400kB", n_perm=3, seed=2)
    assert stage_similarity(ctx) == {"h": "written"}
    _assert_same(store.read_result("similarity", "h"), _todays_path(store, ctx.cfg.similarity))
    assert not (store.path / "similarity_blocks" / "h").exists()  # deleted once assembled
    assert stage_similarity(ctx) == {"h": "skipped"}


@pytest.mark.cluster
@pytest.mark.slow
def test_blocks_on_a_localcluster(tmp_path):
    from ensemble_lens.execution import make_executor

    store = _store(tmp_path / "s.zarr")
    with make_executor("local", workers=2) as ex:
        ctx = _ctx(store, ex)
        assert stage_similarity(ctx) == {"h": "written"}
    _assert_same(store.read_result("similarity", "h"), _todays_path(store, ctx.cfg.similarity))


def _plan(store, ctx) -> tuple[BlockPlan, dict]:
    from ensemble_lens.pipeline.compare import metric_specs, state_bytes

    ids, scfg = store.complete_models, ctx.cfg.similarity
    plan = plan_blocks(ids, 120, 5, state_bytes(store, ids[0], "h", scfg), 400_000, 1, "h")
    settings = {"specs": metric_specs(ctx.cfg.similarity), "n_perm": 0, "seed": 0, "k": 7}
    return plan, settings


def _tag(store, ctx) -> str:
    from ensemble_lens.config import stable_hash

    settings = ctx.cfg.similarity.model_dump(mode="json", exclude={"block_memory"})
    members = {m: None for m in store.complete_models}
    return stable_hash({"members": members, "similarity": settings})


def test_rerun_reuses_stored_blocks_of_the_same_tag_only(tmp_path):
    from ensemble_lens.pipeline.compare import compare_layer

    store = _store(tmp_path / "s.zarr")
    ctx = _ctx(store, block_memory=400_000)
    plan, settings = _plan(store, ctx)
    assert len(plan.groups) > 2
    tag = _tag(store, ctx)
    store.open_blocks("h")
    (ga, gb), (gc, gd) = plan.blocks()[0], plan.blocks()[1]
    for (a, b), t in [((ga, gb), tag), ((gc, gd), "stale")]:  # one current, one stale block
        rows, cols = plan.groups[a], (None if a == b else plan.groups[b])
        run_block(str(store.path), "h", (rows, cols), ([], []), settings, plan.key(a, b), t)
    garbage = store.read_block("h", plan.key(gc, gd)) * 0 + 7.0  # a stale block's values
    store.write_block("h", plan.key(gc, gd), garbage, store.block_attrs("h", plan.key(gc, gd)))
    outcome = compare_layer(ctx, "h", store.complete_models, tag)
    assert outcome == f"written (1 of {len(plan.blocks())} blocks reused)"
    _assert_same(store.read_result("similarity", "h"), _todays_path(store, ctx.cfg.similarity))


def test_blocks_of_other_members_are_recomputed(tmp_path):
    store = _store(tmp_path / "s.zarr")
    ctx = _ctx(store, block_memory=400_000, metrics=["linear_cka"])
    plan, settings = _plan(store, ctx)
    assert len(plan.groups) == 1
    store.open_blocks("h")
    first = plan.groups[0][:2]  # the key of the only block, with the right tag, other members
    run_block(
        str(store.path), "h", (first, None), ([], []), settings, plan.key(0, 0), _tag(store, ctx)
    )
    assert stage_similarity(ctx) == {"h": "written"}
    _assert_same(store.read_result("similarity", "h"), _todays_path(store, ctx.cfg.similarity))


def test_block_size_follows_the_memory_bound_not_k():
    sizes = []
    for k in (100, 1000, 5000):
        ids = [f"m{i}" for i in range(k)]
        plan = plan_blocks(ids, 2000, 8, 0, 50_000_000, 1, "h")
        assert plan.block_bytes <= 50_000_000
        assert block_bytes(2 * len(plan.groups[0]) + 2, 2000, 8, 0) > 50_000_000  # largest
        assert [m for g in plan.groups for m in g] == ids
        sizes.append(len(plan.groups[0]))
    assert sizes[0] == sizes[1] == sizes[2] < 100
    assert len(plan_blocks(ids, 2000, 8, 0, 10**12, 1, "h").groups[0]) == 256  # MAX_GROUP
    four = plan_blocks(ids[:40], 2000, 8, 0, 10**12, 4, "h")  # 4 workers: >= 8 blocks
    assert len(four.blocks()) >= 8


def test_a_bound_below_one_pair_is_refused_before_anything_is_written(tmp_path):
    store = _store(tmp_path / "s.zarr")
    with pytest.raises(
        ConfigError, match=r"layer 'h': similarity.block_memory is 0.01 MB, expected"
    ):
        stage_similarity(_ctx(store, block_memory="10kB"))
    assert store.result_tag("similarity", "h") is None
    with pytest.raises(ConfigError, match="expected a size like '1GB' or '512MiB', got '1XB'"):
        _ctx(store, block_memory="1XB")


def test_warnings_of_all_blocks_come_once(tmp_path):
    store = _store(tmp_path / "s.zarr")
    ctx = _ctx(store, block_memory=200_000, metrics=["linear_cka", "linear_predictivity"])
    with pytest.warns(Warning) as rec:
        stage_similarity(ctx)
    messages = [str(w.message) for w in rec if "'m5'" in str(w.message)]
    # m5 is in several blocks and two measures: one warning, in the library's one format
    assert messages == ["dropped constant (dead) units: 'm5' 1 of 5"]
