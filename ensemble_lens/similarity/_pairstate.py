"""Per-network state and per-pair evaluation of the moments-based measures (module-level,
so an executor can run batches of pairs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._input import live_units, warn_dead
from ._linalg import Factor, factor_cov
from .cca import mean_cca_from_cross, pwcca_from_cross, svcca_from_cross
from .procrustes import procrustes_from_cov, shape_from_cross

#: Measures computed from shared moments in ``pairwise``.
MOMENT_METRICS = frozenset(
    {"linear_cka", "mean_cca", "svcca", "pwcca", "procrustes_similarity", "shape_distance"}
)
_WHITENED = frozenset({"mean_cca", "svcca", "pwcca", "shape_distance"})


@dataclass(frozen=True)
class NetState:
    """One network's covariance summaries: live-unit mask, norms and, for the whitened
    measures, the variances ``lam`` and whitener ``V lam^{-1/2}`` (V itself is not kept, so a
    state holds one d x k matrix)."""

    live: np.ndarray
    width: int
    trace: float
    fro: float
    lam: np.ndarray | None
    whitener: np.ndarray | None

    @property
    def factor(self) -> Factor | None:
        """The covariance factor, V rebuilt from the whitener (one d x k product)."""
        if self.lam is None or self.whitener is None:
            return None
        return Factor(lam=self.lam, V=self.whitener * np.sqrt(self.lam))


def live_mask(cov: np.ndarray, mean: np.ndarray, name: str) -> np.ndarray:
    """Live (non-constant) units of one network; warns about dead ones (call in main thread)."""
    return warn_dead(live_units(mean, np.diag(cov).copy()), name, f"network {name!r}")


def prepare_net(cov: np.ndarray, live: np.ndarray, metric: str) -> NetState:
    """Restrict to live units and factor the covariance once if the measure whitens."""
    c = cov[np.ix_(live, live)] if not live.all() else cov
    lam = whitener = None
    if metric in _WHITENED:
        f = factor_cov(c)
        lam, whitener = f.lam, f.V
        whitener /= np.sqrt(lam)  # in place: factor_cov's V is a fresh array
    return NetState(live, cov.shape[0], float(np.trace(c)), float(np.linalg.norm(c)), lam, whitener)


def _value(a: NetState, b: NetState, cxy: np.ndarray, name: str, kw: dict[str, Any]):  # type: ignore[no-untyped-def]
    if name == "linear_cka":
        v = float(np.linalg.norm(cxy) ** 2 / (a.fro * b.fro))
        return v, v
    if name == "procrustes_similarity":
        v = procrustes_from_cov(cxy, a.trace, b.trace)
        return v, v
    kxy = a.whitener.T @ cxy @ b.whitener  # type: ignore[union-attr]
    fa, fb = a.factor, b.factor
    assert fa is not None and fb is not None  # set by prepare_net for whitened measures
    if name == "mean_cca":
        v = mean_cca_from_cross(fa, fb, kxy, kw.get("ridge", 0.0), kw.get("n_components"))
        return v, v
    if name == "svcca":
        v = svcca_from_cross(fa, fb, kxy, kw.get("keep_variance", 0.99), kw.get("n_components"))
        return v, v
    if name == "shape_distance":
        v = shape_from_cross(fa, fb, kxy, kw.get("alpha", 1.0))
        return v, v
    vab, vba = pwcca_from_cross(fa, fb, kxy), pwcca_from_cross(fb, fa, kxy.T)
    if kw.get("symmetric", False):
        vab = vba = 0.5 * (vab + vba)
    return vab, vba


def eval_pairs(
    items: list[tuple[NetState, NetState, np.ndarray]], name: str, kw: dict[str, Any]
) -> list[tuple[float, float]]:
    """``(metric(i, j), metric(j, i))`` for each ``(state_i, state_j, cov_ij)``."""
    out = []
    for a, b, cxy in items:
        if not (a.live.all() and b.live.all()):
            cxy = cxy[np.ix_(a.live, b.live)]
        out.append(_value(a, b, cxy, name, kw))
    return out
