"""Torch architectures, training of one member and checkpoints.

Importing this package loads only the pydantic specs; the torch-based parts
(:func:`train_member`, :func:`save_checkpoint`, :func:`load_checkpoint`, :class:`TrainResult`)
are imported on first access.
"""

from __future__ import annotations

from typing import Any

from ensemble_lens.models.spec import ArchSpec, TrainSpec

__all__ = [
    "ArchSpec",
    "TrainResult",
    "TrainSpec",
    "load_checkpoint",
    "save_checkpoint",
    "train_member",
]

_LAZY = {"TrainResult", "load_checkpoint", "save_checkpoint", "train_member"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from ensemble_lens.models import train

        return getattr(train, name)
    raise AttributeError(f"module 'ensemble_lens.models' has no attribute {name!r}")
