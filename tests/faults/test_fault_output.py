"""What a run prints: progress lines from the workers when output is a file, dask kept quiet."""

from __future__ import annotations

import pytest
from conftest import run_cli
from fault_tasks import fault_config

from ensemble_lens.pipeline.progress import console_progress


@pytest.mark.cluster
@pytest.mark.slow
def test_file_output_shows_worker_epochs_and_no_dask_chatter(tmp_path, write_config):
    path = write_config(fault_config(tmp_path / "s.zarr", ensemble={"train": {"epochs": 3}}))
    code, _, err = run_cli("train", path, "--scheduler", "local", "--workers", "1")
    assert code == 0, err[-3000:]
    lines = err.splitlines()
    # sent by the worker process, through dask's event channel; one folded line, not per member
    assert any(" progress epochs: " in line for line in lines), err
    assert not any(" progress epochs s" in line for line in lines), err
    assert any(line.endswith("progress members: 2/2") for line in lines), err
    for chatter in ("jupyter-server-proxy", "still alive", "Traceback", "CommClosedError"):
        assert chatter not in err
    assert not any(" INFO distributed." in line for line in lines), err


def test_line_progress_is_throttled(capsys):
    with console_progress(tty=False) as progress:
        for member in range(50):
            for epoch in range(1, 101):
                progress(f"epochs s{member}", epoch, 100)
        for done in range(1, 101):
            progress("pairs latent", done, 100)
        progress("members", 1, 2)
    lines = capsys.readouterr().err.splitlines()
    epochs = [line.split(" progress ")[1] for line in lines if " progress epochs" in line]
    # fifty members' epochs fold into one line (then at most one a minute)
    assert epochs == ["epochs: 1/100 of the members seen so far (1 training, 0 finished)"]
    pairs = [line.split(" progress ")[1] for line in lines if "pairs latent" in line]
    assert pairs == [f"pairs latent: {n}/100" for n in (1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)]
    assert lines[-1].endswith("progress members: 1/2")


def test_folded_epoch_line_text(capsys):
    from ensemble_lens.pipeline.progress import _LinePrinter

    printer = _LinePrinter(every_s=0.0)
    for label, done, total in (("epochs a", 3, 3), ("epochs b", 1, 4), ("epochs c", 2, 4)):
        printer(label, done, total)
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.endswith("epochs: 6/11 of the members seen so far (2 training, 1 finished)")


@pytest.mark.slow
def test_progress_events_of_a_serial_run(tmp_path):
    from ensemble_lens import run_study

    events = []
    cfg = fault_config(tmp_path / "s.zarr", ensemble={"train": {"epochs": 2}})
    stages = ["probe", "train", "compare", "consensus", "distill"]
    run_study(cfg, stages=stages, progress=lambda *e: events.append(e))
    assert ("epochs s0", 2, 2) in events and ("epochs s1", 1, 2) in events
    assert events.index(("members", 0, 2)) < events.index(("epochs s0", 1, 2))
    assert ("pairs latent", 2, 2) in events  # one pair, two metrics
    assert ("members", 2, 2) in events
    sr = [e for e in events if e[0] == "SR components"]
    assert sr and sr[-1][1] == sr[-1][2] >= 1


def test_verbose_and_debug_before_or_after_the_command():
    from ensemble_lens.cli import _parser

    assert _parser().parse_args(["run", "c.yaml"]).verbose == 0
    assert _parser().parse_args(["-v", "run", "c.yaml"]).verbose == 1
    args = _parser().parse_args(["run", "c.yaml", "-vv", "--debug"])
    assert args.verbose == 2 and args.debug
    assert _parser().parse_args(["--debug", "inspect", "s.zarr"]).debug
