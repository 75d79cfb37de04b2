"""Rebuilding a member as it was: the epochs a member stopped by the wall clock reached.

Training is deterministic per seed; only ``train.max_seconds`` makes a member depend on the
machine's load. Such a member records ``stopped_by: "max_seconds"`` and its epochs, and a rebuild
(``--redo``, or a resume after a killed recording) trains exactly those epochs again.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["replay_epochs"]


def replay_epochs(store: Any, member: Any) -> int | None:
    """The epochs a rebuild of ``member`` trains exactly: those of its last record (complete,
    or left in staging by a killed recording) when that record has the member's tag and
    ``train.max_seconds`` stopped it; else None (training is deterministic without the clock).
    """
    if member.source != "trained":
        return None
    attrs = store.last_attrs(member.id)
    metrics = attrs.get("metrics") or {}
    if attrs.get("tag") != member.tag or metrics.get("stopped_by") != "max_seconds":
        return None
    log.info(
        "member %s: replaying the %d epochs of its record (stopped by train.max_seconds)",
        member.id,
        int(metrics["epochs"]),
    )
    return int(metrics["epochs"])
