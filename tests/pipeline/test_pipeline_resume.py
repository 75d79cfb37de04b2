"""SIGKILL a CLI run during training and run it again: finished members are not retrained."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from user_tasks import tiny_config

from ensemble_lens import open_store, run_study


@pytest.mark.slow
def test_sigkill_during_training_then_resume(tmp_path, user_task_path):
    cfg = tiny_config(tmp_path / "run.zarr", ensemble={"seeds": [0, 1, 2]})
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "ensemble_lens.cli", "train", str(path)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy()
    )
    first = tmp_path / "run.zarr" / "models" / "s0" / "zarr.json"
    deadline = time.monotonic() + 300
    while not first.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert first.exists(), "the first member never finished"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    store = open_store(tmp_path / "run.zarr", mode="a")
    done = store.complete_models
    assert "s0" in done and len(done) < 3, done
    stamps = {m: (store.path / "models" / m / "zarr.json").stat().st_mtime_ns for m in done}
    again = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    store = open_store(tmp_path / "run.zarr")
    assert store.complete_models == ["s0", "s1", "s2"]
    for m, stamp in stamps.items():  # not retrained
        assert (store.path / "models" / m / "zarr.json").stat().st_mtime_ns == stamp
    ref = tiny_config(tmp_path / "ref.zarr", ensemble={"seeds": [0, 1, 2]})
    run_study(ref, stages=["probe", "train"])
    clean = open_store(tmp_path / "ref.zarr")
    for m in ("s0", "s1", "s2"):
        assert np.array_equal(
            store.activations(m, "latent").values, clean.activations(m, "latent").values
        )
