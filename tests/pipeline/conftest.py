import os
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture
def user_task_path(monkeypatch):
    """Make tests/pipeline/user_tasks.py importable as 'user_tasks' (also for subprocesses)."""
    monkeypatch.syspath_prepend(str(HERE))
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(HERE) + (os.pathsep + old if old else ""))
    return HERE
