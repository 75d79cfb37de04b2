"""Regression-based predictivity as neuroscience uses it (Yamins et al. 2014; Schrimpf et al.
2018): how well a linear map of X predicts each unit of Y on held-out samples.

``regression_score(X, Y)`` fits ``Y ~ X`` (with intercept) by ordinary least squares
(``method="ols"``, minimum-norm solution), ridge with a fixed absolute penalty
(``"ridge"``, ``lam``: ``min |Y - X B|^2 + lam |B|^2``, as scikit-learn's ``Ridge(alpha)``;
not scale-free) or partial least squares (``"pls"``, scikit-learn's ``PLSRegression`` with
``scale=False`` and ``n_components``, as Brain-Score). With ``cv`` folds (samples shuffled by
``seed``, or contiguous as scikit-learn's ``KFold(cv)`` when ``seed`` is None), every sample
is predicted by the model fit on the other folds; with ``cv=0`` the fit is in-sample. Scores
per unit of Y: ``pearsonr`` (correlation of predicted and actual), ``pearsonr2`` (its square)
or ``r2`` (coefficient of determination); units are summarised by ``reduce`` = ``mean`` or
``median``. Per-unit scores are computed on each fold's test samples and averaged over folds
(Brain-Score's averaging over splits), or with ``pool=True`` once on the pooled held-out
predictions of all samples (DeepDive's ``kfold_regression``, the registry's values).

``linear_reg_r2`` is ReSi's "linear_regression": the in-sample share of X's variance that
a least-squares map from Y explains, ``|Q_Y^T Xc|^2 / |Xc|^2`` (note: it predicts the FIRST
argument from the second).

Not symmetric; ``reverse=True`` predicts X from Y.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..errors import ShapeError
from ._input import center, prepare_pair, safe_scale

__all__ = ["linear_reg_r2", "regression_score"]

Method = Literal["ols", "ridge", "pls"]
Score = Literal["pearsonr", "pearsonr2", "r2"]


def folds(n: int, cv: int, seed: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs: ``cv`` shuffled folds (contiguous when ``seed`` is None, as
    scikit-learn's unshuffled ``KFold``), or in-sample when ``cv`` is 0."""
    if cv == 0:
        idx = np.arange(n)
        return [(idx, idx)]
    perm = np.arange(n) if seed is None else np.random.default_rng(seed).permutation(n)
    parts = np.array_split(perm, cv)
    return [
        (np.sort(np.concatenate(parts[:i] + parts[i + 1 :])), np.sort(p))
        for i, p in enumerate(parts)
    ]


@dataclass(frozen=True)
class RegState:
    """Per-network work: the data and, per fold, the factorisation of the training rows."""

    x: np.ndarray
    fits: tuple[Any, ...]


