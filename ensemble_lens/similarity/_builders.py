"""Builders of the registry table's rows: parsed options -> function and per-network work."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from scipy.spatial.distance import pdist

from ..errors import MeasureParameterError, ShapeError
from . import geometry as geo
from ._cv_shape import cv_shape_metric
from ._input import prepare_pair, safe_scale
from ._names import Built
from ._ridgecv import ridgecv_combine, ridgecv_state
from ._states import (
    cca_combine,
    centred_state,
    factor_state,
    google_pwcca_combine,
    google_state,
    permutation_angle_combine,
    permutation_distance_combine,
    pls_combine,
    pls_state,
    procrustes_combine,
    raw_shape_combine,
    raw_shape_state,
    ridge_r2_combine,
    ridge_r2_combine_reverse,
    ridge_state,
    squared_cca_combine,
    svcca_combine,
)
from ._variants import (
    brainscore_predictivity,
    netrep_combine,
    netrep_shape_euclidean,
    netrep_state,
    neuroai_predictivity,
    permutation_euclidean,
    pls_singular_mean,
    rdm_square,
    ridge_r2_no_intercept,
    rsm_norm_spectral,
    spectral_diff,
    svcca_squared,
)
from .cca import mean_cca, pwcca, svcca
from .kernels import kernel_cka, kernel_combine, kernel_state
from .knn import (
    cknna,
    cknna_combine,
    cknna_state,
    knn_combine,
    knn_indices,
)
from .procrustes import procrustes_similarity, shape_distance
from .regression import (
    ols_combine,
    ols_r2,
    ols_state,
    reg_combine,
    reg_combine_many,
    reg_combine_many_reverse,
    reg_combine_reverse,
    reg_state,
    regression_score,
)
from .rsa import (
    DISTANCE_COMPARATORS,
    DOT_COMPARATORS,
    KENDALL_COMPARATORS,
    rdm,
    rdm_combine,
    rdm_self,
    rdm_state,
    rsa,
)


def build_procrustes_distance(normalize: bool) -> Callable[[dict[str, Any], str], Built]:
    """bures_distance (raw) and orthogonal_procrustes_centered_and_normalized (unit norm)."""
    return lambda o, _out: Built(
        geo.procrustes_distance,
        {"normalize": normalize} if normalize else {},
        prepare=partial(centred_state, normalize=normalize, rescale=normalize),
        combine=procrustes_combine,
        shares="features",
    )


def build_permutation(o: dict[str, Any], out: str) -> Built:
    """netrep's permutation metric: angle (score: its cosine) or Euclidean distance."""
    if out.startswith("distance=") and "euclidean" in out:
        squared = bool(o.get("squared"))
        return Built(
            permutation_euclidean,
            {"squared": squared},
            prepare=centred_state,
            combine=partial(permutation_distance_combine, squared=squared),
            shares="features",
        )
    std = bool(o.get("standardize"))
    return Built(
        geo.permutation_angle,
        o,
        prepare=partial(centred_state, standardize=std, rescale=True),
        combine=permutation_angle_combine,
        shares="features",
    )


def build_permutation_procrustes(o: dict[str, Any], _out: str) -> Built:
    """ReSi's permutation Procrustes on raw (or z-scored) units."""
    std = bool(o.get("standardize"))
    return Built(
        geo.permutation_procrustes,
        o,
        prepare=partial(centred_state, standardize=std, centre=False),
        combine=permutation_distance_combine,
        shares="features",
    )


def build_fn(f: Callable[..., float], **fixed: Any) -> Callable[[dict[str, Any], str], Built]:
    return lambda o, _out: Built(f, {**fixed, **o})


def build_shared(
    f: Callable[..., float],
    prepare: Callable[..., Any],
    combine: Callable[..., float],
    shares: str,
    **fixed: Any,
) -> Callable[[dict[str, Any], str], Built]:
    """A function of two inputs whose value is ``combine(prepare(x), prepare(y), **fixed)``."""
    return lambda o, _out: Built(
        f, {**fixed, **o}, prepare=prepare, combine=partial(combine, **fixed), shares=shares
    )


