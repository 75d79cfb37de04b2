"""Progress events from wherever a task runs, to the process that drives the run.

A task calls :func:`emit` with ``(label, done, total)``. Inside a dask worker the event goes
through dask's own structured-event channel (``Worker.log_event`` -> scheduler -> the client's
``subscribe_topic`` handler), which works the same on a LocalCluster, a remote scheduler and a
jobqueue cluster and needs no shared file system; in this process (the serial executor) the
listeners are called directly.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)

TOPIC = "ensemble-lens-progress"
Listener = Callable[[str, int, int], None]
_local: list[Listener] = []


def emit(label: str, done: int, total: int) -> None:
    """Report progress of ``label`` (e.g. ``"epochs s3"``): ``done`` of ``total``."""
    worker = _current_worker()
    if worker is not None:
        worker.log_event(TOPIC, {"label": label, "done": int(done), "total": int(total)})
        return
    for listener in list(_local):
        listener(label, done, total)


def _current_worker() -> Any:
    if "distributed" not in sys.modules:  # not imported: certainly not inside a dask worker
        return None
    from distributed import get_worker

    try:
        return get_worker()
    except ValueError:
        return None


@contextlib.contextmanager
def listening(executor: Any, listener: Listener | None) -> Iterator[None]:
    """Call ``listener(label, done, total)`` for every event emitted by the executor's tasks."""
    if listener is None:
        yield
        return
    client = getattr(executor, "client", None)
    _local.append(listener)
    if client is not None:
        client.subscribe_topic(TOPIC, lambda event: _deliver(listener, event))
    try:
        yield
    finally:
        _local.remove(listener)
        if client is not None:
            client.unsubscribe_topic(TOPIC)


def _deliver(listener: Listener, event: Any) -> None:
    msg = event[1] if isinstance(event, tuple) else event
    try:
        listener(str(msg["label"]), int(msg["done"]), int(msg["total"]))
    except Exception as err:  # a display problem must never stop the run
        log.debug("progress listener failed: %s", err)
