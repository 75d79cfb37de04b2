"""kill -9 at every stage of a CLI run: no stale lock, nothing damaged, and a rerun finishes
without redoing what was already done."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from conftest import cli_cmd, run_cli
from fault_tasks import fault_config

from ensemble_lens import open_store
from ensemble_lens.record.lock import StoreLock
from ensemble_lens.record.verify import verify_store


def _staged_member(store):
    staging = store / "_staging"
    if not staging.exists():
        return False  # recording has begun: activations are being written into staging
    return any(p.name.startswith("model@") and (p / "acts").exists() for p in staging.iterdir())


def _exists(*parts):
    return lambda store: store.joinpath(*parts, "zarr.json").exists()


def _holds_lock(pid):
    def check(store):
        try:
            return f'"pid": {pid},' in (store / ".lock").read_text()
        except OSError:
            return False

    return check


# (where the run is when it is killed, what on disk says it got there)
POINTS = [
    ("holding the lock, before the probe", None),
    ("writing a member into the store", _staged_member),
    ("training or recording the second member", _exists("models", "s0")),
    ("in consensus", _exists("similarity", "inner.latent")),
    ("in distill", _exists("consensus", "inner.latent")),
    ("writing the report", _exists("distill")),
]


def _kill_when(cmd, store, reached, what):
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy()
    )
    reached = reached or _holds_lock(proc.pid)
    deadline = time.monotonic() + 240
    while not reached(store) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, f"the run ended before it was {what}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.slow
def test_kill9_at_every_stage_then_rerun(tmp_path, write_config):
    store = tmp_path / "s.zarr"
    path = write_config(fault_config(store, task="fault_tasks:SlowRecordTask"))
    cmd = cli_cmd("run", path)
    stamp = None
    for what, reached in POINTS:
        _kill_when(cmd, store, reached, what)
        with StoreLock(store):  # the kernel released the killed run's lock: no stale lock
            pass
        if (store / "zarr.json").exists():
            assert verify_store(store) == [], what  # staged writes never damage the store
        if what == "writing a member into the store":
            assert open_store(store).status("s0") == "recording"
        if stamp is None and (store / "models" / "s0" / "zarr.json").exists():
            stamp = (store / "models" / "s0" / "zarr.json").stat().st_mtime_ns
    code, out, err = run_cli("run", path)
    assert code == 0, err[-2000:]
    s = open_store(store)
    assert s.complete_models == ["s0", "s1"]
    assert [p.name for p in (store / "_staging").iterdir()] == ["zarr.json"]
    assert (store / "models" / "s0" / "zarr.json").stat().st_mtime_ns == stamp  # not redone
    assert s.result_layers("similarity") == ["inner.latent"] == s.result_layers("consensus")
    assert s.read_formulas()
    assert "report:" in out
    assert verify_store(s) == []