def build_gulp(o: dict[str, Any], _out: str) -> Built:
    lam, squared = o.get("lam", 0.0), not o.get("root")
    return Built(
        geo.gulp,
        {"lam": lam, "squared": squared},
        prepare=partial(geo.gulp_state, lam=lam),
        combine=partial(geo.gulp_combine, squared=squared),
        shares="features",
    )


def build_ensd(o: dict[str, Any], out: str) -> Built:
    distance = out != "score"
    return Built(
        geo.ensd,
        {"distance": distance},
        prepare=geo.ensd_state,
        combine=partial(geo.ensd_combine, distance=distance),
        shares="features",
    )


def build_cka(o: dict[str, Any], _out: str) -> Built:
    lin_gretton = o["kernel"] == "linear" and o["hsic"] == "gretton"
    kw = {k: o[k] for k in ("kernel", "hsic", "sigma", "frac") if k in o}
    if o["kernel"] == "laplace" and "sigma" in kw:
        # the registry's laplace-sigma=s is repsim's Laplace(length_scale=s*sqrt(2)):
        # exp(-|x-y| / (sqrt(2) s)), as its rbf-sigma=s is exp(-|x-y|^2 / (2 s^2))
        kw["sigma"] = kw["sigma"] * np.sqrt(2.0)
    state = partial(kernel_state, **kw)
    return Built(
        kernel_cka,
        kw,
        moment="linear_cka" if lin_gretton else None,
        prepare=state,
        combine=partial(kernel_combine, hsic=o["hsic"]),
        shares="moments" if lin_gretton else "gram" if o["kernel"] != "linear" else "features",
        dot=o["kernel"] != "linear",
    )


def build_cca(o: dict[str, Any], out: str) -> Built:
    if out == "squared_score":
        return Built(
            _mean_sq_cca, {}, prepare=factor_state, combine=squared_cca_combine, shares="factor"
        )
    combine = partial(cca_combine, ridge=o.get("ridge", 0.0))
    return Built(
        mean_cca, o, moment="mean_cca", shares="moments", prepare=factor_state, combine=combine
    )


def _mean_sq_cca(X: Any, Y: Any) -> float:
    """Mean squared canonical correlation (Yanai's generalized coefficient)."""
    x, y = prepare_pair(X, Y)
    return squared_cca_combine(factor_state(x), factor_state(y))


def build_rsa(o: dict[str, Any], _out: str) -> Built:
    kind, cmp_ = o["rdm"], o["compare"]
    state = None if kind == "crossnobis" else partial(_rsa_state, kind=kind, compare=cmp_)
    # Bures of a second-moment matrix that need not be PSD follows rsatoolbox: asymmetric
    bures_asym = cmp_.startswith("bures") and kind in ("poisson", "crossnobis")
    return Built(
        rsa,
        {"rdm": kind, "compare": cmp_},
        symmetric=not bures_asym,
        prepare=state,
        combine=partial(rdm_combine, compare=cmp_),
        shares="rdm",
        keep_dead=True,
        kind="distance" if cmp_ in DISTANCE_COMPARATORS else None,
        dot=cmp_ in DOT_COMPARATORS,
        self_value=partial(rdm_self, compare=cmp_) if cmp_ in KENDALL_COMPARATORS else None,
    )


def _rsa_state(x: Any, kind: str, compare: str) -> Any:
    if compare not in DISTANCE_COMPARATORS and kind != "poisson":
        x = safe_scale(x)  # as rsa(): scale-free comparators see rescaled extreme values
    return rdm_state(rdm(x, kind), compare)


def _knn_state(x: Any, k: int, metric: str) -> Any:
    return knn_indices(safe_scale(x), k, metric)


def build_knn(f: Callable[..., float], how: str) -> Callable[[dict[str, Any], str], Built]:
    def build(o: dict[str, Any], _out: str) -> Built:
        k, metric = o["k"], o.get("metric", "cosine")
        return Built(
            f,
            {"k": k, "metric": metric},
            symmetric=how != "cycle",
            prepare=partial(_knn_state, k=k, metric=metric),
            combine=partial(knn_combine, kind=how),
            shares="neighbours",
        )

    return build


