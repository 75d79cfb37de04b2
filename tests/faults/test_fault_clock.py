"""A member stopped by the wall clock (train.max_seconds) on a busy machine: recorded, named by
the run summary and the report, and rebuilt by --redo exactly as it was, on an idle machine."""

from __future__ import annotations

import json

import numpy as np
from fault_tasks import fault_config

from ensemble_lens import open_store, run_study
from ensemble_lens.cli import main

CHUNK = "models/{}/acts/latent/activations/c/0/0"
#: 5 steps an epoch; 0.5 s each is 2.5 s an epoch, past the 2 s cap after epoch 1, while
#: without the sleep all 6 epochs of this tiny network take far less than 2 s
TRAIN = {"epochs": 6, "n_train": 320, "n_val": 100, "max_seconds": 2.0}


def _config(store_path):
    return fault_config(
        store_path,
        task="fault_tasks:ClockTask",
        ensemble={"seeds": [0, 1], "untrained_null": False, "train": TRAIN},
    )


def test_redo_replays_the_recorded_epochs_of_a_member_stopped_by_the_clock(
    tmp_path, write_config, capsys, monkeypatch
):
    store_path = tmp_path / "busy.zarr"
    path = write_config(_config(store_path))
    monkeypatch.setenv("CLOCK_TASK_SLEEP", "0.5")  # a busy machine
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "2 members stopped early by train.max_seconds" in " ".join(out.split())
    store = open_store(store_path)
    for m in ("s0", "s1"):
        metrics = store.model_attrs(m)["metrics"]
        assert (metrics["epochs"], metrics["stopped_by"]) == (1, "max_seconds")
    lost = store.activations("s0", "latent").values.copy()
    report = store_path.parent / "busy.report"
    results = json.loads((report / "results.json").read_text())
    assert [r["id"] for r in results["provenance"]["stopped_early"]] == ["s0", "s1"]
    assert results["provenance"]["stopped_early"][0] == {
        "id": "s0",
        "epochs": 1,
        "of": 6,
        "max_seconds": 2.0,
    }
    html = (report / "report.html").read_text()
    assert "s0 at epoch 1 of 6 (max_seconds 2)" in html

    # the member is lost (a truncated chunk); the machine is idle now: the clock would let all
    # 6 epochs run, but the rebuild trains exactly the recorded one
    chunk = store_path / CHUNK.format("s0")
    chunk.write_bytes(chunk.read_bytes()[:20])
    monkeypatch.setenv("CLOCK_TASK_SLEEP", "0")
    assert main(["train", str(path), "--redo", "s0"]) == 0
    capsys.readouterr()
    store = open_store(store_path)
    np.testing.assert_array_equal(store.activations("s0", "latent").values, lost)
    assert store.model_attrs("s0")["metrics"]["epochs"] == 1

    # without a record to replay, the idle machine trains all 6 epochs: another member
    fresh_path = tmp_path / "idle.zarr"
    run_study(_config(fresh_path), stages=["probe", "train"])
    fresh = open_store(fresh_path)
    metrics = fresh.model_attrs("s0")["metrics"]
    assert (metrics["epochs"], metrics["stopped_by"]) == (6, "epochs")
    assert not np.array_equal(fresh.activations("s0", "latent").values, lost)


def test_last_attrs_reads_a_killed_recording_and_survives_garbage(tmp_path):
    """A recording killed before it finished leaves its attrs in staging: the rebuild reads
    them (the epochs to replay); an unreadable record is no record."""
    run_study(fault_config(tmp_path / "s.zarr"), stages=["probe"])
    store = open_store(tmp_path / "s.zarr", mode="a")
    assert store.last_attrs("s0") == {}
    ctx = store.model_writer("s0")
    writer = ctx.__enter__()  # never exited: as if the process died while recording
    writer.set_attrs(tag="t", metrics={"epochs": 3, "stopped_by": "max_seconds"})
    assert store.status("s0") != "complete"
    assert store.last_attrs("s0")["metrics"] == {"epochs": 3, "stopped_by": "max_seconds"}
    (writer.dir / "zarr.json").write_text("{not json")
    assert store.last_attrs("s0") == {}
