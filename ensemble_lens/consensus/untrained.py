"""The untrained-network null of :func:`~ensemble_lens.consensus.find_consensus`.

Untrained networks of the member architecture share whatever the inputs and the architecture
give them: graph networks agree at ~0.999 on their input-linear directions before any training.
Agreement is therefore the wrong statistic here; the question is whether a consensus component
is something the untrained networks *carry*. Two tests, per component:

- reproduction: ridge-regress the component on each untrained network (fit split) and score
  R^2 on the test split (median over networks: ``untrained_r2``); the same on every trained
  member gives ``trained_r2``. A component the untrained networks reproduce under
  ``max_share * trained_r2`` is learned.
- learned residual: a component the untrained networks do reproduce well may still hold a
  learned part, e.g. a spring force ``dx - dx/r`` is 97% the input ``dx``. Each trained
  member's projection is residualised on each untrained network's span (fit split); the
  residual's share of the component's variance is ``learned_share`` (``1 - untrained_r2``) and
  its leave-one-network-out agreement across trained members is ``learned_agreement``. The
  residuals of untrained networks' own components also agree (the architecture has systematic
  nonlinear structure: 0.4-0.9 in graph networks), so the threshold is calibrated on the
  untrained ensemble itself: align the untrained networks among themselves, residualise each
  on every other one, and take the largest agreement of a component whose residual carries at
  least ``min_learned_share`` (``untrained_threshold``; family-wise over components). The
  component is learned when ``learned_share >= min_learned_share`` and ``learned_agreement``
  exceeds both that threshold and the permutation null's.

A component passing either test is learned; one passing neither is not consensus.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .null import Method, make_aligner
from .scoring import member_agreement

__all__ = ["UntrainedNull", "reproduction_r2", "residual_agreement", "untrained_null"]

logger = logging.getLogger(__name__)

#: Fewest untrained networks for the learned-residual test (its threshold leaves one out).
MIN_UNTRAINED_FOR_RESIDUAL = 3


def _ridge_coef(x: np.ndarray, z: np.ndarray, fit: np.ndarray, ridge: float):
    """Means and ridge coefficients of ``z`` on ``x`` from the fit rows."""
    mx, mz = x[fit].mean(0), z[fit].mean(0)
    xf = x[fit] - mx
    gram = xf.T @ xf
    scale = np.trace(gram) / max(gram.shape[0], 1)
    # a dead network (constant units) has a zero Gram matrix: its read-out is zero, not an error
    gram += ridge * (scale if scale > 0 else 1.0) * np.eye(gram.shape[0])
    return mx, mz, np.linalg.solve(gram, xf.T @ (z[fit] - mz))


def residuals(x: np.ndarray, z: np.ndarray, fit: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    """What of each column of ``z`` (sample, c) a ridge read-out of ``x`` (sample, d), fitted on
    the fit rows, misses; on every sample."""
    mx, mz, coef = _ridge_coef(x, z, fit, ridge)
    return (z - mz) - (x - mx) @ coef


def reproduction_r2(
    x: np.ndarray, z: np.ndarray, fit: np.ndarray, ridge: float = 1e-3
) -> np.ndarray:
    """Test-split R^2 of each column of ``z`` (sample, c) from ``x`` (sample, d) by ridge
    regression fitted on the fit split; (c,)."""
    resid = residuals(x, z, fit, ridge)[~fit]
    var = z[~fit].var(0)
    return 1.0 - resid.var(0) / np.where(var > 0, var, 1.0)


def residual_agreement(
    scores: Sequence[np.ndarray], reference: np.ndarray, fit: np.ndarray
) -> np.ndarray:
    """Mean leave-one-network-out agreement (test split) of the members' component scores
    after residualising each on ``reference``'s span; (c,). One ridge solve for all members."""
    stacked = residuals(reference, np.concatenate(list(scores), axis=1), fit)[~fit]
    res = np.split(stacked, len(scores), axis=1)
    return member_agreement(res).mean(axis=0)


