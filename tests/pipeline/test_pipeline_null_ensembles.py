"""Null ensembles of each kind, trained for real, give "no formula" and say why.

Members trained on targets shuffled independently per member, on one shared shuffle, or not
trained at all (``epochs: 0``) predict nothing of their targets; the member-skill precondition
(``consensus.min_member_r2``) must stop the study short of formulas whatever the consensus
finds, and a skilled ensemble of the same task must pass it.
"""

import pytest
from user_tasks import tiny_config

from ensemble_lens import open_store, run_study

NULLS = {
    "independent": {"target_shuffle": "independent"},
    "shared": {"target_shuffle": "shared"},
    "untrained": {"epochs": 0},
}


@pytest.mark.parametrize("kind", sorted(NULLS))
@pytest.mark.slow
def test_null_ensemble_gives_no_formula_and_says_the_members_failed(tmp_path, user_task_path, kind):
    store_path = tmp_path / f"{kind}.zarr"
    cfg = tiny_config(store_path, ensemble={"seeds": [0, 1, 2], "train": NULLS[kind]})
    result = run_study(cfg)
    ds = open_store(store_path).read_result("consensus", "latent")
    assert ds.attrs["member_skill"] == "unskilled"
    assert sorted(ds.attrs["members_unskilled"]) == ["s0", "s1", "s2"]
    assert ds.attrs["median_val_r2"] < 0.5
    (rec,) = result.formulas
    assert rec["expression"] is None and rec["is_result"] is False
    assert rec["member_skill"] == "unskilled"
    assert "0 of 3 members predict their own targets" in rec["reason"]
    assert "no formula is fitted" in rec["reason"]


@pytest.mark.slow
def test_the_same_task_trained_for_real_passes_the_skill_check(tmp_path, user_task_path):
    result = run_study(tiny_config(tmp_path / "real.zarr"))
    ds = open_store(tmp_path / "real.zarr").read_result("consensus", "latent")
    assert ds.attrs["member_skill"] == "skilled" and ds.attrs["median_val_r2"] > 0.9
    found = [r for r in result.formulas if r["is_result"]]
    assert found and all(r["member_skill"] == "skilled" for r in found)
    assert all(r["ground_truth"] is True and r["truth_note"] is None for r in result.formulas)


def test_shared_shuffle_is_one_permutation_independent_is_one_per_member():
    import torch

    from ensemble_lens.models.train import shuffle_targets

    data = {"x": torch.arange(50.0)[:, None], "target": torch.arange(50.0)[:, None]}
    shared = [shuffle_targets(data, "shared", data_seed=0, seed=s)["target"] for s in (0, 1)]
    indep = [shuffle_targets(data, "independent", data_seed=0, seed=s)["target"] for s in (0, 1)]
    assert torch.equal(shared[0], shared[1]) and not torch.equal(indep[0], indep[1])
    assert not torch.equal(shared[0], indep[0])
    for t in shared + indep:  # a permutation of the targets, inputs untouched
        assert not torch.equal(t, data["target"]) and sorted(t[:, 0].tolist()) == list(range(50))
    assert shuffle_targets(data, "none", data_seed=0, seed=0) is data


def test_siamese_tasks_shuffle_the_partner_state_and_a_missing_key_is_one_clear_error():
    import torch

    from ensemble_lens.errors import ConfigError
    from ensemble_lens.models.train import shuffle_targets
    from ensemble_lens.tasks import get_task

    task = get_task("harmonic")
    assert task.target_keys == ("b",)
    data = task.make_data(64, 0)
    out = shuffle_targets(data, "independent", data_seed=0, seed=1, keys=task.target_keys)
    assert torch.equal(out["a"], data["a"]) and not torch.equal(out["b"], data["b"])
    with pytest.raises(ConfigError, match=r"target_shuffle: the task's data has no \['y'\]"):
        shuffle_targets(data, "shared", data_seed=0, seed=0, keys=("y",))
