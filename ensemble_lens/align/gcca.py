"""Multiset (generalized) CCA, MAXVAR formulation with ridge, from shared moments.

Each network ``k`` is reduced to its top principal components ``V_k`` (variances ``λ_k``) and
whitened with a ridge, ``T_k = V_k diag(1 / sqrt(λ_k + ε_k))`` with ``ε_k = ridge · mean(λ_k)``.
With ``Z_k = X_k T_k / sqrt(n - 1)`` the ridge projection onto network ``k``'s span is
``P_k = Z_k Z_k^T``; MAXVAR's shared scores are the top eigenvectors of ``Σ_k P_k = Z Z^T``
(``Z = [Z_1 … Z_K]``). They follow from the small ``(P, P)`` eigenproblem of the whitened
cross-covariance ``C_w = Z^T Z`` (blocks ``T_k^T C_kl T_l``), which needs only the moments:
``C_w u = μ u`` gives shared scores ``g = X T u / sqrt(μ)`` and member ``k``'s projection
``s_k ∝ X_k T_k u_k``, scaled to unit fit-time variance.

``μ`` lies in ``[0, K]``: ``μ = K`` when every member carries the component exactly, ``≈ 1``
for a direction private to one network. ``(μ - 1) / (K - 1)`` is reported as
``maxvar_correlations_`` (the average pairwise correlation when all members are equally
correlated); ``canonical_correlations_`` is the average pairwise correlation of the members'
projections on the fit samples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._base import AlignerBase
from ._linalg import sym_eigh
from ._validate import check_like_fit

__all__ = ["MultisetCCA"]


class MultisetCCA(AlignerBase):
    """MAXVAR generalized CCA of several networks observed on the same samples.

    Parameters
    ----------
    n_components : int, optional
        Shared components to keep; default the smallest per-network PCA rank.
    variance_keep : float in (0, 1]
        Share of each network's variance kept by its PCA truncation.
    max_components : int, optional
        Cap on the PCA components kept per network.
    ridge : float >= 0
        Whitening ridge, as a fraction of each network's mean kept PCA variance.

    Attributes
    ----------
    W_ : list of ndarray (d_k, n_components_)
        Per-model maps; member scores are ``(X_k - mean_[k]) @ W_[k]`` (unit variance on fit).
    mean_ : list of ndarray (d_k,)
    shared_maps_ : list of ndarray (d_k, n_components_)
        Contributions to the shared scores: ``Σ_k (X_k - mean_[k]) @ shared_maps_[k]``.
    shared_scores_ : ndarray (n_fit, n_components_)
        MAXVAR shared scores of the fit samples, unit variance.
    maxvar_eigenvalues_ : ndarray (n_components_,)
        Eigenvalues ``μ`` of ``Σ_k P_k``, in ``[0, K]``.
    maxvar_correlations_ : ndarray (n_components_,)
        ``(μ - 1) / (K - 1)``.
    canonical_correlations_ : ndarray (n_components_,)
        Mean pairwise correlation of the members' projections on the fit samples.
    n_components_per_model_, explained_variance_ : list
        PCA truncation of every network.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(500, 2))
    >>> nets = [np.c_[z, rng.normal(size=(500, 3))] @ rng.permutation(np.eye(5)) for _ in range(4)]
    >>> gcca = MultisetCCA(n_components=3).fit(nets)
    >>> gcca.canonical_correlations_.round(2)
    array([1.  , 1.  , 0.06])
    """

    def __init__(
        self,
        *,
        n_components: int | None = None,
        variance_keep: float = 0.99,
        max_components: int | None = None,
        ridge: float = 1e-3,
    ) -> None:
        self.n_components = n_components
        self.variance_keep = variance_keep
        self.max_components = max_components
        self.ridge = ridge

    def fit(self, inputs: Sequence[Any] | Mapping[str, Any]) -> MultisetCCA:
        """Fit on networks (sequence or dict of (n, d_k) arrays) observed on the same samples."""
        if self.ridge < 0:
            raise ValueError(f"ridge: expected a non-negative number, got {self.ridge}")
        arrays, moments = self._fit_pca(inputs)
        T = [
            p.components / np.sqrt(p.explained_variance + self.ridge * p.explained_variance.mean())
            for p in self.pcas_
        ]
        cw = _whitened_cross(moments, T)
        c = self._n_components(cw.shape[0])
        mu, U = sym_eigh(cw, top=c)
        U = U * np.where(U[np.abs(U).argmax(0), range(c)] < 0, -1.0, 1.0)
        off = np.concatenate([[0], np.cumsum(self.n_components_per_model_)])
        blocks = [U[off[k] : off[k + 1]] for k in range(self.n_models_)]
        member = [
            _unit_variance(u, cw[off[k] : off[k + 1], off[k] : off[k + 1]])
            for k, u in enumerate(blocks)
        ]
        self.W_ = [t @ a for t, a in zip(T, member, strict=True)]
        self.shared_maps_ = [
            t @ u / np.sqrt(np.maximum(mu, 1e-300)) for t, u in zip(T, blocks, strict=True)
        ]
        self.n_components_ = c
        self.maxvar_eigenvalues_ = mu
        self.maxvar_correlations_ = (mu - 1.0) / (self.n_models_ - 1)
        self.canonical_correlations_ = _mean_pairwise_corr(cw, member, off)
        self.shared_scores_ = self.transform_shared(arrays)
        return self

    def _n_components(self, total: int) -> int:
        """Requested component count, defaulting to the smallest per-network rank."""
        c = min(self.n_components_per_model_) if self.n_components is None else self.n_components
        if not 1 <= c <= total:
            raise ValueError(
                f"n_components: expected 1..{total} (the total kept PCA rank), got {c}"
            )
        return int(c)

    def transform_shared(self, inputs: Sequence[Any] | Mapping[str, Any]) -> np.ndarray:
        """MAXVAR shared scores ``Σ_k (X_k - mean_k) T_k u_k / sqrt(μ)`` of any samples.

        Returns
        -------
        ndarray (n, n_components_)
        """
        arrays = check_like_fit(inputs, self.widths_, self.names_)
        return sum(
            (X - m) @ W for X, m, W in zip(arrays, self.mean_, self.shared_maps_, strict=True)
        )


def _whitened_cross(moments: Any, T: list[np.ndarray]) -> np.ndarray:
    """Whitened cross-covariance ``C_w`` with blocks ``T_k^T C_kl T_l``, shape (P, P)."""
    K = len(T)
    rows = []
    for k in range(K):
        rows.append([T[k].T @ moments.block(k, l) @ T[l] for l in range(K)])
    cw = np.block(rows)
    return (cw + cw.T) / 2.0


def _unit_variance(u: np.ndarray, ckk: np.ndarray) -> np.ndarray:
    """Scale the columns of ``u`` (p_k, c) to unit variance under ``ckk``; null columns stay 0."""
    var = np.sum(u * (ckk @ u), axis=0)
    return u / np.sqrt(np.where(var > 1e-300, var, np.inf))


def _mean_pairwise_corr(cw: np.ndarray, member: list[np.ndarray], off: np.ndarray) -> np.ndarray:
    """Average over model pairs of the correlation of their unit-variance projections."""
    K, c = len(member), member[0].shape[1]
    total = np.zeros(c)
    for k in range(K):
        for l in range(k + 1, K):
            ckl = cw[off[k] : off[k + 1], off[l] : off[l + 1]]
            total += np.sum(member[k] * (ckl @ member[l]), axis=0)
    return total / (K * (K - 1) / 2)
