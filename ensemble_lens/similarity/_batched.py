"""Many pairs of the moments-based measures at once: the pairs of a block stacked by shape and
evaluated with batched matrix products and batched SVDs (numpy's stacked ``matmul`` and
``linalg.svd``), instead of a Python call per pair.

Same formulas as :func:`._pairstate.eval_pairs` (linear CKA, Procrustes similarity, mean CCA,
shape distance), so the values agree with it to round-off (~1e-15); the other moments-based
measures (SVCCA, PWCCA) return ``None`` and go pair by pair. Per-network quantities (live
columns, norms, whitener, gains) are stacked once per network and gathered per pair by index.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from ._pairstate import NetState
from .cca import _check_k, _ridge_scale
from .procrustes import shape_gains

#: Measures evaluated here.
BATCHED = frozenset({"linear_cka", "procrustes_similarity", "mean_cca", "shape_distance"})
_STACK_BYTES = 32 * 2**20  # one stack of cross-covariances


def _per_net(nets: dict[int, NetState], offsets: np.ndarray, name: str, kw: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Per network: absolute live columns, fro, trace, whitener and gains (whitened ones)."""
    out = {}
    for i, s in nets.items():
        row: dict[str, Any] = {"cols": offsets[i] + np.flatnonzero(s.live), "fro": s.fro}
        row["trace"] = s.trace
        if name == "mean_cca":
            row["w"], row["g"] = s.whitener, _ridge_scale(s.factor, kw.get("ridge", 0.0))  # type: ignore[arg-type]
        elif name == "shape_distance":
            row["w"], row["g"] = s.whitener, shape_gains(s.factor, kw.get("alpha", 1.0))  # type: ignore[arg-type]
        out[i] = row
    return out


def _gather(per: dict[int, dict[str, Any]], idx: np.ndarray) -> dict[str, np.ndarray]:
    """Per-pair stacks of one side: each network's arrays stacked once, then indexed."""
    nets, inv = np.unique(idx, return_inverse=True)
    keys = per[int(nets[0])].keys()
    return {k: np.stack([np.asarray(per[int(i)][k]) for i in nets])[inv] for k in keys}


def batched_values(
    nets: dict[int, NetState],
    cov: np.ndarray,
    offsets: np.ndarray,
    pairs: list[tuple[int, int]],
    name: str,
    kw: dict[str, Any],
) -> np.ndarray | None:
    """``(len(pairs),)`` values of a symmetric batched measure, or None when it is not one."""
    if name not in BATCHED:
        return None
    per = _per_net(nets, offsets, name, kw)
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for p, (i, j) in enumerate(pairs):  # stacks need equal shapes: live widths and ranks
        key = (per[i]["cols"].size, per[j]["cols"].size)
        if "w" in per[i]:
            key += (per[i]["w"].shape[1], per[j]["w"].shape[1])
        groups[key].append(p)
    ends = np.array(pairs)
    out = np.empty(len(pairs))
    for key, idx in groups.items():
        step = max(1, _STACK_BYTES // (8 * max(1, key[0] * key[1])))
        for s in range(0, len(idx), step):
            part = np.asarray(idx[s : s + step])
            a, b = _gather(per, ends[part, 0]), _gather(per, ends[part, 1])
            c = cov[a["cols"][:, :, None], b["cols"][:, None, :]]  # (P, d_a, d_b)
            out[part] = _values(name, c, a, b, kw)
    return out


def _values(
    name: str, c: np.ndarray, a: dict[str, np.ndarray], b: dict[str, np.ndarray], kw: dict
) -> np.ndarray:
    if name == "linear_cka":
        return np.square(c).sum(axis=(1, 2)) / (a["fro"] * b["fro"])
    if name == "procrustes_similarity":
        nuc = _svals(c).sum(axis=1)
        return np.minimum(nuc / np.sqrt(a["trace"] * b["trace"]), 1.0)
    k = np.matmul(np.matmul(a["w"].transpose(0, 2, 1), c), b["w"])  # whitened cross product
    m = a["g"][:, :, None] * k * b["g"][:, None, :]
    if name == "mean_cca":
        rho = np.clip(_svals(m), 0.0, 1.0)
        return rho[:, : _check_k(kw.get("n_components"), rho.shape[1])].mean(axis=1)
    cos = _svals(m).sum(axis=1) / (np.linalg.norm(a["g"], axis=1) * np.linalg.norm(b["g"], axis=1))
    return np.arccos(np.clip(cos, -1.0, 1.0))


def _svals(m: np.ndarray) -> np.ndarray:
    if m.shape[1] == 0 or m.shape[2] == 0:
        return np.zeros((m.shape[0], 0))
    return np.linalg.svd(m, compute_uv=False)
