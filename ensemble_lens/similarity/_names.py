"""Standardized measure names (the scheme of Cloos et al. 2024, nacloos/similarity-repository):
parsing, the :class:`Measure` record and the :class:`Family` rows of the registry table.

A name is ``family`` followed by ``-``-separated tokens: ``key=value`` parameters (a kernel's
own parameters may be grouped in parentheses: ``cka-kernel=(rbf-sigma=1.0)-hsic=gretton``),
bare flags (``pearsonr``, ``reverse``) and an output: ``score``, ``squared_score``,
``distance=angular`` (arccos of the score), ``distance=one_minus_score`` or a family's own
distance (``distance=euclidean``...). An optional ``measure/`` or ``measure/<repo>/`` prefix
is ignored, and the registry's placeholders take the values its code uses when the keyword is
not passed (``{sigma}`` 1.0, ``{topk}`` 10, ``{alpha}`` 1.0, ``{dim}`` 10), so a name can be
copied from the registry's list as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np

from ..errors import MeasureParameterError, UnknownMeasureError
from ._meta import Score, pair_resolved, recording, result_info

_SPLIT = re.compile(r"-(?=[A-Za-z_(])")

#: The registry's placeholders and the defaults of the functions behind them.
PLACEHOLDERS = {
    "{sigma}": "1.0",
    "{topk}": "10",
    "{alpha}": "1.0",
    "{dim}": "10",
    "{n_components}": "25",
}


def tokens(name: str) -> list[str]:
    """Split a name at ``-`` before a letter (so ``1e-3`` stays whole), parentheses dropped."""
    body = name.strip()
    if body.startswith("measure/"):
        body = body.split("/")[-1]
    for key, value in PLACEHOLDERS.items():
        body = body.replace(key, value)
    return [t for t in _SPLIT.split(body.replace("(", "").replace(")", "")) if t]


def _num(v: str) -> float:
    return float(v)


def _int(v: str) -> int:
    return int(re.sub(r"folds?$", "", v))


#: Converters for parameter values.
CONVERT: dict[str, Callable[[str], Any]] = {"float": _num, "int": _int, "str": str}


def arccos(v: float) -> float:
    """Angular distance from a cosine-like score; exactly 0 at 1."""
    return 0.0 if v >= 1.0 else float(np.arccos(max(v, -1.0)))


POST: dict[str, Callable[[float], float]] = {
    "identity": float,
    "arccos": arccos,
    "one_minus": lambda v: 1.0 - float(v),
    "cos": lambda v: float(np.cos(v)),
    "negative_log": lambda v: float(-np.log(v)) if v > 0 else float("inf"),
}


@dataclass(frozen=True)
class Param:
    """One ``key=value`` of a family: the option it sets, its type, default and choices."""

    key: str
    option: str
    type: str = "str"
    default: Any = None
    choices: tuple[Any, ...] = ()
    show: bool = False  # always written in the canonical name
    aliases: tuple[str, ...] = ()
    inside: str | None = None  # grouped in parentheses with this parameter (kernel's sigma)


@dataclass(frozen=True)
class Output:
    """An output token: similarity or distance, and the transform of the function's value."""

    kind: str
    post: str = "identity"
    options: Mapping[str, Any] = field(default_factory=dict)


SCORE = {"score": Output("similarity")}
ANGULAR = {
    "score": Output("similarity"),
    "distance=angular": Output("distance", "arccos"),
    "distance=one_minus_score": Output("distance", "one_minus"),
}
#: The registry's derived Euclidean outputs of a score s (its angular_to_euclidean_shape_metric):
#: ``sqrt(|Xc|^2 + |Yc|^2 - 2 |Xc| |Yc| s)`` (squared: without the root), from the score.
EUCLIDEAN = {
    "distance=euclidean": Output("distance", "euclidean"),
    "distance=squared_euclidean": Output("distance", "squared_euclidean"),
}


@dataclass(frozen=True)
class Built:
    """What a family builds from parsed options (see :class:`Family`)."""

    fn: Callable[..., float]
    options: Mapping[str, Any]
    symmetric: bool = True
    moment: str | None = None
    prepare: Callable[[np.ndarray], Any] | None = None
    combine: Callable[[Any, Any], float] | None = None
    shares: str = "none"
    keep_dead: bool = False
    kind: str | None = None  # overrides the output's kind (a distance-valued comparator)
    dot: bool = False  # states are vectors and combine is their dot product
    combine_many: Callable[[Any, list[Any]], list[float]] | None = None  # one vs many states
    reverse: bool = False  # a regression that predicts the first argument from the second
    self_value: Callable[[Any], float] | None = None  # combine(s, s), cheaper, same value


#: Directions of a measure (``Measure.direction``, ``attrs["direction"]`` of every result).
#: ``pairwise`` entry [i, j] is always ``measure(X_i, X_j)``; regression-type measures predict
#: the second argument from the first unless their name says ``reverse``.
SYMMETRIC = "symmetric"
FORWARD = "row predicts column"
REVERSE = "column predicts row"
ORDERED = "row is the first argument"


