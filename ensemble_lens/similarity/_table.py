"""The registry table: one :class:`Family` row per measure family, with its function,
options, symmetry, kind, invariances, per-network work and standardized names."""

from __future__ import annotations

from functools import partial

from scipy.spatial.distance import pdist

from . import geometry as geo
from ._builders import (
    build_cca,
    build_cka,
    build_ensd,
    build_fn,
    build_gulp,
    build_procrustes,
    build_pwcca,
    build_regression,
    build_rsa,
    build_shape,
    build_shared,
    build_svcca,
)
from ._names import ANGULAR, Family, Output, Param
from ._table_knn import ORTHO, neighbour_families
from .rsa import COMPARATORS, RDMS

__all__ = ["FAMILIES"]


_REG_FLAGS = {
    "pearsonr": {"score": "pearsonr"},
    "pearsonr2": {"score": "pearsonr2"},
    "r2": {"score": "r2"},
    "median": {"reduce": "median"},
    "reverse": {"reverse": True},
}
_REG_PARAMS = (Param("cv", "cv", "int"), Param("seed", "seed", "int"))
_REG_ORDER = (
    "lambda",
    "pearsonr",
    "pearsonr2",
    "r2",
    "components",
    "cv",
    "seed",
    "median",
    "reverse",
)
_RSA_LISTED = tuple(
    f"rsa-rdm={r}-compare={c}"
    for r in RDMS
    if r != "crossnobis"
    for c in COMPARATORS
    if c not in ("corr", "kendall_tau_a", "kendall")
)
_CKA_LISTED = tuple(
    f"cka-kernel={k}-hsic={h}-{o}"
    for k in ("linear", "(rbf-sigma=1.0)", "(laplace-sigma=1.0)")
    for h in ("gretton", "lange", "song")
    for o in ("score", "distance=angular")
)


