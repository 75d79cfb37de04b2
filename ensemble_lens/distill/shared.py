"""Formula-level consensus: distill every member on its own, then find the shared template.

Route two of the study (beside subspace consensus -> distill): each member's own components
(:func:`~ensemble_lens.distill.periodic.member_components`) are distilled one by one with the
study's backend; every formula found gives a candidate template
(:func:`~ensemble_lens.distill.template.make_template`). Each candidate is then fitted to every
member's every component (:func:`~ensemble_lens.distill.template.fit_template`, constants per
member) and judged on the test split. A member *supports* a template when at least one of its
components is explained with test R^2 >= ``r2_threshold``; the template whose support is the
largest is the ensemble's shared form when its support reaches ``p_support``, and the verdict
is "no shared form" otherwise; parsimony decides between nearly equal supports (the fewest
slots among the results within one member of the largest support). The shared form is shown
canonically: a phase every member puts on one quarter turn is folded (``sin(c0*x1)``, not
``cos(c0*x1 - 1.5708)``; refitted and kept when it explains as many members), amplitudes of
periodic functions are non-negative. The constants of every explained component are reported
per member, with their spread across members; a frequency slot over a periodic input is
reported as its folded frequency ``k``.

Every candidate is judged by the rule of the consensus formulas
(:func:`~ensemble_lens.distill.verdict.formula_failure`): its test R^2 (median over the
supporting members of their best component), its extrapolation R^2 (each explained
component's fitted template on the extrapolation range, median over members), and its
support against ``min_support``. A candidate that fails is not a result (``is_result``
False, ``flags``, ``reason``), and the verdict is "no shared form" with that reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy

from ._expr import affine_r2, evaluate
from .backends import get_backend
from .canonical import tidy
from .periodic import MemberComponents
from .template import Template, fit_template, fold_phases, make_template, template_r2
from .verdict import formula_failure

log = logging.getLogger(__name__)

__all__ = ["TemplateConsensus", "TemplateResult", "shared_templates"]

#: fit-split rows (seeded subsample) each member's constants are fitted on
FIT_POINTS = 400

#: ``extrapolation(y)``: for a component's values ``y`` on every probe sample, the
#: extrapolation inputs and that component's target there, or None
ExtrapolationTarget = Callable[[np.ndarray], "tuple[np.ndarray, np.ndarray] | None"]


@dataclass
class TemplateResult:
    """One candidate template judged on every member.

    Attributes
    ----------
    template : Template
    sources : list of str
        ``"member/component"`` whose own formula gave this template.
    support : float
        Fraction of members with a component explained (test R^2 >= threshold).
    member_r2 : dict of str to float
        Each member's best test R^2 over its components.
    explained : dict of str to list of str
        Each member's components the template explains.
    constants : dict of str to list of dict
        Per member, the fitted constants of each explained component (same order).
    frequencies : dict of str to list of float
        Per member, the folded frequencies ``k`` of the explained components (periodic only).
    member_r2_extrapolation : dict of str to float
        Per member with an explained component, the best extrapolation R^2 of its explained
        components (empty without an extrapolation range).
    r2_test, r2_extrapolation : float or None
        Median over the supporting members of their best test R^2 and of their extrapolation
        R^2 (None: no member supports it, or no extrapolation range).
    is_result : bool
        Whether it passes :func:`~ensemble_lens.distill.verdict.formula_failure`.
    flags : list of str
        ``"extrapolation"`` or ``"support"`` when it does not.
    reason : str or None
        Why it is not a result.
    """

    template: Template
    sources: list[str]
    support: float = 0.0
    member_r2: dict[str, float] = field(default_factory=dict)
    explained: dict[str, list[str]] = field(default_factory=dict)
    constants: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    frequencies: dict[str, list[float]] = field(default_factory=dict)
    member_r2_extrapolation: dict[str, float] = field(default_factory=dict)
    r2_test: float | None = None
    r2_extrapolation: float | None = None
    is_result: bool = False
    flags: list[str] = field(default_factory=list)
    reason: str | None = None

    @property
    def n_explained(self) -> int:
        return sum(len(v) for v in self.explained.values())

    def constant_spread(self) -> dict[str, dict[str, float]]:
        """Per slot: median, min and max over all explained components of all members."""
        out = {}
        for slot in self.template.slots:
            vals = [c[slot.name] for cs in self.constants.values() for c in cs]
            if vals:
                out[slot.name] = {
                    "median": float(np.median(vals)),
                    "min": float(np.min(vals)),
                    "max": float(np.max(vals)),
                }
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable record."""
        return {
            "template": str(self.template),
            "srepr": sympy.srepr(self.template.expr),
            "key": self.template.key,
            "slots": [s.name for s in self.template.slots],
            "frequency_slots": {k: list(v) for k, v in self.template.frequencies.items()},
            "sources": self.sources,
            "support": self.support,
            "member_r2": self.member_r2,
            "explained": self.explained,
            "constants": self.constants,
            "constant_spread": self.constant_spread(),
            "frequencies": self.frequencies,
            "member_r2_extrapolation": self.member_r2_extrapolation,
            "r2_test": self.r2_test,
            "r2_extrapolation": self.r2_extrapolation,
            "is_result": self.is_result,
            "flags": self.flags,
            "reason": self.reason,
        }

    def judge(self, *, max_extrapolation_drop: float, min_support: float) -> None:
        """Set ``r2_test``, ``r2_extrapolation`` and the verdict from the member fits."""
        backed = [m for m, v in self.explained.items() if v]
        self.r2_test = float(np.median([self.member_r2[m] for m in backed])) if backed else None
        ext = [self.member_r2_extrapolation[m] for m in backed if m in self.member_r2_extrapolation]
        self.r2_extrapolation = float(np.median(ext)) if ext else None
        failure = formula_failure(
            self.r2_test,
            self.r2_extrapolation,
            self.support,
            max_extrapolation_drop=max_extrapolation_drop,
            min_support=min_support,
        )
        self.is_result = failure is None and bool(backed)
        self.flags, self.reason = ([failure[0]], failure[1]) if failure else ([], None)
        if not backed:
            self.reason = "no member component is explained by this template"