def direction_of(symmetric: bool, regression: bool, reverse: bool) -> str:
    """The direction string of a measure (see :data:`FORWARD`...)."""
    if symmetric:
        return SYMMETRIC
    if regression:
        return REVERSE if reverse else FORWARD
    return ORDERED


@dataclass(frozen=True)
class Family:
    """One row of the registry table.

    ``build(options, output_key)`` returns the function and its per-network work; ``listed``
    are the names shown by ``ensemble-lens measures`` and docs/MEASURES.md.
    """

    key: str
    summary: str
    group: str
    invariances: tuple[str, ...]
    build: Callable[[dict[str, Any], str], Built]
    params: tuple[Param, ...] = ()
    outputs: Mapping[str, Output] = field(default_factory=lambda: SCORE)
    flags: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    default_output: str = "score"
    listed: tuple[str, ...] = ()
    paper: str = ""
    bare_default: bool | None = None  # name omits the default output (default: one output)
    order: tuple[str, ...] = ()  # canonical order of parameters and flags (default: declared)


@dataclass(frozen=True)
class Measure:
    """A measure resolved from a name: ``measure(X, Y) -> Score`` (a float with ``.info``).

    Attributes
    ----------
    name : str
        Canonical standardized name.
    kind : {"similarity", "distance"}
    symmetric : bool
        ``measure(X, Y) == measure(Y, X)``; ``pairwise`` fills the full matrix otherwise.
    direction : str
        ``"symmetric"``; ``"row predicts column"`` (regression-type: the first argument
        predicts the second, ``pairwise`` row i predicts column j); ``"column predicts row"``
        (a ``reverse`` regression name); ``"row is the first argument"`` (other asymmetric
        measures: ``pairwise`` entry [i, j] is ``measure(X_i, X_j)``).
    shares : str
        Per-network work ``pairwise`` does once: "moments", "gram", "rdm", "neighbours",
        "factor" or "none".
    prepare, combine : callables or None
        ``prepare(x) -> state`` on one cleaned (n, d) float64 network; ``combine(sx, sy)`` the
        pair's value before ``post`` (what ``pairwise`` uses for all pairs).
    self_value : callable or None
        ``self_value(s) == combine(s, s)`` where that is cheaper (``pairwise``'s diagonal).
    """

    name: str
    family: Family
    fn: Callable[..., float]
    options: Mapping[str, Any]
    kind: str
    symmetric: bool
    post: str = "identity"
    moment: str | None = None
    prepare: Callable[[np.ndarray], Any] | None = None
    combine: Callable[[Any, Any], float] | None = None
    shares: str = "none"
    keep_dead: bool = False
    dot: bool = False
    combine_many: Callable[[Any, list[Any]], list[float]] | None = None
    direction: str = SYMMETRIC
    self_value: Callable[[Any], float] | None = None
    requested: str = field(default="", compare=False)  # the name as given to measure()

    @property
    def summary(self) -> str:
        return self.family.summary

    @property
    def invariances(self) -> tuple[str, ...]:
        return self.family.invariances

    def __call__(self, X: Any, Y: Any) -> Score:
        """The value for one pair: a :class:`~._meta.Score` (a float with ``.info``)."""
        from ._warn import collected  # the call's warnings once each, at the caller's line

        with collected() as seen, recording() as resolved:
            value = POST[self.post](self.fn(X, Y, **self.options))
        work = {"resolved": pair_resolved(resolved)}
        return Score(value, result_info(self, self.requested or self.name, "pair", seen, work))

    def with_options(self, **kwargs: Any) -> Measure:
        """The same measure with extra options for its function (per-network work redone)."""
        if not kwargs:
            return self
        moment = self.moment if self.moment in _KW_MOMENTS else None
        return replace(
            self,
            options={**self.options, **kwargs},
            prepare=None,
            combine=None,
            combine_many=None,
            self_value=None,
            dot=False,
            moment=moment,
            shares="moments" if moment else "none",
        )


#: Moments-based measures whose extra keyword options the moments path understands.
_KW_MOMENTS = frozenset({"mean_cca", "svcca", "pwcca", "shape_distance", "linear_cka"})


