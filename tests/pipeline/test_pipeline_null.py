"""A null ensemble yields no consensus component and no formula, and says so."""

import pytest
from user_tasks import tiny_config

from ensemble_lens import open_store, run_study


@pytest.mark.slow
def test_noise_target_gives_no_consensus_and_no_formula(tmp_path, user_task_path):
    cfg = tiny_config(
        tmp_path / "noise.zarr",
        task={"name": "user_tasks:NoiseTask"},
        # every member fits its own noise sample (data_seed None): nothing is shared to learn
        ensemble={"seeds": [0, 1, 2], "untrained_null": True, "train": {"data_seed": None}},
        consensus={"n_null": 10},
    )
    result = run_study(cfg)
    store = open_store(tmp_path / "noise.zarr")
    assert set(store.complete_models) == {"s0", "s1", "s2", "null-s0", "null-s1", "null-s2"}
    ds = store.read_result("consensus", "latent")
    assert list(ds["model"].values) == ["s0", "s1", "s2"]  # nulls are not members
    assert int(ds["is_consensus"].sum()) == 0
    formulas = result.formulas
    assert len(formulas) == 1 and formulas[0]["expression"] is None
    assert "no component is shared beyond the null" in formulas[0]["reason"]
    html = (tmp_path / "noise.report" / "report.html").read_text()
    assert "No formula" in html or "no formula" in html
