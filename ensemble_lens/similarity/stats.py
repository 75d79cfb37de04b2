"""Permutation tests and bootstrap confidence intervals for any pairwise measure."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._arrays import check_same_samples
from ..errors import EnsembleLensWarning, ShapeError
from ._input import checked_matrix
from ._registry import resolve_metric

__all__ = ["BootstrapResult", "PermutationResult", "bootstrap_ci", "permutation_test"]

Metric = str | Callable[..., float]


@dataclass(frozen=True)
class PermutationResult:
    """statistic: observed value; null: (n_perm,) values with Y's rows shuffled;
    p_value: ``(1 + #{null at least as extreme}) / (n_perm + 1)``; alternative used."""

    statistic: float
    null: np.ndarray
    p_value: float
    alternative: str


@dataclass(frozen=True)
class BootstrapResult:
    """statistic: value on all samples; low/high: percentile interval; samples: (n_boot,)."""

    statistic: float
    low: float
    high: float
    samples: np.ndarray
    level: float


def _inputs(X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
    x, y = checked_matrix(X, "X"), checked_matrix(Y, "Y")
    check_same_samples(X, Y, x, y, ("X", "Y"))
    return x, y


def _quiet(fn: Callable[..., float], x: np.ndarray, y: np.ndarray, kw: dict[str, Any]) -> float:
    """Resampled evaluations: warnings were already shown once for the real data."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EnsembleLensWarning)
        return fn(x, y, **kw)


def permutation_test(
    X: Any,
    Y: Any,
    metric: Metric,
    n_perm: int = 1000,
    seed: int | np.random.Generator = 0,
    alternative: Literal["greater", "less"] | None = None,
    **kwargs: Any,
) -> PermutationResult:
    """Test whether X and Y are more similar than with Y's samples shuffled.

    Parameters
    ----------
    X, Y : array-like, shapes (n, d1), (n, d2)
    metric : str or callable
        A name from ``pairwise`` (e.g. ``"linear_cka"``) or ``f(X, Y, **kwargs) -> float``.
    n_perm : int
        Number of random permutations of Y's rows.
    seed : int or numpy.random.Generator
        The only source of randomness.
    alternative : {"greater", "less"}, optional
        Direction of "more similar": default "less" for distances (shape_distance,
        permutation_distance), "greater" otherwise.

    Returns
    -------
    PermutationResult
        p-value with the +1 correction (never 0), so it is a valid p-value.
    """
    if n_perm < 1:
        raise ShapeError(f"n_perm: expected a positive number of permutations, got {n_perm}")
    m = resolve_metric(metric, **kwargs)
    x, y = _inputs(X, Y)
    alt = alternative or ("less" if m.kind == "distance" else "greater")
    stat = float(m(x, y))
    rng = np.random.default_rng(seed)
    null = np.array([_quiet(m, x, y[rng.permutation(y.shape[0])], {}) for _ in range(n_perm)])
    extreme = null >= stat if alt == "greater" else null <= stat
    p = (1.0 + np.count_nonzero(extreme)) / (n_perm + 1.0)
    return PermutationResult(statistic=stat, null=null, p_value=float(p), alternative=alt)


def bootstrap_ci(
    X: Any,
    Y: Any,
    metric: Metric,
    n_boot: int = 1000,
    seed: int | np.random.Generator = 0,
    level: float = 0.95,
    **kwargs: Any,
) -> BootstrapResult:
    """Percentile bootstrap interval: samples (rows of X and Y together) drawn with replacement.

    Note that duplicated samples bias some measures (biased CKA, CCA with few samples); the
    interval is that of the estimator, not a bias-corrected one.
    """
    if n_boot < 1:
        raise ShapeError(f"n_boot: expected a positive number of resamples, got {n_boot}")
    if not 0 < level < 1:
        raise ShapeError(f"level: expected a probability in (0, 1), got {level}")
    m = resolve_metric(metric, **kwargs)
    x, y = _inputs(X, Y)
    stat = float(m(x, y))
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    draws = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        draws.append(_quiet(m, x[idx], y[idx], {}))
    samples = np.array(draws)
    q = (1 - level) / 2
    low, high = np.quantile(samples, [q, 1 - q])
    return BootstrapResult(stat, float(low), float(high), samples, level)
