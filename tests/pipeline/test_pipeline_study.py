"""Whole studies of a user-defined task, run serially: stages, tags, resume, formulas."""

import numpy as np
import pytest
from user_tasks import tiny_config

from ensemble_lens import open_store, run_study
from ensemble_lens.errors import ConfigError


@pytest.mark.slow
def test_user_task_study_end_to_end(tmp_path, user_task_path):
    store_path = tmp_path / "s.zarr"
    result = run_study(tiny_config(store_path))
    store = open_store(store_path)
    assert store.complete_models == ["s0", "s1", "s2"]
    for m in store.complete_models:
        attrs = store.model_attrs(m)
        assert attrs["source"] == "trained" and attrs["metrics"]["val_r2"] > 0.9
        assert store.activations(m, "latent").shape == (600, 2)
        assert len(store.checkpoint(m)) > 1000
    sim = store.read_result("similarity", "latent")
    assert set(sim.data_vars) == {"linear_cka", "procrustes_similarity"}
    np.testing.assert_allclose(np.diag(sim["linear_cka"].values), 1.0, atol=1e-10)
    cons = store.read_result("consensus", "latent")
    assert int(cons["is_consensus"].sum()) >= 1
    # the consensus leans on each member by its precision on held-out data, 1 / (1 - val_r2)
    err = np.array([1 - store.model_attrs(m)["metrics"]["val_r2"] for m in cons["model"].values])
    np.testing.assert_allclose(cons["member_weight"].values, (1 / err) / (1 / err).sum())
    assert cons.attrs["member_weighting"] == "validation"
    assert result.formulas, "the distill stage stores a record per consensus component"
    report = tmp_path / "s.report"  # beside the store, named after it
    assert (report / "report.html").exists() and (report / "results.json").exists()
    assert result.report == report / "report.html"
    attrs = store.study_attrs()
    assert attrs["task"] == "user_tasks:ProductTask"
    assert set(attrs["stage_timings"]) >= {"train", "compare", "consensus", "distill"}


@pytest.mark.slow
def test_stages_skip_and_rerun_by_tag(tmp_path, user_task_path):
    store_path = tmp_path / "s.zarr"
    cfg = tiny_config(store_path, distill={"enabled": False})
    run_study(cfg, stages=["probe", "train", "compare"])
    store = open_store(store_path)
    mtime = (store.path / "models" / "s0" / "zarr.json").stat().st_mtime_ns
    again = run_study(cfg, stages=["probe", "train", "compare"])
    assert again.outcomes["probe"] == "skipped"
    assert again.outcomes["train"] == []  # nothing rebuilt
    assert again.outcomes["compare"] == {"latent": "skipped"}
    changed = tiny_config(store_path, similarity={"metrics": ["mean_cca"]})
    third = run_study(changed, stages=["probe", "train", "compare"])
    assert third.outcomes["train"] == [] and third.outcomes["compare"] == {"latent": "written"}
    assert set(open_store(store_path).read_result("similarity", "latent").data_vars) == {"mean_cca"}
    assert (store.path / "models" / "s0" / "zarr.json").stat().st_mtime_ns == mtime
    more = tiny_config(store_path, ensemble={"seeds": [0, 1, 2, 3]})
    with pytest.raises(ConfigError, match="this config adds s3: give it a store of its own"):
        run_study(more, stages=["probe", "train"])  # one study per store
    fourth = run_study(more, stages=["probe", "train"], add_members=True)
    assert [r["id"] for r in fourth.outcomes["train"]] == ["s3"]


@pytest.mark.slow
def test_training_is_deterministic_per_seed(tmp_path, user_task_path):
    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    run_study(tiny_config(a, ensemble={"seeds": [5]}), stages=["probe", "train"])
    run_study(tiny_config(b, ensemble={"seeds": [5]}), stages=["probe", "train"])
    x = open_store(a).activations("s5", "latent").values
    y = open_store(b).activations("s5", "latent").values
    assert np.array_equal(x, y)