def _factor(xtr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    mx = xtr.mean(axis=0)
    U, s, Vt = np.linalg.svd(xtr - mx, full_matrices=False)
    return mx, U, s, Vt


def reg_state(x: np.ndarray, method: str, cv: int, seed: int | None) -> RegState:
    """Factor each fold's training rows once (OLS/ridge); PLS keeps only the data."""
    if method != "ridge":
        x = safe_scale(x)  # as regression_score: the scale-free methods see rescaled extremes
    if method == "pls":
        return RegState(x, ())
    return RegState(x, tuple(_factor(x[tr]) for tr, _ in folds(x.shape[0], cv, seed)))


def _gain(s: np.ndarray, shape: tuple[int, ...], method: str, lam: float) -> np.ndarray:
    if method != "ols":
        return s / (s**2 + lam)
    gain = np.zeros_like(s)
    keep = s > s[0] * max(shape) * np.finfo(float).eps if s.size else s > 0
    gain[keep] = 1.0 / s[keep]
    return gain


def _predict(
    fit: Any, xte: np.ndarray, ytr_c: np.ndarray, my: np.ndarray, method: str, lam: float
) -> np.ndarray:
    """Predictions for the test rows from a fold's factorisation and centred targets."""
    mx, U, s, Vt = fit
    coef = Vt.T @ (_gain(s, U.shape, method, lam)[:, None] * (U.T @ ytr_c))
    return (xte - mx) @ coef + my


def _pls(xtr, ytr, xte, k):  # type: ignore[no-untyped-def]
    from sklearn.cross_decomposition import PLSRegression

    k = min(k, xtr.shape[1], xtr.shape[0] - 1)
    return PLSRegression(n_components=k, scale=False).fit(xtr, ytr).predict(xte)


def _unit_scores(y: np.ndarray, pred: np.ndarray, score: str) -> np.ndarray:
    yc, pc = y - y.mean(axis=0), pred - pred.mean(axis=0)
    if score == "r2":
        sst = np.einsum("ij,ij->j", yc, yc)
        sse = np.einsum("ij,ij->j", y - pred, y - pred)
        return 1.0 - np.divide(sse, sst, out=np.full_like(sse, np.nan), where=sst > 0)
    num = np.einsum("ij,ij->j", yc, pc)
    den = np.sqrt(np.einsum("ij,ij->j", yc, yc) * np.einsum("ij,ij->j", pc, pc))
    r = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return r**2 if score == "pearsonr2" else r


def reg_combine(a: RegState, b: RegState, opts: dict[str, Any]) -> float:
    """Score of predicting ``b``'s units from ``a`` (see :func:`regression_score`)."""
    return float(reg_combine_many([a], [b], opts)[0, 0])


def reg_combine_many(
    sources: list[RegState], targets: list[RegState], opts: dict[str, Any]
) -> np.ndarray:
    """(sources, targets) scores: all targets' units side by side, each fold's centred targets
    formed once, so a source costs one matrix product per fold for every target."""
    method, lam, score = opts["method"], opts["lam"], opts["score"]
    y = np.hstack([t.x for t in targets])
    per: list[list[np.ndarray]] = [[] for _ in sources]
    pooled = [np.empty_like(y) for _ in sources] if opts.get("pool") else None
    for f, (tr, te) in enumerate(folds(y.shape[0], opts["cv"], opts["seed"])):
        ytr, yte = y[tr], y[te]
        my = ytr.mean(axis=0)
        ytr_c = ytr - my
        for k, a in enumerate(sources):
            if method == "pls":
                pred = np.hstack(
                    [_pls(a.x[tr], t.x[tr], a.x[te], opts["n_components"]) for t in targets]
                )
            else:
                pred = _predict(a.fits[f], a.x[te], ytr_c, my, method, lam)
            if pooled is not None:
                pooled[k][te] = pred
            else:
                per[k].append(_unit_scores(yte, pred, score))
    if pooled is not None:
        per = [[_unit_scores(y, p, score)] for p in pooled]
    edges = np.cumsum([0] + [t.x.shape[1] for t in targets])
    red = np.nanmedian if opts["reduce"] == "median" else np.nanmean
    out = np.empty((len(sources), len(targets)))
    for k in range(len(sources)):
        units = np.nanmean(np.stack(per[k]), axis=0)
        out[k] = [red(units[lo:hi]) for lo, hi in itertools.pairwise(edges)]
    return out


def reg_combine_reverse(a: RegState, b: RegState, opts: dict[str, Any]) -> float:
    """Score of predicting ``a``'s units from ``b`` (a ``reverse`` name's pair value)."""
    return float(reg_combine_many([b], [a], opts)[0, 0])


def reg_combine_many_reverse(
    sources: list[RegState], targets: list[RegState], opts: dict[str, Any]
) -> np.ndarray:
    """(sources, targets) values of a ``reverse`` name: each target predicts each source."""
    return reg_combine_many(targets, sources, opts).T


def _check(method: str, lam: float, score: str, cv: int, reduce: str, n: int) -> None:
    if method not in ("ols", "ridge", "pls"):
        raise ShapeError(f"method: expected 'ols', 'ridge' or 'pls', got {method!r}")
    if score not in ("pearsonr", "pearsonr2", "r2"):
        raise ShapeError(f"score: expected 'pearsonr', 'pearsonr2' or 'r2', got {score!r}")
    if reduce not in ("mean", "median"):
        raise ShapeError(f"reduce: expected 'mean' or 'median', got {reduce!r}")
    if method == "ridge" and not lam > 0:
        raise ShapeError(f"lam: expected a positive ridge penalty, got {lam}")
    if cv != 0 and not 2 <= cv <= n // 2:
        raise ShapeError(f"cv: expected 0 (in-sample) or 2 <= cv <= n/2 = {n // 2}, got {cv}")


def regression_score(
    X: Any,
    Y: Any,
    method: Method = "ridge",
    lam: float = 1.0,
    score: Score = "pearsonr",
    cv: int = 5,
    reduce: Literal["mean", "median"] = "mean",
    n_components: int = 25,
    reverse: bool = False,
    seed: int | None = 0,
    pool: bool = False,
) -> float:
    """Held-out predictivity of Y's units from X (see the module docstring).

    Returns
    -------
    float
        Pearson r (in [-1, 1]), its square, or R^2 (at most 1, may be negative), averaged
        over Y's units (and folds). Not symmetric. OLS scores are invariant to invertible
        linear maps of X; all are invariant to per-unit affine maps of Y (pearsonr, r2).
    """
    x, y = prepare_pair(X, Y, min_samples=4, rescale=method != "ridge")
    if reverse:
        x, y = y, x
    _check(method, lam, score, cv, reduce, x.shape[0])
    opts = {
        "method": method,
        "lam": lam,
        "score": score,
        "cv": cv,
        "reduce": reduce,
        "n_components": n_components,
        "seed": seed,
        "pool": pool,
    }
    return reg_combine(reg_state(x, method, cv, seed), RegState(y, ()), opts)


@dataclass(frozen=True)
class OLSState:
    """Per-network work of the in-sample R^2: an orthonormal basis of the centred columns,
    the centred data and its squared norm."""

    q: np.ndarray
    xc: np.ndarray
    ss: float


def ols_state(x: np.ndarray) -> OLSState:
    """Orthonormal basis of the centred (rescaled) columns of one network."""
    xc = center(safe_scale(x))
    U, s, _ = np.linalg.svd(xc, full_matrices=False)
    q = U[:, s > s[0] * max(xc.shape) * np.finfo(float).eps] if s.size else U[:, :0]
    return OLSState(q, xc, float(np.sum(xc * xc)))


def ols_combine(a: OLSState, b: OLSState, reverse: bool = False) -> float:
    """In-sample R^2 of ``b`` from ``a`` (of ``a`` from ``b`` when ``reverse``)."""
    src, dst = (b, a) if reverse else (a, b)
    return float(np.linalg.norm(src.q.T @ dst.xc) ** 2 / dst.ss)


def ols_r2(X: Any, Y: Any, reverse: bool = False) -> float:
    """The registry name ``linear_regression``: in-sample least-squares R^2 of Y from X
    (``reverse``: of X from Y, which is ReSi's ``LinearRegression`` and
    :func:`linear_reg_r2`). ``|Q_X^T Yc|^2 / |Yc|^2``, in [0, 1]."""
    x, y = prepare_pair(X, Y)
    return ols_combine(ols_state(x), ols_state(y), reverse)


def linear_reg_r2(X: Any, Y: Any) -> float:
    """ReSi's linear regression measure: share of X's variance explained by Y (in-sample).

    ``|Q_Y^T Xc|_F^2 / |Xc|_F^2`` with ``Q_Y`` an orthonormal basis of the centred Y's column
    space. In [0, 1]; not symmetric; invariant to invertible linear maps of Y and to
    orthogonal maps and isotropic scaling of X.
    """
    x, y = prepare_pair(X, Y)
    xc, yc = center(x), center(y)
    U, s, _ = np.linalg.svd(yc, full_matrices=False)
    q = U[:, s > s[0] * max(yc.shape) * np.finfo(float).eps]
    return float(np.linalg.norm(q.T @ xc) ** 2 / np.linalg.norm(xc) ** 2)
