"""The same config gives the same results.json, on an idle machine and beside CPU hogs.

A cut-down demo (members trained on a LocalCluster, untrained twins, operon budgeted by work)
runs twice; every number of the two results.json files must be equal, except wall times.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ensemble_lens.cli import main

#: keys whose values are wall-clock durations (never a result)
_CLOCK_KEYS = {"seconds", "stage_timings"}


def _study(store: str) -> dict[str, Any]:
    return {
        "name": "repro",
        "task": {"name": "user_tasks:ProductTask"},
        "probe": {"n": 600, "seed": 12345, "n_extrapolation": 200},
        "ensemble": {"seeds": [0, 1, 2], "train": {"epochs": 8}},
        "similarity": {"metrics": ["linear_cka", "mean_cca", "procrustes_similarity"]},
        "consensus": {"n_null": 5},
        "distill": {
            "backend": "operon",
            "options": {"population_size": 100, "generations": 10},
            "seeds": [0],
        },
        "execution": {"scheduler": "local", "workers": 2},
        "store": store,
    }


def _without_clock(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_clock(v) for k, v in value.items() if k not in _CLOCK_KEYS}
    if isinstance(value, list):
        return [_without_clock(v) for v in value]
    return value


def _run(tmp_path) -> dict[str, Any]:
    """Run the study from scratch (the same config file and store path every time)."""
    import shutil

    import yaml

    store, report = tmp_path / "study.zarr", tmp_path / "study.report"
    for old in (store, report):
        shutil.rmtree(old, ignore_errors=True)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(_study(str(store))))
    assert main(["run", str(path)]) == 0
    return _without_clock(json.loads((report / "results.json").read_text()))


@pytest.mark.slow
def test_a_study_run_twice_idle_and_busy_gives_identical_results(tmp_path, cpu_hog, user_task_path):
    idle = _run(tmp_path)
    cpu_hog(3)
    busy = _run(tmp_path)
    assert any(f["front"] for f in idle["formulas"]), "the study must reach the formula search"
    trained = [m for m in idle["provenance"]["models"] if m["attrs"]["source"] == "trained"]
    assert len(trained) == 3 and not idle["provenance"]["stopped_early"]
    for m in trained:
        assert m["attrs"]["metrics"]["stopped_by"] in ("epochs", "patience")
    for key in idle:
        assert busy[key] == idle[key], key
