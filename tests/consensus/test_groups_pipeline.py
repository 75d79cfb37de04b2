"""Groups and templates through the study pipeline, on a mixed ensemble of ingested members:
three "clock" members (Fourier features of Z_23) and three "lookup" members (one random
embedding), each in its own random basis."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ensemble_lens.errors import ConfigError
from ensemble_lens.pipeline.runner import run_study
from ensemble_lens.report import build_report
from ensemble_lens.tasks import get_task

P, N, SEED = 23, 600, 7


def _members(tmp_path) -> list[dict]:
    a = get_task("modular", p=P).sample_probe(N, SEED)[:, 0].astype(int)
    rng = np.random.default_rng(0)
    grid = 2 * np.pi * np.arange(P) / P
    clock = np.column_stack([f(k * grid) for k in (3, 7) for f in (np.cos, np.sin)])
    lookup = rng.normal(size=(P, 4))
    out = []
    for i, table in enumerate([clock] * 3 + [lookup] * 3):
        basis = np.linalg.qr(rng.normal(size=(8, 4)))[0].T  # (4, 8) orthonormal rows
        acts = table[a] @ basis + 0.02 * rng.normal(size=(N, 8))
        path = tmp_path / f"m{i}.npz"
        np.savez(path, embed=acts.astype(np.float32))
        kind = "clock" if i < 3 else "lookup"
        out.append(
            {
                "id": f"{kind}{i}",
                "kind": "activations",
                "path": str(path),
                "sample_ids": "probe_order",
            }
        )
    return out


def _config(tmp_path, **extra) -> dict:
    cfg = {
        "name": "mixed",
        "task": {"name": "modular", "params": {"p": P}},
        "probe": {"n": N, "seed": SEED, "n_extrapolation": 0},
        "ensemble": {"seeds": [], "untrained_null": False, "ingest": _members(tmp_path)},
        "similarity": {"metrics": ["linear_cka"]},
        "consensus": {"n_null": 5},
        "distill": {"enabled": False},
        "templates": {"enabled": True, "max_components": 2},
        "groups": {"enabled": True, "n_perm": 199},
        "execution": {"scheduler": "serial"},
    }
    cfg.update(extra)
    return cfg


def _check_report(store, rec) -> None:
    """The report shows the groups, the p-value, the verdicts and the constants figure, with
    the run's values; results.json holds the same record."""
    paths = build_report(store)
    html = paths.html.read_text()
    laws = json.loads(paths.json.read_text())["laws"]["embed"]
    assert laws["groups"]["similarity"] == rec["groups"]["similarity"]
    assert laws["templates"]["verdict"] == "no shared form"
    assert 'id="laws"' in html and "Laws across members" in html
    assert "clock0, clock1, clock2" in html and "lookup3, lookup4, lookup5" in html
    assert f"permutation p = {rec['groups']['similarity']['p_value']:.4g}" in html
    assert "Verdict: no shared form." in html
    assert "c2*cos(a*c0 + c1) + c3" in html and "shared form, 1" in html
    assert "each constant of the template across members" in html
    assert "3.00, 7.00" in html  # the clock members' frequencies


@pytest.mark.slow
def test_mixed_ensemble_gives_two_groups_and_each_groups_law(tmp_path):
    stages = ("probe", "record", "compare", "templates")
    res = run_study(_config(tmp_path), store=tmp_path / "s.zarr", stages=stages)
    rec = res.store.study_attrs()["templates"]["embed"]
    sim = rec["groups"]["similarity"]
    assert sim["n_groups"] == 2 and sim["p_value"] <= 0.05
    assert sim["groups"] == [["clock0", "clock1", "clock2"], ["lookup3", "lookup4", "lookup5"]]
    assert rec["groups"]["template"]["n_groups"] == 2
    # the ensemble as a whole shares no form; the clock group does, with its frequencies
    assert rec["templates"]["verdict"] == "no shared form"
    clock, lookup = rec["groups"]["per_group"]
    assert clock["template"] == "c2*cos(a*c0 + c1) + c3" and clock["template_support"] == 1.0
    assert lookup["template_support"] < 0.5
    best = rec["templates"]["best"]
    for m in ("clock0", "clock1", "clock2"):
        assert sorted(round(k) for k in best["frequencies"][m]) == [3, 7]
    _check_report(res.store, rec)
    # a second run with the same settings is skipped
    again = run_study(_config(tmp_path), store=tmp_path / "s.zarr", stages=("templates",))
    assert again.outcomes["templates"] == {"embed": "skipped"}
    # a changed consensus setting (the per-group consensus) re-runs it
    changed = _config(tmp_path, consensus={"n_null": 6})
    again = run_study(changed, store=tmp_path / "s.zarr", stages=("templates",))
    assert again.outcomes["templates"] != {"embed": "skipped"}


