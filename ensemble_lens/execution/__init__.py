"""Executors: the one place that builds dask clusters.

Compute code receives an executor and calls ``executor.submit(fn, *args, key=...)``; it never
builds one. Every executor here has the same surface:

* ``submit(fn, *args, key=None, **kwargs) -> future`` (``future.result()``),
* ``n_workers`` (how many tasks run at once), ``close()``, and context-manager use.

``serial`` runs in-process (for debugging; exceptions surface at ``result()``), ``local`` starts
a ``distributed.LocalCluster`` of single-threaded worker processes sized to the machine, a
``tcp://host:port`` address joins an existing scheduler, and ``jobqueue`` builds a dask-jobqueue
cluster (SLURM, PBS, SGE, LSF, HTCondor).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

from ..errors import BackendUnavailableError, ConfigError

log = logging.getLogger(__name__)

__all__ = ["DaskExecutor", "SerialExecutor", "make_executor"]


class SerialExecutor:
    """Runs each submitted function immediately in this process."""

    n_workers = 1

    def submit(self, fn: Any, *args: Any, key: str | None = None, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as err:  # surfaced by future.result(), like a real executor
            future.set_exception(err)
        return future

    def share(self, value: Any) -> Any:
        """``value`` itself: tasks run here."""
        return value

    def close(self) -> None:
        return None

    def __enter__(self) -> SerialExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "SerialExecutor()"


class DaskExecutor:
    """A ``distributed.Client`` behind the executor surface.

    Every task gets an explicit, unique key (``<key>-<random>``) and ``pure=False`` so dask never
    de-duplicates two random jobs, and ``retries`` so a lost worker's task runs again.
    """

    def __init__(self, client: Any, *, retries: int = 2, cluster: Any = None) -> None:
        self.client = client
        self.cluster = cluster
        self.retries = retries

    @property
    def n_workers(self) -> int:
        info = (
            self.client.scheduler_info(n_workers=-1)
            if _accepts_n_workers()
            else self.client.scheduler_info()
        )
        return max(1, len(info.get("workers", {})))

    def submit(self, fn: Any, *args: Any, key: str | None = None, **kwargs: Any) -> Any:
        name = key or getattr(fn, "__name__", "task")
        task_key = f"{name}-{uuid.uuid4().hex[:10]}"
        return self.client.submit(
            fn, *args, key=task_key, pure=False, retries=self.retries, **kwargs
        )

    def share(self, value: Any) -> Any:
        """``value`` sent once to every worker (``Client.scatter(broadcast=True)``); pass the
        returned future to many tasks instead of the value, which would travel with each."""
        return self.client.scatter([value], broadcast=True)[0]

    def close(self) -> None:
        with _quiet_shutdown():
            try:
                self.client.close()
                if self.cluster is not None:
                    self.cluster.close()
            except Exception as err:  # the work is done; a failing goodbye must not undo it
                log.debug("dask shutdown: %s: %s", type(err).__name__, err)

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client.scheduler.address!r})"


@contextlib.contextmanager
def _quiet_shutdown() -> Iterator[None]:
    """Hide dask's expected shutdown noise ("Worker process still alive after 4.0 seconds,
    killing", CommClosedError of a job that ends first) unless dask logs at DEBUG (-vv)."""
    loggers = [logging.getLogger(n) for n in ("distributed", "tornado", "asyncio")]
    before = [lg.level for lg in loggers]
    if loggers[0].getEffectiveLevel() > logging.DEBUG:
        for lg in loggers:
            lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, before, strict=True):
            lg.setLevel(level)


def _accepts_n_workers() -> bool:
    import inspect

    from distributed import Client

    return "n_workers" in inspect.signature(Client.scheduler_info).parameters


def make_executor(
    scheduler: str = "local",
    *,
    workers: int | None = None,
    retries: int = 2,
    jobqueue: Any = None,
) -> SerialExecutor | DaskExecutor:
    """Build an executor.

    Parameters
    ----------
    scheduler
        ``"serial"``, ``"local"``, ``"jobqueue"`` or a scheduler address (``tcp://host:8786``).
    workers
        Worker processes for ``local`` (default: one per core) or jobs for ``jobqueue``.
    retries
        How often a task lost with its worker is run again.
    jobqueue
        A :class:`ensemble_lens.config.JobqueueConfig` (required for ``"jobqueue"``).
    """
    if scheduler == "serial":
        return SerialExecutor()
    if scheduler == "local":
        return _local(workers, retries)
    if scheduler == "jobqueue":
        return _jobqueue(jobqueue, workers, retries)
    if "://" in scheduler:
        from distributed import Client

        log.info("joining the dask scheduler at %s", scheduler)
        return DaskExecutor(Client(scheduler), retries=retries)
    raise ConfigError(
        f"execution.scheduler: expected 'local', 'serial', 'jobqueue' or an address like "
        f"'tcp://host:8786', got {scheduler!r}"
    )


def _local(workers: int | None, retries: int) -> DaskExecutor:
    from distributed import Client, LocalCluster

    n = workers or max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    cluster = LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        memory_limit=0,
        env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    )
    log.info("started a LocalCluster of %d worker processes", n)
    return DaskExecutor(Client(cluster), retries=retries, cluster=cluster)


def _jobqueue(spec: Any, workers: int | None, retries: int) -> DaskExecutor:
    if spec is None:
        raise ConfigError("execution.jobqueue: the 'jobqueue' scheduler needs a jobqueue section")
    try:
        import dask_jobqueue
    except ImportError as err:
        raise BackendUnavailableError(
            "the jobqueue scheduler needs dask-jobqueue: pip install 'ensemble-lens[jobqueue]'"
        ) from err
    from distributed import Client

    classes = {
        "slurm": "SLURMCluster",
        "pbs": "PBSCluster",
        "sge": "SGECluster",
        "lsf": "LSFCluster",
        "htcondor": "HTCondorCluster",
    }
    cluster_cls = getattr(dask_jobqueue, classes[spec.kind])
    cluster = cluster_cls(
        cores=spec.cores, processes=spec.cores, memory=spec.memory, **spec.options
    )
    cluster.scale(jobs=workers or spec.jobs)
    return DaskExecutor(Client(cluster), retries=retries, cluster=cluster)
