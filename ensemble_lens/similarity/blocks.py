"""One block of an all-pairs matrix: every pair between two groups of networks, or within one.

:func:`pairwise` holds all K networks at once; a block holds only the networks of its two
groups, so splitting K x K into blocks bounds memory independently of K and lets blocks run
side by side (the study's compare stage does this, one executor task per block). Inside a
block each network's work is done once (its moments, live units and factorisation, or the
measure's ``prepare`` state) and each pair costs only its own part; the values equal
:func:`pairwise` on all K networks (the same per-pair functions; moments-based values differ
only by the rounding of a different summation, ~1e-16).

Asymmetric measures fill both directions of a block (rows x cols and cols x rows), so the
blocks of the upper triangle of groups cover the full matrix for every measure.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..errors import EnsembleLensWarning, ShapeError
from ._batched import pair_values
from ._device import Device, Precision
from ._names import POST, Measure
from ._pairstate import live_mask, prepare_net
from ._registry import resolve_metric
from .allpairs import _block, _pair_task, _prepare, materialise
from .moments import Moments, compute_moments, cross_covariance, resolve_inputs
from .stats import permutation_test

__all__ = ["block_moments", "pair_index", "pairwise_block", "permutation_block"]


def _union(rows: Mapping[str, Any], cols: Mapping[str, Any] | None) -> tuple[dict, list, list]:
    """(networks of the block, row positions, col positions); cols is rows for a diagonal."""
    data = dict(rows)
    ia = list(range(len(data)))
    if cols is None:
        return data, ia, ia
    common = sorted(set(data) & set(cols))
    if common:
        raise ShapeError(f"block: networks {common} are both rows and columns; pass cols=None")
    data.update(cols)
    return data, ia, list(range(len(ia), len(data)))


def _pairs(ia: list[int], ib: list[int], symmetric: bool) -> list[tuple[int, int]]:
    """Pairs a block evaluates: i <= j inside a diagonal block of a symmetric measure."""
    if ia is ib:
        return [(i, j) for a, i in enumerate(ia) for j in ia[a if symmetric else 0 :]]
    return [(i, j) for i in ia for j in ib]


def _moment_block(
    data: dict,
    m: Measure,
    ia: list,
    ib: list,
    out: np.ndarray,
    mom: Moments | None,
    chunk: int,
    how: tuple[Device, Precision] = ("cpu", "float64"),
) -> None:
    """Moments of the block's networks in one pass, each network prepared once, then pairs."""
    assert m.moment is not None
    if mom is None:
        mom = compute_moments(data, chunk_size=chunk, device=how[0], precision=how[1])
    o, names = mom.offsets, mom.names
    need = ia if ia is ib else ia + ib
    nets = {}
    for a in need:
        cov = mom.block(a, a)
        nets[a] = prepare_net(cov, live_mask(cov, mom.mean[o[a] : o[a + 1]], names[a]), m.moment)
    pairs = _pairs(ia, ib, True)
    for (i, j), (vij, vji) in zip(
        pairs, pair_values(nets, mom.cov, o, pairs, m.moment, dict(m.options)), strict=True
    ):
        out[i, j], out[j, i] = vij, vji
    _post(out, m, ia, ib)


def _post(out: np.ndarray, m: Measure, ia: list, ib: list) -> None:
    """The measure's output transform (arccos...) on the block's entries, in place."""
    if m.post == "identity":
        return
    post = np.vectorize(POST[m.post], otypes=[float])
    for rows, cols in {(tuple(ia), tuple(ib)), (tuple(ib), tuple(ia))}:
        sub = np.ix_(rows, cols)
        out[sub] = post(out[sub])


def _loop_block(data: dict, m: Measure, ia: list, ib: list, out: np.ndarray) -> None:
    """Pair by pair through the measure's function (measures without per-network work)."""
    _, arrays = materialise(data, m.keep_dead)
    pairs = _pairs(ia, ib, m.symmetric)
    if not m.symmetric and ia is not ib:
        pairs += [(j, i) for i, j in pairs]
    for i, j in pairs:
        out[i, j] = _pair_task(m.fn, m.post, arrays[i], arrays[j], dict(m.options))
        if m.symmetric:
            out[j, i] = out[i, j]


