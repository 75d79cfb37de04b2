"""A study on a real SLURM cluster through dask-jobqueue, with a worker job cancelled mid-run.

Needs a running SLURM (``scripts/slurm_local.sh`` installs and starts a one-node cluster as
root; ``.ci/run`` calls it). Without one the test is skipped with the reason (``pytest -ra``).
The execution section is ``configs/profiles/slurm.yaml`` (what a user submits to a real
cluster) with only the site values changed for the one local node.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from user_tasks import tiny_config

from ensemble_lens import open_store, run_study
from ensemble_lens.config import load_config, with_profile
from ensemble_lens.execution import make_executor

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

PROFILE = Path(__file__).parents[2] / "configs" / "profiles" / "slurm.yaml"


def _require_slurm() -> None:
    if shutil.which("sinfo") is None:
        pytest.skip("SLURM not installed (no sinfo on PATH); run scripts/slurm_local.sh as root")
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20, check=True
        ).stdout.split()
    except (subprocess.SubprocessError, OSError) as err:
        pytest.skip(f"SLURM cluster not up: sinfo failed ({err}); run scripts/slurm_local.sh")
    if not {"idle", "mix"} & set(out):
        pytest.skip(f"SLURM cluster not up: no idle node (sinfo states {out})")
    pytest.importorskip("dask_jobqueue", reason="dask-jobqueue not installed (test extra)")


def _partition() -> str:
    """ENSEMBLE_LENS_SLURM_PARTITION, else the cluster's default partition (``sinfo``'s ``*``),
    else its first one."""
    named = os.environ.get("ENSEMBLE_LENS_SLURM_PARTITION")
    if named:
        return named
    out = subprocess.run(
        ["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=20, check=True
    ).stdout.split()
    if not out:
        pytest.skip("SLURM cluster has no partition (sinfo -o %P printed nothing)")
    default = [p for p in out if p.endswith("*")]
    return (default or out)[0].rstrip("*")


def _check_job_accepted(partition: str) -> None:
    """Fail in one line, with sbatch's own words, when the cluster would refuse the workers'
    jobs (a partition that does not exist, too much memory...), instead of waiting for them."""
    cmd = ["sbatch", "--test-only", "-p", partition, "-n", "1", "--cpus-per-task", "1"]
    cmd += ["--mem", "2G", "-t", "00:10:00", "--wrap", "true"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        error = " ".join(proc.stderr.split()) or f"exit {proc.returncode}"
        pytest.fail(
            f"SLURM refuses the test's worker job on partition {partition!r} ({error}); "
            "set ENSEMBLE_LENS_SLURM_PARTITION to a partition that takes it",
            pytrace=False,
        )


def _local_site(cfg: dict, log_dir: Path, partition: str):
    """The user's SLURM profile with the site values of this one-node cluster."""
    study = with_profile(load_config(cfg), PROFILE)
    ex = study.execution
    assert ex.scheduler == "jobqueue" and ex.jobqueue.kind == "slurm"
    options = {
        **ex.jobqueue.options,
        "queue": partition,
        "walltime": "00:10:00",
        "job_extra_directives": [],  # not --exclusive: both jobs share the one node
        "python": sys.executable,
        "log_directory": str(log_dir),
        "local_directory": str(log_dir),
    }
    jobqueue = ex.jobqueue.model_copy(
        update={"jobs": 2, "cores": 1, "memory": "2GB", "options": options}
    )
    execution = ex.model_copy(update={"jobqueue": jobqueue, "members_per_task": 2, "retries": 3})
    return study.model_copy(update={"execution": execution})


