"""Representation similarity: compare what networks compute, pair by pair or all at once.

Single-pair measures take ``X`` (n, d1) and ``Y`` (n, d2) on the same samples (numpy, torch,
xarray ``("sample", "unit")`` or dask) and return a float (or a small dataclass);
``measure(name)(X, Y)`` returns a :class:`Score`, a float that also carries ``.info`` (a
:class:`ResultInfo`: the fields a K x K result has in its ``attrs``).
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
>>> s = measure("cka-kernel=linear-hsic=gretton-score")(X, 3 * X)
>>> round(s, 10), s.info.metric
(1.0, 'cka-kernel=linear-hsic=gretton-score')

Every measure has a standardized name (the scheme of Cloos et al. 2024); :func:`measure`
parses one, :func:`measure_names` lists them (also ``ensemble-lens measures`` and
docs/MEASURES.md).
"""

from ._meta import ResultInfo, Score
from ._names import Measure
from ._pairstate import MOMENT_METRICS
from ._registry import all_names as measure_names
from ._registry import measure
from .cca import CCAResult, cca, mean_cca, pwcca, svcca
from .cka import linear_cka, rbf_cka
from .geometry import (
    aligned_cosine,
    concentricity_difference,
    correlation_match,
    distance_correlation,
    eigenspace_overlap,
    ensd,
    gulp,
    magnitude_difference,
    permutation_procrustes,
    procrustes_distance,
    rsm_norm_difference,
    uniformity_difference,
)
from .geometry_score import geometry_score
from .imd import imd
from .kernels import kernel_cka
from .knn import (
    cycle_knn,
    edit_distance_knn,
    jaccard_knn,
    lcs_knn,
    mutual_knn,
    rank_knn,
    second_order_cosine,
)
from .layers import layer_correspondence
from .matching import UnitMatch, match_units, permutation_distance
from .moments import Moments, compute_moments
from .pairwise import pairwise, pairwise_permutation_test
from .plot import plot_similarity
from .predictivity import linear_predictivity
from .procrustes import procrustes_similarity, shape_distance
from .regression import linear_reg_r2, regression_score
from .rsa import kendall_tau_a, rdm, rsa
from .stats import BootstrapResult, PermutationResult, bootstrap_ci, permutation_test

__all__ = [
    "MOMENT_METRICS",
    "BootstrapResult",
    "CCAResult",
    "Measure",
    "Moments",
    "PermutationResult",
    "ResultInfo",
    "Score",
    "UnitMatch",
    "aligned_cosine",
    "bootstrap_ci",
    "cca",
    "compute_moments",
    "concentricity_difference",
    "correlation_match",
    "cycle_knn",
    "distance_correlation",
    "edit_distance_knn",
    "eigenspace_overlap",
    "ensd",
    "geometry_score",
    "gulp",
    "imd",
    "jaccard_knn",
    "kendall_tau_a",
    "kernel_cka",
    "layer_correspondence",
    "lcs_knn",
    "linear_cka",
    "linear_predictivity",
    "linear_reg_r2",
    "magnitude_difference",
    "match_units",
    "mean_cca",
    "measure",
    "measure_names",
    "mutual_knn",
    "pairwise",
    "pairwise_permutation_test",
    "permutation_distance",
    "permutation_procrustes",
    "permutation_test",
    "plot_similarity",
    "procrustes_distance",
    "procrustes_similarity",
    "pwcca",
    "rank_knn",
    "rbf_cka",
    "rdm",
    "regression_score",
    "rsa",
    "rsm_norm_difference",
    "second_order_cosine",
    "shape_distance",
    "svcca",
    "uniformity_difference",
]
