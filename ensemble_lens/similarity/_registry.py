"""The registry: standardized names -> :class:`Measure` (via the table in :mod:`._table`),
legacy names, the name listing and docs/MEASURES.md. ``pairwise``, :func:`measure`, the CLI
listing (``ensemble-lens measures``) and the docs read this module.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from functools import partial
from typing import Any

from ..errors import ShapeError
from ._names import Built, Family, Measure, parse, tokens
from ._table import FAMILIES
from .cca import mean_cca, pwcca, svcca
from .cka import linear_cka, rbf_cka
from .kernels import check_kernel, kernel_combine, kernel_state
from .knn import mutual_knn
from .matching import permutation_distance
from .predictivity import linear_predictivity
from .procrustes import procrustes_similarity, shape_distance
from .rsa import rsa

__all__ = ["FAMILIES", "LEGACY", "all_names", "measure", "measures_markdown", "resolve_metric"]

#: Names of the first releases -> (function, moments key); options come as keyword arguments.
LEGACY: dict[str, tuple[Callable[..., float], str | None, str]] = {
    "linear_cka": (linear_cka, "linear_cka", "similarity"),
    "rbf_cka": (rbf_cka, None, "similarity"),
    "mean_cca": (mean_cca, "mean_cca", "similarity"),
    "svcca": (svcca, "svcca", "similarity"),
    "pwcca": (pwcca, "pwcca", "similarity"),
    "procrustes_similarity": (procrustes_similarity, "procrustes_similarity", "similarity"),
    "shape_distance": (shape_distance, "shape_distance", "distance"),
    "permutation_distance": (permutation_distance, None, "distance"),
    "rsa": (rsa, None, "similarity"),
    "mutual_knn": (mutual_knn, None, "similarity"),
    "linear_predictivity": (linear_predictivity, None, "similarity"),
}
_LEGACY_FAMILY = Family("legacy", "", "legacy", (), lambda o, _: Built(linear_cka, {}))


def _rbf_states(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Per-network work of legacy ``rbf_cka`` (the cka family's packed Gram states)."""
    if not set(kwargs) <= {"sigma", "debiased", "sigma_fraction"}:
        return {}  # pairwise reports the bad option
    hsic = "song" if kwargs.get("debiased") else "gretton"
    kw = {"sigma": kwargs.get("sigma"), "frac": kwargs.get("sigma_fraction", 0.8)}
    check_kernel("rbf", hsic, kw["sigma"], kw["frac"])
    return {
        "prepare": partial(kernel_state, kernel="rbf", hsic=hsic, **kw),
        "combine": partial(kernel_combine, hsic=hsic),
        "shares": "gram",
        "dot": True,
    }


def _legacy(name: str, kwargs: dict[str, Any]) -> Measure:
    fn, moment, kind = LEGACY[name]
    sym = not (name == "linear_predictivity" or (name == "pwcca" and not kwargs.get("symmetric")))
    if name == "linear_cka" and kwargs.get("debiased"):
        moment = None
    states = _rbf_states(kwargs) if name == "rbf_cka" else {}
    return Measure(
        name,
        _LEGACY_FAMILY,
        fn,
        dict(kwargs),
        kind,
        sym,
        moment=moment,
        keep_dead=name == "rsa",
        **{"shares": "moments" if moment else "none", **states},
    )


def _line(m: Measure) -> str:
    sym = "" if m.symmetric else ", not symmetric"
    return f"{m.kind}{sym}: {m.summary}"


def all_names() -> list[tuple[str, str]]:
    """(name, one-line description) of every listed standardized name and legacy name."""
    out = [(n, _line(measure(n))) for f in FAMILIES.values() for n in f.listed]
    return out + [
        (n, f"{LEGACY[n][2]}: legacy name, options as keyword arguments ({LEGACY[n][0].__name__})")
        for n in LEGACY
    ]


