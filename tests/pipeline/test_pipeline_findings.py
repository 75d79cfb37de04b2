"""The findings list on small real studies: a trained ensemble with templates on (the
template and each member's constants lead results.json, the run summary and ``inspect``),
an untrained one, whose templates stage does no search and says why, and ingested members
that each hold the law with their own constant (the template is the finding, the subspace
formula an average over different laws)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import sympy
from user_tasks import tiny_config

from ensemble_lens import open_store, run_study
from ensemble_lens.cli import main
from ensemble_lens.report.findings import build_findings

TEMPLATES = {"enabled": True, "backend": "sparse", "time_budget": 2}


def test_a_trained_study_leads_with_its_template_and_every_members_constants(
    tmp_path, user_task_path, capsys
) -> None:
    result = run_study(tiny_config(tmp_path / "s.zarr", templates=TEMPLATES))
    results = json.loads(result.report.with_name("results.json").read_text())
    found = results["findings"]
    assert found == build_findings(results["formulas"], results["laws"])
    first = found[0]  # y = x1*x2 + x3: the bottleneck holds mixtures of x1*x2 and x3
    assert (first["kind"], first["verdict"], first["is_result"]) == (
        "template",
        "shared form",
        True,
    )
    assert "x1*x2" in first["expression"] and "x3" in first["expression"]
    assert set(first["members"]) == {"s0", "s1", "s2"}
    slots = results["laws"]["latent"]["templates"]["best"]["slots"]
    for m, entry in first["members"].items():
        assert entry["constants"] and set(entry["constants"][0]) == set(slots), m
        assert entry["r2"] >= 0.9
    formulas = [f for f in found if f["kind"] == "formula"]
    assert formulas and all(f["form"] for f in formulas if f["is_result"])

    from ensemble_lens.pipeline.progress import print_summary

    capsys.readouterr()
    print_summary(SimpleNamespace(timings={}, outcomes={}, store=result.store, report=None))
    out = capsys.readouterr().out
    assert out.startswith("Findings: ") and "1. template latent: shared form (result)" in out
    assert "each member's constants" in out and "s2" in out
    assert main(["inspect", str(result.store.path)]) == 0
    shown = capsys.readouterr().out
    assert shown.index("Findings: ") < shown.index("s0")  # before the members table


def test_no_member_skill_means_no_template_search(tmp_path, user_task_path, capsys) -> None:
    path = tmp_path / "null.zarr"
    cfg = tiny_config(path, ensemble={"train": {"epochs": 0}}, templates=TEMPLATES)
    cfg["groups"] = {"enabled": True, "n_perm": 19}
    result = run_study(cfg)
    rec = open_store(path).study_attrs()["templates"]["latent"]
    why = "no template search: 0 of 3 members predict their own targets"
    assert rec["skipped"].startswith(why) and rec["member_skill"]["member_skill"] == "unskilled"
    assert rec["templates"]["best"] is None and rec["templates"]["candidates"] == []
    assert rec["templates"]["reason"] == rec["skipped"] and "groups" not in rec
    assert result.outcomes["templates"]["latent"] == rec["skipped"]  # the run summary's line
    page = result.report.read_text(encoding="utf-8")
    assert why in page
    results = json.loads(result.report.with_name("results.json").read_text())
    assert not any(f["is_result"] for f in results["findings"])
    assert "latent: no formula (0 of 3 members predict" in page
    capsys.readouterr()
    assert main(["inspect", str(path)]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert shown.startswith("findings: none") and "latent: no formula (0 of 3 members" in shown


def test_members_with_their_own_constants_give_the_template_not_the_average(tmp_path) -> None:
    """Six ingested members, each holding u_k = x1*x2 + b_k*x3 (b_k from 0.4 to 2.4) in a
    random basis: the template is the finding, with each member's b_k, and the subspace
    formula, whose constants vary across members, is an average over different laws."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (600, 3))
    pd.DataFrame(x, columns=["x1", "x2", "x3"]).to_csv(tmp_path / "probe.csv", index=False)
    b = {f"m{k}": 0.4 * (k + 1) for k in range(6)}
    for m, bk in b.items():
        u = x[:, 0] * x[:, 1] + bk * x[:, 2]
        acts = np.c_[u, 0.05 * rng.normal(size=(600, 3))] @ rng.normal(size=(4, 4))
        np.savez(tmp_path / f"{m}.npz", hidden=acts, sample_ids=np.arange(600))
    cfg = {
        "name": "mix",
        "probe": {"path": str(tmp_path / "probe.csv"), "variables": ["x1", "x2", "x3"]},
        "ensemble": {"ingest": [{"id": "{stem}", "kind": "activations", "path": "m*.npz"}]},
        "consensus": {"n_null": 5},
        "distill": {"backend": "sparse", "time_budget": 2},
        "templates": TEMPLATES,
        "execution": {"scheduler": "serial"},
        "store": str(tmp_path / "study.zarr"),
    }
    for entry in cfg["ensemble"]["ingest"]:
        entry["path"] = str(tmp_path / entry["path"])
    result = run_study(cfg)
    found = json.loads(result.report.with_name("results.json").read_text())["findings"]
    tmpl = found[0]
    assert (tmpl["kind"], tmpl["is_result"], len(tmpl["members"])) == ("template", True, 6)
    x1, x2, x3 = sympy.symbols("x1 x2 x3")
    form = sympy.expand(sympy.sympify(tmpl["expression"]))
    assert form.free_symbols - {x1, x2, x3} and form.coeff(x3) != 0
    for m, entry in tmpl["members"].items():  # each member's own b_k, within 5 %
        own = form.subs(entry["constants"][0])
        ratio = float(own.coeff(x3) / own.coeff(x1).coeff(x2))
        assert abs(ratio / b[m] - 1) < 0.05, (m, entry)
    (formula,) = [f for f in found if f["kind"] == "formula"]
    assert not formula["is_result"] and formula["verdict"] == "average over different laws"
    assert "vary across members" in formula["reason"] or formula["reason"].startswith(
        "average over different laws"
    )
