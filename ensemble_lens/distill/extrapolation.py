"""The extrapolation range of a study and what a formula is measured against there.

Two references: a truth (a task's formulas on its extrapolation range, or a probe file's
truth columns on its extrapolation rows), calibrated affinely on the test split
(:class:`Extrapolation`), or, with no truth, the consensus of the networks themselves on the
samples labelled ``"extrapolation"`` (:func:`ensemble_lens.distill.study.distill_consensus`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = [
    "EXTRAPOLATION",
    "REFERENCE_CONSENSUS",
    "REFERENCE_TRUTH",
    "Extrapolation",
    "reference",
]

#: probe samples with this split label are kept out of the fit and used for extrapolation
EXTRAPOLATION = "extrapolation"

#: ``extrapolation_reference`` of a record: what its ``r2_extrapolation`` was measured against
REFERENCE_TRUTH = "truth"
REFERENCE_CONSENSUS = "consensus of the networks on the extrapolation rows"


@dataclass(frozen=True)
class Extrapolation:
    """An extrapolation range and the ground truth there.

    Attributes
    ----------
    X : ndarray, shape (sample, variable)
        Inputs beyond the probe's range.
    truth_test : mapping of str to ndarray (test sample,)
        Each truth latent on the probe's test split.
    truth : mapping of str to ndarray (sample,)
        Each truth latent on ``X``.
    """

    X: np.ndarray
    truth_test: Mapping[str, np.ndarray]
    truth: Mapping[str, np.ndarray]

    def targets(self, Y_test: np.ndarray) -> np.ndarray:
        """Each component's extrapolation target (sample, component): the truth it is closest
        to on the test split, mapped by the affine fit found there; or, when the component is
        a mixture (the affine fit on all truths together explains over 0.01 more of its
        variance, as for an aligned basis that the sparse basis did not disentangle), that
        joint fit."""
        names = list(self.truth_test)
        ones_test, ones_ext = np.ones(len(Y_test)), np.ones(len(self.X))
        T_test = np.column_stack([self.truth_test[k] for k in names] + [ones_test])
        T_ext = np.column_stack([self.truth[k] for k in names] + [ones_ext])
        Ye = np.empty((len(self.X), Y_test.shape[1]))
        for j in range(Y_test.shape[1]):
            y = Y_test[:, j]
            best, best_r2 = [len(names)], -np.inf
            for i in range(len(names)):
                r2 = _affine_r2(T_test[:, [i, -1]], y)
                if r2 > best_r2:  # the truth this component is closest to
                    best, best_r2 = [i, len(names)], r2
            if _affine_r2(T_test, y) > best_r2 + 0.01:
                best = list(range(len(names) + 1))
            coef, *_ = np.linalg.lstsq(T_test[:, best], y, rcond=None)
            Ye[:, j] = T_ext[:, best] @ coef
        return Ye


def _affine_r2(A: np.ndarray, y: np.ndarray) -> float:
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    return float(1 - np.var(y - A @ coef) / np.var(y))


def reference(extrapolation: Extrapolation | None, split: np.ndarray) -> str | None:
    """What ``r2_extrapolation`` is measured against: the truth on a given range, else the
    consensus on the samples labelled "extrapolation"; None when there is neither."""
    if extrapolation is not None and len(extrapolation.X):
        return REFERENCE_TRUTH
    if (np.asarray(split).astype(str) == EXTRAPOLATION).any():
        return REFERENCE_CONSENSUS
    return None