def _families() -> list[Family]:
    return [
        Family(
            "cka",
            "centered kernel alignment; kernel linear/rbf/laplace, HSIC gretton/lange/song",
            "kernel",
            ("orthogonal", "translation", "isotropic-scaling (linear, or sigma from the median)"),
            build_cka,
            (
                Param("kernel", "kernel", "str", "linear", ("linear", "rbf", "laplace"), True),
                Param("sigma", "sigma", "float", inside="kernel"),
                Param("frac", "frac", "float", inside="kernel"),
                Param("hsic", "hsic", "str", "gretton", ("gretton", "lange", "song"), True),
            ),
            ANGULAR,
            listed=_CKA_LISTED,
            paper="Kornblith et al. 2019; Lange et al. 2023; Song et al. 2012",
        ),
        Family(
            "cca",
            "mean canonical correlation (squared_score: mean squared, Yanai)",
            "cca",
            ("invertible-linear", "translation"),
            build_cca,
            (Param("ridge", "ridge", "float"),),
            {**ANGULAR, "squared_score": Output("similarity")},
            listed=("cca-score", "cca-squared_score", "cca-distance=angular"),
            paper="Hotelling 1936",
        ),
        Family(
            "svcca",
            "CCA on the top principal components (var = kept variance, dim = count)",
            "cca",
            ORTHO,
            build_svcca,
            (Param("var", "keep_variance", "float", 0.99), Param("dim", "n_components", "int")),
            ANGULAR,
            listed=(
                "svcca-var=0.99-score",
                "svcca-var=0.95-score",
                "svcca-dim=10-score",
                "svcca-var=0.99-distance=angular",
            ),
            paper="Raghu et al. 2017",
        ),
        Family(
            "pwcca",
            "projection-weighted CCA (weights from X's units; not symmetric)",
            "cca",
            ORTHO,
            build_pwcca,
            (Param("variant", "variant", "str", "paper", ("paper", "google")),),
            ANGULAR,
            flags={"symmetric": {"symmetric": True}},
            listed=(
                "pwcca-score",
                "pwcca-variant=google-score",
                "pwcca-distance=angular",
                "pwcca-distance=one_minus_score",
            ),
            paper="Morcos et al. 2018",
        ),
        Family(
            "procrustes",
            "orthogonal Procrustes: normalised score, angle, size-and-shape distance",
            "shape",
            ORTHO,
            build_procrustes,
            (),
            {
                **ANGULAR,
                "distance=euclidean": Output("distance"),
                "distance=squared_euclidean": Output("distance", options={"squared": True}),
            },
            listed=(
                "procrustes-score",
                "procrustes-distance=angular",
                "procrustes-distance=euclidean",
                "procrustes-distance=squared_euclidean",
            ),
            paper="Williams et al. 2021",
        ),
        Family(
            "nbs",
            "normalized Bures similarity (= Procrustes score)",
            "shape",
            ORTHO,
            lambda o, out: build_procrustes(o, out),
            (),
            ANGULAR,
            listed=("nbs-score", "nbs-distance=angular"),
            paper="Tang et al. 2020",
        ),
        Family(
            "shape_metric",
            "angular shape metric with partial whitening alpha in [0, 1]",
            "shape",
            ORTHO,
            build_shape,
            (
                Param("alpha", "alpha", "float", 1.0, show=True),
                Param("scale", "scale", "str", "mean", ("mean", "raw")),
            ),
            {"distance=angular": Output("distance")},
            default_output="distance=angular",
            bare_default=False,
            listed=(
                "shape_metric-alpha=0.5-distance=angular",
                "shape_metric-alpha=0.5-scale=raw-distance=angular",
            ),
            paper="Williams et al. 2021",
        ),
        Family(
            "permutation_metric",
            "angle between centred units after the best unit permutation (netrep)",
            "shape",
            ("permutation", "isotropic-scaling", "translation"),
            build_fn(geo.permutation_angle),
            (),
            {"distance=angular": Output("distance"), "score": Output("similarity", "cos")},
            flags={"standardized": {"standardize": True}},
            default_output="distance=angular",
            listed=(
                "permutation_metric-distance=angular",
                "permutation_metric-score",
                "permutation_metric-standardized-distance=angular",
            ),
            paper="Williams et al. 2021",
        ),
        Family(
            "bures_distance",
            "Bures distance of centred linear Grams (= Procrustes size-and-shape)",
            "shape",
            ("orthogonal", "translation"),
            build_fn(geo.procrustes_distance),
            outputs={"score": Output("distance")},
            listed=("bures_distance",),
            paper="Harvey et al. 2024",
        ),
        Family(
            "orthogonal_procrustes_centered_and_normalized",
            "Procrustes distance of centred inputs scaled to unit norm",
            "shape",
            ORTHO,
            build_fn(geo.procrustes_distance, normalize=True),
            outputs={"score": Output("distance")},
            listed=("orthogonal_procrustes_centered_and_normalized",),
            paper="Ding et al. 2021",
        ),
        Family(
            "orthogonal_angular_shape_metric_centered",
            "Procrustes angle (= procrustes-distance=angular)",
            "shape",
            ORTHO,
            lambda o, out: build_procrustes(o, "distance=angular"),
            outputs={"score": Output("distance", "arccos")},
            listed=("orthogonal_angular_shape_metric_centered",),
            paper="Williams et al. 2021",
        ),
        Family(
            "permutation_procrustes",
            "min over unit permutations of |X - Y P| (raw units)",
            "shape",
            ("permutation",),
            build_fn(geo.permutation_procrustes),
            outputs={"score": Output("distance")},
            flags={"standardized": {"standardize": True}},
            listed=("permutation_procrustes", "permutation_procrustes-standardized"),
            paper="ReSi",
        ),
        Family(
            "aligned_cosine_similarity",
            "mean sample cosine after orthogonal alignment",
            "shape",
            ("orthogonal", "isotropic-scaling"),
            build_fn(geo.aligned_cosine),
            listed=("aligned_cosine_similarity",),
            paper="Hamilton et al. 2016",
        ),
        Family(
            "rsa",
            "RSA: RDM (rsatoolbox kinds) compared by a comparator",
            "rsa",
            ("orthogonal", "isotropic-scaling"),
            build_rsa,
            (
                Param("rdm", "rdm", "str", "correlation", RDMS, True),
                Param("compare", "compare", "str", "spearman", COMPARATORS, True),
            ),
            listed=_RSA_LISTED,
            paper="Kriegeskorte et al. 2008; Nili et al. 2014",
        ),
        Family(
            "rsm_norm_difference",
            "norm of the difference of the Euclidean distance matrices",
            "rsa",
            ("orthogonal", "translation"),
            build_shared(
                geo.rsm_norm_difference, partial(pdist, metric="euclidean"), geo.diff_norm, "rdm"
            ),
            outputs={"score": Output("distance")},
            listed=("rsm_norm_difference",),
            paper="ReSi",
        ),
        Family(
            "distance_correlation",
            "distance correlation of the two representations",
            "rsa",
            ORTHO,
            build_shared(geo.distance_correlation, geo.dcor_state, geo.dcor_combine, "rdm"),
            listed=("distance_correlation",),
            paper="Szekely et al. 2007",
        ),
        *neighbour_families(),
        Family(
            "hard_correlation_match",
            "mean correlation of the optimal one-to-one unit matching",
            "matching",
            ("permutation", "per-unit-affine"),
            build_shared(
                geo.correlation_match, geo.unit_state, geo.match_combine, "features", kind="hard"
            ),
            listed=("hard_correlation_match",),
            paper="Li et al. 2015",
        ),
        Family(
            "soft_correlation_match",
            "mean best correlation of each unit (both directions)",
            "matching",
            ("permutation", "per-unit-affine"),
            build_shared(
                geo.correlation_match, geo.unit_state, geo.match_combine, "features", kind="soft"
            ),
            listed=("soft_correlation_match",),
            paper="Li et al. 2015",
        ),
        Family(
            "linear_regression",
            "least squares: bare = ReSi in-sample R^2 of X from Y; "
            "with pearsonr/r2 = held-out predictivity of Y from X",
            "regression",
            ("invertible-linear",),
            build_regression("ols"),
            _REG_PARAMS,
            flags=_REG_FLAGS,
            order=_REG_ORDER,
            listed=(
                "linear_regression",
                "linear_regression-pearsonr-cv=5folds",
                "linear_regression-r2-cv=5folds",
                "linear_regression-pearsonr2-cv=5folds",
            ),
            paper="ReSi; Yamins et al. 2014",
        ),
        Family(
            "ridge",
            "ridge regression of Y from X with absolute penalty lambda",
            "regression",
            ("orthogonal",),
            build_regression("ridge"),
            (Param("lambda", "lam", "float", 1.0), *_REG_PARAMS),
            flags=_REG_FLAGS,
            order=_REG_ORDER,
            listed=(
                "ridge-lambda=1-pearsonr-cv=5folds",
                "ridge-lambda=1-r2-cv=5folds",
                "ridge-pearsonr-cv=5folds-reverse",
            ),
            paper="Schrimpf et al. 2018",
        ),
        Family(
            "pls",
            "partial least squares regression of Y from X",
            "regression",
            ("orthogonal",),
            build_regression("pls"),
            (Param("components", "n_components", "int", 25), *_REG_PARAMS),
            flags=_REG_FLAGS,
            order=_REG_ORDER,
            listed=("pls-pearsonr-components=25-cv=5folds",),
            paper="Schrimpf et al. 2018",
        ),
        Family(
            "eigenspace_overlap_score",
            "overlap of the column spaces",
            "spectral",
            ("invertible-linear",),
            build_shared(geo.eigenspace_overlap, geo.basis_state, geo.overlap_combine, "factor"),
            listed=("eigenspace_overlap_score",),
            paper="May et al. 2019",
        ),
        Family(
            "gulp",
            "distance between best linear predictors (ReSi value: squared)",
            "spectral",
            ORTHO,
            build_gulp,
            (Param("lambda", "lam", "float"),),
            outputs={"score": Output("distance")},
            flags={"root": {"root": True}},
            listed=("gulp", "gulp-lambda=0.1", "gulp-root"),
            paper="Boix-Adsera et al. 2022",
        ),
        Family(
            "ensd",
            "effective number of shared dimensions",
            "spectral",
            ORTHO,
            build_ensd,
            (),
            {"score": Output("similarity"), "distance=angular_normalized": Output("distance")},
            bare_default=True,
            listed=("ensd", "ensd-distance=angular_normalized"),
            paper="Giaffar et al. 2024",
        ),
        Family(
            "magnitude_difference",
            "difference of the norms of the mean samples",
            "statistic",
            ("orthogonal",),
            build_shared(
                geo.magnitude_difference,
                partial(geo.stat_state, kind="magnitude"),
                geo.abs_diff,
                "statistic",
            ),
            outputs={"score": Output("distance")},
            listed=("magnitude_difference",),
            paper="Wang et al. 2020",
        ),
        Family(
            "concentricity_difference",
            "difference of mean cosines to the mean sample",
            "statistic",
            ("orthogonal", "isotropic-scaling"),
            build_shared(
                geo.concentricity_difference,
                partial(geo.stat_state, kind="concentricity"),
                geo.abs_diff,
                "statistic",
            ),
            outputs={"score": Output("distance")},
            listed=("concentricity_difference",),
            paper="Wang et al. 2020",
        ),
        Family(
            "uniformity_difference",
            "difference of the uniformity log mean exp(-t d^2)",
            "statistic",
            ("orthogonal", "translation"),
            build_shared(
                geo.uniformity_difference,
                partial(geo.stat_state, kind="uniformity"),
                geo.abs_diff,
                "statistic",
            ),
            outputs={"score": Output("distance")},
            listed=("uniformity_difference",),
            paper="Wang & Isola 2020",
        ),
    ]


FAMILIES: dict[str, Family] = {f.key: f for f in _families()}
