"""Studies on a real distributed.LocalCluster: same bits as serial, survives a killed worker."""

import os
import signal
import threading
import time

import numpy as np
import pytest
from user_tasks import tiny_config

from ensemble_lens import open_store, run_study
from ensemble_lens.execution import DaskExecutor, make_executor

pytestmark = pytest.mark.cluster


def test_serial_and_localcluster_give_identical_bits(tmp_path, user_task_path):
    seeds = {"seeds": [0, 1]}
    run_study(tiny_config(tmp_path / "serial.zarr", ensemble=seeds), stages=["probe", "train"])
    with make_executor("local", workers=2) as ex:
        assert isinstance(ex, DaskExecutor) and ex.n_workers == 2
        run_study(
            tiny_config(tmp_path / "dask.zarr", ensemble=seeds),
            executor=ex,
            stages=["probe", "train", "compare"],
        )
    a, b = open_store(tmp_path / "serial.zarr"), open_store(tmp_path / "dask.zarr")
    assert a.complete_models == b.complete_models == ["s0", "s1"]
    for m in a.complete_models:
        assert np.array_equal(a.activations(m, "latent").values, b.activations(m, "latent").values)
        assert a.checkpoint(m) == b.checkpoint(m)
    assert b.result_tag("similarity", "latent") is not None


def _processing(client) -> dict:
    return {w: t for w, t in client.processing().items() if t}


def test_killed_worker_study_still_completes(tmp_path, user_task_path):
    cfg = tiny_config(tmp_path / "k.zarr", ensemble={"seeds": [0, 1, 2, 3]})
    with make_executor("local", workers=2, retries=2) as ex:
        outcome: dict = {}

        def run():
            try:
                outcome["result"] = run_study(cfg, executor=ex, stages=["probe", "train"])
            except Exception as err:  # surfaced below
                outcome["error"] = err

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 120
        while not _processing(ex.client) and time.monotonic() < deadline:
            time.sleep(0.2)
        busy = _processing(ex.client)
        assert busy, "no member task started"
        time.sleep(1.0)  # let the member get into training
        pids = ex.client.run(os.getpid)
        victim = next(iter(busy))
        os.kill(pids[victim], signal.SIGKILL)
        thread.join(timeout=600)
    assert "error" not in outcome, outcome.get("error")
    store = open_store(tmp_path / "k.zarr")
    assert store.complete_models == ["s0", "s1", "s2", "s3"]
    assert not any(p.name.startswith("model@") for p in (store.path / "_staging").iterdir())


def test_unknown_scheduler_is_a_config_error():
    from ensemble_lens.errors import ConfigError

    with pytest.raises(ConfigError, match=r"execution\.scheduler: expected 'local', 'serial'"):
        make_executor("slurm")
