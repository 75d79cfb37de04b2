"""Multiset (generalized) CCA, MAXVAR formulation with ridge, from shared moments.

Each network ``k`` is reduced to its top principal components ``V_k`` (variances ``λ_k``) and
whitened with a ridge, ``T_k = V_k diag(1 / sqrt(λ_k + ε_k))`` with ``ε_k = ridge · mean(λ_k)``.
With ``Z_k = X_k T_k / sqrt(n - 1)`` the ridge projection onto network ``k``'s span is
``P_k = Z_k Z_k^T``; MAXVAR's shared scores are the top eigenvectors of ``Σ_k P_k = Z Z^T``
(``Z = [Z_1 … Z_K]``). They follow from the small ``(P, P)`` eigenproblem of the whitened
cross-covariance ``C_w = Z^T Z`` (blocks ``T_k^T C_kl T_l``), which needs only the moments:
``C_w u = μ u`` gives shared scores ``g = X T u / sqrt(μ)`` and member ``k``'s projection
``s_k ∝ X_k T_k u_k``, scaled to unit fit-time variance.

For many networks (``P`` in the thousands at K = 1000) forming and factorising ``C_w`` costs
``O(P^3)`` time and ``P^2`` memory; ``solver="iterative"`` (the default above
``_DENSE_MAX`` whitened dimensions) finds the top ``c`` eigenpairs with Lanczos
(:func:`scipy.sparse.linalg.eigsh`) on the operator ``v -> T^T C T v``, with ``T`` the
block-diagonal whitening (a sparse matrix) and ``C`` the shared covariance: ``C_w`` is never
formed. Both solvers give the same eigenpairs up to solver tolerance (tested at small K).

``μ`` lies in ``[0, K]``: ``μ = K`` when every member carries the component exactly, ``≈ 1``
for a direction private to one network. ``(μ - 1) / (K - 1)`` is reported as
``maxvar_correlations_`` (the average pairwise correlation when all members are equally
correlated); ``canonical_correlations_`` is the average pairwise correlation of the members'
projections on the fit samples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import scipy.sparse
from scipy.sparse.linalg import LinearOperator, eigsh

from ..similarity._device import Device
from ._base import AlignerBase
from ._linalg import sym_eigh
from ._validate import check_like_fit

__all__ = ["MultisetCCA"]

_DENSE_MAX = 2000  # whitened dimensions P above which solver="auto" goes iterative


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
    solver : {"auto", "dense", "iterative"}
        ``dense``: form ``C_w`` (P x P) and factorise it; ``iterative``: Lanczos on the
        operator ``T^T C T`` without forming ``C_w``; ``auto``: iterative when ``P > 2000``
        and fewer than ``P / 4`` components are asked for. Asking for ``P - 1`` or more
        components always uses the dense solver (Lanczos needs fewer).
    device : {"cpu", "cuda", "auto", "torch-cpu"}
        Where the fit's moments pass runs (see :func:`~ensemble_lens.similarity.compute_moments`).

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
    solver_ : {"dense", "iterative"}
        The solver used.
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
        solver: Literal["auto", "dense", "iterative"] = "auto",
        device: Device = "cpu",
    ) -> None:
        self.n_components = n_components
        self.variance_keep = variance_keep
        self.max_components = max_components
        self.ridge = ridge
        self.solver = solver
        self.device = device

    def fit(self, inputs: Sequence[Any] | Mapping[str, Any]) -> MultisetCCA:
        """Fit on networks (sequence or dict of (n, d_k) arrays) observed on the same samples."""
        if self.ridge < 0:
            raise ValueError(f"ridge: expected a non-negative number, got {self.ridge}")
        if self.solver not in ("auto", "dense", "iterative"):
            raise ValueError(
                f"solver: expected 'auto', 'dense' or 'iterative', got {self.solver!r}"
            )
        arrays, moments = self._fit_pca(inputs)
        T = [
            p.components / np.sqrt(p.explained_variance + self.ridge * p.explained_variance.mean())
            for p in self.pcas_
        ]
        total = sum(self.n_components_per_model_)
        c = self._n_components(total)
        self.solver_ = self._pick_solver(total, c)
        if self.solver_ == "dense":
            cw = _whitened_cross(moments, T)
            mu, U = sym_eigh(cw, top=c)
            apply = cw.__matmul__
        else:
            apply = _whitened_operator(moments, T)
            mu, U = _top_eigenpairs(apply, total, c)
        U = U * np.where(U[np.abs(U).argmax(0), range(c)] < 0, -1.0, 1.0)
        off = np.concatenate([[0], np.cumsum(self.n_components_per_model_)])
        blocks = [U[off[k] : off[k + 1]] for k in range(self.n_models_)]
        diag = [_sym(t.T @ moments.block(k, k) @ t) for k, t in enumerate(T)]
        member = [_unit_variance(u, diag[k]) for k, u in enumerate(blocks)]
        self.W_ = [t @ a for t, a in zip(T, member, strict=True)]
        self.shared_maps_ = [
            t @ u / np.sqrt(np.maximum(mu, 1e-300)) for t, u in zip(T, blocks, strict=True)
        ]
        self.n_components_ = c
        self.maxvar_eigenvalues_ = mu
        self.maxvar_correlations_ = (mu - 1.0) / (self.n_models_ - 1)
        self.canonical_correlations_ = _mean_pairwise_corr(apply, member, diag)
        self.shared_scores_ = self.transform_shared(arrays)
        return self

    def _pick_solver(self, total: int, c: int) -> str:
        """``dense`` or ``iterative`` for ``total`` whitened dimensions and ``c`` components."""
        if c >= total - 1:  # Lanczos needs fewer eigenpairs than dimensions
            return "dense"
        if self.solver == "auto":
            return "iterative" if total > _DENSE_MAX and 4 * c < total else "dense"
        return self.solver

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
    """Whitened cross-covariance ``C_w = B^T C B`` (blocks ``T_k^T C_kl T_l``), shape (P, P).

    ``B`` is the block-diagonal whitening (sparse): two products instead of a Python loop
    over the K^2 blocks (which took minutes at K = 1000).
    """
    B = _block_whitening(T)
    cw = np.asarray(B.T @ np.asarray(B.T @ moments.cov).T)
    return (cw + cw.T) / 2.0


def _block_whitening(T: list[np.ndarray]) -> Any:
    """The (D, P) block-diagonal matrix of the per-network whitening maps, sparse CSR."""
    return scipy.sparse.block_diag(T, format="csr")


def _sym(a: np.ndarray) -> np.ndarray:
    return (a + a.T) / 2.0


def _whitened_operator(moments: Any, T: list[np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """``V -> C_w V = B^T C B V`` for ``V`` (P,) or (P, m), without forming ``C_w``.

    ``B`` is the block-diagonal whitening (D, P), kept sparse: one product costs
    ``O(D^2 m)`` (the shared covariance ``C``, D x D) instead of ``C_w``'s ``P^2`` memory.
    """
    B = _block_whitening(T)
    Bt = B.T.tocsr()
    cov = moments.cov

    def apply(V: np.ndarray) -> np.ndarray:
        return np.asarray(Bt @ (cov @ (B @ V)))

    return apply


def _top_eigenpairs(
    apply: Callable[[np.ndarray], np.ndarray], total: int, c: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``c`` eigenpairs of the symmetric operator ``apply`` (Lanczos), decreasing."""
    op = LinearOperator((total, total), matvec=apply, matmat=apply, dtype=np.float64)
    v0 = np.random.default_rng(0).standard_normal(total)  # fixed start: reproducible
    vals, vecs = eigsh(op, k=c, which="LA", v0=v0)
    order = np.argsort(vals)[::-1]
    return vals[order], vecs[:, order]


def _unit_variance(u: np.ndarray, ckk: np.ndarray) -> np.ndarray:
    """Scale the columns of ``u`` (p_k, c) to unit variance under ``ckk``; null columns stay 0."""
    var = np.sum(u * (ckk @ u), axis=0)
    return u / np.sqrt(np.where(var > 1e-300, var, np.inf))


def _mean_pairwise_corr(
    apply: Callable[[np.ndarray], np.ndarray], member: list[np.ndarray], diag: list[np.ndarray]
) -> np.ndarray:
    """Average over model pairs of the correlation of their unit-variance projections.

    ``Σ_{k≠l} a_k^T C_kl a_l = diag(A^T C_w A) - Σ_k a_k^T C_kk a_k`` with ``A`` the stacked
    member maps: one operator product instead of a loop over the K (K - 1) / 2 pairs.
    """
    K = len(member)
    A = np.vstack(member)
    both = np.sum(A * apply(A), axis=0)
    own = sum(np.sum(a * (d @ a), axis=0) for a, d in zip(member, diag, strict=True))
    return (both - own) / (K * (K - 1))
