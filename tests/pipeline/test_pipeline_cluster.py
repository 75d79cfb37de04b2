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
from ensemble_lens.similarity import pairwise, pairwise_permutation_test

pytestmark = pytest.mark.cluster


@pytest.mark.slow
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


def _processing(client, prefix: str = "") -> dict:
    """Worker address -> keys of the tasks it runs whose key starts with ``prefix``."""
    busy = {w: [k for k in t if str(k).startswith(prefix)] for w, t in client.processing().items()}
    return {w: t for w, t in busy.items() if t}


def kill_a_busy_worker(ex, fn, *, prefix: str = "", settle: float = 1.0):
    """Run ``fn()`` in a thread; once a worker runs a task whose key starts with ``prefix``,
    wait ``settle`` seconds and SIGKILL that worker's process. Returns ``fn()``'s result and
    the keys the worker was running when it was picked."""
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = fn()
        except Exception as err:  # surfaced below
            outcome["error"] = err

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 120
    while not _processing(ex.client, prefix) and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    busy = _processing(ex.client, prefix)
    assert busy, f"no task {prefix!r}... started"
    time.sleep(settle)
    pids = ex.client.run(os.getpid)
    victim = next(iter(busy))
    os.kill(pids[victim], signal.SIGKILL)
    thread.join(timeout=600)
    assert "error" not in outcome, outcome.get("error")
    return outcome["result"], busy[victim]


def _lost_tasks(prefix: str, dask_scheduler=None) -> list[str]:
    """Keys (starting with ``prefix``) of tasks taken from a worker that died while it had
    them (the scheduler's transition log: processing -> released at the worker's cleanup)."""
    return [
        str(key)
        for key, start, finish, _, stimulus, *_ in dask_scheduler.transition_log
        if str(key).startswith(prefix)
        and (start, finish) == ("processing", "released")
        and str(stimulus).startswith("handle-worker-cleanup")
    ]


@pytest.mark.slow
def test_killed_worker_study_still_completes(tmp_path, user_task_path):
    cfg = tiny_config(tmp_path / "k.zarr", ensemble={"seeds": [0, 1, 2, 3]})
    with make_executor("local", workers=2, retries=2) as ex:
        # settle: let the member get into training
        kill_a_busy_worker(ex, lambda: run_study(cfg, executor=ex, stages=["probe", "train"]))
    store = open_store(tmp_path / "k.zarr")
    assert store.complete_models == ["s0", "s1", "s2", "s3"]
    assert not any(p.name.startswith("model@") for p in (store.path / "_staging").iterdir())


@pytest.mark.slow
def test_worker_killed_during_compare_blocks_gives_the_undisturbed_values(tmp_path, user_task_path):
    store = tmp_path / "c.zarr"
    # one member per group: 15 blocks; the p-values make each block take a moment
    sim = {"metrics": ["linear_cka"], "n_perm": 100, "block_memory": "100kB"}
    cfg = tiny_config(store, ensemble={"seeds": list(range(5))}, similarity=sim)
    run_study(cfg, stages=["probe", "train", "record"])
    with make_executor("local", workers=2, retries=2) as ex:
        res, keys = kill_a_busy_worker(
            ex, lambda: run_study(cfg, executor=ex, stages=["compare"]), prefix="compare-",
            settle=0.2,
        )  # fmt: skip
        lost = ex.client.run_on_scheduler(_lost_tasks, "compare-latent-b")
    assert any(k.startswith("compare-latent-b") for k in keys), keys
    assert lost, "no block was on the killed worker"  # those ran again elsewhere
    assert res.outcomes["compare"] == {"latent": "written"}
    s = open_store(store)
    got = s.read_result("similarity", "latent")
    data = {m: s.activations(m, "latent") for m in s.complete_models}
    want = pairwise(data, "linear_cka")
    np.testing.assert_allclose(got["linear_cka"].values, want.values, rtol=0, atol=1e-12)
    want_p = pairwise_permutation_test(data, "linear_cka", n_perm=100, seed=0)
    np.testing.assert_array_equal(got["linear_cka_pvalue"].values, want_p.values)
    assert not (store / "similarity_blocks" / "latent").exists()


def test_unknown_scheduler_is_a_config_error():
    from ensemble_lens.errors import ConfigError

    with pytest.raises(ConfigError, match=r"execution\.scheduler: expected 'local', 'serial'"):
        make_executor("slurm")
