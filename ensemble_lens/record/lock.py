"""One writing run per store: an OS-level lock on a file inside the store.

The lock is ``fcntl.flock`` on ``<store>/.lock``: the kernel releases it when the holding
process exits, however it exits (``kill -9`` included), so there is never a stale lock to
clean up. The file is never deleted (deleting a lock file races with the next locker); it
holds the holder's pid, host, start time and command line, so a second run can say who holds
it. Readers (``inspect``, ``report``) never take the lock.

Hand-written on ``fcntl`` rather than a lock library: ``filelock`` falls back to lock files
that outlive a killed process on some systems, and this is the whole of what is needed.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import StoreError, StoreLockedError

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"


def store_dir_error(path: Path, err: OSError) -> StoreError:
    """A one-line error for an OSError met while preparing the store directory ``path``."""
    if isinstance(err, (FileExistsError, NotADirectoryError)) or path.is_file():
        return StoreError(
            f"store {path}: expected a study store directory (or a path to create one), "
            "got a regular file"
        )
    if err.errno == errno.EROFS:
        return StoreError(
            f"store {path} is on a read-only file system; a run needs to write it "
            "(inspect and report only read: they work on it)"
        )
    if err.errno in (errno.EACCES, errno.EPERM):
        return StoreError(f"store {path}: no permission to write here ({err.strerror})")
    if err.errno == errno.ENOSPC:
        return StoreError(f"store {path}: no space left on the device")
    return StoreError(f"store {path}: cannot prepare the store directory: {err}")


class StoreLock:
    """The exclusive write lock of one study store.

    Parameters
    ----------
    store_path
        The store directory (created when missing; its parent must exist).
    wait
        Block until the holder finishes instead of raising :class:`StoreLockedError`.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "s.zarr")
    >>> with StoreLock(path):
    ...     pass
    """

    def __init__(self, store_path: str | os.PathLike[str], *, wait: bool = False) -> None:
        self.path = Path(store_path)
        self.wait = wait
        self._fd: int | None = None

    def acquire(self) -> StoreLock:
        import fcntl

        lock_file = self.path / LOCK_NAME
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise store_dir_error(self.path, err) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = describe_holder(self.path)
            if not self.wait:
                os.close(fd)
                raise StoreLockedError(
                    f"store {self.path} is in use by another run ({holder}); wait for it to "
                    "finish, or pass --wait to queue behind it"
                ) from None
            log.warning("store %s is in use (%s); waiting for it", self.path, holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd = fd
        self._write_holder(fd)
        return self

    def _write_holder(self, fd: int) -> None:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "command": " ".join(sys.argv)[:300],
        }
        try:  # best effort: a full disk must not stop a run that holds the lock
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except OSError as err:
            log.debug("could not write lock holder details: %s", err)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def describe_holder(store_path: str | os.PathLike[str]) -> str:
    """``"pid 123 on host, since 2026-01-01 10:00:00 UTC"`` from the lock file, if written."""
    try:
        info = json.loads((Path(store_path) / LOCK_NAME).read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "holder details not written yet"
    return f"pid {info.get('pid')} on {info.get('host')}, since {info.get('started')}"