@dataclass
class TemplateConsensus:
    """The verdict of :func:`shared_templates`.

    ``verdict`` is ``"shared form"`` or ``"no shared form"`` (``reason`` says why not);
    ``best`` the top-ranked candidate (None when no member yielded any formula);
    ``candidates`` all of them, ranked (results first); ``member_formulas`` every member
    component's own formula (None: no formula found).
    """

    verdict: str
    best: TemplateResult | None
    candidates: list[TemplateResult]
    member_formulas: dict[str, dict[str, str | None]]
    r2_threshold: float
    p_support: float
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "best": None if self.best is None else self.best.to_dict(),
            "candidates": [c.to_dict() for c in self.candidates],
            "member_formulas": self.member_formulas,
            "r2_threshold": self.r2_threshold,
            "p_support": self.p_support,
        }


def _search_component(payload: dict[str, Any]) -> sympy.Expr | None:
    """Module-level executor task: the simplest front formula of one member component whose
    test R^2 (after an affine refit) is within ``r2_tolerance`` of the best, tidied with cheap
    algebra only (constants are slots of the template anyway); None below ``min_r2``."""
    engine = payload["backend"]
    if isinstance(engine, str):
        engine = get_backend(engine, **(payload["backend_options"] or {}))
    Xf, yf, Xt, yt, names = (payload[k] for k in ("X_fit", "y_fit", "X_test", "y_test", "names"))
    front = engine.fit(Xf, yf, names, seed=payload["seed"], time_budget=payload["time_budget"])
    scored = [(affine_r2(evaluate(c.expr, Xt, names), yt), c) for c in front]
    scored = [(r2, c) for r2, c in scored if np.isfinite(r2)]
    if not scored or max(r2 for r2, _ in scored) < payload["min_r2"]:
        return None
    best = max(r2 for r2, _ in scored)
    pick = min(
        (c for r2, c in scored if r2 >= best - payload["r2_tolerance"]),
        key=lambda c: c.complexity,
    )
    return tidy(pick.expr, simplify_max_nodes=0)


def _member_formulas(
    comps: Mapping[str, MemberComponents],
    X: np.ndarray,
    names: Sequence[str],
    fit: np.ndarray,
    *,
    max_points: int,
    seed: int,
    backend: Any = "operon",
    backend_options: Mapping[str, Any] | None = None,
    time_budget: float | None = None,
    executor: Any = None,
    min_r2: float = 0.5,
    r2_tolerance: float = 0.01,
) -> dict[str, dict[str, sympy.Expr | None]]:
    """Every member component's own formula, searched on a fit subsample (seeded)."""
    rows = np.flatnonzero(fit)
    rows = np.sort(np.random.default_rng(seed).permutation(rows)[:max_points])
    test = ~fit
    common = dict(
        backend=backend,
        backend_options=backend_options,
        time_budget=time_budget,
        min_r2=min_r2,
        r2_tolerance=r2_tolerance,
        names=list(names),
        X_fit=X[rows],
        X_test=X[test],
    )
    payloads = [
        (m, label, dict(common, y_fit=mc.values[rows, j], y_test=mc.values[test, j], seed=seed + j))
        for m, mc in comps.items()
        for j, label in enumerate(mc.labels)
    ]
    if executor is None:
        found = [_search_component(p) for _, _, p in payloads]
    else:
        futures = [executor.submit(_search_component, p) for _, _, p in payloads]
        found = [f.result() for f in futures]
    out: dict[str, dict[str, sympy.Expr | None]] = {m: {} for m in comps}
    for (m, label, _), expr in zip(payloads, found, strict=True):
        out[m][label] = expr
    return out


