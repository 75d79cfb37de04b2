"""A mixed-algorithm modular ensemble (Clock and Pizza, Zhong et al. 2023), trained for real
with plain torch (examples/modular_mixed) and studied from the saved files alone: the groups
test finds the two architectures, and each group's law is its own template — waves in a + b
or a - b for the multiplicative members, separate waves in a and in b for the MLP members."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy

from ensemble_lens.pipeline.runner import run_study
from ensemble_lens.record.store import open_store

pytestmark = pytest.mark.slow  # six networks trained, then the study (about 60 s on 2 cores)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "modular_mixed"
P = 23


def _cos_arguments(template: str) -> list[set[str]]:
    expr = sympy.sympify(template)
    inputs = {sympy.Symbol("a"), sympy.Symbol("b")}
    return [{s.name for s in f.args[0].free_symbols & inputs} for f in expr.atoms(sympy.cos)]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    lab = tmp_path_factory.mktemp("lab")
    for name in ("train.py", "mixnets.py", "study.yaml"):
        shutil.copy(EXAMPLE / name, lab / name)
    train = [sys.executable, "train.py", "--p", str(P), "--epochs", "1000"]
    done = subprocess.run(train, cwd=lab, capture_output=True, text=True, check=True)
    run_study(lab / "study.yaml", lab / "study.zarr")
    rec = open_store(lab / "study.zarr").study_attrs()["templates"]["hidden"]
    rec["_report"] = (lab / "study.report" / "report.html").read_text()
    return rec, done.stdout


def test_members_learn_the_task(study):
    _, printed = study
    accs = [float(line.rsplit(" ", 1)[1]) for line in printed.splitlines() if "accuracy" in line]
    assert len(accs) == 6 and min(accs) >= 0.9


def test_groups_are_the_two_algorithms(study):
    rec, _ = study
    groups = rec["groups"]["similarity"]
    assert sorted(map(sorted, groups["groups"])) == [
        ["clock0", "clock1", "clock2"],
        ["pizza0", "pizza1", "pizza2"],
    ]
    assert groups["p_value"] <= 0.025  # two metrics tested: alpha / 2
    by_metric = rec["groups"]["by_metric"]
    assert groups["method"] == "mutual_knn" and by_metric["mutual_knn"]["n_groups"] == 2
    assert by_metric["linear_cka"]["n_groups"] == 1  # members' own frequencies hide the kinds


def test_each_group_has_its_own_law(study):
    rec, _ = study
    laws = {g["members"][0][:5]: g for g in rec["groups"]["per_group"]}
    clock, pizza = laws["clock"], laws["pizza"]
    assert clock["template_verdict"] == pizza["template_verdict"] == "shared form"
    # clock: every wave joins a and b, with |k_a| = |k_b| (a function of a + b or a - b)
    assert _cos_arguments(clock["template"]) == [{"a", "b"}]
    for ks in clock["frequencies"].values():
        pairs = np.abs(np.reshape(ks, (-1, 2)))
        np.testing.assert_allclose(pairs[:, 0], pairs[:, 1], atol=0.05)
    # pizza: waves in a alone and in b alone
    args = _cos_arguments(pizza["template"])
    assert args and all(len(s) == 1 for s in args)
    assert "different templates" in rec["groups"]["note"]  # not one law for the ensemble


def test_the_report_does_not_call_the_union_one_law(study):
    """The ensemble-wide template joins both groups' terms, so it explains every member; the
    report must say it is only their union, not a law the whole ensemble shares."""
    rec, _ = study
    html = rec["_report"]
    assert "Verdict: shared form only as the union of the groups" in html
    assert '<p class="ok">Verdict: shared form.</p>' not in html
