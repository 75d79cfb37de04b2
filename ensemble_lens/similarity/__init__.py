"""Representation similarity: compare what networks compute, pair by pair or all at once.

Single-pair measures take ``X`` (n, d1) and ``Y`` (n, d2) on the same samples (numpy, torch,
xarray ``("sample", "unit")`` or dask) and return a float (or a small dataclass).
:func:`pairwise` computes the K x K matrix over an ensemble, from one streaming pass of shared
second moments (:func:`compute_moments`) for the linear measures.

Examples
--------
>>> import numpy as np
>>> from ensemble_lens.similarity import linear_cka, pairwise
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(200, 16))
>>> round(linear_cka(X, X @ np.linalg.qr(rng.normal(size=(16, 16)))[0]), 10)
1.0
>>> pairwise({"a": X, "b": 2 * X}, "procrustes_similarity").shape
(2, 2)
"""

from ._pairstate import MOMENT_METRICS
from .cca import CCAResult, cca, mean_cca, pwcca, svcca
from .cka import linear_cka, rbf_cka
from .knn import mutual_knn
from .matching import UnitMatch, match_units, permutation_distance
from .moments import Moments, compute_moments
from .pairwise import pairwise, pairwise_permutation_test
from .predictivity import linear_predictivity
from .procrustes import procrustes_similarity, shape_distance
from .rsa import kendall_tau_a, rsa
from .stats import BootstrapResult, PermutationResult, bootstrap_ci, permutation_test

__all__ = [
    "MOMENT_METRICS",
    "BootstrapResult",
    "CCAResult",
    "Moments",
    "PermutationResult",
    "UnitMatch",
    "bootstrap_ci",
    "cca",
    "compute_moments",
    "kendall_tau_a",
    "linear_cka",
    "linear_predictivity",
    "match_units",
    "mean_cca",
    "mutual_knn",
    "pairwise",
    "pairwise_permutation_test",
    "permutation_distance",
    "permutation_test",
    "procrustes_similarity",
    "pwcca",
    "rbf_cka",
    "rsa",
    "shape_distance",
    "svcca",
]
