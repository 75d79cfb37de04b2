"""Member skill: members that do not predict their own targets carry no law.

An ensemble trained on shuffled or noise targets (every member at validation R^2 about 0) still
has aligned components, and some of them can pass the null and the untrained-twin tests: the
networks share what any network computes from its inputs. Formulas fitted to such components
describe the architecture, not a law. So before any formula, the study checks that the members
learnt their task: a member is *skilled* when its held-out validation score ``val_r2`` (stored
with every trained member) is at least ``min_r2``, and the ensemble is skilled when the skilled
members are at least the share ``min_fraction`` of the members whose score is known.

Members without a ``val_r2`` (ingested networks or activations without metrics) are
*unknown*: they are listed, not counted; when no member has a score the verdict is
``"unknown"`` and the study goes on, saying so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["MemberSkill", "member_skill"]


@dataclass(frozen=True)
class MemberSkill:
    """The skill verdict of an ensemble.

    Attributes
    ----------
    verdict : {"skilled", "unskilled", "unknown"}
    min_r2, min_fraction : float
        The thresholds applied.
    skilled, unskilled, unknown : list of str
        Member ids with ``val_r2 >= min_r2``, below it, and without a score.
    median_val_r2 : float or None
        Median ``val_r2`` of the members that have one.
    """

    verdict: Literal["skilled", "unskilled", "unknown"]
    min_r2: float
    min_fraction: float
    skilled: list[str]
    unskilled: list[str]
    unknown: list[str]
    median_val_r2: float | None

    @property
    def reason(self) -> str:
        """One sentence for the report and the formula records."""
        known = len(self.skilled) + len(self.unskilled)
        if self.verdict == "unknown":
            return (
                f"member skill unknown: none of the {len(self.unknown)} members has a "
                "validation R^2 (val_r2); formulas are fitted without that check"
            )
        head = (
            f"{len(self.skilled)} of {known} members predict their own targets "
            f"(val_r2 >= {self.min_r2:g}; median val_r2 {self.median_val_r2:.4g})"
        )
        if self.verdict == "skilled":
            return head
        return (
            f"{head}, fewer than the share {self.min_fraction:g} needed: members that do not "
            "learn their task carry no law; no formula is fitted"
        )

    def attrs(self) -> dict[str, Any]:
        """Entries for the consensus Dataset attrs (JSON values only)."""
        out: dict[str, Any] = {
            "member_skill": self.verdict,
            "member_skill_min_r2": self.min_r2,
            "member_skill_min_fraction": self.min_fraction,
            "members_skilled": list(self.skilled),
            "members_unskilled": list(self.unskilled),
            "members_without_val_r2": list(self.unknown),
            "member_skill_reason": self.reason,
        }
        if self.median_val_r2 is not None:
            out["median_val_r2"] = self.median_val_r2
        return out


def member_skill(
    metrics: Mapping[str, Mapping[str, Any] | None], *, min_r2: float, min_fraction: float
) -> MemberSkill:
    """Which members predict their own targets, and whether enough of them do.

    Parameters
    ----------
    metrics : dict
        Member id -> its stored metrics (``val_r2`` among them), or None.
    min_r2 : float
        Least ``val_r2`` of a skilled member.
    min_fraction : float
        Least share of skilled members among those with a score (in (0, 1]).

    Returns
    -------
    MemberSkill

    Examples
    --------
    >>> s = member_skill({"a": {"val_r2": 0.99}, "b": {"val_r2": -0.01}}, min_r2=0.5,
    ...                  min_fraction=0.8)
    >>> s.verdict, s.skilled, s.unskilled
    ('unskilled', ['a'], ['b'])
    """
    if not 0.0 < min_fraction <= 1.0:
        raise ValueError(f"min_fraction: expected a share in (0, 1], got {min_fraction}")
    scores = {m: _score(v) for m, v in metrics.items()}
    known = {m: r for m, r in scores.items() if r is not None}
    skilled = [m for m, r in known.items() if r >= min_r2]
    unskilled = [m for m, r in known.items() if r < min_r2]
    unknown = [m for m, r in scores.items() if r is None]
    if not known:
        verdict: Literal["skilled", "unskilled", "unknown"] = "unknown"
    elif len(skilled) >= min_fraction * len(known) - 1e-12:
        verdict = "skilled"
    else:
        verdict = "unskilled"
    median = float(np.median(list(known.values()))) if known else None
    return MemberSkill(
        verdict, float(min_r2), float(min_fraction), skilled, unskilled, unknown, median
    )


def _score(m: Mapping[str, Any] | None) -> float | None:
    r2 = (m or {}).get("val_r2")
    if isinstance(r2, bool) or not isinstance(r2, int | float) or not math.isfinite(r2):
        return None
    return float(r2)
