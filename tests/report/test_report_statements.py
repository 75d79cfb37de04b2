"""What the page and results.json say in words: truth, null, seeds, times, the front."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ensemble_lens.report import ReportPaths, build_report
from ensemble_lens.report.explain import (
    NO_TRUTH,
    formula_bridge,
    formula_seeds,
    null_used,
    pareto_mask,
)
from ensemble_lens.report.html import duration


def _text(path: Path) -> str:
    """The page's visible text, tags dropped and whitespace collapsed."""
    source = path.read_text(encoding="utf-8")
    source = re.sub(r"<svg.*?</svg>|<style>.*?</style>", " ", source, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", source))


@pytest.fixture(scope="module")
def page(built: ReportPaths) -> str:
    return _text(built.html)


@pytest.fixture(scope="module")
def results(built: ReportPaths) -> dict:
    return json.loads(built.json.read_text())


def test_stage_times_read_as_durations(page: str) -> None:
    assert "2 min 05 s" in page and "<1 ms" in page.replace("&lt;", "<")
    assert "1.2 s" in page and "750 ms" in page
    assert "e-06" not in page and "3.368" not in page


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "<1 ms"),
        (0.0004, "<1 ms"),
        (0.02, "20 ms"),
        (9.96, "10.0 s"),
        (59.97, "1 min 00 s"),
        (3599.7, "1 h 00 min"),
        (7322, "2 h 02 min"),
        (None, "—"),
        (float("nan"), "—"),
    ],
)
def test_duration_edges(seconds, text) -> None:
    assert duration(seconds) == text


def test_architecture_is_shown_whole(page: str) -> None:
    for part in (
        "graphnet",
        "width=128",
        "latent_dim=16",
        "edge_mlp.hidden=[128, 128]",
        "edge_mlp.norm=layer",
        "edge_mlp.dropout=0.05",
    ):
        assert part in page
    assert "…" not in page


def test_the_seed_as_run_and_its_rule(page: str, results: dict) -> None:
    seeds = [c["seed"] for c in results["formula_checks"]]
    assert [s["seed"] for s in seeds] == [0, 1, 2]
    assert [s["base_seed"] for s in seeds] == [0, 0, 0]
    assert [s["component_index"] for s in seeds] == [0, 1, 2]
    assert all(s["matches_config"] for s in seeds)
    assert "1 = base seed 0 + component index 1" in page
    rule = "SR seeds (distill.seeds): component j of a layer is searched with base seed + j"
    assert results["seed_rule"] == f"{rule}, for each base seed in [0]"
    assert f"{rule}, for each base seed in [0]." in page
    assert "2 = base seed 0 + component index 2" in page


def test_seed_rule_uses_seeds_tried_and_flags_a_mismatch() -> None:
    recs = [
        {"layer": "L", "component": "a", "seed": 5, "seeds_tried": [3, 5]},  # bases 3 and 5
        {"layer": "L", "component": "b", "seed": 4, "seeds_tried": [4, 6]},
        {"layer": "L", "component": None, "seed": None},
    ]
    out = formula_seeds(recs, {"distill": {"seeds": [3, 5]}})
    assert [(o["base_seed"], o["component_index"]) for o in out[:2]] == [(5, 0), (3, 1)]
    assert out[2]["statement"] == "no search was run"
    bad = formula_seeds(recs[:1], {"distill": {"seeds": [7]}})[0]
    assert bad["matches_config"] is False and bad["base_seed"] is None
    assert "not base + 0 for distill.seeds [7]" in bad["statement"]
    no_config = formula_seeds(recs[1:2], None)[0]
    assert no_config["matches_config"] is None and no_config["base_seed"] == 4


def test_the_null_used_is_named(page: str, results: dict) -> None:
    null = results["consensus"]["edge.1"]["null"]
    assert null["method"] == "permutation" and null["n_untrained"] == 0
    assert "2 of 4 components are consensus (null: permutation only; no untrained twins)" in page
    both = null_used({"null_method": "permutation+untrained", "n_null": 20, "n_untrained": 8})
    assert both["statement"] == "null: permutation (20 refits) + 8 untrained twins"
    assert null_used({})["statement"] == "null: not recorded in the consensus result"


def test_consensus_components_are_bridged_to_formulas(page: str, results: dict) -> None:
    bridge = results["consensus"]["edge.1"]["formula_bridge"]
    assert bridge == (
        "2 consensus components, each searched as aligned, give 3 components to distill, "
        "with a formula found for 2 of them."
    )
    assert bridge in page
    vec = [
        {"component": f"{v}-component", "basis": "equivariant", "expression": "x"}
        for v in ("dx", "dy")
    ]
    assert formula_bridge({"n_consensus": 5, "vector": None}, vec) == (
        "5 consensus components span a 2-d vector quantity; mapped onto the (dx, dy) input "
        "basis they give 2 formulas, one per vector component."
    )
    sparse = [dict(v, basis="sparse") for v in vec]
    assert "sparse basis" in formula_bridge({"n_consensus": 2}, sparse)


def test_the_front_marks_dominated_candidates(page: str, results: dict) -> None:
    assert results["formula_checks"][0]["front_on_pareto"] == [True, True, True, False, True]
    assert "crosses: dominated candidates" in page and "dominated" in page
    assert pareto_mask([{"complexity": 7, "loss": 0.1}, {"complexity": 7, "loss": 0.1}]) == [
        True,
        True,
    ]
    assert pareto_mask([{"complexity": None, "loss": 0.1}]) == [None]


def test_truth_is_judged_when_the_probe_has_it(page: str, results: dict) -> None:
    assert results["ground_truth"] == {
        "judged": True,
        "truth_variables": ["force"],
        "statement": "ground truth in the probe: force; each formula is judged against it",
    }
    assert "recovery" in page and "exact recovery" in page


def test_without_truth_recovery_is_not_judged(no_truth_study, tmp_path: Path) -> None:
    paths = build_report(no_truth_study, out_dir=tmp_path)
    results = json.loads(paths.json.read_text())
    assert results["ground_truth"] == {
        "judged": False,
        "truth_variables": [],
        "statement": NO_TRUTH,
    }
    page = _text(paths.html)
    assert "No ground truth: recovery is not judged." in page
    assert "recovery" not in page.replace("recovery is not judged", "")
    assert "truth" not in page.replace("ground truth: recovery", "")