def _job_of_busy_worker(executor, log_dir: Path) -> str:
    """SLURM job id of a worker that is running a member task (waits up to 180 s; fails
    at once, with the job's own error, when the worker jobs leave the queue unconnected)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        _check_jobs_alive(executor, log_dir)
        busy = [w for w, tasks in executor.client.processing().items() if tasks]
        if busy:
            time.sleep(1.0)  # into training
            info = executor.client.scheduler_info()["workers"]
            name = str(info[busy[0]]["name"])
            for job_name, job in executor.cluster.workers.items():
                if name == str(job_name) or name.startswith(f"{job_name}-"):
                    return str(job.job_id)
        time.sleep(0.3)
    raise AssertionError("no member task started on a SLURM worker within 180 s")


def _check_jobs_alive(executor, log_dir: Path) -> None:
    """Fail in one line when no worker has connected and none of the jobs is queued or
    running any more: the jobs died (their stderr's last line says why)."""
    if executor.client.scheduler_info()["workers"]:
        return
    ids = [str(job.job_id) for job in executor.cluster.workers.values() if job.job_id]
    if not ids:
        return  # not submitted yet
    queued = subprocess.run(
        ["squeue", "-h", "-o", "%i", "-j", ",".join(ids)], capture_output=True, text=True
    ).stdout.split()
    if queued:
        return
    logs = sorted(log_dir.glob("*.err"), key=lambda p: p.stat().st_mtime)
    last = logs[-1].read_text().strip().splitlines()[-1:] if logs else []
    pytest.fail(
        f"SLURM worker jobs {ids} ended before a dask worker connected; "
        f"last line of their log: {last[0] if last else '(no log in ' + str(log_dir) + ')'}",
        pytrace=False,
    )


def test_study_on_slurm_survives_a_cancelled_worker_job(tmp_path, user_task_path):
    _require_slurm()
    partition = _partition()
    _check_job_accepted(partition)
    cfg = _local_site(
        tiny_config(tmp_path / "s.zarr", ensemble={"seeds": [0, 1, 2, 3]}),
        tmp_path / "logs",
        partition,
    )
    ex = cfg.execution
    outcome: dict = {}
    with make_executor(
        ex.scheduler, workers=ex.workers, retries=ex.retries, jobqueue=ex.jobqueue
    ) as executor:

        def run() -> None:
            try:
                outcome["result"] = run_study(
                    cfg, executor=executor, stages=["probe", "train", "compare", "consensus"]
                )
            except Exception as err:  # surfaced below
                outcome["error"] = err

        thread = threading.Thread(target=run)
        thread.start()
        victim = _job_of_busy_worker(executor, tmp_path / "logs")
        subprocess.run(["scancel", victim], check=True, timeout=30)
        print(f"scancel {victim} (a worker job running a member batch)")
        thread.join(timeout=600)
        queue = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True)
    assert not thread.is_alive(), "the study did not finish within 600 s"
    assert "error" not in outcome, outcome.get("error")
    assert victim not in queue.stdout.split()
    store = open_store(tmp_path / "s.zarr")
    assert store.complete_models == ["s0", "s1", "s2", "s3"]
    assert not any(p.name.startswith("model@") for p in (store.path / "_staging").iterdir())
    assert store.result_tag("consensus", "latent") is not None
    timings = outcome["result"].timings
    print("SLURM study stage timings (s):", {k: round(v, 1) for k, v in timings.items()})


def test_without_sinfo_the_skip_says_why(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sinfo here
    with pytest.raises(pytest.skip.Exception, match=r"SLURM not installed \(no sinfo on PATH\)"):
        _require_slurm()
    fake = tmp_path / "sinfo"
    fake.write_text("#!/bin/sh\necho down\n")
    fake.chmod(0o755)
    with pytest.raises(pytest.skip.Exception, match=r"no idle node \(sinfo states \['down'\]\)"):
        _require_slurm()


def _fake(tmp_path: Path, name: str, script: str) -> None:
    tool = tmp_path / name
    tool.write_text("#!/bin/sh\n" + script + "\n")
    tool.chmod(0o755)


def test_the_partition_is_the_clusters_default_or_the_named_one(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("ENSEMBLE_LENS_SLURM_PARTITION", raising=False)
    _fake(tmp_path, "sinfo", "printf 'gpu\\nbatch*\\n'")
    assert _partition() == "batch"
    _fake(tmp_path, "sinfo", "printf 'gpu\\nlong\\n'")
    assert _partition() == "gpu"
    monkeypatch.setenv("ENSEMBLE_LENS_SLURM_PARTITION", "short")
    assert _partition() == "short"


def test_a_refused_job_fails_at_once_with_sbatchs_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    _fake(
        tmp_path,
        "sbatch",
        "echo 'sbatch: error: Batch job submission failed: Invalid partition name specified' >&2"
        "; exit 1",
    )
    with pytest.raises(
        pytest.fail.Exception,
        match=r"SLURM refuses the test's worker job on partition 'debug' \(sbatch: error: Batch "
        r"job submission failed: Invalid partition name specified\); set ENSEMBLE_LENS_SLURM",
    ):
        _check_job_accepted("debug")
    _fake(tmp_path, "sbatch", "echo 'sbatch: Job 7 to start at now' >&2")
    _check_job_accepted("debug")  # accepted: no failure