def shared_templates(
    comps: Mapping[str, MemberComponents],
    X: np.ndarray,
    names: Sequence[str],
    fit: np.ndarray,
    *,
    periodic: Mapping[str, int] | None = None,
    r2_threshold: float = 0.9,
    p_support: float = 0.8,
    max_templates: int = 6,
    max_points: int = 800,
    seed: int = 0,
    extrapolation: ExtrapolationTarget | None = None,
    max_extrapolation_drop: float = 0.5,
    min_support: float = 0.5,
    **options: Any,
) -> TemplateConsensus:
    """Distill each member's components and find the template they share.

    Parameters
    ----------
    comps : mapping of str to MemberComponents
        Each member's own components (sample, component) on the probe.
    X : np.ndarray, shape (sample, variable)
        Probe inputs named by ``names``.
    fit : np.ndarray of bool, shape (sample,)
        Fit split (the rest is the test split every R^2 is measured on).
    periodic : mapping of str to int, optional
        Declared periodic inputs (frequency slots get every frequency of Z_p as a start).
    r2_threshold : float
        Test R^2 a member component needs to count as explained by a template.
    p_support : float
        Share of members a template needs to be the shared form.
    max_templates : int
        Candidates judged on all members (those found in the most components first); one
        with more slots than a candidate every member supports is not judged (it cannot rank
        higher).
    max_points : int
        Fit rows given to the search (seeded subsample).
    seed : int
        Seed of the searches and of the constant fits' random starts.
    extrapolation : callable, optional
        ``extrapolation(y)`` -> ``(X_extrap, y_extrap)`` for a component's values ``y`` on
        every probe sample (the members' own values on extrapolation rows, or the truth mapped
        from the test split), or None; without it no extrapolation verdict.
    max_extrapolation_drop, min_support : float
        The rule of :func:`~ensemble_lens.distill.verdict.formula_failure`.
    **options
        Of the per-member searches: ``backend`` (a name or an SRBackend, default operon),
        ``backend_options``, ``time_budget`` (seconds per search; None: work budget only),
        ``executor`` (one task per member component), ``min_r2`` (0.5: below it a component
        has no formula), ``r2_tolerance`` (0.01: the simplest front formula this close to
        the best test R^2).

    Returns
    -------
    TemplateConsensus
    """
    fit = np.asarray(fit, dtype=bool)
    formulas = _member_formulas(comps, X, names, fit, max_points=max_points, seed=seed, **options)
    found: dict[str, TemplateResult] = {}
    for m, per in formulas.items():
        for label, expr in per.items():
            if expr is None:
                continue
            t = make_template(expr, periodic=periodic)
            found.setdefault(t.key, TemplateResult(t, [])).sources.append(f"{m}/{label}")
    ranked = sorted(found.values(), key=lambda r: (-len(r.sources), len(r.template.slots)))
    ranked = sorted(ranked[:max_templates], key=lambda r: len(r.template.slots))
    candidates: list[TemplateResult] = []
    for r in ranked:
        if any(
            c.support == 1.0 and len(c.template.slots) < len(r.template.slots) for c in candidates
        ):
            continue  # cannot outrank a simpler template every member supports
        candidates.append(_judge(r, comps, X, fit, names, r2_threshold, seed, extrapolation))
        candidates[-1].judge(max_extrapolation_drop=max_extrapolation_drop, min_support=min_support)
    candidates = _ranked(candidates, len(comps), p_support)
    if candidates and candidates[0].is_result:
        candidates[0] = _folded(
            candidates[0], comps, X, fit, names, r2_threshold, seed, extrapolation,
            max_extrapolation_drop=max_extrapolation_drop, min_support=min_support,
        )  # fmt: skip
    best = candidates[0] if candidates else None
    reason = _no_shared_form(best, p_support)
    log.info(
        "template consensus: %s (%s, support %.2f)",
        "no shared form" if reason else "shared form",
        best.template if best else None,
        best.support if best else 0.0,
    )
    return TemplateConsensus(
        verdict="no shared form" if reason else "shared form",
        reason=reason,
        best=best,
        candidates=candidates,
        member_formulas={
            m: {k: None if e is None else str(e) for k, e in per.items()}
            for m, per in formulas.items()
        },
        r2_threshold=r2_threshold,
        p_support=p_support,
    )