def measures_markdown() -> str:
    """docs/MEASURES.md, generated from the table (``ensemble-lens measures --markdown``)."""
    head = [
        "# Similarity measures",
        "",
        "Generated from the registry table",
        "(`ensemble-lens measures --markdown > docs/MEASURES.md`; a test checks it is current).",
        "Names follow the scheme of Cloos et al. 2024",
        "(nacloos/similarity-repository): `family-key=value-...-output`; parameters may take other",
        "values than listed (`cka-kernel=(rbf-sigma=0.5)-hsic=song-score`, `svcca-var=0.9-score`,",
        "`mutual_knn-topk=5`, `shape_metric-alpha=0.25-distance=angular`). Use a name with",
        "`ensemble_lens.similarity.measure(name)(X, Y)`, `pairwise(inputs, name)` or in a study",
        "config under `similarity.metrics`. A name the registry also has gives the value of the",
        "registry's own code for it; the paper's form, where it differs, is the option in the",
        'family\'s line (docs/guides/similarity.md, "Registry values").',
        "",
        "Shared work = what `pairwise` computes once per network (moments: one streaming pass of",
        "second moments for all networks; gram / rdm / neighbours / factor: per-network states",
        "combined per pair; none: pair by pair).",
        "",
    ]
    rows = []
    for f in FAMILIES.values():
        rows += [
            f"## {f.key} ({f.group})",
            "",
            f"{f.summary}. Paper: {f.paper}. Invariant to: {', '.join(f.invariances) or '-'}.",
            "",
            "| name | kind | symmetric | shared work |",
            "|---|---|---|---|",
        ]
        for n in f.listed:
            m = measure(n)
            rows.append(f"| `{n}` | {m.kind} | {'yes' if m.symmetric else 'no'} | {m.shares} |")
        rows.append("")
    rows += ["## Legacy names", "", "| name | kind | function |", "|---|---|---|"]
    rows += [f"| `{n}` | {k} | `{fn.__name__}` |" for n, (fn, _, k) in LEGACY.items()]
    return "\n".join(head + rows) + "\n"


def _family_of(toks: list[str]) -> Family | None:
    return FAMILIES.get(toks[0]) if toks else None


def measure(name: str, **kwargs: Any) -> Measure:
    """The measure for a standardized name, e.g. ``"cka-kernel=linear-hsic=lange-score"``.

    Parameters are parsed from the name (see :mod:`._names`); ``kwargs`` add options of the
    underlying function (``conditions=`` for crossnobis RSA...). Legacy names
    (``"linear_cka"``...) take their options only as keyword arguments. A name that
    nacloos/similarity-repository also has gives the value of the code the registry runs for
    it (e.g. ``"pwcca-score"`` is google/svcca's ``compute_pwcca``); where that differs from
    the paper, the paper's form is an explicit option (``"pwcca-variant=paper-score"``; see
    docs/MEASURES.md and docs/guides/similarity.md, "Registry values").

    Raises
    ------
    ShapeError
        For an unknown name (listing the closest known names) or a bad parameter.
    """
    if not isinstance(name, str):
        raise ShapeError(f"measure: expected a name (str), got {type(name).__name__}")
    if name in LEGACY:
        return _legacy(name, kwargs)
    toks = tokens(name)
    fam = _family_of(toks)
    if fam is None:
        raise ShapeError(
            f"unknown measure {name!r}; closest names: {', '.join(_closest(name, toks))}"
        )
    return parse(fam, toks[1:], name).with_options(**kwargs)


def _closest(name: str, toks: list[str]) -> list[str]:
    """Known names nearest to an unknown one: by family first, then by the whole name."""
    keys = list(FAMILIES) + list(LEGACY)
    fams = difflib.get_close_matches(toks[0] if toks else name, keys, n=3, cutoff=0.6)
    known = [n for n, _ in all_names()]
    near = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    by_family = [n for f in fams for n in (FAMILIES[f].listed if f in FAMILIES else (f,))]
    ranked = difflib.get_close_matches(name, by_family, n=5, cutoff=0.0)
    out = list(dict.fromkeys(ranked + near))[:6]
    return out or sorted(keys)


def resolve_metric(metric: str | Callable[..., float], **kwargs: Any) -> Measure:
    """A :class:`Measure` for a name or a user callable ``f(X, Y, **kwargs) -> float``.

    A callable is a similarity, symmetric unless it has ``symmetric = False``; it may declare
    ``is_distance = True``.
    """
    if isinstance(metric, Measure):
        return metric.with_options(**kwargs)
    if callable(metric):
        for name, (fn, _, _) in LEGACY.items():
            if fn is metric:
                return _legacy(name, kwargs)
        sym = bool(getattr(metric, "symmetric", True))
        kind = "distance" if getattr(metric, "is_distance", False) else "similarity"
        name = getattr(metric, "__name__", "metric")
        return Measure(name, _LEGACY_FAMILY, metric, dict(kwargs), kind, sym)
    return measure(metric, **kwargs)
