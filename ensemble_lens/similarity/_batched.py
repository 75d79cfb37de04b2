"""Many pairs of the moments-based measures at once: the pairs of a tile stacked by shape and
evaluated with batched matrix products and batched eigen/singular value routines, instead of a
Python call per pair. :func:`pair_values` is the one pair evaluator of the moments path, used
by :func:`~ensemble_lens.similarity.pairwise` (its tiles) and by
:func:`~ensemble_lens.similarity.pairwise_block` (the compare stage's blocks).

Same formulas as :func:`._pairstate.eval_pairs` (linear CKA, Procrustes similarity, mean CCA,
shape distance), so the values agree with it to round-off; the other moments-based measures
(SVCCA, PWCCA) go pair by pair through ``eval_pairs``. Per-network quantities (live columns,
norms, whitener, gains) are stacked once per network and gathered per pair by index.

Singular values come from the eigenvalues of the smaller Gram matrix ``M M^T`` or ``M^T M``
(``sqrt(eigvalsh)``: a symmetric tridiagonalisation, about half the time of LAPACK's
values-only ``gesdd`` at d = 256). Its error is absolute in the squared values,
``|d lam| ~ eps lam_max``, so a small singular value ``s`` is off by about
``eps lam_max / (2 s)``. A pair is accepted when that first-order bound, summed over its values,
is below ``GRAM_RTOL`` of their sum; otherwise (rank-deficient or nearly so: n < d, duplicated
units, a rotated low-rank copy) its values come from the SVD, as in the single-pair functions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._pairstate import NetState, eval_pairs
from .cca import _check_k, _ridge_scale
from .procrustes import shape_gains

#: Measures evaluated here.
BATCHED = frozenset({"linear_cka", "procrustes_similarity", "mean_cca", "shape_distance"})
#: One stack of cross-covariances (the temporaries of a stack are a few times this).
STACK_BYTES = 2**19
#: Largest accepted first-order error bound of the Gram route, relative to the values' sum
#: (observed errors are 20-100x below the bound).
GRAM_RTOL = 1e-11
_EPS = float(np.finfo(float).eps)

Offsets = Mapping[int, int] | np.ndarray


def _per_net(nets: Mapping[int, NetState], idx: Any, off: Offsets, name: str, kw: dict):  # type: ignore[no-untyped-def]
    """Per network of ``idx``: absolute live columns, fro, trace, whitener and gains."""
    out = {}
    for i in idx:
        s = nets[i]
        row: dict[str, Any] = {"cols": off[i] + np.flatnonzero(s.live), "fro": s.fro}
        row["trace"] = s.trace
        if name == "mean_cca":
            row["w"], row["g"] = s.whitener, _ridge_scale(s.factor, kw.get("ridge", 0.0))  # type: ignore[arg-type]
        elif name == "shape_distance":
            row["w"], row["g"] = s.whitener, shape_gains(s.factor, kw.get("alpha", 1.0))  # type: ignore[arg-type]
        out[int(i)] = row
    return out


def _gather(per: dict[int, dict[str, Any]], idx: np.ndarray) -> dict[str, np.ndarray]:
    """Per-pair stacks of one side (one copy of each pair's arrays)."""
    rows = [per[int(i)] for i in idx]
    return {k: np.stack([np.asarray(r[k]) for r in rows]) for k in rows[0]}


def pair_values(
    nets: Mapping[int, NetState],
    cov: np.ndarray,
    offsets: Offsets,
    pairs: Sequence[tuple[int, int]],
    name: str,
    kw: dict[str, Any],
    col_offsets: Offsets | None = None,
) -> list[tuple[float, float]]:
    """``(metric(i, j), metric(j, i))`` for each pair of a tile of cross-covariances.

    Network ``i``'s rows of ``cov`` start at ``offsets[i]`` and network ``j``'s columns at
    ``col_offsets[j]`` (``offsets`` when None: a square tile). Batched for the measures of
    :data:`BATCHED`, pair by pair through ``eval_pairs`` for the others (SVCCA, PWCCA).
    """
    co = offsets if col_offsets is None else col_offsets
    if name in BATCHED:
        vals = _stacked(nets, cov, np.array(pairs, dtype=np.int64).reshape(-1, 2), (offsets, co),
                        name, kw)  # fmt: skip
        return [(v, v) for v in vals.tolist()]
    items = [
        (nets[i], nets[j], cov[offsets[i] : offsets[i] + nets[i].width,
                               co[j] : co[j] + nets[j].width])
        for i, j in pairs
    ]  # fmt: skip
    return eval_pairs(items, name, kw)


def _stacked(
    nets: Mapping[int, NetState],
    cov: np.ndarray,
    ends: np.ndarray,
    off: tuple[Offsets, Offsets],
    name: str,
    kw: dict[str, Any],
) -> np.ndarray:
    """Values of the pairs ``ends`` (P, 2), stacked by shape in stacks of ``STACK_BYTES``."""
    pa = _per_net(nets, np.unique(ends[:, 0]), off[0], name, kw)
    pb = _per_net(nets, np.unique(ends[:, 1]), off[1], name, kw)
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for p, (i, j) in enumerate(ends.tolist()):  # stacks need equal shapes: widths and ranks
        key: tuple[int, ...] = (pa[i]["cols"].size, pb[j]["cols"].size)
        if "w" in pa[i]:
            key += (pa[i]["w"].shape[1], pb[j]["w"].shape[1])
        groups[key].append(p)
    out = np.empty(len(ends))
    for shape, idx in groups.items():
        step = max(1, STACK_BYTES // (8 * max(1, shape[0] * shape[1])))
        for s in range(0, len(idx), step):
            part = np.asarray(idx[s : s + step])
            a, b = _gather(pa, ends[part, 0]), _gather(pb, ends[part, 1])
            c = cov[a["cols"][:, :, None], b["cols"][:, None, :]]  # (P, d_a, d_b)
            out[part] = _values(name, c, a, b, kw)
    return out


def _values(
    name: str, c: np.ndarray, a: dict[str, np.ndarray], b: dict[str, np.ndarray], kw: dict
) -> np.ndarray:
    if name == "linear_cka":
        return np.square(c).sum(axis=(1, 2)) / (a["fro"] * b["fro"])
    if name == "procrustes_similarity":
        nuc = singular_values(c).sum(axis=1)
        return np.minimum(nuc / np.sqrt(a["trace"] * b["trace"]), 1.0)
    k = np.matmul(np.matmul(a["w"].transpose(0, 2, 1), c), b["w"])  # whitened cross product
    m = a["g"][:, :, None] * k * b["g"][:, None, :]
    if name == "mean_cca":
        rho = np.clip(singular_values(m), 0.0, 1.0)
        return rho[:, : _check_k(kw.get("n_components"), rho.shape[1])].mean(axis=1)
    cos = singular_values(m).sum(axis=1) / (
        np.linalg.norm(a["g"], axis=1) * np.linalg.norm(b["g"], axis=1)
    )
    return np.arccos(np.clip(cos, -1.0, 1.0))


def singular_values(m: np.ndarray) -> np.ndarray:
    """``(P, min(a, b))`` singular values (descending) of a ``(P, a, b)`` stack: from the
    smaller Gram matrix where its error bound allows (module notes), else from the SVD."""
    if m.shape[1] == 0 or m.shape[2] == 0:
        return np.zeros((m.shape[0], 0))
    gram = m @ m.transpose(0, 2, 1) if m.shape[1] <= m.shape[2] else m.transpose(0, 2, 1) @ m
    lam = np.linalg.eigvalsh(gram)[:, ::-1]
    top = np.maximum(lam[:, :1], 0.0)
    s = np.sqrt(np.clip(lam, 0.0, None))
    bound = _EPS * top[:, 0] * (0.5 / np.maximum(s, np.sqrt(_EPS * top) + 1e-300)).sum(axis=1)
    bad = ~(bound <= GRAM_RTOL * s.sum(axis=1))
    if bad.any():
        s[bad] = np.linalg.svd(m[bad], compute_uv=False)
    return s
