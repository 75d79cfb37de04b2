"""SIGKILL a recording midway: the store opens, the killed model is redone, others untouched."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from ensemble_lens import open_store, record_activations

SCRIPT = textwrap.dedent("""
    import sys, time, torch
    from ensemble_lens import open_store, record_activations
    store = open_store(sys.argv[1], mode="a")
    class Slow(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(5)
            self.lin = torch.nn.Linear(3, 4)
        def forward(self, x):
            print("batch", flush=True)
            time.sleep(0.2)
            return self.lin(x)
    record_activations(Slow(), store, "victim", ["lin"], batch_size=100)
""")


def _net(seed):
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 4))


@pytest.mark.slow
def test_sigkill_midway_then_redo(tmp_path, probe_store):
    keep = _net(1)
    record_activations(keep, probe_store, "keeper", ["0"])
    before = probe_store.activations("keeper", "0").values.copy()
    script = tmp_path / "rec.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(probe_store.path)], stdout=subprocess.PIPE, text=True
    )
    for _ in range(3):  # three batches written, then kill
        assert proc.stdout.readline().strip() == "batch"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    store = open_store(probe_store.path, mode="a")
    assert store.status("victim") == "recording"
    assert store.status("keeper") == "complete"
    assert "victim" not in store.complete_models
    import torch

    torch.manual_seed(5)
    lin = torch.nn.Linear(3, 4)
    res = record_activations(torch.nn.Sequential(lin), store, "victim", ["0"])
    assert res.action == "recorded"
    assert store.status("victim") == "complete"
    np.testing.assert_array_equal(store.activations("keeper", "0").values, before)
    time.sleep(0)
