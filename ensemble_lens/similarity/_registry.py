"""The registry: standardized names -> :class:`Measure` (via the table in :mod:`._table`),
aliases, the name listing and docs/MEASURES.md. ``pairwise``, :func:`measure`, the CLI
listing (``ensemble-lens measures``) and the docs read this module.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..errors import UnknownMeasureError
from ._aliases import ALIASES, FUNCTIONS, REMOVED, alias_name
from ._names import USER_FAMILY, Family, Measure, direction_of, parse, tokens
from ._table import FAMILIES

__all__ = ["FAMILIES", "all_names", "measure", "measures_markdown", "resolve_metric"]


def _line(m: Measure) -> str:
    sym = "" if m.symmetric else ", not symmetric"
    return f"{m.kind}{sym}: {m.summary}"


def all_names() -> list[tuple[str, str]]:
    """(name, one-line description) of every listed standardized name and legacy name."""
    out = [(n, _line(measure(n))) for f in FAMILIES.values() for n in f.listed]
    return out + [(n, f"alias of {measure(n).name}") for n in ALIASES]


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
        "second moments for all networks; gram / rdm / neighbours / factor / features: per-network",
        "states combined per pair; none: pair by pair).",
        "",
        "Direction: `pairwise` entry [i, j] is always `measure(X_i, X_j)`. Regression-type",
        "measures predict the second argument from the first (`row predicts column`); a name with",
        "`reverse` predicts the first from the second (`column predicts row`). Other asymmetric",
        "measures say `row is the first argument` (PWCCA weights by the first argument's units).",
        'Every result states it in `attrs["direction"]`; `layer_correspondence(sim, direction=)`',
        "takes it explicitly for asymmetric measures.",
        "",
        "Where the registry's own backend reads the other way: ReSi's `LinearRegression` (the",
        "registry's bare `linear_regression`) explains the first argument from the second; here",
        "that is `linear_regression-reverse`, and `linear_regression` follows the convention.",
        "",
    ]
    rows = []
    for f in FAMILIES.values():
        rows += [
            f"## {f.key} ({f.group})",
            "",
            f"{f.summary}. Paper: {f.paper}. Invariant to: {', '.join(f.invariances) or '-'}.",
            "",
            "| name | kind | direction | shared work |",
            "|---|---|---|---|",
        ]
        for n in f.listed or (f.key,):
            m = measure(n)
            rows.append(f"| `{n}` | {m.kind} | {m.direction} | {m.shares} |")
        if not f.listed:
            rows += ["", "Not in `measure_names()`, which lists names that take any widths."]
        rows.append("")
    rows += [
        "## Aliases",
        "",
        "An alias is the standardized name on its right, exactly (same value, same path in",
        "`pairwise`, same `.name`); its keyword options become parameters of that name",
        '(`measure("rbf_cka", sigma_fraction=0.4)` is `cka-kernel=(rbf-frac=0.4)-...`).',
        "",
        "| alias | standardized name |",
        "|---|---|",
    ]
    rows += [f"| `{n}` | `{measure(n).name}` |" for n in ALIASES]
    return "\n".join(head + rows) + "\n"


def _family_of(toks: list[str]) -> Family | None:
    return FAMILIES.get(toks[0]) if toks else None


def measure(name: str, **kwargs: Any) -> Measure:
    """The measure for a standardized name, e.g. ``"cka-kernel=linear-hsic=lange-score"``.

    Parameters are parsed from the name (see :mod:`._names`). ``kwargs`` that are parameters
    of the name's family (``topk``'s option ``k``, ``sigma``, ``var``'s ``keep_variance``...)
    become part of the name; the others are options of the underlying function
    (``conditions=`` for crossnobis RSA...). An alias (``"linear_cka"``, ``"rbf_cka"``,
    ``"rsa"``...; docs/MEASURES.md, "Aliases") is the standardized name with the defaults of
    the function of the same name, and ``.name`` reports that name. A name that
    nacloos/similarity-repository also has gives the value of the code the registry runs for
    it (e.g. ``"pwcca-score"`` is google/svcca's ``compute_pwcca``); where that differs from
    the paper, the paper's form is an explicit option (``"pwcca-variant=paper-score"``; see
    docs/MEASURES.md and docs/guides/similarity.md, "Registry values").

    Raises
    ------
    UnknownMeasureError
        For an unknown or removed name (listing the closest known names) or an unknown part.
    MeasureParameterError
        For a parameter value of the wrong type or outside its choices.
    """
    if not isinstance(name, str):
        raise UnknownMeasureError(f"measure: expected a name (str), got {type(name).__name__}")
    if name in REMOVED:
        raise UnknownMeasureError(
            f"measure {name!r} was removed; use one of: {', '.join(REMOVED[name])}"
        )
    asked = name
    if name in ALIASES:
        name, kwargs = alias_name(name, dict(kwargs))
    toks = tokens(name)
    fam = _family_of(toks)
    if fam is None:
        raise UnknownMeasureError(
            f"unknown measure {name!r}; closest names: {', '.join(_closest(name, toks))}"
        )
    extra, rest = _fold(fam, kwargs)
    if extra:
        name = "-".join([name, *extra])
        toks = tokens(name)
    return replace(parse(fam, toks[1:], name).with_options(**rest), requested=asked)


def _fold(fam: Family, kwargs: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Keyword options that are parameters or flags of ``fam``: (name tokens, the rest)."""
    params = {p.option: p for p in fam.params}
    params.update({p.key: p for p in fam.params})
    flags = {(k, v): f for f, opts in fam.flags.items() if len(opts) == 1 for k, v in opts.items()}
    toks, rest = [], {}
    for k, v in kwargs.items():
        scalar = isinstance(v, int | float | str) and not isinstance(v, bool)
        if k in params and scalar:
            toks.append(f"{params[k].key}={v}")
        elif isinstance(v, bool) and (k, v) in flags:
            toks.append(flags[(k, v)])
        elif isinstance(v, bool) and not v and any(key == k for key, _ in flags):
            continue  # a flag left off
        else:
            rest[k] = v
    return toks, rest


