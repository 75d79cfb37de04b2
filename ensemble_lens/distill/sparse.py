"""Sparse regression over a library of monomials (SINDy-style STLSQ), deterministic and fast.

The library holds every monomial ``prod_j x_j ** e_j`` with integer exponents
``|e_j| <= max_power`` and ``sum_j |e_j| <= max_degree``. Negative exponents are used only for
inputs that keep one sign and stay away from zero on the data (``min |x| >= 1e-3 max |x|``),
so ``r**-3`` is in the library for a distance but ``dx**-1`` is not for a signed offset.

Columns are centred and scaled to unit variance (the intercept is refitted at the end).
Supports come from two deterministic sweeps: sequentially thresholded least squares (STLSQ,
Brunton et al. 2016) over log-spaced thresholds, and the orthogonal-matching-pursuit path
(one support per sparsity level), which rescues laws that a collinear library hides from the
full least-squares start. Each support is refitted by least squares and the non-dominated
(complexity, loss) candidates form the front.
"""

from __future__ import annotations

import itertools
import logging
import time
import warnings
from collections.abc import Sequence

import numpy as np
import sympy

from ..errors import ShapeError
from ._candidate import Candidate, make_candidate, pareto_front, subsample
from ._expr import symbols_for

logger = logging.getLogger(__name__)


def monomial_exponents(X: np.ndarray, *, max_power: int, max_degree: int) -> np.ndarray:
    """Exponent table (monomial, variable) of the library, constant monomial excluded."""
    absx = np.abs(X)
    one_sign = (X.min(axis=0) > 0) | (X.max(axis=0) < 0)
    away = absx.min(axis=0) >= 1e-3 * absx.max(axis=0)
    ranges = [
        range(-max_power if (s and a) else 0, max_power + 1)
        for s, a in zip(one_sign, away, strict=True)
    ]
    rows = [e for e in itertools.product(*ranges) if 0 < sum(map(abs, e)) <= max_degree]
    return np.array(rows, dtype=np.int64).reshape(-1, X.shape[1])


