"""Fixtures of the fault tests: configs on disk and the CLI run as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).parent
PIPELINE = HERE.parent / "pipeline"
if str(PIPELINE) not in sys.path:  # fault_tasks builds on tests/pipeline/user_tasks.py
    sys.path.insert(0, str(PIPELINE))


@pytest.fixture(autouse=True)
def fault_paths(monkeypatch):
    """fault_tasks and user_tasks importable here and in subprocesses (dask workers too)."""
    for path in (PIPELINE, HERE):
        monkeypatch.syspath_prepend(str(path))
    old = os.environ.get("PYTHONPATH")
    extra = os.pathsep.join([str(HERE), str(PIPELINE), str(HERE.parents[1])])
    monkeypatch.setenv("PYTHONPATH", extra + (os.pathsep + old if old else ""))


@pytest.fixture
def write_config(tmp_path):
    def write(cfg, name="study.yaml"):
        path = tmp_path / name
        path.write_text(yaml.safe_dump(cfg))
        return path

    return write


def cli_cmd(*args):
    return [sys.executable, "-m", "ensemble_lens.cli", *map(str, args)]


def run_cli(*args, timeout=300):
    """The CLI in a subprocess: (returncode, stdout, stderr)."""
    proc = subprocess.run(
        cli_cmd(*args), capture_output=True, text=True, env=os.environ.copy(), timeout=timeout
    )
    return proc.returncode, proc.stdout, proc.stderr