def _closest(name: str, toks: list[str]) -> list[str]:
    """Known names nearest to an unknown one: by family first, then by the whole name."""
    keys = list(FAMILIES) + list(ALIASES)
    fams = difflib.get_close_matches(toks[0] if toks else name, keys, n=3, cutoff=0.6)
    known = [n for n, _ in all_names()]
    near = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    by_family = [n for f in fams for n in (FAMILIES[f].listed if f in FAMILIES else (f,))]
    ranked = difflib.get_close_matches(name, by_family, n=5, cutoff=0.0)
    out = list(dict.fromkeys(ranked + near))[:6]
    return out or sorted(keys)


def resolve_metric(metric: str | Callable[..., float], **kwargs: Any) -> Measure:
    """A :class:`Measure` for a name, a :class:`Measure`, or a callable.

    A public function that an alias names (``linear_cka``, ``rsa``...) resolves to that
    alias's standardized name. Another callable ``f(X, Y, **kwargs) -> float`` is a
    similarity, symmetric unless it has ``symmetric = False``; it may declare
    ``is_distance = True``.
    """
    if isinstance(metric, Measure):
        return metric.with_options(**kwargs)
    if callable(metric):
        if metric in FUNCTIONS:
            return measure(FUNCTIONS[metric], **kwargs)
        sym = bool(getattr(metric, "symmetric", True))
        kind = "distance" if getattr(metric, "is_distance", False) else "similarity"
        name = getattr(metric, "__name__", "metric")
        return Measure(name, USER_FAMILY, metric, dict(kwargs), kind, sym,
                       direction=direction_of(sym, False, False))  # fmt: skip
    return measure(metric, **kwargs)
