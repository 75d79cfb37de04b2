"""Metric names -> single-pair functions and their properties."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ShapeError
from .cca import mean_cca, pwcca, svcca
from .cka import linear_cka, rbf_cka
from .knn import mutual_knn
from .matching import permutation_distance
from .predictivity import linear_predictivity
from .procrustes import procrustes_similarity, shape_distance
from .rsa import rsa


@dataclass(frozen=True)
class MetricInfo:
    """A float-valued measure: its function, whether it is a distance, when it is symmetric."""

    fn: Callable[..., float]
    is_distance: bool
    symmetric: Callable[[dict[str, Any]], bool]


def _always(_: dict[str, Any]) -> bool:
    return True


METRICS: dict[str, MetricInfo] = {
    "linear_cka": MetricInfo(linear_cka, False, _always),
    "rbf_cka": MetricInfo(rbf_cka, False, _always),
    "mean_cca": MetricInfo(mean_cca, False, _always),
    "svcca": MetricInfo(svcca, False, _always),
    "pwcca": MetricInfo(pwcca, False, lambda kw: bool(kw.get("symmetric", False))),
    "procrustes_similarity": MetricInfo(procrustes_similarity, False, _always),
    "shape_distance": MetricInfo(shape_distance, True, _always),
    "permutation_distance": MetricInfo(permutation_distance, True, _always),
    "rsa": MetricInfo(rsa, False, _always),
    "mutual_knn": MetricInfo(mutual_knn, False, _always),
    "linear_predictivity": MetricInfo(linear_predictivity, False, lambda kw: False),
}


def resolve_metric(metric: str | Callable[..., float]) -> tuple[str, MetricInfo]:
    """Look up a metric by name; a callable is taken as a symmetric similarity."""
    if callable(metric):
        name = getattr(metric, "__name__", "metric")
        if name in METRICS and METRICS[name].fn is metric:
            return name, METRICS[name]
        return name, MetricInfo(metric, False, _always)
    if metric not in METRICS:
        raise ShapeError(f"metric: expected one of {sorted(METRICS)} or a callable, got {metric!r}")
    return metric, METRICS[metric]
