"""The terminal summary for ``ensemble-lens inspect`` and the screenshot script's command."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from ensemble_lens.report.terminal import summary_renderables

_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshot_report.py"


def _render(parts: list) -> str:
    console = Console(record=True, width=200, color_system=None)
    for part in parts:
        console.print(part)
    return console.export_text()


def test_summary_of_a_finished_study(study) -> None:
    everything = summary_renderables(study)
    # the findings come first: a head line, then per finding its lines (no constants here)
    assert _render(everything[:1]).startswith("Findings: 2 of 2 are results")
    parts = [p for p in everything if isinstance(p, Table)]
    assert everything[-len(parts) :] == parts
    assert [p.title for p in parts] == [
        "Models",
        "Similarity (off-diagonal)",
        "Consensus",
        "Formulas",
    ]
    assert all(isinstance(p, Table) for p in parts)
    assert parts[0].row_count == 4
    assert parts[1].row_count == 4  # edge.1: 3 metrics, edge.2: 1
    assert parts[2].row_count == 4
    assert parts[3].row_count == 3
    text = _render(parts)
    assert "m1*m2/r**2" in text and "(no formula found)" in text
    assert "sign(m1)*Abs(r) (modulo component 0)" in text
    assert "linear_cka" in text and "net-d" in text
    assert text.count("graphnet") == 4  # net-d's architecture is named by its "family"
    assert "exact" in text


def test_summary_without_truth_drops_the_verdict(no_truth_study) -> None:
    parts = summary_renderables(no_truth_study)
    formulas = parts[-1]
    assert formulas.title == "Formulas (no ground truth: recovery is not judged)"
    text = _render([formulas])
    assert "exact" not in text and "(no formula found)" in text


def test_the_formulas_table_is_readable_at_80_columns(study) -> None:
    parts = summary_renderables(study, models=False, findings=False)
    console = Console(record=True, width=80, color_system=None)
    console.print(parts[-1])
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text
    words = set(text.split())  # an expression wraps at its spaces, never cut
    assert {"m1*m2/r**2", "sign(m1)*Abs(r)", "(modulo", "component", "0)"} <= words
    assert {"0.99870", "0.99120"} <= words  # R^2 to five decimals, like the page


def test_summary_of_a_store_without_results(models_only) -> None:
    parts = summary_renderables(models_only)
    assert "findings: none" in _render(parts[:1])
    assert isinstance(parts[1], Table) and parts[1].row_count == 4
    text = _render(parts[2:])
    assert "no similarity results" in text and "no consensus results" in text
    assert "no formulas" in text


def _script():
    spec = importlib.util.spec_from_file_location("screenshot_report", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["screenshot_report"] = module
    spec.loader.exec_module(module)
    return module


def test_screenshot_command_is_isolated_and_offline(tmp_path: Path) -> None:
    mod = _script()
    cmd = mod.chromium_command(
        "chromium", tmp_path / "r.html", tmp_path / "r.png", tmp_path / "profile", (1400, 3000)
    )
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--disable-gpu",
    ):
        assert flag in cmd
    assert f"--user-data-dir={tmp_path / 'profile'}" in cmd
    assert "--window-size=1400,3000" in cmd
    assert cmd[-1].startswith("file://") and cmd[-1].endswith("r.html")


def test_screenshot_of_missing_report_fails_clearly(tmp_path: Path) -> None:
    mod = _script()
    with pytest.raises(FileNotFoundError, match="no report at"):
        mod.screenshot(tmp_path / "missing.html", tmp_path / "out.png")
    assert mod.main([str(tmp_path / "missing.html")]) == 1