def test_groups_metric_list_must_not_be_empty(tmp_path):
    from ensemble_lens.config import load_config

    with pytest.raises(ConfigError, match=r"groups\.metric"):
        load_config(_config(tmp_path, groups={"enabled": True, "metric": []}))


def test_groups_metric_not_computed_is_a_clear_error(tmp_path):
    cfg = _config(tmp_path, groups={"enabled": True, "metric": "mean_cca"})
    with pytest.raises(ConfigError, match=r"groups.metric 'mean_cca': not computed for layer"):
        run_study(
            cfg, store=tmp_path / "s.zarr", stages=("probe", "record", "compare", "templates")
        )


def test_unknown_periodic_input_is_a_clear_error(tmp_path):
    cfg = _config(
        tmp_path, templates={"enabled": True, "periodic": {"c": 5}}, groups={"enabled": False}
    )
    with pytest.raises(ConfigError, match=r"templates.periodic: inputs \['c'\] are not probe"):
        run_study(cfg, store=tmp_path / "s.zarr", stages=("probe", "record", "templates"))


def _law_members(tmp_path, n: int, seed: int) -> list[dict]:
    """Bottleneck-task members: three carry u = x1 x2, three tanh(2 v) (v = x3^2 + x4^2, a
    saturating image of v), each in its own random 4-unit basis."""
    X = get_task("bottleneck").sample_probe(n, seed).astype(np.float64)
    u, v = X[:, 0] * X[:, 1], X[:, 2] ** 2 + X[:, 3] ** 2
    rng = np.random.default_rng(1)
    out = []
    for i, latent in enumerate([u] * 3 + [np.tanh(2 * v)] * 3):
        acts = np.outer(latent, rng.normal(size=4)) + 1e-3 * rng.normal(size=(n, 4))
        path = tmp_path / f"g{i}.npz"
        np.savez(path, latent=acts.astype(np.float32))
        out.append(
            {"id": f"{'uv'[i // 3]}{i}", "kind": "activations", "path": str(path),
             "sample_ids": "probe_order"}
        )  # fmt: skip
    return out


@pytest.mark.slow
def test_each_groups_law_gets_the_consensus_verdicts(tmp_path):
    """Per-group formulas go through the consensus formulas' judge: the u group's law holds
    with support over its own members and beyond the range; the other group's formula, a
    polynomial of a saturating image of v, fails the extrapolation rule and is not a law."""
    n, seed = 800, 3
    cfg = {
        "name": "laws",
        "task": {"name": "bottleneck"},
        "probe": {"n": n, "seed": seed, "n_extrapolation": 300},
        "ensemble": {
            "seeds": [],
            "untrained_null": False,
            "ingest": _law_members(tmp_path, n, seed),
        },
        "similarity": {"metrics": ["linear_cka"]},
        "consensus": {"n_null": 5, "min_member_r2": None},
        "distill": {"backend": "sparse", "seeds": [0]},
        "groups": {"enabled": True, "n_perm": 99},
        "execution": {"scheduler": "serial"},
    }
    stages = ("probe", "record", "compare", "templates")
    res = run_study(cfg, store=tmp_path / "s.zarr", stages=stages)
    rec = res.store.study_attrs()["templates"]["latent"]["groups"]
    assert rec["similarity"]["groups"] == [["u0", "u1", "u2"], ["v3", "v4", "v5"]]
    (u_law,), (v_law,) = (g["formulas"] for g in rec["per_group"])
    assert u_law["is_result"] and u_law["flags"] == []
    assert u_law["truth_name"] == "u" and u_law["exact_recovery"]
    assert u_law["support"] == 1.0 and set(u_law["member_r2"]) == {"u0", "u1", "u2"}
    assert u_law["r2_extrapolation"] > 0.99
    assert not v_law["is_result"] and v_law["expression"] is None
    assert v_law["flags"] == ["extrapolation"] and v_law["rejected_expression"]
    assert "extrapolation R^2" in v_law["reason"] and v_law["r2_extrapolation"] < 0.5
    assert set(v_law["member_r2"]) == {"v3", "v4", "v5"}
    html = build_report(res.store).html.read_text()
    assert f"<code>{u_law['expression']}</code>" in html
    assert "rejected (extrapolation)" in html and "Why formulas were rejected" in html