def build_regression(method: str) -> Callable[[dict[str, Any], str], Built]:
    def build(o: dict[str, Any], _out: str) -> Built:
        if method == "ols" and "score" not in o:  # ReSi's in-sample R^2, first predicts second
            rev = bool(o.get("reverse"))
            return Built(
                ols_r2,
                {"reverse": rev},
                symmetric=False,
                prepare=ols_state,
                combine=partial(ols_combine, reverse=rev),
                shares="factor",
                reverse=rev,
            )
        if method == "pls" and "score" not in o and not o.get("cv"):
            # the registry's bare "pls" (google/svcca)
            return Built(
                pls_singular_mean, {}, prepare=pls_state, combine=pls_combine, shares="features"
            )
        variant = o.get("variant") or _registry_variant(method, o)
        if variant in _PEER_FITS:
            return _peer_fit(method, variant, o)
        deepdive = variant == "deepdive"
        opts = {
            "method": method,
            "lam": o.get("lam") or 1.0,
            "score": o.get("score", "pearsonr"),
            "cv": o.get("cv", 0),
            "reduce": o.get("reduce", "mean"),
            "n_components": o.get("n_components") or 25,
            "seed": None if deepdive else o.get("seed", 0),
            "pool": deepdive,
        }
        rev = bool(o.get("reverse"))
        return Built(
            regression_score,
            {**opts, "reverse": True} if rev else opts,
            symmetric=False,
            shares="factor",
            prepare=partial(reg_state, method=method, cv=opts["cv"], seed=opts["seed"]),
            combine=partial(reg_combine_reverse if rev else reg_combine, opts=opts),
            combine_many=partial(reg_combine_many_reverse if rev else reg_combine_many, opts=opts),
            reverse=rev,
        )

    return build


#: Variants computed by a peer's own procedure (scikit-learn fits), with the scores they give.
_PEER_FITS = {
    "neuroaimetrics": ("pearsonr",),
    "brainscore": ("pearsonr",),
    "brain_language_nlp": ("r2",),
}


def _peer_fit(method: str, variant: str, o: dict[str, Any]) -> Built:
    score = o.get("score", "pearsonr")
    if score not in _PEER_FITS[variant] or "reduce" in o:
        raise ShapeError(
            f"variant={variant} computes only {_PEER_FITS[variant][0]} averaged as its code "
            f"does, got score {score!r}{' with median' if 'reduce' in o else ''}; "
            "use variant=deepdive or variant=shuffled"
        )
    reverse, lam, nc = bool(o.get("reverse")), o.get("lam") or 1.0, o.get("n_components") or 25
    if variant == "neuroaimetrics":
        kw = {"method": "pls" if method == "pls" else "ridgecv", "n_components": nc}
        kw["cv"] = o.get("cv") or 5
        states: dict[str, Any] = {}
        if method != "pls":  # RidgeCV: the source's folds factored once per network
            states = {
                "prepare": partial(ridgecv_state, cv=int(kw["cv"])),
                "combine": partial(ridgecv_combine, reverse=reverse),
                "shares": "factor",
            }
        return Built(
            neuroai_predictivity,
            {**kw, "reverse": reverse},
            symmetric=False,
            reverse=reverse,
            **states,
        )
    if variant == "brainscore":
        kw = {"method": method, "cv": o.get("cv", 0), "lam": lam, "n_components": nc}
        return Built(
            brainscore_predictivity, {**kw, "reverse": reverse}, symmetric=False, reverse=reverse
        )
    return Built(
        ridge_r2_no_intercept,
        {"lam": lam, "reverse": reverse},
        symmetric=False,
        reverse=reverse,
        prepare=partial(ridge_state, lam=lam),
        combine=ridge_r2_combine_reverse if reverse else ridge_r2_combine,
        shares="factor",
    )


def _registry_variant(method: str, o: dict[str, Any]) -> str:
    """The registry's implementation behind a regression name: DeepDive for k-fold OLS and
    fixed-lambda ridge, NeuroAIMetrics for k-fold ridge without lambda (RidgeCV) and k-fold
    PLS with components, Brain-Score for other PLS Pearson r, brain_language_nlp for
    in-sample ridge R^2; otherwise this package's own (seeded folds, or in-sample)."""
    cv, score = o.get("cv", 0), o.get("score", "pearsonr")
    plain = score == "pearsonr" and "reduce" not in o
    if method == "pls" and plain:  # NeuroAIMetrics names its 25 components; Brain-Score not
        return "neuroaimetrics" if cv and o.get("n_components") else "brainscore"
    if method == "ridge" and o.get("lam") is None and cv and plain:
        return "neuroaimetrics"
    if method in ("ridge", "ols") and not cv and score == "r2" and "reduce" not in o:
        return "brain_language_nlp" if method == "ridge" else "shuffled"
    return "deepdive" if cv else "shuffled"


