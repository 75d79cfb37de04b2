"""Plain-text summary of a consensus result."""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["consensus_table"]

_HEADER = ("component", "sharedness", "variance", "null thr", "support", "consensus")
_UNTRAINED = ("untrained r2", "remainder agr")


def consensus_table(ds: xr.Dataset) -> str:
    """A short fixed-width text table of a :func:`find_consensus` result.

    Parameters
    ----------
    ds : xarray.Dataset
        "Consensus results" Dataset (``sharedness``, ``variance``, ``null_threshold``,
        ``support``, ``is_consensus`` along ``component``).

    Returns
    -------
    str
        One header line and one line per component, in the Dataset's order, e.g.
        ``component  sharedness  variance  null thr  support  consensus``; with the untrained
        null also ``untrained r2`` and ``remainder agr`` (``learned_agreement``, the trained
        members' agreement on what the untrained networks miss); when the members are weighted
        unequally (``member_weight``), a last line lists their weights.
    """
    untrained = "untrained_r2" in ds and "learned_agreement" in ds
    rows: list[tuple[str, ...]] = [_HEADER + _UNTRAINED if untrained else _HEADER]
    for j, comp in enumerate(ds["component"].values):
        row: tuple[str, ...] = (
            str(comp),
            f"{float(ds['sharedness'][j]):.3f}",
            f"{float(ds['variance'][j]):.3f}",
            f"{float(ds['null_threshold'][j]):.3f}",
            f"{float(ds['support'][j]):.2f}",
            "yes" if bool(ds["is_consensus"][j]) else "no",
        )
        if untrained:
            row += (
                f"{float(ds['untrained_r2'][j]):.3f}",
                f"{float(ds['learned_agreement'][j]):.3f}",
            )
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    if "member_weight" in ds and float(np.ptp(ds["member_weight"].values)) > 0:
        pairs = zip(ds["model"].values, ds["member_weight"].values, strict=True)
        lines.append("member weights: " + ", ".join(f"{m} {w:.3f}" for m, w in pairs))
    return "\n".join(lines)