def parse(family: Family, toks: list[str], name: str) -> Measure:
    """Options and output of one name of ``family`` (tokens after the family key)."""
    by_key = {a: p for p in family.params for a in (p.key, *p.aliases)}
    opts = {p.option: p.default for p in family.params if p.default is not None}
    given: dict[str, str] = {}
    output = family.default_output
    negative_log = bool(toks) and toks[-1] == "negative_log"
    if negative_log:  # fsd's loss: -log of a score
        toks = toks[:-1]
        if not toks or toks[-1] != "score" or "score" not in family.outputs:
            raise UnknownMeasureError(
                f"measure {name!r}: negative_log follows a score, as in '{family.key}-...-score-"
                "negative_log'"
            )
    for t in toks:
        if t in family.outputs or (t.startswith("distance=") and t in family.outputs):
            output = t
        elif t in family.flags:
            opts.update(family.flags[t])
            given[t] = ""
        elif "=" in t and t.split("=", 1)[0] in by_key:
            key, raw = t.split("=", 1)
            p = by_key[key]
            try:
                val = CONVERT[p.type](raw)
            except ValueError:
                raise MeasureParameterError(
                    f"measure {name!r}: {key}={raw!r} is not a valid {p.type}"
                ) from None
            if p.choices and val not in p.choices:
                raise MeasureParameterError(
                    f"measure {name!r}: {key} must be one of {list(p.choices)}, got {raw!r}"
                )
            opts[p.option] = val
            given[p.key] = raw
        else:
            expected = (
                [f"{p.key}=" for p in family.params] + list(family.flags) + list(family.outputs)
            )
            raise UnknownMeasureError(
                f"measure {name!r}: unknown part {t!r}; {family.key} takes {expected}"
            )
    out = family.outputs[output]
    opts.update(out.options)
    if out.post in ("euclidean", "squared_euclidean"):
        return _euclidean(family, family.build(opts, family.default_output), given, output)
    built = family.build(opts, output)
    resolved = Measure(
        name=canonical(family, given, output),
        family=family,
        fn=built.fn,
        options=dict(built.options),
        kind=built.kind or out.kind,
        symmetric=built.symmetric,
        post=out.post,
        moment=built.moment,
        prepare=built.prepare,
        combine=built.combine,
        shares=built.shares,
        keep_dead=built.keep_dead,
        dot=built.dot,
        combine_many=built.combine_many,
        self_value=built.self_value,
        direction=direction_of(built.symmetric, family.group == "regression", built.reverse),
    )
    if negative_log:  # fsd's CKA loss: -log of the score, a distance that is 0 at a score of 1
        base = resolved.name if resolved.name.endswith("-score") else resolved.name + "-score"
        return replace(resolved, name=base + "-negative_log", kind="distance", post="negative_log")
    return resolved


def _euclidean(family: Family, built: Built, given: dict[str, str], output: str) -> Measure:
    """A registry-derived Euclidean distance from the family's score; ``pairwise`` combines
    the score's per-network states with each network's squared norm."""
    from ._states import (
        euclidean_combine,
        euclidean_state,
        kernel_euclidean_state,
        kernel_feature_distance,
    )
    from ._variants import euclidean_from_score

    squared = output == "distance=squared_euclidean"
    # svcca with var/dim: the registry derives it from CCA on the PCA scores, their norms
    pca = family.key == "svcca" and bool({"var", "dim"} & set(given))
    fn: Callable[..., float] = partial(
        euclidean_from_score, score_fn=built.fn, squared=squared, pca=pca
    )
    states: dict[str, Any] = {}
    if family.key == "cka" and built.options.get("kernel") == "rbf":
        # most registry implementations derive it in the kernel's feature space (see
        # kernel_feature_distance); the Laplace names follow their one implementation (repsim)
        fn = partial(kernel_feature_distance, squared=squared)
        states = {
            "prepare": partial(kernel_euclidean_state, **built.options),
            "combine": partial(euclidean_combine, combine=built.combine, squared=squared),
            "shares": "gram",
        }
    elif built.prepare is not None and built.combine is not None:
        keep = (built.options.get("keep_variance") or 1.0, built.options.get("n_components"))
        states = {
            "prepare": partial(euclidean_state, prepare=built.prepare, pca=keep if pca else None),
            "combine": partial(euclidean_combine, combine=built.combine, squared=squared),
            "shares": built.shares if built.shares != "moments" else "factor",
        }
    return Measure(
        name=canonical(family, given, output),
        family=family,
        fn=fn,
        options=dict(built.options),
        kind="distance",
        symmetric=built.symmetric,
        direction=direction_of(built.symmetric, family.group == "regression", built.reverse),
        **states,
    )


def canonical(family: Family, given: dict[str, str], output: str) -> str:
    """Name with parameters and flags in the family's order (shown ones always), then the
    output; a kernel's own parameters in parentheses, as the registry writes them."""
    text: dict[str, str] = {}
    for p in family.params:
        if (p.key in given or p.show) and p.inside is None:
            text[p.key] = f"{p.key}={given.get(p.key, str(p.default))}"
    for p in family.params:
        if p.inside is not None and p.key in given and p.inside in text:
            body = text[p.inside].split("=", 1)[1].strip("()")
            text[p.inside] = f"{p.inside}=({body}-{p.key}={given[p.key]})"
    text.update({f: f for f in family.flags if f in given})
    keys = list(family.order) or [p.key for p in family.params] + list(family.flags)
    parts = [family.key] + [text[k] for k in keys if k in text]
    bare = family.bare_default if family.bare_default is not None else len(family.outputs) == 1
    if not (bare and output == family.default_output):
        parts.append(output)
    return "-".join(parts)


#: The family of a user's callable passed as a metric (no name scheme, no parameters).
USER_FAMILY = Family("user", "a user's function", "user", (), lambda o, _: Built(float, {}))
