"""Null distributions of leave-one-network-out agreement for :func:`find_consensus`.

Permutation null: every network's samples are shuffled independently (fit rows among fit
rows, test rows among test rows), which keeps each network's own statistics and destroys
any correspondence between networks. The aligner is refitted on the shuffled fit rows and the
members' agreement is measured on the shuffled test rows. Because a permutation does not change
a network's PCA, the refits run on the PCA scores computed once for the real fit, which makes
them exact and cheap. The statistic of one refit is the largest agreement over components, per
member (family-wise over components).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ..align._linalg import one_blas_thread
from ..align.gcca import MultisetCCA
from ..align.procrustes import GeneralizedProcrustes
from .scoring import member_agreement

__all__ = ["make_aligner", "null_agreement_batch", "run_permutation_null"]

Method = Literal["gcca", "procrustes"]


def make_aligner(
    method: Method, n_components: int | None, variance_keep: float, device: str = "cpu"
) -> MultisetCCA | GeneralizedProcrustes:
    """The aligner used by consensus for ``method`` (``device``: of its moments pass)."""
    kw: dict[str, Any] = {"n_components": n_components, "variance_keep": variance_keep}
    if method == "gcca":
        return MultisetCCA(**kw, device=device)  # type: ignore[arg-type]
    if method == "procrustes":
        return GeneralizedProcrustes(**kw, device=device)  # type: ignore[arg-type]
    raise ValueError(f"method: expected 'gcca' or 'procrustes', got {method!r}")


def fit_and_agree(
    fit: Sequence[np.ndarray],
    test: Sequence[np.ndarray],
    method: Method,
    n_components: int | None,
    variance_keep: float,
) -> np.ndarray:
    """Fit an aligner on ``fit`` and return the members' agreement on ``test``, (K, c)."""
    aligner = make_aligner(method, n_components, variance_keep).fit(list(fit))
    return member_agreement(aligner.transform(list(test)))


def null_agreement_batch(
    fit: Sequence[np.ndarray],
    test: Sequence[np.ndarray],
    method: Method,
    n_components: int,
    seeds: Sequence[np.random.SeedSequence],
) -> np.ndarray:
    """Module-level task: permutation-null refits, one per seed.

    Parameters
    ----------
    fit, test : sequence of ndarray, each (n_fit, p_k) / (n_test, p_k)
        PCA scores of every network on the fit and test samples.
    seeds : sequence of SeedSequence
        One per refit.

    Returns
    -------
    ndarray (len(seeds), K)
        Largest agreement over components, per refit and member.
    """
    out = []
    with one_blas_thread():  # many small factorisations: one BLAS thread is faster
        for ss in seeds:
            rng = np.random.default_rng(ss)
            pf = [x[rng.permutation(len(x))] for x in fit]
            pt = [x[rng.permutation(len(x))] for x in test]
            out.append(fit_and_agree(pf, pt, method, n_components, 1.0).max(axis=1))
    return np.stack(out)


def _shared_batch(data: tuple, method: Method, n_components: int, seeds: Any) -> np.ndarray:
    fit, test = data
    return null_agreement_batch(fit, test, method, n_components, seeds)


def run_permutation_null(
    fit: Sequence[np.ndarray],
    test: Sequence[np.ndarray],
    method: Method,
    n_components: int,
    n_null: int,
    seed: int,
    executor: Any = None,
) -> np.ndarray:
    """All permutation-null refits, inline or through ``executor`` in up to 8 batches.

    Returns
    -------
    ndarray (n_null, K)
    """
    seeds = np.random.SeedSequence(seed).spawn(n_null)
    if executor is None:
        return null_agreement_batch(fit, test, method, n_components, seeds)
    batches = [seeds[i::8] for i in range(min(8, n_null))]
    share = getattr(executor, "share", lambda value: value)
    data = share((list(fit), list(test)))  # sent once, not with each of the batches
    futures = [executor.submit(_shared_batch, data, method, n_components, b) for b in batches]
    return np.concatenate([f.result() for f in futures])
