"""A trained mixed ensemble through ``run_study``: members of two families learn two different
laws from the same inputs (tests/pipeline/user_tasks.py ``TwoLawTask``). The groups stage must
find the two groups with the right members, and each group's law; a homogeneous ensemble of
the same task must give one group."""

from __future__ import annotations

import pytest
import sympy

import ensemble_lens as el

STAGES = ("probe", "train", "record", "compare", "templates")


def _config(families: list[str], **over) -> dict:
    cfg = {
        "name": "two-laws",
        "task": {"name": "user_tasks:TwoLawTask"},
        "probe": {"n": 600, "seed": 0, "n_extrapolation": 200},
        "ensemble": {
            "seeds": [0, 1, 2],
            "untrained_null": False,
            "architectures": [{"family": f} for f in families],
        },
        "similarity": {"metrics": ["linear_cka"]},
        "consensus": {"n_null": 4},
        "distill": {"backend": "sparse", "seeds": [0]},
        "groups": {"enabled": True, "n_perm": 199},
        "execution": {"scheduler": "serial"},
    }
    cfg.update(over)
    return cfg


def _family(store, member: str) -> str:
    return store.model_attrs(member)["architecture"]["family"]


@pytest.mark.slow
def test_two_laws_give_two_groups_each_with_its_law(tmp_path):
    res = el.run_study(_config(["law_u", "law_v"]), store=tmp_path / "s.zarr", stages=STAGES)
    store = res.store
    rec = store.study_attrs()["templates"]["latent"]["groups"]
    sim = rec["similarity"]
    assert sim["n_groups"] == 2 and sim["p_value"] <= 0.05 and sim["sizes"] == [3, 3]
    for members in sim["groups"]:  # each group is exactly one family
        assert len({_family(store, m) for m in members}) == 1
    laws = {}
    for group in rec["per_group"]:
        (law,) = group["formulas"]
        assert law["support"] == 1.0 and set(law["member_r2"]) == set(group["members"])
        laws[_family(store, group["members"][0])] = law
    # v = x3^2 + x4^2 comes out as a result; the 1-unit bottleneck of the u family holds a
    # warped image of x1*x2 after 15 epochs, whose best formula is a 36-node polynomial: a
    # result, or rejected for it (no knee on its front), but written in x1, x2 only
    assert laws["law_v"]["is_result"] and laws["law_v"]["truth_name"] == "v"
    u = laws["law_u"]
    assert u["is_result"] or set(u["flags"]) & {"no_knee", "extrapolation"}, u
    x1, x2, x3, x4 = sympy.symbols("x1 x2 x3 x4")
    u_expr = u["expression"] or u["rejected_expression"]
    assert sympy.sympify(u_expr).free_symbols == {x1, x2}
    assert sympy.sympify(laws["law_v"]["expression"]).free_symbols == {x3, x4}


@pytest.mark.slow
def test_one_law_gives_one_group(tmp_path):
    cfg = _config(["law_u"], ensemble={"seeds": [0, 1, 2, 3, 4, 5], "untrained_null": False})
    res = el.run_study(cfg, store=tmp_path / "s.zarr", stages=STAGES)
    sim = res.store.study_attrs()["templates"]["latent"]["groups"]["similarity"]
    assert sim["n_groups"] == 1 and sim["p_value"] > 0.05
    assert "per_group" not in res.store.study_attrs()["templates"]["latent"]["groups"]
