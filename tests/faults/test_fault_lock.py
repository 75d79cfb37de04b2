"""One writing run per store: a second run is refused with the holder named, or waits."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import cli_cmd, run_cli
from fault_tasks import fault_config

from ensemble_lens import open_store
from ensemble_lens.cli import main
from ensemble_lens.errors import StoreLockedError
from ensemble_lens.record.lock import StoreLock

HOLD = (
    "import sys, time\n"
    "from ensemble_lens.record.lock import StoreLock\n"
    "lock = StoreLock(sys.argv[1]).acquire()\n"
    "print('locked', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
)


def _holder(store, seconds):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(store), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_run_is_refused_naming_the_holder_and_kill9_frees_it(tmp_path, write_config, capsys):
    store = tmp_path / "s.zarr"
    path = write_config(fault_config(store))
    holder = _holder(store, 600)
    try:
        assert main(["train", str(path)]) == 3
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith(
            f"error: store {store} is in use by another run (pid {holder.pid} on "
        )
        assert socket.gethostname() in err[-1] and "--wait" in err[-1]
        assert not (store / "zarr.json").exists()  # refused before writing anything
        with pytest.raises(StoreLockedError, match=f"pid {holder.pid}"):
            StoreLock(store).acquire()
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # the kernel drops the lock with the process
        holder.wait(timeout=30)
    assert main(["train", str(path)]) == 0
    assert open_store(store).complete_models == ["s0", "s1"]


def test_wait_queues_behind_the_holder(tmp_path, write_config, capsys):
    store = tmp_path / "s.zarr"
    path = write_config(fault_config(store))
    holder = _holder(store, 3)
    start = time.monotonic()
    assert main(["train", str(path), "--wait"]) == 0
    assert holder.wait(timeout=30) == 0  # it finished on its own, then we ran
    assert time.monotonic() - start >= 2.0
    assert "waiting for it" in capsys.readouterr().err
    assert open_store(store).complete_models == ["s0", "s1"]


@pytest.mark.slow
def test_two_concurrent_runs_with_different_configs(tmp_path, write_config):
    store = tmp_path / "s.zarr"
    slow = fault_config(store, task="fault_tasks:SlowRecordTask")
    other = fault_config(store, ensemble={"seeds": [5, 6, 7], "train": {"epochs": 3}})
    first = subprocess.Popen(
        cli_cmd("train", write_config(slow, "a.yaml")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    deadline = time.monotonic() + 120
    lock_file = store / ".lock"
    while time.monotonic() < deadline and str(first.pid) not in _read(lock_file):
        time.sleep(0.05)
    code, _, err = run_cli("train", write_config(other, "b.yaml"))
    assert code == 3, err
    assert f"is in use by another run (pid {first.pid} on" in err.strip().splitlines()[-1]
    assert first.wait(timeout=300) == 0, first.stderr.read()[-2000:]
    s = open_store(store)
    assert s.complete_models == ["s0", "s1"]  # nothing of the refused config got in
    assert s.study_attrs()["config"]["task"]["name"] == "fault_tasks:SlowRecordTask"


def _read(path):
    try:
        return path.read_text()
    except OSError:
        return ""
