"""Registry table rows of the regression (predictivity) families: least squares, ridge, PLS.

Each regression name gives the value of the code the registry runs for it (DeepDive,
NeuroAIMetrics, Brain-Score, brain_language_nlp; see ``_builders._registry_variant``);
``variant=shuffled`` is this package's seeded folds with scores averaged over folds.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from ._builders import build_regression
from ._names import Built, Family, Param
from .predictivity import linear_predictivity, pred_combine, pred_state

__all__ = ["regression_families"]

_REG_FLAGS = {
    "pearsonr": {"score": "pearsonr"},
    "pearsonr2": {"score": "pearsonr2"},
    "r2": {"score": "r2"},
    "median": {"reduce": "median"},
    "reverse": {"reverse": True},
}
_REG_PARAMS = (
    Param("cv", "cv", "int"),
    Param("seed", "seed", "int"),
    Param(
        "variant",
        "variant",
        "str",
        None,
        ("deepdive", "shuffled", "neuroaimetrics", "brainscore", "brain_language_nlp"),
    ),
)
_REG_ORDER = (
    "lambda",
    "pearsonr",
    "pearsonr2",
    "r2",
    "components",
    "cv",
    "seed",
    "variant",
    "median",
    "reverse",
)


def _build_predictivity(o: dict[str, Any], _out: str) -> Built:
    """linear_predictivity; per network the factored training rows of its seeded folds."""
    return Built(
        linear_predictivity,
        dict(o),
        symmetric=False,
        prepare=partial(pred_state, cv=o["cv"], seed=o["seed"]),
        combine=pred_combine,
        shares="factor",
    )


def regression_families() -> list[Family]:
    """The linear_regression, ridge and pls rows (in the table's order)."""
    return [
        Family(
            "linear_regression",
            "least squares: bare = in-sample R^2 of Y from X (ReSi's reads X from Y: "
            "add reverse); with pearsonr/r2 = held-out predictivity of Y from X (cv: "
            "DeepDive's contiguous folds, pooled scores; variant=shuffled: seeded folds, "
            "fold-averaged)",
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
            "ridge regression of Y from X with absolute penalty lambda (cv: DeepDive's "
            "contiguous folds, pooled scores; no lambda: NeuroAIMetrics' RidgeCV; in-sample "
            "r2: brain_language_nlp's fit without intercept)",
            "regression",
            ("orthogonal",),
            build_regression("ridge"),
            (Param("lambda", "lam", "float"), *_REG_PARAMS),
            flags=_REG_FLAGS,
            order=_REG_ORDER,
            listed=(
                "ridge-lambda=1-pearsonr-cv=5folds",
                "ridge-lambda=1-r2-cv=5folds",
                "ridge-lambda=1-pearsonr-cv=5folds-variant=shuffled",
                "ridge-lambda=1-r2",
                "ridge-pearsonr-cv=5folds",
                "ridge-pearsonr-cv=5folds-reverse",
            ),
            paper="Schrimpf et al. 2018",
        ),
        Family(
            "pls",
            "partial least squares regression of Y from X (Brain-Score's splits; with "
            "components and cv: NeuroAIMetrics' z-scored folds); bare pls: google/svcca's mean "
            "singular value of Cov(X, Y)",
            "regression",
            ("orthogonal",),
            build_regression("pls"),
            (Param("components", "n_components", "int"), *_REG_PARAMS),
            flags=_REG_FLAGS,
            order=_REG_ORDER,
            listed=(
                "pls-pearsonr-components=25-cv=5folds",
                "pls-pearsonr-cv=5folds",
                "pls-pearsonr",
                "pls",
            ),
            paper="Schrimpf et al. 2018",
        ),
        Family(
            "linear_predictivity",
            "cross-validated R^2 of a ridge fit of Y from X, penalty relative to X's mean "
            "eigenvalue chosen by nested leave-one-out from a grid (seeded folds)",
            "regression",
            ("orthogonal", "isotropic-scaling"),
            _build_predictivity,
            (Param("cv", "cv", "int", 5), Param("seed", "seed", "int", 0)),
            listed=("linear_predictivity",),
            paper="this package",
        ),
    ]
