"""The constants verdict on the report's formula card, in results.json and the terminal."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import sympy
from conftest import _formulas, make_members
from rich.console import Console

from ensemble_lens.distill.constants import constants_across_members
from ensemble_lens.distill.extrapolation import REFERENCE_CONSENSUS
from ensemble_lens.report import build_report
from ensemble_lens.report.terminal import summary_renderables

NAMES = ["m1", "m2", "r"]
EXPR = "2.1*m1*m2*exp(-0.97*r)/r**2"


def _law(X: np.ndarray) -> np.ndarray:
    return 2 * X[:, 0] * X[:, 1] * np.exp(-X[:, 2]) / X[:, 2] ** 2


def _record() -> dict:
    """A formula whose decay the fit range biases (members' error grows along r) and whose
    extrapolation range pins it, with the real constants verdict."""
    rng = np.random.default_rng(0)
    X = rng.uniform(0.5, 2.0, (400, 3))
    Xe = np.c_[rng.uniform(0.5, 2.0, (200, 2)), rng.uniform(2.0, 3.0, 200)]
    members = np.stack([_law(X) * (1 + b * (X[:, 2] - 1.25)) for b in (0.02, 0.03, 0.04)])
    expr = sympy.sympify(EXPR)
    constants = constants_across_members(
        expr, X, members.mean(0), members, ["net-a", "net-b", "net-c"], NAMES,
        X_extrap=Xe, y_extrap=_law(Xe), extrapolation_reference=REFERENCE_CONSENSUS,
    )  # fmt: skip  # a refit on the truth is never the best value (distill.truth)
    rec = _formulas()[0]
    rec.update(expression=EXPR, srepr=sympy.srepr(expr), latex=sympy.latex(expr),
               exact_recovery=False, exact_recovery_best=True, constants=constants)  # fmt: skip
    return rec


def test_the_card_table_json_and_terminal_show_each_constant_and_its_best_value(
    tmp_path: Path, capsys
) -> None:
    store = make_members(tmp_path / "study.zarr")
    rec = _record()
    store.write_formulas([rec], tag="t")
    paths = build_report(store)
    text = paths.html.read_text(encoding="utf-8")
    assert "Constants of <code>_c0*m1*m2*exp(_c1*r)/r**2</code>" in text
    assert "fit and extrapolation disagree" in text and "best-supported" in text
    assert "With the best-supported constants: 2*m1*m2*exp(-r)/r**2 (exact recovery)." in text
    assert "recovery, best-supported constants" in text  # the summary table's column
    stored = json.loads(paths.json.read_text())["formulas"][0]["constants"]
    decay = stored["constants"][1]
    assert decay["best_source"] == "extrapolation range" and abs(decay["best"] + 1) < 1e-6
    assert decay["fit_low"] <= decay["value"] <= decay["fit_high"] < -0.95

    console = Console(record=True, width=250, color_system=None)
    for part in summary_renderables(store, models=False):
        console.print(part)
    shown = console.export_text()
    assert "_c1: fit and extrapolation disagree" in shown and "exact (best constants)" in shown

    from ensemble_lens.pipeline.progress import print_summary

    capsys.readouterr()
    print_summary(SimpleNamespace(timings={}, outcomes={}, store=store, report=None))
    out = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert out.startswith("Findings: 1 of 1 are results")  # the findings come first
    assert "against the truth: not exact" in out
    assert "edge.1/0: with the best-supported constants: 2*m1*m2*exp(-r)/r**2 (exact)" in out


def test_the_card_says_which_constant_is_which(tmp_path: Path) -> None:
    store = make_members(tmp_path / "study.zarr")
    store.write_formulas([_record()], tag="t")
    text = build_report(store).html.read_text(encoding="utf-8")
    card = text[text.index("Constants of <code>") :]
    assert "the formula above is written with the search&#x27;s constants" in card
    head = card[card.index("<thead>") : card.index("</thead>")]
    assert "<th>in the formula</th><th>consensus [profile]</th>" in head
    rows = card[card.index("<tbody>") : card.index("</tbody>")]
    first, second = rows.split("</tr>")[:2]
    assert '<td class="num">2.1</td>' in first and '<td class="num">-0.97</td>' in second


def test_the_written_constants_are_read_whatever_the_variables_are_called() -> None:
    from ensemble_lens.report.formula_section import _written_constants

    # sympify read ``beta`` as the beta function and ``S`` as sympy's singletons, and the
    # card lost its "in the formula" column for laws with such variables (AI Feynman III.17.37)
    assert _written_constants("beta*(0.9993*alpha*cos(0.9998*theta) + 0.999)", 3) == [
        0.999, 0.9993, 0.9998
    ]  # fmt: skip
    assert _written_constants("0.5*S*N + 1.5*E", 2) == [1.5, 0.5]
