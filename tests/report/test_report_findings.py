"""The findings list (report/findings.py) on hand-made records, in the terminal at 80 columns,
and at the top of the report page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import _formulas, make_members
from rich.console import Console

from ensemble_lens.report import build_report
from ensemble_lens.report.findings import AVERAGE, build_findings, formula_varies, member_table
from ensemble_lens.report.terminal import findings_renderables

TEMPLATE = "c2*x2*sin(c0*x1 + c1) + c3"
MEMBERS = {f"net-{i}": (1.0 + 0.2 * i, 0.5 + 0.1 * i) for i in range(6)}  # (a_k, b_k)


def _mixture() -> dict:
    """A subspace formula whose amplitude the members set each for itself, with the distractor
    x3 in it: an average over the members' different laws."""
    values = {m: [-0.3753, 0.6651 * a, 1.957 * b, -0.1023] for m, (a, b) in MEMBERS.items()}
    rows = [
        {"name": "_c0", "verdict": "pinned"},
        {"name": "_c1", "verdict": "varies across members"},
        {"name": "_c2", "verdict": "varies across members"},
        {"name": "_c3", "verdict": "pinned"},
    ]
    return {
        "layer": "hidden",
        "component": 0,
        "expression": "-0.3753*x1 + 0.6651*x2*sin(1.957*x1) - 0.1023*x3",
        "is_result": True,
        "flags": [],
        "reason": None,
        "support": 0.67,
        "r2_test": 0.93,
        "r2_extrapolation": 0.9,
        "member_r2": {m: 0.9 for m in MEMBERS},
        "exact_recovery": None,
        "constants": {"constants": rows, "member_values": values},
    }


def _templates(*, verdict: str = "shared form", is_result: bool = True) -> dict:
    best = {
        "template": TEMPLATE,
        "slots": ["c0", "c1", "c2", "c3"],
        "support": 1.0,
        "member_r2": {m: 0.999996 for m in MEMBERS},
        "constants": {
            m: [{"c0": b, "c1": 0.0, "c2": a, "c3": 0.0}] for m, (a, b) in MEMBERS.items()
        },
        "frequencies": {},
        "r2_test": 0.999996,
        "r2_extrapolation": 0.99951,
        "is_result": is_result,
        "flags": [] if is_result else ["support"],
        "reason": None if is_result else "support 0.33 below distill.min_support = 0.5",
    }
    return {
        "verdict": verdict,
        "reason": best["reason"],
        "best": best,
        "candidates": [best],
        "r2_threshold": 0.9,
        "p_support": 0.8,
    }


def test_a_template_that_explains_the_members_makes_the_varying_formula_an_average() -> None:
    found = build_findings([_mixture()], {"hidden": {"templates": _templates()}})
    assert [(f["kind"], f["is_result"]) for f in found] == [("template", True), ("formula", False)]
    tmpl, formula = found
    assert tmpl["expression"] == TEMPLATE and tmpl["verdict"] == "shared form"
    assert tmpl["members"]["net-3"]["constants"] == [
        {"c0": pytest.approx(0.8), "c1": 0.0, "c2": pytest.approx(1.6), "c3": 0.0}
    ]
    assert tmpl["members"]["net-3"]["r2"] == 0.999996 and tmpl["support"] == 1.0
    assert formula["verdict"] == AVERAGE and formula["component"] == 0
    assert formula["reason"].startswith(f"{AVERAGE}: its _c1, _c2 vary across members")
    assert TEMPLATE in formula["reason"]
    assert formula["members"]["net-0"]["constants"][0]["_c2"] == 1.957 * 0.5  # its own refit
    assert formula_varies(_mixture()) == ["_c1", "_c2"]