def pairwise_block(
    rows: Mapping[str, Any],
    cols: Mapping[str, Any] | None,
    metric: str | Callable[..., float],
    *,
    chunk_size: int = 8192,
    moments: Moments | None = None,
    device: Device = "cpu",
    precision: Precision = "float64",
    **kwargs: Any,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Values of one block of the all-pairs matrix of ``metric``.

    Parameters
    ----------
    rows, cols : dict of name -> (n, d_k) array
        The block's row and column networks (disjoint names), all on the same n samples;
        ``cols=None`` for a diagonal block (rows x rows).
    metric : str or callable
        As in :func:`pairwise`.
    chunk_size : int
        Samples per chunk of the moments pass.
    moments : Moments, optional
        :func:`compute_moments` of the rows then the columns, shared by several calls on the
        same block (moments-based measures only).
    device, precision : str
        Where the moments pass runs when ``moments`` is not given (see
        :func:`compute_moments`).
    **kwargs
        Options of the measure's function.

    Returns
    -------
    forward : ndarray, shape (len(rows), len(cols))
        ``metric(rows[i], cols[j])``.
    backward : ndarray, shape (len(cols), len(rows))
        ``metric(cols[j], rows[i])`` (the transpose of ``forward`` for symmetric measures;
        ``forward`` itself for a diagonal block).
    method : {"moments", "prepared", "pairs"}
        How the values were computed (the ``method`` attribute :func:`pairwise` sets).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> nets = {f"n{i}": rng.normal(size=(50, 3)) for i in range(3)}
    >>> fwd, bwd, how = pairwise_block({"n0": nets["n0"]}, {"n1": nets["n1"], "n2": nets["n2"]},
    ...                                "linear_cka")
    >>> fwd.shape, bwd.shape, how
    ((1, 2), (2, 1), 'moments')
    """
    m = resolve_metric(metric, **kwargs)
    data, ia, ib = _union(rows, cols)
    out = np.full((len(data), len(data)), np.nan)
    if m.moment is not None:
        _moment_block(data, m, ia, ib, out, moments, chunk_size, (device, precision))
        method = "moments"
    elif m.prepare is not None and m.combine is not None:
        _, arrays = materialise(data, m.keep_dead)
        sa = _prepare(m, arrays, ia, None, 1)
        sb = sa if ia is ib else _prepare(m, arrays, ib, None, 1)
        _block(m, ia, ib, sa, sb, out, None, 1)
        _post(out, m, ia, ib)
        method = "prepared"
    else:
        _loop_block(data, m, ia, ib, out)
        method = "pairs"
    if m.kind == "distance" and ia is ib:
        np.fill_diagonal(out, 0.0)
    return out[np.ix_(ia, ib)], out[np.ix_(ib, ia)], method


def block_moments(
    rows: Mapping[str, Any],
    cols: Mapping[str, Any],
    chunk_size: int = 8192,
    device: Device = "cpu",
    precision: Precision = "float64",
) -> Moments:
    """:class:`Moments` of an off-diagonal block (rows then cols) with only what its pairs use:
    each network's own covariance and the rows x cols cross-covariance (the rows x rows and
    cols x cols cross terms are left 0), half the products of the whole block's pass; the
    products run where ``device`` says (see :func:`compute_moments`)."""
    how = (device, precision)
    own = [
        compute_moments({k: x}, chunk_size=chunk_size, device=device, precision=precision)
        for k, x in {**rows, **cols}.items()
    ]
    names_r, spec_r, n, widths_r = resolve_inputs(dict(rows))
    names_c, spec_c, _, widths_c = resolve_inputs(dict(cols))
    mean = np.concatenate([m.mean for m in own])
    scales = np.concatenate([np.ones(m.mean.size) if m.scales is None else m.scales for m in own])
    r = sum(widths_r)
    cross = cross_covariance(
        (spec_r, spec_c), (names_r, names_c), (mean[:r], mean[r:]), n, chunk_size,
        scales=(scales[:r], scales[r:]), how=how,
    )  # fmt: skip
    cov = np.zeros((mean.size, mean.size))
    cov[:r, r:], cov[r:, :r] = cross, cross.T
    at = 0
    for m in own:
        cov[at : at + m.mean.size, at : at + m.mean.size] = m.cov
        at += m.mean.size
    widths = widths_r + widths_c
    return Moments(n, names_r + names_c, widths, mean, cov, None if (scales == 1).all() else scales)


def pair_index(i: int, j: int, k: int, symmetric: bool) -> int:
    """Position of pair (i, j) in :func:`pairwise_permutation_test`'s list of tested pairs
    (``i < j`` for symmetric measures, every ``i != j`` otherwise), which seeds the pair."""
    if symmetric:
        return i * (2 * k - i - 1) // 2 + (j - i - 1)
    return i * (k - 1) + (j if j < i else j - 1)


def permutation_block(
    rows: Mapping[str, Any],
    cols: Mapping[str, Any] | None,
    metric: str | Callable[..., float],
    *,
    positions: tuple[list[int], list[int]],
    k: int,
    n_perm: int,
    seed: int = 0,
    **kwargs: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Permutation-test p-values of one block, equal to the block's entries of
    :func:`pairwise_permutation_test` on all ``k`` networks.

    ``positions`` are the rows' and the columns' indices among the k networks (they pick each
    pair's generator, ``SeedSequence(seed).spawn``'s child at the pair's place). The diagonal
    holds NaN. Returns ``(forward, backward)`` as :func:`pairwise_block`.
    """
    m = resolve_metric(metric, **kwargs)
    data, ia, ib = _union(rows, cols)
    _, arrays = materialise(data, m.keep_dead)
    glob = dict(zip(ia + ([] if ia is ib else ib), positions[0] + positions[1], strict=True))
    out = np.full((len(data), len(data)), np.nan)
    pairs = [(i, j) for i, j in _pairs(ia, ib, m.symmetric) if i != j]
    if not m.symmetric and ia is not ib:
        pairs += [(j, i) for i, j in pairs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EnsembleLensWarning)
        for i, j in pairs:
            a, b = (j, i) if m.symmetric and glob[i] > glob[j] else (i, j)  # as the full test
            seq = np.random.SeedSequence(
                seed, spawn_key=(pair_index(glob[a], glob[b], k, m.symmetric),)
            )
            res = permutation_test(
                arrays[a], arrays[b], m, n_perm=n_perm, seed=np.random.default_rng(seq)
            )
            out[i, j] = res.p_value
            if m.symmetric:
                out[j, i] = res.p_value
    return out[np.ix_(ia, ib)], out[np.ix_(ib, ia)]
