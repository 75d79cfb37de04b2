"""NeuroAIMetrics' ``LinearPredictivity`` (the registry's ``ridge-pearsonr-cv=5folds``) with
its per-network work done once: per fold, the source's z-scored training rows are factored
once; a pair then costs the closed-form leave-one-out errors of the 17 penalties
(scikit-learn's ``RidgeCV(alphas=logspace(-8, 8, 17))``: one penalty for all targets, the
first smallest mean squared error, intercept unpenalised) and one prediction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ShapeError

__all__ = ["ALPHAS", "RidgeCVState", "ridgecv_combine", "ridgecv_state"]

ALPHAS = np.logspace(-8, 8, 17)


def _zscore(a: np.ndarray) -> np.ndarray:
    sd = a.std(axis=0)
    return np.divide(a - a.mean(axis=0), sd, out=np.zeros_like(a), where=sd > 0)


@dataclass(frozen=True)
class RidgeCVState:
    """One network: its data, and per fold the factored z-scored training rows (``U, s,
    Vt`` of the centred block) and the z-scored test rows."""

    x: np.ndarray
    folds: tuple[tuple[np.ndarray, np.ndarray], ...]
    fits: tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], ...]


def ridgecv_state(x: np.ndarray, cv: int = 5) -> RidgeCVState:
    from sklearn.model_selection import KFold

    if not 2 <= cv <= x.shape[0] // 2:
        raise ShapeError(f"cv: expected 2 <= cv <= n/2 = {x.shape[0] // 2}, got {cv}")
    folds = tuple(KFold(n_splits=cv, shuffle=True, random_state=42).split(x))
    fits = []
    for tr, te in folds:
        xtr = _zscore(x[tr])
        mx = xtr.mean(axis=0)
        U, s, Vt = np.linalg.svd(xtr - mx, full_matrices=False)
        fits.append((U, s, Vt, mx, _zscore(x[te])))
    return RidgeCVState(x, folds, tuple(fits))


def _unit_r(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ac, bc = a - a.mean(axis=0), b - b.mean(axis=0)
    den = np.sqrt((ac * ac).sum(axis=0) * (bc * bc).sum(axis=0))
    return np.divide((ac * bc).sum(axis=0), den, out=np.full(den.shape, np.nan), where=den > 0)


def _fold_score(fit: Any, ytr: np.ndarray, yte: np.ndarray) -> float:
    U, s, Vt, mx, xte = fit
    my = ytr.mean(axis=0)
    yc = ytr - my
    uty = U.T @ yc
    s2, n = s**2, ytr.shape[0]
    errs = []
    for alpha in ALPHAS:  # leave-one-out with an unpenalised intercept (hat diag 1/n + ...)
        f = s2 / (s2 + alpha)
        h = 1.0 / n + (U * U) @ f
        resid = (yc - U @ (f[:, None] * uty)) / (1.0 - h)[:, None]
        errs.append(float(np.mean(resid**2)))
    alpha = ALPHAS[int(np.argmin(errs))]
    coef = Vt.T @ ((s / (s2 + alpha))[:, None] * uty)
    return float(np.nanmean(_unit_r((xte - mx) @ coef + my, yte)))


def ridgecv_combine(a: RidgeCVState, b: RidgeCVState, reverse: bool = False) -> float:
    """Mean over folds of the mean unit Pearson r of ``b`` predicted from ``a`` (``a`` from
    ``b`` when ``reverse``)."""
    src, dst = (b, a) if reverse else (a, b)
    scores = [
        _fold_score(fit, dst.x[tr], dst.x[te])
        for fit, (tr, te) in zip(src.fits, src.folds, strict=True)
    ]
    return float(np.mean(scores))
