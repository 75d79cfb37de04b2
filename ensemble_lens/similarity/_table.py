"""The registry table: one :class:`Family` row per measure family, with its function,
options, symmetry, kind, invariances, per-network work and standardized names."""

from __future__ import annotations

from functools import partial

from . import geometry as geo
from ._builders import (
    build_cca,
    build_cka,
    build_ensd,
    build_gulp,
    build_permutation,
    build_permutation_procrustes,
    build_procrustes,
    build_procrustes_distance,
    build_pwcca,
    build_rsa,
    build_rsm_norm,
    build_shape,
    build_shared,
    build_svcca,
)
from ._names import ANGULAR, EUCLIDEAN, Family, Output, Param
from ._table_knn import ORTHO, neighbour_families
from ._table_plain import plain_families
from ._table_regression import regression_families
from ._variants import aligned_cossim, centred_aligned_state
from .rsa import COMPARATORS, RDMS

__all__ = ["FAMILIES"]

_PROCRUSTES_OUT = {
    **ANGULAR,
    "distance=euclidean": Output("distance"),
    "distance=squared_euclidean": Output("distance", options={"squared": True}),
}


_RSA_LISTED = (
    *(
        f"rsa-rdm={r}-compare={c}"
        for r in RDMS
        if r not in ("crossnobis", "gaussian")
        for c in COMPARATORS
        if c not in ("corr", "kendall_tau_a", "kendall")
    ),
    "rsa-rdm=gaussian-compare=pearson",
    "rsa-rdm=gaussian-compare=spearman",
)
_CKA_LISTED = (
    *(
        f"cka-kernel={k}-hsic={h}-{o}"
        for k in ("linear", "(rbf-sigma=1.0)", "(laplace-sigma=1.0)")
        for h in ("gretton", "lange", "song")
        for o in ("score", "distance=angular")
    ),
    "cka-kernel=linear-hsic=gretton-distance=euclidean",
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
            {**ANGULAR, **EUCLIDEAN},
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
            {**ANGULAR, **EUCLIDEAN, "squared_score": Output("similarity")},
            listed=(
                "cca-score",
                "cca-squared_score",
                "cca-distance=angular",
                "cca-distance=euclidean",
            ),
            paper="Hotelling 1936",
        ),
        Family(
            "svcca",
            "CCA on the top principal components (var = kept variance, dim = count; "
            "neither: all components, as the registry's svcca-score)",
            "cca",
            ORTHO,
            build_svcca,
            (Param("var", "keep_variance", "float"), Param("dim", "n_components", "int")),
            {**ANGULAR, **EUCLIDEAN, "squared_score": Output("similarity")},
            listed=(
                "svcca-var=0.99-score",
                "svcca-var=0.95-score",
                "svcca-dim=10-score",
                "svcca-var=0.99-distance=angular",
                "svcca-var=0.99-squared_score",
                "svcca-var=0.99-distance=euclidean",
                "svcca-score",
            ),
            paper="Raghu et al. 2017",
        ),
        Family(
            "pwcca",
            "projection-weighted CCA (weights from X's units; not symmetric); default "
            "google/svcca's code (d < n), one_minus_score and variant=paper the paper's",
            "cca",
            ORTHO,
            build_pwcca,
            (Param("variant", "variant", "str", None, ("paper", "google")),),
            {**ANGULAR, **EUCLIDEAN},
            flags={"symmetric": {"symmetric": True}},
            listed=(
                "pwcca-score",
                "pwcca-variant=paper-score",
                "pwcca-distance=angular",
                "pwcca-distance=one_minus_score",
                "pwcca-distance=euclidean",
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
            _PROCRUSTES_OUT,
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
            _PROCRUSTES_OUT,
            listed=("nbs-score", "nbs-distance=angular", "nbs-distance=euclidean"),
            paper="Tang et al. 2020",
        ),
        Family(
            "shape_metric",
            "angular shape metric with partial whitening alpha in [0, 1]; scale=raw "
            "(default) netrep's unnormalised scatter, scale=mean scale-free",
            "shape",
            ORTHO,
            build_shape,
            (
                Param("alpha", "alpha", "float", 1.0, show=True),
                Param("scale", "scale", "str", "raw", ("mean", "raw")),
                Param("cv", "cv", "int"),
            ),
            {
                "distance=angular": Output("distance"),
                "score": Output("similarity", "cos"),
                "distance=euclidean": Output("distance"),
                "distance=squared_euclidean": Output("distance"),
            },
            default_output="distance=angular",
            bare_default=False,
            listed=(
                "shape_metric-alpha=0.5-distance=angular",
                "shape_metric-alpha=0.5-scale=mean-distance=angular",
                "shape_metric-alpha=1.0-score",
                "shape_metric-alpha=0.5-distance=euclidean",
            ),
            paper="Williams et al. 2021",
        ),
        Family(
            "permutation_metric",
            "angle between centred units after the best unit permutation (netrep)",
            "shape",
            ("permutation", "isotropic-scaling", "translation"),
            build_permutation,
            (),
            {
                "distance=angular": Output("distance"),
                "score": Output("similarity", "cos"),
                "distance=euclidean": Output("distance"),
                "distance=squared_euclidean": Output("distance", options={"squared": True}),
            },
            flags={"standardized": {"standardize": True}},
            default_output="distance=angular",
            listed=(
                "permutation_metric-distance=angular",
                "permutation_metric-score",
                "permutation_metric-standardized-distance=angular",
                "permutation_metric-distance=euclidean",
            ),
            paper="Williams et al. 2021",
        ),
        Family(
            "bures_distance",
            "Bures distance of centred linear Grams (= Procrustes size-and-shape)",
            "shape",
            ("orthogonal", "translation"),
            build_procrustes_distance(False),
            outputs={"score": Output("distance")},
            listed=("bures_distance",),
            paper="Harvey et al. 2024",
        ),
        Family(
            "orthogonal_procrustes_centered_and_normalized",
            "Procrustes distance of centred inputs scaled to unit norm",
            "shape",
            ORTHO,
            build_procrustes_distance(True),
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
            build_permutation_procrustes,
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
            build_shared(geo.aligned_cosine, geo.aligned_state, geo.aligned_combine, "features"),
            listed=("aligned_cosine_similarity",),
            paper="Hamilton et al. 2016",
        ),
        Family(
            "aligned_cossim",
            "aligned cosine similarity of the column-centred inputs (llm_repsim)",
            "shape",
            ORTHO,
            build_shared(aligned_cossim, centred_aligned_state, geo.aligned_combine, "features"),
            listed=("aligned_cossim",),
            paper="Klabunde et al. 2023 (llm_repsim)",
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
            "norm of the difference of the Euclidean distance matrices: spectral (ReSi, "
            "default) or over the sample pairs (variant=llm_repsim)",
            "rsa",
            ("orthogonal", "translation"),
            build_rsm_norm,
            (Param("variant", "variant", "str", "resi", ("resi", "llm_repsim")),),
            outputs={"score": Output("distance")},
            listed=("rsm_norm_difference", "rsm_norm_difference-variant=llm_repsim"),
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
        *regression_families(),
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
        *plain_families(),
    ]


FAMILIES: dict[str, Family] = {f.key: f for f in _families()}