@dataclass(frozen=True)
class UntrainedNull:
    """Per-component results of :func:`untrained_null` (arrays are (component,))."""

    trained_r2: np.ndarray
    untrained_r2: np.ndarray
    learned_agreement: np.ndarray
    threshold: float
    learned: np.ndarray

    @property
    def learned_share(self) -> np.ndarray:
        """Share of each component the untrained networks miss: ``1 - untrained_r2``."""
        return learned_share(self.untrained_r2)


def learned_share(untrained_r2: np.ndarray) -> np.ndarray:
    """``1 - untrained_r2``, clipped to [0, 1]."""
    return np.clip(1.0 - untrained_r2, 0.0, 1.0)


def untrained_null(
    members: Sequence[np.ndarray],
    member_scores: np.ndarray,
    components: np.ndarray,
    untrained: Sequence[np.ndarray],
    fit: np.ndarray,
    *,
    method: Method,
    variance_keep: float,
    max_share: float,
    min_learned_share: float,
    permutation_threshold: float,
) -> UntrainedNull:
    """Run both tests of the module docstring.

    Parameters
    ----------
    members : sequence of ndarray (sample, unit_k)
        Trained members' activations.
    member_scores : ndarray (model, sample, component)
        Their aligned projections.
    components : ndarray (sample, component)
        The consensus components.
    untrained : sequence of ndarray (sample, unit)
        Untrained networks' activations.
    fit : ndarray of bool (sample,)
    method, variance_keep :
        The consensus aligner, reused to align the untrained networks among themselves.
    max_share, min_learned_share, permutation_threshold : float
        See the module docstring.
    """
    trained = np.median([reproduction_r2(m, components, fit) for m in members], axis=0)
    untrained_r2 = np.median([reproduction_r2(u, components, fit) for u in untrained], axis=0)
    reproduced = untrained_r2 >= max_share * trained
    agreement = np.median(
        [residual_agreement(list(member_scores), u, fit) for u in untrained], axis=0
    )
    if len(untrained) < MIN_UNTRAINED_FOR_RESIDUAL:
        logger.warning(
            "untrained null: %d untrained networks; the learned-residual test needs %d, "
            "so only the reproduction test runs",
            len(untrained),
            MIN_UNTRAINED_FOR_RESIDUAL,
        )
        threshold = 1.0
    else:
        threshold = max(
            _untrained_threshold(untrained, fit, method, variance_keep, min_learned_share),
            permutation_threshold,
        )
    systematic = (learned_share(untrained_r2) >= min_learned_share) & (agreement > threshold)
    return UntrainedNull(trained, untrained_r2, agreement, threshold, ~reproduced | systematic)


def _untrained_threshold(
    untrained: Sequence[np.ndarray],
    fit: np.ndarray,
    method: Method,
    variance_keep: float,
    min_learned_share: float,
) -> float:
    """Largest learned-residual agreement among the untrained ensemble's own components whose
    residual carries at least ``min_learned_share`` (0 when none does; 1 when fewer than
    ``MIN_UNTRAINED_FOR_RESIDUAL`` untrained networks have a non-constant unit).

    The untrained networks are aligned among themselves (fit split); every one of them in turn
    is the reference that the others' projections are residualised on.
    """
    live = [u for u in untrained if np.ptp(u[fit], axis=0).max(initial=0.0) > 0]
    if len(live) < len(untrained):
        logger.warning(
            "untrained null: %d untrained network(s) with every unit constant (dead at "
            "initialisation) left out of the learned-residual threshold",
            len(untrained) - len(live),
        )
    if len(live) < MIN_UNTRAINED_FOR_RESIDUAL:
        return 1.0
    untrained = live
    aligner = make_aligner(method, None, variance_keep)
    aligner.fit({f"untrained{k}": u[fit] for k, u in enumerate(untrained)})
    scores = aligner.transform({f"untrained{k}": u for k, u in enumerate(untrained)})
    agree, share = [], []
    for i, ref in enumerate(untrained):
        others = [s for k, s in enumerate(scores) if k != i]
        agree.append(residual_agreement(others, ref, fit))
        share.append(learned_share(reproduction_r2(ref, np.mean(others, axis=0), fit)))
    a, s = np.median(agree, axis=0), np.median(share, axis=0)
    eligible = a[s >= min_learned_share]
    return float(eligible.max()) if eligible.size else 0.0