def build_procrustes(o: dict[str, Any], out: str) -> Built:
    if out in ("distance=euclidean", "distance=squared_euclidean"):
        squared = bool(o.get("squared"))
        return Built(
            geo.procrustes_distance,
            {"squared": squared},
            prepare=centred_state,
            combine=partial(procrustes_combine, squared=squared),
            shares="features",
        )
    return Built(procrustes_similarity, {}, moment="procrustes_similarity", shares="moments")


def build_pwcca(o: dict[str, Any], out: str) -> Built:
    # the registry's pwcca-score is google/svcca's compute_pwcca (contrasim, resi, rtd, svcca);
    # its pwcca-distance=one_minus_score is sim_metric's, the paper's weighting
    variant = o.get("variant") or ("paper" if out == "distance=one_minus_score" else "google")
    if variant == "google":
        return Built(
            pwcca,
            {**o, "variant": variant},
            symmetric=False,
            prepare=google_state,
            combine=google_pwcca_combine,
            shares="factor",
        )
    return Built(
        pwcca,
        {**o, "variant": variant},
        symmetric=bool(o.get("symmetric")),
        moment="pwcca",
        shares="moments",
    )


def build_shape(o: dict[str, Any], out: str) -> Built:
    if o.get("cv"):
        if out != "distance=angular":
            raise MeasureParameterError(
                f"shape_metric with cv (NeuroAIMetrics' held-out metric) has only the output "
                f"distance=angular, got {out}"
            )
        return Built(cv_shape_metric, {"alpha": o.get("alpha", 1.0), "cv": o["cv"]})
    if out in ("distance=euclidean", "distance=squared_euclidean"):
        squared = out == "distance=squared_euclidean"
        alpha = o.get("alpha", 1.0)
        return Built(
            netrep_shape_euclidean,
            {"alpha": alpha, "squared": squared},
            prepare=partial(netrep_state, alpha=alpha),
            combine=partial(netrep_combine, alpha=alpha, squared=squared),
            shares="features",
        )
    # the moments path computes the scale-free form, equal to netrep's raw one at alpha 0 and 1
    raw = o.get("scale") == "raw" and 0.0 < o.get("alpha", 1.0) < 1.0
    if raw:
        return Built(
            shape_distance,
            o,
            prepare=raw_shape_state,
            combine=partial(raw_shape_combine, alpha=o["alpha"]),
            shares="factor",
        )
    return Built(shape_distance, o, moment="shape_distance", shares="moments")


def build_cknna(o: dict[str, Any], _out: str) -> Built:
    return Built(
        cknna,
        {"k": o["k"]},
        symmetric=False,
        prepare=partial(cknna_state, k=o["k"]),
        combine=cknna_combine,
        shares="neighbours",
    )


def build_svcca(o: dict[str, Any], out: str) -> Built:
    if out == "squared_score":
        kw = {"keep_variance": None, **o}
        return Built(
            svcca_squared,
            kw,
            prepare=factor_state,
            combine=partial(squared_cca_combine, **kw),
            shares="factor",
        )
    if "keep_variance" not in o and "n_components" not in o:
        # the registry's bare svcca-score (contrasim's compute_svcca) keeps every component
        return Built(
            mean_cca,
            {},
            moment="mean_cca",
            shares="moments",
            prepare=factor_state,
            combine=cca_combine,
        )
    kw = {"keep_variance": 0.99, **o}
    return Built(
        svcca,
        o,
        moment="svcca",
        shares="moments",
        prepare=factor_state,
        combine=partial(svcca_combine, **kw),
    )


def build_rsm_norm(o: dict[str, Any], _out: str) -> Built:
    if o.get("variant") == "llm_repsim":
        state = partial(pdist, metric="euclidean")
        return Built(
            geo.rsm_norm_difference, {}, prepare=state, combine=geo.diff_norm, shares="rdm"
        )
    return Built(rsm_norm_spectral, {}, prepare=rdm_square, combine=spectral_diff, shares="rdm")