def test_a_varying_formula_keeps_its_verdict_when_no_template_explains_the_members() -> None:
    failed = _templates(verdict="no shared form", is_result=False)
    found = build_findings([_mixture()], {"hidden": {"templates": failed}})
    assert [(f["kind"], f["is_result"]) for f in found] == [("formula", True), ("template", False)]
    assert found[0]["verdict"] == "consensus formula"
    assert found[1]["reason"] == "support 0.33 below distill.min_support = 0.5"
    other_layer = build_findings([_mixture()], {"output": {"templates": _templates()}})
    assert next(f for f in other_layer if f["kind"] == "formula")["is_result"]
    flagged = {**_mixture(), "constants": None, "flags": ["mixture"]}
    assert formula_varies(flagged) == ["*"]
    found = build_findings([flagged], {"hidden": {"templates": _templates()}})
    assert found[1]["reason"].startswith(f"{AVERAGE}: its constants vary")


def test_groups_with_different_forms_are_the_findings_not_their_union() -> None:
    tmpl = _templates()
    other = {**tmpl["best"], "template": "c0*x1 + c1", "member_r2": {"net-4": 0.99}}
    other["constants"] = {"net-4": [{"c0": 2.0, "c1": 0.1}]}
    tmpl["candidates"].append(other)
    groups = {
        "similarity": {"n_groups": 2, "groups": [["net-0", "net-1"], ["net-4", "net-5"]]},
        "note": "the 2 groups have different templates",
        "per_group": [
            {"members": ["net-0", "net-1"], "template": TEMPLATE, "template_support": 1.0,
             "template_r2_test": 0.99, "template_r2_extrapolation": 0.98,
             "template_verdict": "shared form", "template_is_result": True,
             "template_reason": None, "formulas": []},
            {"members": ["net-4", "net-5"], "template": None, "rejected_template": "c0*x1 + c1",
             "template_verdict": "no shared form", "template_is_result": False,
             "template_reason": "the best template explains 0.50 of the group's members",
             "formulas": [{"expression": "2.0*x1", "is_result": True, "support": 1.0,
                           "member_r2": {"net-4": 0.97, "net-5": 0.96}, "r2_test": 0.97,
                           "r2_extrapolation": 0.95, "exact_recovery": None}]},
        ],
    }  # fmt: skip
    found = build_findings([], {"hidden": {"templates": tmpl, "groups": groups}})
    kinds = [(f["kind"], f["group"], f["is_result"]) for f in found]
    assert kinds == [("group", 0, True), ("group", 1, True), ("template", None, False)]
    assert found[0]["members"]["net-1"]["constants"][0]["c2"] == 1.2
    assert set(found[0]["members"]) == {"net-0", "net-1"}
    assert found[1]["expression"] == "2.0*x1" and found[1]["verdict"] == "group law"
    assert found[2]["verdict"] == "shared form only as the union of the groups' forms"


def test_a_group_without_a_law_says_why() -> None:
    group = {"members": ["a", "b"], "size": 2, "formulas": [], "reason": "no formula is a result"}
    rec = {"groups": {"similarity": {"n_groups": 2}, "per_group": [group]}}
    (found,) = build_findings([], {"hidden": rec})
    assert found["verdict"] == "no group law" and found["reason"] == "no formula is a result"
    assert found["members"] == {
        "a": {"constants": [], "r2": None},
        "b": {"constants": [], "r2": None},
    }


def test_no_formula_records_are_not_findings_and_rejected_ones_are_not_results() -> None:
    recs = _formulas()
    rejected = {"expression": None, "rejected_expression": "sign(m1)*Abs(r)"}
    why = {"is_result": False, "flags": ["extrapolation"], "reason": "R^2 extrapolation 0.4"}
    recs[1] = {**recs[1], **rejected, **why}
    found = build_findings(recs, {})
    assert [(f["component"], f["is_result"]) for f in found] == [(0, True), (1, False)]
    assert found[1]["expression"] == "sign(m1)*Abs(r)"
    assert found[1]["verdict"] == "rejected (extrapolation)"
    from ensemble_lens.report.terminal import _formulas_table

    table = _formulas_table({"formulas": recs, "ground_truth": {"judged": True}})
    words = _at_80([table]).split()
    assert words.count("rejected:") == 1 and "sign(m1)*Abs(r)" in words
    assert {"R^2", "extrapolation", "0.4"} <= set(words)


