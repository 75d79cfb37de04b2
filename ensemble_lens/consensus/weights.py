"""Member weights of the consensus scores from each member's held-out validation error."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["validation_weights"]


def validation_weights(
    metrics: Mapping[str, Mapping[str, Any] | None], *, floor: float = 1e-6
) -> dict[str, float] | None:
    """Precision weights ``1 / max(1 - val_r2, floor)``, one per member.

    Averaging the members' aligned projections estimates the shared quantity; when members
    are unequally good (different data subsets, training budgets, widths), the estimate that
    leans on each member in proportion to its precision (the inverse of its error variance) is
    the better one. A member's validation error share ``1 - R^2`` on held-out data stands in
    for the error of its latent, known only up to scale, so the weights are relative.

    Parameters
    ----------
    metrics : dict
        Model name -> its metrics (as stored with a trained model: ``val_r2`` among them), or
        None for a member without metrics (ingested activations).
    floor : float
        Least error share, so that a perfect member does not take infinite weight.

    Returns
    -------
    dict or None
        Model name -> weight (not normalised); None when any member lacks a finite ``val_r2``
        (the members are then weighted equally: a weight for some members only would compare
        unlike things).

    Examples
    --------
    >>> validation_weights({"a": {"val_r2": 0.5}, "b": {"val_r2": 0.75}})
    {'a': 2.0, 'b': 4.0}
    >>> validation_weights({"a": {"val_r2": 0.99}, "b": None}) is None
    True
    """
    if not floor > 0:
        raise ValueError(f"floor: expected a positive error share, got {floor}")
    out = {}
    for name, m in metrics.items():
        r2 = (m or {}).get("val_r2")
        if isinstance(r2, bool) or not isinstance(r2, int | float) or not math.isfinite(r2):
            return None
        out[name] = 1.0 / max(1.0 - float(r2), floor)
    return out
