"""kill -9 of a CLI run in the middle of the all-pairs stage: the rerun computes only the
blocks that were not stored, and the result equals the all-at-once computation."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import numpy as np
import pytest
from conftest import cli_cmd
from fault_tasks import fault_config

from ensemble_lens import open_store, run_study
from ensemble_lens.record.lock import StoreLock
from ensemble_lens.record.verify import verify_store
from ensemble_lens.similarity import pairwise_permutation_test

LAYER = "latent"


def _blocks(store):
    base = store / "similarity_blocks" / LAYER
    return (
        sorted(p.name for p in base.iterdir() if (p / "zarr.json").exists())
        if base.exists()
        else []
    )


@pytest.mark.slow
def test_kill9_mid_compare_then_rerun_only_the_missing_blocks(tmp_path, write_config):
    store = tmp_path / "s.zarr"
    cfg = fault_config(
        store,
        ensemble={"seeds": list(range(7))},
        # one member per group: 28 blocks; permutation p-values make each block take a while
        similarity={"metrics": ["linear_cka"], "n_perm": 200, "block_memory": "40kB"},
        distill={"enabled": False},
    )
    path = write_config(cfg)
    run_study(path, stages=["probe", "train", "record"])
    proc = subprocess.Popen(
        cli_cmd("compare", path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    deadline = time.monotonic() + 240
    while len(_blocks(store)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the compare stage ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    kept = _blocks(store)
    assert 2 <= len(kept) < 28, kept
    assert open_store(store).result_tag("similarity", LAYER) is None
    with StoreLock(store):  # the kernel released the killed run's lock
        pass
    assert verify_store(store) == []  # blocks are renamed into place whole

    res = run_study(path, stages=["compare"])
    assert res.outcomes["compare"] == {LAYER: f"written ({len(kept)} of 28 blocks reused)"}
    s = open_store(store)
    assert not (store / "similarity_blocks" / LAYER).exists()
    assert [p.name for p in (store / "_staging").iterdir()] == ["zarr.json"]
    got = s.read_result("similarity", LAYER)
    data = {m: s.activations(m, LAYER) for m in s.complete_models}
    want = pairwise_permutation_test(data, "linear_cka", n_perm=200, seed=0)
    np.testing.assert_array_equal(got["linear_cka_pvalue"].values, want.values)
    assert verify_store(s) == []