def _at_80(parts: list) -> str:
    console = Console(record=True, width=80, color_system=None)
    for part in parts:
        console.print(part)
    return console.export_text()


def test_the_terminal_shows_every_members_constants_within_80_columns() -> None:
    tmpl = _templates()
    long = "c5*x2*sin(c0*x1 + c1) + c2*exp(-c3*x3**2) + c4*x1*x2*x3 + c6*cos(c7*x3) + c8"
    slots = [f"c{i}" for i in range(9)]
    tmpl["best"].update(template=long, slots=slots)
    tmpl["best"]["constants"] = {
        m: [{s: -1234.567 * (i + 1) / 7 for i, s in enumerate(slots)}] for m in MEMBERS
    }
    layer = "hidden-layer-with-a-long-name"
    found = build_findings([{**_mixture(), "layer": layer}], {layer: {"templates": tmpl}})
    text = _at_80(findings_renderables(found))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in text
    words = set(text.split())
    assert set(long.split()) <= words  # the whole template, wrapped at its spaces
    assert set(_mixture()["expression"].split()) <= words
    assert "-176.4" in words and "-1587" in words  # c0 and c8 of every member: two tables
    assert sum("each member's constants" in line for line in lines) == 3  # 9 + 4 constants
    assert "support 1.00, R² test 0.99999," in text  # 0.999996 is not rounded up to 1
    assert "R² test 1" not in text and "│ 1 " not in text
    assert text.index("1. template") < text.index(f"2. formula {layer}/0")
    assert AVERAGE in text


def test_member_table_columns() -> None:
    (f,) = build_findings([], {"h": {"templates": _templates()}})
    headers, rows = member_table(f)
    assert headers == ["member", "c0", "c1", "c2", "c3", "R²"]
    assert rows[0] == ["net-0", 0.5, 0.0, 1.0, 0.0, 0.999996]  # c0 = b_k, c2 = a_k
    f["members"]["net-0"]["frequencies"] = [3.0, 7.0]
    headers, rows = member_table(f)
    assert headers[-1] == "k" and rows[0][-1] == "3, 7" and rows[1][-1] == ""


def test_results_json_and_the_page_lead_with_the_findings(tmp_path: Path) -> None:
    store = make_members(tmp_path / "study.zarr")
    store.write_formulas([_mixture()], tag="t")
    store.write_study_attrs(templates={"hidden": {"tag": "t", "templates": _templates()}})
    paths = build_report(store)
    results = json.loads(paths.json.read_text())
    assert list(results)[:3] == ["format", "store", "findings"]
    assert [f["kind"] for f in results["findings"]] == ["template", "formula"]
    assert results["findings"] == build_findings(results["formulas"], results["laws"])
    page = paths.html.read_text(encoding="utf-8")
    assert page.index('id="findings"') < page.index('id="provenance"')
    head = page[: page.index('id="provenance"')]
    assert "1 of 2 findings are results" in head and f"<code>{TEMPLATE}</code>" in head
    assert AVERAGE in head and "Each member's constants" in head
    assert head.count(">0.99999<") == 7  # R^2 test and each member's, not rounded up to 1


def test_the_page_counts_members_and_twins_apart_and_prints_r2_alike(tmp_path: Path) -> None:
    store = make_members(tmp_path / "study.zarr")
    rng = np.random.default_rng(1)
    for i in range(2):  # the consensus null's untrained twins
        attrs = {"seed": 10 + i, "source": "untrained", "task": "gravity"}
        store.write_activations(f"null-net-{i}", "edge.1", rng.normal(size=(120, 6)), attrs=attrs)
    rec = {**_formulas()[0], "r2_extrapolation": 0.999996, "r2_test": 0.99871}
    store.write_formulas([rec], tag="t")
    paths = build_report(store)
    page = paths.html.read_text(encoding="utf-8")
    assert "4 networks + 2 untrained twins" in page and "6 networks" not in page
    prov = json.loads(paths.json.read_text())["provenance"]
    assert (prov["n_members"], prov["n_untrained_twins"]) == (4, 2)
    assert page.count(">0.99999<") >= 3  # findings card, summary table, formula card
    from ensemble_lens.record.summary import store_renderables

    shown = _at_80(store_renderables(store))  # inspect's members table
    assert "4 members + 2 untrained twins" in shown and "0.99000" in shown
    assert page.count(">0.99871<") >= 3 and ">0.9987<" not in page


