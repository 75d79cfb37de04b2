"""Shared machinery of the multi-network aligners (fit-time PCA, transform)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._moments import fit_moments
from ._validate import as_matrices, check_like_fit
from .pca import NetworkPCA, reduce_networks

__all__ = ["AlignerBase"]


class AlignerBase(ABC):
    """Common fit/transform plumbing; subclasses implement ``_fit_aligned(moments)``.

    After ``fit`` every aligner has ``names_``, ``n_models_``, ``widths_``, ``pcas_``,
    ``n_components_per_model_``, ``explained_variance_``, ``explained_variance_ratio_``,
    ``mean_`` (list of (d_k,)), ``W_`` (list of (d_k, c)) and ``shared_scores_`` (n_fit, c).
    """

    variance_keep: float
    max_components: int | None
    W_: list[np.ndarray]

    @abstractmethod
    def fit(self, inputs: Sequence[Any] | Mapping[str, Any]) -> AlignerBase:
        """Learn the per-model maps from networks observed on the same fit samples."""

    def _fit_pca(self, inputs: Sequence[Any] | Mapping[str, Any]) -> tuple[list[np.ndarray], Any]:
        """Validate the networks, compute their moments once and reduce each by PCA."""
        names, arrays = as_matrices(inputs)
        moments = fit_moments(arrays, getattr(self, "device", "cpu"))
        self.names_ = names
        self.n_models_ = len(arrays)
        self.widths_ = [x.shape[1] for x in arrays]
        self.pcas_: list[NetworkPCA] = reduce_networks(
            moments,
            names,
            arrays[0].shape[0],
            variance_keep=self.variance_keep,
            max_components=self.max_components,
        )
        self.n_components_per_model_ = [p.n_components for p in self.pcas_]
        self.explained_variance_ = [p.explained_variance for p in self.pcas_]
        self.explained_variance_ratio_ = [p.explained_variance_ratio for p in self.pcas_]
        self.mean_ = [p.mean for p in self.pcas_]
        return arrays, moments

    def transform(self, inputs: Sequence[Any] | Mapping[str, Any]) -> list[np.ndarray]:
        """Each member's aligned scores ``(X_k - mean_k) @ W_k``.

        Parameters
        ----------
        inputs : sequence or dict of array-like, each (n, d_k)
            The same networks (same order and widths) as in ``fit``, on any samples.

        Returns
        -------
        list of ndarray, each (n, n_components_)
        """
        arrays = check_like_fit(inputs, self.widths_, self.names_)
        return [(X - m) @ W for X, m, W in zip(arrays, self.mean_, self.W_, strict=True)]

    def fit_transform(self, inputs: Sequence[Any] | Mapping[str, Any]) -> list[np.ndarray]:
        """``fit(inputs).transform(inputs)``; list of (n, n_components_) member scores."""
        return self.fit(inputs).transform(inputs)
