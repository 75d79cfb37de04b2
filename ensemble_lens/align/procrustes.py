"""Generalized Procrustes analysis of several networks, from shared moments.

Each network is reduced to ``c`` principal-component scores ``Y_k = (X_k - mean_k) V_k``
(zero-padded when it keeps fewer than ``c``), optionally scaled to unit total variance. GPA
finds orthogonal ``Q_k`` minimising ``Σ_k ||Y_k Q_k - M||²`` with the consensus
``M = mean_k Y_k Q_k``, by alternating ``Q_k = polar(Y_k^T M)`` and the mean update until the
relative change of the objective drops below ``tol``. The iteration only needs
``Y_k^T Y_l = (n - 1) V_k^T C_kl V_l``, so it runs on the moments. Finally the consensus is
rotated to its own principal axes, so components come in decreasing consensus variance.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..similarity._device import Device
from ._base import AlignerBase
from ._linalg import sym_eigh

__all__ = ["GeneralizedProcrustes"]

logger = logging.getLogger(__name__)


class GeneralizedProcrustes(AlignerBase):
    """Iterative generalized Procrustes alignment to a running consensus.

    Parameters
    ----------
    n_components : int, optional
        Dimension of the shared frame; default the smallest per-network PCA rank.
    variance_keep : float in (0, 1]
        Share of each network's variance kept by its PCA truncation.
    max_components : int, optional
        Cap on the PCA components kept per network.
    scale : bool
        Scale every network's kept scores to unit total variance first, so loud networks do
        not dominate the consensus.
    tol : float
        Convergence tolerance on the relative change of the GPA objective.
    max_iter : int
        Iteration cap (a log message reports non-convergence).
    device : {"cpu", "cuda", "auto", "torch-cpu"}
        Where the fit's moments pass runs (see :func:`~ensemble_lens.similarity.compute_moments`).

    Attributes
    ----------
    W_ : list of ndarray (d_k, n_components_)
        Per-model maps; member scores are ``(X_k - mean_[k]) @ W_[k]``.
    rotations_ : list of ndarray (n_components_, n_components_)
        Orthogonal maps of the (scaled, padded) PCA scores into the shared frame.
    shared_scores_ : ndarray (n_fit, n_components_)
        The consensus (mean of member scores) on the fit samples.
    disparity_ : float
        Final objective ``Σ_k ||Y_k Q_k - M||² / Σ_k ||Y_k||²`` (0 for rotated copies).
    n_iter_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import ortho_group
    >>> X = np.random.default_rng(0).normal(size=(200, 4)) * [4, 3, 2, 1]
    >>> nets = [X @ ortho_group.rvs(4, random_state=k) for k in range(3)]
    >>> gpa = GeneralizedProcrustes(variance_keep=1.0).fit(nets)
    >>> s = gpa.transform(nets)
    >>> bool(np.allclose(s[0], s[2]))
    True
    """

    def __init__(
        self,
        *,
        n_components: int | None = None,
        variance_keep: float = 0.99,
        max_components: int | None = None,
        scale: bool = True,
        tol: float = 1e-6,
        max_iter: int = 500,
        device: Device = "cpu",
    ) -> None:
        self.n_components = n_components
        self.variance_keep = variance_keep
        self.max_components = max_components
        self.scale = scale
        self.tol = tol
        self.max_iter = max_iter
        self.device = device

    def fit(self, inputs: Sequence[Any] | Mapping[str, Any]) -> GeneralizedProcrustes:
        """Fit on networks (sequence or dict of (n, d_k) arrays) observed on the same samples."""
        arrays, moments = self._fit_pca(inputs)
        c = min(self.n_components_per_model_) if self.n_components is None else self.n_components
        if c < 1:
            raise ValueError(f"n_components: expected a positive integer, got {c}")
        bases = [self._basis(k, int(c)) for k in range(self.n_models_)]
        G = _gram(moments, bases)
        Q, self.n_iter_, obj = _gpa(G, len(bases), int(c), self.tol, self.max_iter)
        R = _principal_axes(G, Q)
        self.rotations_ = [q @ R for q in Q]
        self.W_ = [b @ r for b, r in zip(bases, self.rotations_, strict=True)]
        self.n_components_ = int(c)
        self.disparity_ = float(obj / np.trace(G))
        self.shared_scores_ = np.mean(self.transform(arrays), axis=0)
        return self

    def _basis(self, k: int, c: int) -> np.ndarray:
        """Scaled PCA directions of network ``k``, zero-padded to ``c`` columns, (d_k, c)."""
        pca = self.pcas_[k]
        V = pca.components[:, :c]
        if self.scale:
            V = V / np.sqrt(pca.explained_variance[:c].sum())
        return np.pad(V, ((0, 0), (0, c - V.shape[1])))


def _gram(moments: Any, bases: list[np.ndarray]) -> np.ndarray:
    """Cross-covariances of the projected scores, blocks ``B_k^T C_kl B_l``, shape (Kc, Kc)."""
    K = len(bases)
    return np.block(
        [[bases[k].T @ moments.block(k, l) @ bases[l] for l in range(K)] for k in range(K)]
    )


def _gpa(
    G: np.ndarray, K: int, c: int, tol: float, max_iter: int
) -> tuple[list[np.ndarray], int, float]:
    """Alternate Procrustes rotations and consensus updates on the Gram matrix ``G``.

    With ``G_kl = Y_k^T Y_l`` (blocks of ``G``), ``Y_k^T M = (1/K) Σ_l G_kl Q_l`` and the
    objective is ``trace(G) - Σ_k trace(Q_k^T Y_k^T M)``; each step rotates every network
    to the current consensus (batched polar decompositions).
    """
    Q = _polar_batch(G[:, :c].reshape(K, c, c))  # start: align every network to network 0
    total, prev = float(np.trace(G)), np.inf
    for it in range(1, max_iter + 1):
        YM = (G @ Q.reshape(K * c, c)).reshape(K, c, c) / K
        obj = total - float(np.einsum("kim,kim->", Q, YM))  # objective of the current Q
        if prev - obj <= tol * max(obj, 1e-300):
            return list(Q), it, obj
        prev = obj
        Q = _polar_batch(YM)
    logger.info("GeneralizedProcrustes did not converge in %d iterations", max_iter)
    return list(Q), max_iter, prev


def _polar_batch(A: np.ndarray) -> np.ndarray:
    """Orthogonal polar factors ``U V^T`` of a stack of square matrices (K, c, c)."""
    U, _, Vt = np.linalg.svd(A)
    return U @ Vt


def _principal_axes(G: np.ndarray, Q: list[np.ndarray]) -> np.ndarray:
    """Rotation (c, c) taking the consensus to its principal axes, largest variance first."""
    K, c = len(Q), Q[0].shape[0]
    Qb = np.concatenate(Q, axis=0)
    _, vecs = sym_eigh(Qb.T @ G @ Qb / K**2)
    return vecs * np.where(vecs[np.abs(vecs).argmax(0), range(c)] < 0, -1.0, 1.0)