def test_the_consensus_parameters_are_a_table_with_the_probes_extrapolation_rows(
    tmp_path: Path,
) -> None:
    from conftest import _consensus

    from ensemble_lens.record.store import open_store

    store = open_store(tmp_path / "study.zarr", "w")
    rng = np.random.default_rng(0)
    split = np.array(["fit"] * 90 + ["test"] * 30 + ["extrapolation"] * 40)
    store.write_probe(rng.uniform(size=(160, 3)), names=["m1", "m2", "r"], split=split)
    for m in ("net-a", "net-b", "net-c", "net-d"):
        store.write_activations(m, "edge.1", rng.normal(size=(120, 6)), attrs={"seed": 0})
    ds = _consensus(store)
    ds.attrs.update(n_fit=90, n_test=30, n_extrapolation=0, pca_components_per_model=[3, 3])
    store.write_result("consensus", "edge.1", ds, tag="t")
    paths = build_report(store)
    cons = json.loads(paths.json.read_text())["consensus"]["edge.1"]
    assert cons["probe_samples"] == {
        "fit": 90, "test": 30, "extrapolation": 40, "extrapolation_source": "probe rows kept apart"
    }  # fmt: skip
    page = paths.html.read_text(encoding="utf-8")
    params = page[page.index("<summary>Consensus parameters</summary>") :]
    params = params[: params.index("</details>")]
    assert "<th>parameter</th><th>value</th>" in params
    row = (
        "<td>n_extrapolation (probe rows kept apart; the consensus uses the fit and test rows "
        "only)</td>"
    )
    assert f'{row}<td class="num">40</td>' in params
    assert '<td>n_fit</td><td class="num">90</td>' in params
    assert "<td>pca_components_per_model</td><td>3, 3</td>" in params
    from ensemble_lens.report.results import probe_samples

    drawn = {"task": {"name": "gravity"}, "probe": {"n_extrapolation": 2000}}
    plain = open_store(tmp_path / "plain.zarr", "w")
    plain.write_probe(rng.uniform(size=(40, 3)), names=["m1", "m2", "r"])
    assert probe_samples(plain, drawn)["extrapolation"] == 2000  # a task's range, drawn
    assert probe_samples(plain, drawn)["extrapolation_source"].startswith("drawn from the task")
    assert probe_samples(plain, {"probe": {"n_extrapolation": 2000}})["extrapolation"] == 0
    assert probe_samples(store, drawn)["extrapolation"] == 40  # the probe's own rows first


def test_a_formula_the_distill_verdict_flagged_as_a_mixture_is_an_average() -> None:
    why = f"{AVERAGE}: _c2 varies across members from 0.98 to 1.96"
    rec = {**_mixture(), "expression": None, "is_result": False, "flags": ["mixture"]}
    rec.update(rejected_expression=_mixture()["expression"], reason=why)
    (alone,) = build_findings([rec], {})
    assert (alone["verdict"], alone["is_result"], alone["reason"]) == (AVERAGE, False, why)
    found = build_findings([rec], {"hidden": {"templates": _templates()}})
    assert found[1]["reason"] == why  # the record's own reason is kept
    truth = {**_formulas()[0], "truth_verdict": "constants off: a search miss"}
    (f,) = build_findings([truth], {})
    assert f["truth_verdict"] == "constants off: a search miss"
    text = _at_80(findings_renderables([f]))
    assert "against the truth: constants off: a search miss" in " ".join(text.split())
