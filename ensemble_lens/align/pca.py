"""Per-network PCA truncation by explained variance, computed from shared fit-time moments.

Rule: sort the eigenvalues of a network's covariance, drop numerically null directions
(eigenvalue <= ``1e-10`` times the largest), keep the fewest leading components whose
cumulative share of the total variance reaches ``variance_keep``, then cap at
``max_components`` and at ``n - 1``. At least one component is always kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ShapeError
from ._linalg import sym_eigh

__all__ = ["NetworkPCA", "n_components_for", "reduce_networks"]

_RANK_TOL = 1e-10


@dataclass(frozen=True)
class NetworkPCA:
    """Truncated PCA of one network.

    Attributes
    ----------
    mean : ndarray (d,)
        Fit-time mean of every unit.
    components : ndarray (d, p)
        Orthonormal principal directions, in decreasing variance.
    explained_variance : ndarray (p,)
        Variance of the fit data along each kept direction (``ddof=1``).
    explained_variance_ratio : ndarray (p,)
        ``explained_variance`` divided by the network's total variance.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray

    @property
    def n_components(self) -> int:
        """Number of kept components ``p``."""
        return int(self.components.shape[1])

    def scores(self, X: np.ndarray) -> np.ndarray:
        """PCA scores ``(X - mean) @ components``, shape (n, p)."""
        return (X - self.mean) @ self.components


def n_components_for(
    eigenvalues: np.ndarray, variance_keep: float, max_components: int | None, n_samples: int
) -> int:
    """Number of leading components kept by the truncation rule (see module docstring).

    Parameters
    ----------
    eigenvalues : ndarray (d,)
        Covariance eigenvalues in decreasing order, non-negative.
    """
    total = float(eigenvalues.sum())
    live = int(np.count_nonzero(eigenvalues > _RANK_TOL * eigenvalues[0]))
    share = np.cumsum(eigenvalues[:live]) / total
    p = int(np.searchsorted(share, variance_keep * (1.0 - 1e-12)) + 1)
    p = min(p, live, n_samples - 1)
    if max_components is not None:
        p = min(p, int(max_components))
    return max(p, 1)


def _network_pca(
    mean: np.ndarray,
    cov: np.ndarray,
    name: str,
    variance_keep: float,
    max_components: int | None,
    n_samples: int,
) -> NetworkPCA:
    """Eigendecompose one network's covariance block and truncate it."""
    vals, vecs = sym_eigh(cov)
    vals = np.clip(vals, 0.0, None)
    if vals[0] <= 0.0:
        raise ShapeError(f"model {name!r}: every unit is constant on the fit samples")
    p = n_components_for(vals, variance_keep, max_components, n_samples)
    vecs = vecs[:, :p] * np.where(vecs[np.abs(vecs[:, :p]).argmax(0), range(p)] < 0, -1.0, 1.0)
    return NetworkPCA(
        mean=mean.copy(),
        components=np.ascontiguousarray(vecs),
        explained_variance=vals[:p].copy(),
        explained_variance_ratio=vals[:p] / vals.sum(),
    )


def reduce_networks(
    moments,
    names: Sequence[str],
    n_samples: int,
    *,
    variance_keep: float = 0.99,
    max_components: int | None = None,
) -> list[NetworkPCA]:
    """Truncated PCA of every network from the diagonal blocks of shared moments.

    Parameters
    ----------
    moments : Moments
        Fit-time moments of all networks side by side (``mean`` (D,), ``block(k, k)``).
    names : sequence of str
        Network names, for error messages.
    n_samples : int
        Number of fit samples (caps the rank at ``n - 1``).
    variance_keep : float in (0, 1]
        Share of each network's variance to keep.
    max_components : int, optional
        Upper bound on the components kept per network.

    Returns
    -------
    list of NetworkPCA, one per network
    """
    if not 0.0 < variance_keep <= 1.0:
        raise ValueError(f"variance_keep: expected a number in (0, 1], got {variance_keep}")
    if max_components is not None and max_components < 1:
        raise ValueError(f"max_components: expected a positive integer, got {max_components}")
    off = moments.offsets
    return [
        _network_pca(
            moments.mean[off[k] : off[k + 1]],
            moments.block(k, k),
            name,
            variance_keep,
            max_components,
            n_samples,
        )
        for k, name in enumerate(names)
    ]