def _ranked(
    candidates: list[TemplateResult], n_members: int, p_support: float = 0.0
) -> list[TemplateResult]:
    """Results first, by support; parsimony decides between nearly equal supports: the
    fewest slots among the results within one member (``1 / n_members``) of the best support
    come first (a clean joint wave over one with spurious extra terms that explain one more
    member), then the rest by support, slots and components explained. Parsimony never
    turns a shared form into none: when the best support reaches ``p_support``, so must the
    simpler template's."""
    order = sorted(
        candidates, key=lambda r: (not r.is_result, -r.support, len(r.template.slots),
                                   -r.n_explained)
    )  # fmt: skip
    if not order or not order[0].is_result:
        return order
    near = order[0].support - 1.0 / max(n_members, 1) - 1e-9
    if order[0].support >= p_support:
        near = max(near, p_support)
    close = [r for r in order if r.is_result and r.support >= near]
    first = min(close, key=lambda r: (len(r.template.slots), -r.support, -r.n_explained))
    return [first, *(r for r in order if r is not first)]


def _folded(
    best: TemplateResult,
    comps: Mapping[str, MemberComponents],
    X: np.ndarray,
    fit: np.ndarray,
    names: Sequence[str],
    r2_threshold: float,
    seed: int,
    extrapolation: ExtrapolationTarget | None,
    **judge: float,
) -> TemplateResult:
    """The best template in canonical form: phases every member puts on one quarter turn
    folded (:func:`~ensemble_lens.distill.template.fold_phases`), refitted on every member and
    kept when it explains as many members; else ``best`` unchanged."""
    folded = fold_phases(best.template, [c for cs in best.constants.values() for c in cs])
    if folded is None:
        return best
    alt = _judge(TemplateResult(folded, best.sources), comps, X, fit, names, r2_threshold,
                 seed, extrapolation)  # fmt: skip
    alt.judge(**judge)
    return alt if alt.is_result and alt.support >= best.support else best


def _no_shared_form(best: TemplateResult | None, p_support: float) -> str | None:
    """Why the best candidate is not the ensemble's shared form, or None when it is."""
    if best is None:
        return "no member component yielded a formula"
    if not best.is_result:
        return best.reason
    if best.support < p_support:
        return (
            f"the best template explains {best.support:.2f} of the members, below "
            f"templates.p_support = {p_support:g}"
        )
    return None


def _judge(
    res: TemplateResult,
    comps: Mapping[str, MemberComponents],
    X: np.ndarray,
    fit: np.ndarray,
    names: Sequence[str],
    r2_threshold: float,
    seed: int,
    extrapolation: ExtrapolationTarget | None = None,
) -> TemplateResult:
    """Fit the template to every member component; fill support, constants, frequencies and
    the explained components' extrapolation R^2."""
    test = ~fit
    rows = np.flatnonzero(fit)
    rows = np.sort(np.random.default_rng(seed).permutation(rows)[:FIT_POINTS])
    for m, mc in comps.items():
        best = -np.inf
        res.explained[m], res.constants[m], res.frequencies[m] = [], [], []
        for j, label in enumerate(mc.labels):
            y = mc.values[:, j]
            tf = fit_template(
                res.template, X[rows], y[rows], names, X_test=X[test], y_test=y[test], seed=seed
            )
            best = max(best, tf.r2_test)
            if tf.r2_test >= r2_threshold:
                # a member's component is a projection: its sign is the basis's, so the
                # constants are those of the orientation with the canonical sign
                constants, flipped = res.template.oriented(tf.constants)
                y = -y if flipped else y
                res.explained[m].append(label)
                res.constants[m].append(constants)
                res.frequencies[m].extend(tf.frequencies.values())
                ext = None if extrapolation is None else extrapolation(y)
                if ext is not None:
                    r2e = template_r2(res.template, constants, ext[0], ext[1], names)
                    prev = res.member_r2_extrapolation.get(m, -np.inf)
                    res.member_r2_extrapolation[m] = float(max(prev, r2e))
        res.member_r2[m] = float(best)
    res.support = float(np.mean([bool(v) for v in res.explained.values()])) if comps else 0.0
    return res
