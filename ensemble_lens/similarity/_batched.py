"""Many pairs of the moments-based measures at once: the pairs of a block stacked by shape and
evaluated with batched matrix products and batched SVDs (numpy's stacked ``matmul`` and
``linalg.svd``), instead of a Python call per pair.

Same formulas as :func:`._pairstate.eval_pairs` (linear CKA, Procrustes similarity, mean CCA,
shape distance), so the values agree with it to round-off (~1e-15); the other moments-based
measures (SVCCA, PWCCA) return ``None`` and go pair by pair.
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


def _cross(cov: np.ndarray, o: np.ndarray, a: NetState, b: NetState, i: int, j: int) -> np.ndarray:
    c = cov[o[i] : o[i + 1], o[j] : o[j + 1]]
    return c if a.live.all() and b.live.all() else c[np.ix_(a.live, b.live)]


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
    whiten = name in ("mean_cca", "shape_distance")
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for p, (i, j) in enumerate(pairs):
        a, b = nets[i], nets[j]
        key = (int(a.live.sum()), int(b.live.sum()))
        if whiten:  # the whitened cross product's shape: the two ranks
            key += (a.whitener.shape[1], b.whitener.shape[1])  # type: ignore[union-attr]
        groups[key].append(p)
    out = np.empty(len(pairs))
    for idx in groups.values():
        i0, j0 = pairs[idx[0]]
        size = 8 * max(1, int(nets[i0].live.sum() * nets[j0].live.sum()))
        step = max(1, _STACK_BYTES // size)
        for s in range(0, len(idx), step):
            part = idx[s : s + step]
            ps = [pairs[p] for p in part]
            left, right = [nets[i] for i, _ in ps], [nets[j] for _, j in ps]
            c = np.stack([_cross(cov, offsets, nets[i], nets[j], i, j) for i, j in ps])
            out[part] = _values(name, c, left, right, kw)
    return out


def _values(
    name: str, c: np.ndarray, left: list[NetState], right: list[NetState], kw: dict[str, Any]
) -> np.ndarray:
    if name == "linear_cka":
        fro = np.array([a.fro * b.fro for a, b in zip(left, right, strict=True)])
        return np.square(c).sum(axis=(1, 2)) / fro
    if name == "procrustes_similarity":
        tr = np.sqrt([a.trace * b.trace for a, b in zip(left, right, strict=True)])
        return np.minimum(np.linalg.svd(c, compute_uv=False).sum(axis=1) / tr, 1.0)
    wa = np.stack([a.whitener for a in left])  # (P, d_a, k_a)
    wb = np.stack([b.whitener for b in right])
    k = np.matmul(np.matmul(wa.transpose(0, 2, 1), c), wb)  # whitened cross, (P, k_a, k_b)
    if name == "mean_cca":
        ridge = kw.get("ridge", 0.0)
        ga = np.stack([_ridge_scale(a.factor, ridge) for a in left])  # type: ignore[arg-type]
        gb = np.stack([_ridge_scale(b.factor, ridge) for b in right])  # type: ignore[arg-type]
        rho = np.clip(_svals(ga[:, :, None] * k * gb[:, None, :]), 0.0, 1.0)
        return rho[:, : _check_k(kw.get("n_components"), rho.shape[1])].mean(axis=1)
    alpha = kw.get("alpha", 1.0)
    ga = np.stack([shape_gains(a.factor, alpha) for a in left])  # type: ignore[arg-type]
    gb = np.stack([shape_gains(b.factor, alpha) for b in right])  # type: ignore[arg-type]
    nuc = _svals(ga[:, :, None] * k * gb[:, None, :]).sum(axis=1)
    cos = nuc / (np.linalg.norm(ga, axis=1) * np.linalg.norm(gb, axis=1))
    return np.arccos(np.clip(cos, -1.0, 1.0))


def _svals(m: np.ndarray) -> np.ndarray:
    if m.shape[1] == 0 or m.shape[2] == 0:
        return np.zeros((m.shape[0], 0))
    return np.linalg.svd(m, compute_uv=False)