def library(X: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """Monomial values (sample, monomial) for an exponent table."""
    out = np.ones((X.shape[0], exponents.shape[0]))
    for j in range(X.shape[1]):
        for p in np.unique(exponents[:, j]):
            if p != 0:
                out[:, exponents[:, j] == p] *= (X[:, j] ** float(p))[:, None]
    return out


def stlsq(
    Theta: np.ndarray,
    y: np.ndarray,
    threshold: float,
    *,
    max_iter: int = 20,
    cache: dict[bytes, np.ndarray] | None = None,
) -> np.ndarray:
    """Boolean support of sequentially thresholded least squares on standardised columns.

    ``cache`` maps a packed support to its least-squares coefficients, so a sweep over
    thresholds solves each distinct support once.
    """
    cache = {} if cache is None else cache
    active = np.ones(Theta.shape[1], dtype=bool)
    for _ in range(max_iter):
        key = np.packbits(active).tobytes()
        if key not in cache:
            coef = np.zeros(Theta.shape[1])
            if active.any():
                coef[active] = np.linalg.lstsq(Theta[:, active], y, rcond=None)[0]
            cache[key] = coef
        new = active & (np.abs(cache[key]) >= threshold)
        if np.array_equal(new, active):
            break
        active = new
    return active


def omp_supports(Theta: np.ndarray, y: np.ndarray, max_terms: int) -> list[np.ndarray]:
    """Supports along the orthogonal-matching-pursuit path, one per sparsity level."""
    from sklearn.linear_model import orthogonal_mp

    k = min(max_terms, Theta.shape[1], Theta.shape[0] - 1)
    with warnings.catch_warnings():  # "ended prematurely": the path stops at an exact fit
        warnings.simplefilter("ignore", RuntimeWarning)
        path = orthogonal_mp(Theta, y, n_nonzero_coefs=k, return_path=True)
    path = np.reshape(path, (Theta.shape[1], -1))  # (monomial,) when the path has one step
    return [np.abs(path[:, i]) > 0 for i in range(path.shape[1])]


class SparseLibraryBackend:
    """Sparse regression over products of integer powers of the inputs.

    Parameters
    ----------
    max_power : int
        Largest ``|exponent|`` of one variable.
    max_degree : int
        Largest ``sum |exponent|`` of a monomial (``m * dx * r**-3`` has degree 5).
    max_terms : int
        Largest number of monomials in a formula.
    n_thresholds : int
        STLSQ thresholds, log-spaced from 1e-4 to 1 times ``std(y)``.
    max_points : int
        Rows used (seeded subsample).
    max_library : int
        Refuse libraries larger than this (lower ``max_degree`` or ``max_power``).
    """

    name = "sparse"

    def __init__(
        self,
        *,
        max_power: int = 3,
        max_degree: int = 5,
        max_terms: int = 6,
        n_thresholds: int = 30,
        max_points: int = 2000,
        max_library: int = 3000,
    ) -> None:
        self.max_power = max_power
        self.max_degree = max_degree
        self.max_terms = max_terms
        self.n_thresholds = n_thresholds
        self.max_points = max_points
        self.max_library = max_library

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        names: Sequence[str],
        *,
        seed: int,
        time_budget: float | None = None,
    ) -> list[Candidate]:
        """Sweep sparsity levels and return the front (see :class:`SRBackend`).

        The search is deterministic given ``seed`` (which only draws the subsample); only a
        ``time_budget`` in seconds (None: every threshold) can stop the sweep early.
        """
        start = time.perf_counter()
        Xs, ys = subsample(X, y, self.max_points, seed)
        exps = monomial_exponents(Xs, max_power=self.max_power, max_degree=self.max_degree)
        if len(exps) > self.max_library:
            raise ShapeError(
                f"sparse backend: the monomial library has {len(exps)} columns for "
                f"{X.shape[1]} inputs, more than max_library={self.max_library}; "
                "lower max_degree or max_power"
            )
        raw = library(Xs, exps)
        keep = np.isfinite(raw).all(axis=0) & (raw.std(axis=0) > 0)
        exps, raw = exps[keep], raw[:, keep]
        Theta = (raw - raw.mean(axis=0)) / raw.std(axis=0)
        yc = ys - ys.mean()
        supports = omp_supports(Theta, yc, self.max_terms)
        cache: dict[bytes, np.ndarray] = {}
        for t in np.logspace(-4, 0, self.n_thresholds) * float(np.std(ys)):
            if time_budget is not None and time.perf_counter() - start > time_budget:
                logger.info("sparse: time budget reached after some thresholds")
                break
            supports.append(stlsq(Theta, yc, t, cache=cache))
        exprs = self._expressions(supports, raw, ys, exps, names)
        logger.info(
            "sparse: %d monomials, %d supports, %.2f s",
            len(exps),
            len(exprs),
            time.perf_counter() - start,
        )
        return pareto_front([make_candidate(e, X, y, names) for e in exprs])

    def _expressions(
        self,
        supports: list[np.ndarray],
        raw: np.ndarray,
        y: np.ndarray,
        exps: np.ndarray,
        names: Sequence[str],
    ) -> list[sympy.Expr]:
        """Least-squares refit (with intercept) on each distinct support of at most max_terms."""
        syms = symbols_for(names)
        seen: set[bytes] = set()
        out = []
        for sup in supports:
            key = np.packbits(sup).tobytes()
            if key in seen or not 0 < sup.sum() <= self.max_terms:
                continue
            seen.add(key)
            A = np.column_stack([raw[:, sup], np.ones(len(y))])
            coef = np.linalg.lstsq(A, y, rcond=None)[0]
            terms = [
                sympy.Float(c) * sympy.Mul(*(s ** int(p) for s, p in zip(syms, e, strict=True)))
                for c, e in zip(coef[:-1], exps[sup], strict=True)
            ]
            out.append(sympy.Add(*terms, sympy.Float(coef[-1])))
        return out
