"""Cross-validated linear (ridge) predictivity of one representation from another."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ShapeError
from ._input import prepare_pair

__all__ = ["linear_predictivity"]

#: Default grid of relative ridge penalties, chosen per training fold by leave-one-out.
DEFAULT_RIDGES: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def _folds(n: int, cv: int, seed: int | np.random.Generator) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return np.array_split(rng.permutation(n), cv)


def _factor(xtr: np.ndarray) -> tuple[np.ndarray, ...]:
    """A training block's mean and the thin SVD of its centred rows."""
    mx = xtr.mean(axis=0)
    U, s, Vt = np.linalg.svd(xtr - mx, full_matrices=False)
    return mx, U, s, Vt


def _predict(
    fit: tuple[np.ndarray, ...], ytr: np.ndarray, xte: np.ndarray, ridges: np.ndarray
) -> np.ndarray:
    """Ridge predictions for the test rows with the grid value chosen by leave-one-out.

    Penalty ``ridge * mean(s^2)`` (relative to the mean eigenvalue of ``Xtr^T Xtr``).
    The leave-one-out error uses the closed form ``(y - yhat) / (1 - h_ii)`` on the centered
    training data (the intercept's own leverage is ignored).
    """
    mx, U, s, Vt = fit
    my = ytr.mean(axis=0)
    yc = ytr - my
    uty = U.T @ yc
    s2 = s**2
    lams = ridges * s2.mean()
    best, best_err = lams[0], np.inf
    if lams.size > 1:
        for lam in lams:
            f = s2 / (s2 + lam)
            h = (U**2) @ f
            resid = (yc - U @ (f[:, None] * uty)) / (1.0 - h)[:, None]
            err = float(np.sum(resid**2))
            if err < best_err:
                best, best_err = lam, err
    coef = Vt.T @ ((s / (s2 + best))[:, None] * uty)
    return (xte - mx) @ coef + my


@dataclass(frozen=True)
class PredState:
    """One network: its data, the folds and each fold's factored training rows."""

    x: np.ndarray
    tests: tuple[np.ndarray, ...]
    fits: tuple[tuple[np.ndarray, ...], ...]


def _train(n: int, test: np.ndarray) -> np.ndarray:
    train = np.ones(n, dtype=bool)
    train[test] = False
    return train


def pred_state(x: np.ndarray, cv: int = 5, seed: int | np.random.Generator = 0) -> PredState:
    """Per-network work of :func:`linear_predictivity` (as a source)."""
    if not 2 <= cv <= x.shape[0] // 2:
        raise ShapeError(f"cv: expected 2 <= cv <= n/2 = {x.shape[0] // 2}, got {cv}")
    tests = tuple(_folds(x.shape[0], cv, seed))
    return PredState(x, tests, tuple(_factor(x[_train(x.shape[0], t)]) for t in tests))


def pred_combine(a: PredState, b: PredState, ridge: Any = DEFAULT_RIDGES) -> float:
    """Cross-validated R^2 of ``b`` predicted from ``a``."""
    ridges = np.atleast_1d(np.asarray(ridge, dtype=float))
    y, n = b.x, b.x.shape[0]
    pred = np.empty_like(y)
    for test, fit in zip(a.tests, a.fits, strict=True):
        pred[test] = _predict(fit, y[_train(n, test)], a.x[test], ridges)
    sse = np.sum((y - pred) ** 2)
    sst = np.sum((y - y.mean(axis=0)) ** 2)
    return float(1.0 - sse / sst)


def linear_predictivity(
    X: Any,
    Y: Any,
    ridge: float | Sequence[float] = DEFAULT_RIDGES,
    cv: int = 5,
    seed: int | np.random.Generator = 0,
) -> float:
    """Cross-validated R^2 of a ridge regression predicting Y from X.

    Samples are shuffled with ``seed`` into ``cv`` folds; each fold is predicted from a ridge
    fit (with intercept) on the others. ``ridge`` (default: the grid ``DEFAULT_RIDGES``,
    1e-4 ... 100) is relative: the penalty is
    ``ridge * mean eigenvalue of Xc^T Xc`` on the training fold, which makes the result
    invariant to rescaling X. With a grid of values, the value is chosen inside each training
    fold by closed-form leave-one-out (nested, so the reported R^2 is not optimistically biased).

    Returns
    -------
    float
        Variance-weighted mean R^2 over Y's units, ``1 - sum_j SSE_j / sum_j SST_j`` with the
        out-of-fold predictions of all samples pooled (SST about Y's overall mean). At most 1,
        may be negative. Not symmetric, not a metric; invariant to invertible linear maps of X
        only as ridge -> 0, and to orthogonal maps of Y always.
    """
    x, y = prepare_pair(X, Y, min_samples=max(cv, 2) * 2)
    ridges = np.atleast_1d(np.asarray(ridge, dtype=float))
    if ridges.size == 0 or (ridges < 0).any():
        raise ShapeError(f"ridge: expected non-negative value(s), got {ridge!r}")
    if not 2 <= cv <= x.shape[0] // 2:
        raise ShapeError(f"cv: expected 2 <= cv <= n/2 = {x.shape[0] // 2}, got {cv}")
    return pred_combine(pred_state(x, cv, seed), PredState(y, (), ()), ridges)
