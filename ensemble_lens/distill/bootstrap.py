"""Member bootstrap: does the formula come back when the members are resampled?

Drop-one-member stability (:func:`~ensemble_lens.distill.verdict.drop_one_member`) refits the
chosen form's constants without one member; it never asks whether the search would have
written that form at all. The member bootstrap does: ``n`` resamples of the members, drawn
with replacement (the same draws for every component), each give the mean of the drawn
members' aligned components (on the consensus' scale,
:func:`~ensemble_lens.distill.verdict.on_consensus_scale`), and symbolic regression is run
again on each, with the chosen formula's seed. ``bootstrap_agreement`` is the share of the
resamples whose formula has the chosen form up to constants
(:func:`~ensemble_lens.distill.constants.form_key`); below ``min_agreement`` the record is
flagged ``"bootstrap"`` (flagged, not rejected: a resample of few members can miss a term).

Cost: ``n`` more searches per component, each with the study's time budget (the executor
runs them in parallel). This is why ``distill.bootstrap`` is 0 (off) by default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .constants import form_key
from .verdict import on_consensus_scale

__all__ = ["member_bootstrap"]

Search = Callable[..., list[Any]]


def member_bootstrap(
    picks: Sequence[Any],
    X: np.ndarray,
    M: np.ndarray,
    Y: np.ndarray,
    masks: tuple[np.ndarray, np.ndarray],
    search: Search,
    *,
    n: int,
    min_agreement: float,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Per component, the bootstrap verdict on its chosen formula.

    Parameters
    ----------
    picks : sequence of FormulaResult
        The chosen formula of each component (column of ``Y``).
    X : ndarray, shape (sample, variable)
    M : ndarray, shape (member, sample, component)
        Each member's aligned components, in the searched basis.
    Y : ndarray, shape (sample, component)
        The consensus components, in the searched basis.
    masks : (fit, test) boolean arrays (sample,)
    search : callable
        ``search(X_fit, Y_fit, X_test, Y_test, labels, seeds) -> list of FormulaResult``,
        one search per column with the given seed.
    n : int
        Resamples of the members (0: none).
    min_agreement : float
        Least share of resamples giving the chosen form for a formula not flagged.
    seed : int
        Seed of the resampling.

    Returns
    -------
    list of dict
        Per component: ``bootstrap_resamples``, ``bootstrap_agreement`` (None when not
        measured: no formula, a reduced formula, or ``n`` = 0) and ``bootstrap_forms`` (how
        many distinct forms the resamples gave).
    """
    out: list[dict[str, Any]] = [
        {"bootstrap_resamples": n, "bootstrap_agreement": None, "bootstrap_forms": None}
        for _ in picks
    ]
    fit, test = masks
    rows = fit | test
    K = M.shape[0]
    draws = [np.random.default_rng([seed, b]).integers(0, K, K) for b in range(n)]
    cols, owners = [], []
    for j, p in enumerate(picks):
        if n == 0 or p.expr is None or p.reduced_modulo is not None:
            continue
        scaled = on_consensus_scale(M[:, rows, j], Y[rows, j])
        cols += [scaled[d].mean(0) for d in draws]
        owners += [j] * n
    if not cols:
        return out
    Yb = np.stack(cols, axis=1)
    f, t = fit[rows], test[rows]
    Xr = X[rows]
    labels = [f"bootstrap{b}-{j}" for b, j in zip(range(len(cols)), owners, strict=True)]
    results = search(Xr[f], Yb[f], Xr[t], Yb[t], labels, [picks[j].seed for j in owners])
    for j in sorted(set(owners)):
        keys = [form_key(r.expr) if r.expr is not None else None for r, o in
                zip(results, owners, strict=True) if o == j]  # fmt: skip
        share = sum(k == form_key(picks[j].expr) for k in keys) / len(keys)
        out[j].update(bootstrap_agreement=share, bootstrap_forms=len(set(keys)))
        if share < min_agreement:
            out[j]["bootstrap_flag"] = (
                f"the formula's form came back in {share:.0%} of {n} member resamples "
                f"(below {min_agreement:.0%}): it depends on which members are in the ensemble"
            )
    return out
