"""Aliases: short names and function names that point at one standardized name.

An alias is a pointer to a row of the registry table, never a second implementation: it
resolves to the standardized name whose defaults are the defaults of the function of the same
name (``rbf_cka`` -> ``cka-kernel=(rbf-frac=0.8)-hsic=gretton-score``), and its keyword options
become parameters of that name (``rbf_cka`` with ``sigma_fraction=0.4`` ->
``cka-kernel=(rbf-frac=0.4)-hsic=gretton-score``), so the alias and the standardized name have
the same value, the same path in ``pairwise`` and the same ``.name``. Names the registry uses
for the same measures (``linear_CKA``, ``kernel_CKA``) are rows here too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .cca import mean_cca, pwcca, svcca
from .cka import linear_cka, rbf_cka
from .knn import mutual_knn
from .matching import permutation_distance
from .procrustes import procrustes_similarity, shape_distance
from .rsa import rsa

__all__ = ["ALIASES", "FUNCTIONS", "REMOVED", "Alias", "alias_name"]

#: A keyword option of an alias -> the name's token for a value (``None``: no token).
Token = Callable[[Any], "str | None"]


def _key(key: str) -> Token:
    return lambda v: None if v is None else f"{key}={v}"


def _flag(flag: str) -> Token:
    return lambda v: flag if v else None


def _hsic(v: Any) -> str:
    return "hsic=song" if v else "hsic=gretton"


@dataclass(frozen=True)
class Alias:
    """One alias: the standardized name it means and how its keyword options enter the name.

    ``base`` lists the name's tokens (family first); ``keys`` maps each keyword option to the
    token it sets (replacing the base token with the same key); options not in ``keys`` are
    passed to the measure's function (see :meth:`Measure.with_options`).
    """

    base: tuple[str, ...]
    keys: Mapping[str, Token] = field(default_factory=dict)
    fn: Callable[..., Any] | None = None  # the public function with the same defaults

    def name(self, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """(standardized name, options left for the function)."""
        toks = {_tok_key(t): t for t in self.base}
        rest = {}
        for k, v in kwargs.items():
            if k not in self.keys:
                rest[k] = v
                continue
            tok = self.keys[k](v)
            if tok is None:
                continue
            if k == "n_components" and "var" in toks and "keep_variance" not in kwargs:
                del toks["var"]  # a count replaces the default kept variance
            toks[_tok_key(tok)] = tok
        if "sigma" in toks:
            toks.pop("frac", None)  # an absolute width replaces the median fraction
        return "-".join(toks.values()), rest


def _tok_key(tok: str) -> str:
    return tok.split("=", 1)[0]


_CKA_KEYS: dict[str, Token] = {"debiased": _hsic}

#: alias -> the standardized name with the defaults of the function of the same name.
ALIASES: dict[str, Alias] = {
    "linear_cka": Alias(("cka", "kernel=linear", "hsic=gretton", "score"), _CKA_KEYS, linear_cka),
    "linear_cka_debiased": Alias(("cka", "kernel=linear", "hsic=song", "score")),
    "linear_CKA": Alias(("cka", "kernel=linear", "hsic=gretton", "score")),
    "rbf_cka": Alias(
        ("cka", "kernel=rbf", "frac=0.8", "hsic=gretton", "score"),
        {**_CKA_KEYS, "sigma": _key("sigma"), "sigma_fraction": _key("frac")},
        rbf_cka,
    ),
    # the common kernel_CKA(X, Y, sigma=None): sigma = sqrt(median squared distance)
    "kernel_CKA": Alias(("cka", "kernel=rbf", "hsic=gretton", "score"), {"sigma": _key("sigma")}),
    # the registry's names of ReSi's IMD and Geometry Score
    "imd": Alias(("imd_score",)),
    "geometry_score": Alias(("gs",)),
    "mean_cca": Alias(("cca", "score"), {"ridge": _key("ridge")}, mean_cca),
    "svcca": Alias(
        ("svcca", "var=0.99", "score"),
        {"keep_variance": _key("var"), "n_components": _key("dim")},
        svcca,
    ),
    "pwcca": Alias(
        ("pwcca", "variant=paper", "score"),
        {"variant": _key("variant"), "symmetric": _flag("symmetric")},
        pwcca,
    ),
    "procrustes_similarity": Alias(("procrustes", "score"), {}, procrustes_similarity),
    "shape_distance": Alias(
        ("shape_metric", "alpha=1.0", "scale=mean", "distance=angular"),
        {"alpha": _key("alpha"), "scale": _key("scale")},
        shape_distance,
    ),
    "permutation_distance": Alias(
        ("permutation_metric", "standardized", "distance=angular"), {}, permutation_distance
    ),
    "rsa": Alias(
        ("rsa", "rdm=correlation", "compare=spearman"),
        {"rdm": _key("rdm"), "compare": _key("compare")},
        rsa,
    ),
    "mutual_knn": Alias(
        ("mutual_knn", "topk=10", "metric=cosine"),
        {"k": _key("topk"), "metric": _key("metric")},
        mutual_knn,
    ),
}

#: Public functions whose defaults an alias names (a function passed as ``metric``).
FUNCTIONS: dict[Callable[..., Any], str] = {a.fn: n for n, a in ALIASES.items() if a.fn}

#: Names that no longer resolve, with the standardized names to use instead.
REMOVED: dict[str, tuple[str, ...]] = {}


def alias_name(name: str, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The standardized name an alias means with these options, and the options left over."""
    return ALIASES[name].name(kwargs)
