"""One-to-one unit matching (Li et al. 2015) and the permutation distance built on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._input import center, prepare_pair_masked

__all__ = ["UnitMatch", "match_units", "permutation_distance"]


@dataclass(frozen=True)
class UnitMatch:
    """Result of :func:`match_units`.

    Attributes
    ----------
    x_units, y_units : ndarray of int, shape (k,)
        Matched unit indices in the original (undropped) numbering, sorted by ``x_units``;
        ``k = min(live d1, live d2)``.
    correlations : ndarray, shape (k,)
        Pearson correlation of each matched pair (signed, also with ``absolute=True``).
    """

    x_units: np.ndarray
    y_units: np.ndarray
    correlations: np.ndarray

    @property
    def mean_correlation(self) -> float:
        """Mean of the matched correlations."""
        return float(self.correlations.mean())


def unit_correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(d1, d2) Pearson correlations between the (live) units of x and y."""
    xc, yc = center(x), center(y)
    xc /= np.linalg.norm(xc, axis=0)
    yc /= np.linalg.norm(yc, axis=0)
    return np.clip(xc.T @ yc, -1.0, 1.0)


def _assign(r: np.ndarray, absolute: bool) -> tuple[np.ndarray, np.ndarray]:
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(np.abs(r) if absolute else r, maximize=True)
    return rows, cols


def match_units(X: Any, Y: Any, absolute: bool = False) -> UnitMatch:
    """Match each unit of X to at most one unit of Y maximising the summed correlation.

    Solves the linear assignment problem (``scipy.optimize.linear_sum_assignment``) on the
    (d1, d2) matrix of Pearson correlations between units, as in the one-to-one matching of
    Li et al. (2015, "Convergent learning").

    Parameters
    ----------
    X, Y : array-like, shapes (n, d1), (n, d2)
        Activations on the same samples; constant units are dropped (warned) and unmatched.
    absolute : bool
        Sign handling. False (default): maximise the sum of signed correlations, so a unit and
        its negation are anti-correlated, not matched. True: maximise the sum of ``|r|``
        (a sign flip counts as a match); the reported correlations stay signed.

    Returns
    -------
    UnitMatch
    """
    (x, mx), (y, my) = prepare_pair_masked(X, Y)
    r = unit_correlations(x, y)
    rows, cols = _assign(r, absolute)
    ix, iy = np.flatnonzero(mx), np.flatnonzero(my)
    return UnitMatch(x_units=ix[rows], y_units=iy[cols], correlations=r[rows, cols])


def permutation_distance(X: Any, Y: Any) -> float:
    """Angular distance between unit-standardised representations modulo unit permutations.

    ``arccos(sum_i r_{i, pi(i)} / sqrt(d1 d2))`` where ``pi`` is the signed optimal one-to-one
    matching of :func:`match_units` and ``r`` the unit correlations. This is the shape metric
    of Williams et al. (2021) with the permutation group in place of the orthogonal group,
    applied to z-scored units (the narrower input implicitly zero-padded).

    Returns
    -------
    float
        In [0, pi]. A metric on z-scored representations modulo permutations of units
        (symmetric, triangle inequality; 0 iff the units are equal up to order and affine
        rescaling of each unit); invariant to per-unit affine maps with positive scale.
    """
    (x, _), (y, _) = prepare_pair_masked(X, Y)
    if x.shape == y.shape and np.array_equal(x, y):
        return 0.0
    r = unit_correlations(x, y)
    rows, cols = _assign(r, False)
    cos = r[rows, cols].sum() / np.sqrt(r.shape[0] * r.shape[1])
    return float(np.arccos(np.clip(cos, -1.0, 1.0)))
