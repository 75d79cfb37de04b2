"""Distill one consensus component (or several) into a judged closed-form formula.

Selection rule: every candidate on the backend's front is canonicalised
(:func:`~ensemble_lens.distill.canonical.canonicalize`) and scored by R^2 on the test split.
If the best test R^2 is below ``min_r2`` the result says "no formula" (``expression`` is None):
a formula fitted to noise is never presented. Otherwise the *simplest* candidate whose test R^2
is within :func:`accuracy_tolerance` of the best is chosen (a knee rule in accuracy units:
extra terms must buy more than that much explained variance on held-out data). The tolerance
is ``r2_tolerance`` (0.01), narrowed when the best formula is nearly exact to ten times its
unexplained variance (never below a tenth of ``r2_tolerance``): against a best test R^2 of
0.99997, a simpler formula at 0.991 has 300 times its error and is a different law, not the
same law written shorter (a 3-D screened force's x component was written ``dx*m_j/r**3``
instead of ``dx*m_j*exp(-r)/r**2`` that way, while its y and z components were right).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import sympy

from .._arrays import as_matrix
from ..errors import ConfigError, ExecutionError, ShapeError
from ._candidate import make_candidate, pareto_front
from ._expr import affine_r2, check_names, complexity, evaluate, r2_score, validate_xy
from .backends import BackendName, Candidate, SRBackend, get_backend, search_budget, subsample
from .canonical import canonicalize, rounded_form
from .dimensions import DimensionlessView, Dimensions
from .judge import exact_recovery, gradient_agreement, knn_gradient, support

logger = logging.getLogger(__name__)

#: rows of the fit split used to prune and refit candidates
CANONICAL_POINTS = 2000


@dataclass(frozen=True)
class Scored:
    """One canonicalised front member with its scores."""

    exact: sympy.Expr
    display: sympy.Expr
    complexity: int
    loss: float
    r2_test: float


@dataclass
class FormulaResult:
    """A distilled formula for one component and how it was judged.

    ``to_dict()`` gives the "Formulas" record of docs/CONTRACTS.md. ``expr`` is None when no
    candidate explained the test split well enough ("no formula"); ``reason`` then says why.
    ``exact_expr`` is the unrounded form used for exact-recovery checks. ``reduced_modulo``
    (labels of other components) is set when the formula describes the component *modulo*
    those components' formulas (``ensemble_lens.distill.reduce.reduce_modulo_others``):
    component = ``expr + modulo_expr``, a polynomial of their formulas; ``r2_test`` is then
    that sum's, support and member R^2 the remainder's, and ``unreduced_expr``,
    ``unreduced_exact_recovery``, ``unreduced_truth_name`` keep the formula it replaced and
    its verdict.
    """

    component: int | str
    layer: str
    expr: sympy.Expr | None
    exact_expr: sympy.Expr | None
    complexity: int | None
    r2_test: float | None
    r2_extrapolation: float | None
    gradient_agreement: float | None
    support: float | None
    member_r2: dict[str, float]
    exact_recovery: bool | None
    truth_name: str | None
    front: list[dict[str, Any]]
    backend: str
    seed: int
    seconds: float
    reason: str | None = None
    reduced_modulo: list[str] | None = None
    modulo_expr: sympy.Expr | None = None
    unreduced_expr: sympy.Expr | None = None
    unreduced_exact_recovery: bool | None = None
    unreduced_truth_name: str | None = None
    search_budget: dict[str, Any] | None = None
    #: the R^2 difference below which selection treats two formulas alike
    #: (:func:`precision_floor`); None in records made without a search
    selection_floor: float | None = None
    #: the dimensionless groups the search ran on (:mod:`~ensemble_lens.distill.dimensions`);
    #: None when it ran on the inputs themselves
    dimensionless_groups: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable record with exactly the CONTRACTS "Formulas" keys.

        Non-finite floats become None (strict JSON has no NaN or infinity).
        """
        e = self.expr
        return {
            "component": self.component if isinstance(self.component, str) else int(self.component),
            "layer": self.layer,
            "expression": None if e is None else str(e),
            "srepr": None if e is None else sympy.srepr(e),
            "latex": None if e is None else sympy.latex(e),
            "complexity": self.complexity,
            "r2_test": _num(self.r2_test),
            "r2_extrapolation": _num(self.r2_extrapolation),
            "gradient_agreement": _num(self.gradient_agreement),
            "support": _num(self.support),
            "member_r2": {str(k): _num(v) for k, v in self.member_r2.items()},
            "exact_recovery": self.exact_recovery,
            "truth_name": self.truth_name,
            "front": [
                {
                    "expression": f["expression"],
                    "complexity": int(f["complexity"]),
                    "loss": _num(f["loss"]),
                }
                for f in self.front
            ],
            "backend": self.backend,
            "seed": int(self.seed),
            "seconds": float(self.seconds),
            "search_budget": self.search_budget,
            "selection_floor": _num(self.selection_floor),
            "dimensionless_groups": self.dimensionless_groups,
        }


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def score_front(
    front: Sequence[Candidate],
    X_fit: np.ndarray,
    y_fit: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    names: Sequence[str],
    *,
    prune_tol: float,
    digits: int,
) -> list[Scored]:
    """Canonicalise every candidate and score it on the test split (distinct forms only)."""
    out: dict[str, Scored] = {}
    for cand in front:
        canon = canonicalize(cand.expr, X_fit, y_fit, names, prune_tol=prune_tol, digits=digits)
        display = _safe_rounding(canon.exact, canon.display, X_fit, y_fit, names, digits)
        pred_fit = evaluate(display, X_fit, names)
        loss = float(np.mean((pred_fit - y_fit) ** 2)) if np.isfinite(pred_fit).all() else math.inf
        r2t = r2_score(evaluate(display, X_test, names), y_test)
        key = str(display)
        if key not in out or r2t > out[key].r2_test:
            out[key] = Scored(canon.exact, display, complexity(display), loss, r2t)
    return sorted(out.values(), key=lambda s: (s.complexity, -s.r2_test))


def _safe_rounding(
    exact: sympy.Expr,
    display: sympy.Expr,
    X: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    digits: int,
) -> sympy.Expr:
    """Keep more digits when rounding visibly costs accuracy (fit R^2 drop > 1e-3)."""
    target = r2_score(evaluate(exact, X, names), y)
    for more in (0, 2, 4):
        shown = display if more == 0 else rounded_form(exact, digits=digits + more)
        if r2_score(evaluate(shown, X, names), y) >= target - 1e-3:
            return shown
    return exact


def accuracy_tolerance(
    best_r2: float, r2_tolerance: float = 0.01, floor: float | None = None
) -> float:
    """How far below the best test R^2 a simpler formula may be and still be chosen:
    ``min(r2_tolerance, max(floor, 10 * (1 - best_r2)))``, ``floor`` by default a tenth of
    ``r2_tolerance`` (:func:`precision_floor`; module docstring)."""
    floor = r2_tolerance / 10 if floor is None else floor
    return min(r2_tolerance, max(floor, 10.0 * (1.0 - best_r2)))


#: how many times the members' disagreement the selection floor is: what members share (their
#: data, their architecture's bias) they agree on, so their agreement understates the
#: consensus' own error against the law (measured 1-3x on AI Feynman rows, :func:`precision_floor`)
AGREEMENT_MARGIN = 10.0


def precision_floor(member_scores: object | None, y_test: np.ndarray, r2_tolerance: float) -> float:
    """The smallest loss of test R^2 that selection treats as a different law.

    A tenth of ``r2_tolerance`` by default: below that, one formula may look better than
    another by chance. When two or more member networks agree with the component more
    closely, their agreement measures the component's precision: the floor is
    :data:`AGREEMENT_MARGIN` times the median over members of ``1 - R^2`` of the best affine
    map of a member's own component onto it (never below 1e-7), so a law the members all
    carry to 1e-6 is not replaced by a simpler formula that misses it by 1e-4 (the one-input
    Gaussian of AI Feynman, I.6.2a, was written ``exp(cos(theta))`` at 1.1e-4 that way while
    the search had found ``exp(-theta**2/2)``). The margin is there because members trained on
    the same rows share the error those rows put in them: at noise 0.1 on I.6.2a they agreed
    to 2.2e-6 while their consensus was 4.2e-6 from the law and the law, its constants
    refitted, 7e-6 from the consensus, and flexible look-alikes fitted the shared error to
    1e-7.
    """
    floor = r2_tolerance / 10
    M = None if member_scores is None else np.asarray(member_scores, dtype=np.float64)
    if M is None or M.ndim != 2 or len(M) < 2 or M.shape[1] != len(y_test):
        return floor
    gaps = [1.0 - affine_r2(m, y_test) for m in M]
    gaps = [g for g in gaps if math.isfinite(g)]
    if not gaps:
        return floor
    return float(min(floor, max(AGREEMENT_MARGIN * float(np.median(gaps)), 1e-7)))


def select(scored: Sequence[Scored], *, r2_tolerance: float, floor: float | None = None) -> Scored:
    """Simplest candidate whose test R^2 is within :func:`accuracy_tolerance` of the best."""
    best = max(s.r2_test for s in scored)
    tol = accuracy_tolerance(best, r2_tolerance, floor)
    return min(
        (s for s in scored if s.r2_test >= best - tol),
        key=lambda s: (s.complexity, -s.r2_test),
    )


def select_by_gradient(
    scored: Sequence[Scored],
    X: np.ndarray,
    names: Sequence[str],
    y_grad: Any,
    min_r2: float,
    tolerance: float,
    seed: int,
) -> Scored:
    """Simplest candidate within ``tolerance`` of the best gradient agreement."""
    pool = [s for s in scored if s.r2_test >= min_r2] or list(scored)
    agree = [gradient_agreement(s.display, X, names, y_grad=y_grad, seed=seed) for s in pool]
    best = max(agree)
    return min(
        (s for s, a in zip(pool, agree, strict=True) if a >= best - tolerance),
        key=lambda s: (s.complexity, -s.r2_test),
    )


def match_truth(
    expr: sympy.Expr,
    truths: Mapping[str, sympy.Expr],
    X: np.ndarray,
    names: Sequence[str],
    X_also: np.ndarray | None = None,
) -> tuple[str | None, bool]:
    """Which truth the formula matches, and whether exactly.

    The first truth (in mapping order) that :func:`exact_recovery` accepts on ``X``, and on
    ``X_also`` (the extrapolation inputs) when given, is an exact match: a formula of another
    form can match a smooth law to the rule's precision on the range it was fitted on (on
    theta in [1, 3], ``0.28*theta + 8.4*exp(-1.15*theta)*cos(1.28*theta - 4.38)`` passes for
    ``exp(-theta**2/2)``), while the law holds on any range. Otherwise the truth best
    explained by an affine map of the formula (R^2 on ``X``) is named, with ``False``:
    "closest to", not "recovers".
    """
    for name, truth in truths.items():
        if exact_recovery(expr, truth, X=X, names=names) and (
            X_also is None or len(X_also) == 0 or exact_recovery(expr, truth, X=X_also, names=names)
        ):
            return name, True
    f = evaluate(expr, X, names)
    scores = {
        name: affine_r2(evaluate(truth, X, names), f) if np.std(f) > 0 else -math.inf
        for name, truth in truths.items()
    }
    return (max(scores, key=scores.__getitem__) if scores else None), False


def _as_backend(backend: BackendName | SRBackend, options: Mapping[str, Any] | None) -> SRBackend:
    if isinstance(backend, str):
        return get_backend(backend, **dict(options or {}))
    if options:
        raise ConfigError("backend_options are only used with a backend name, not an instance")
    return backend


def _no_formula(base: dict[str, Any], scored: Sequence[Scored], reason: str) -> FormulaResult:
    logger.info("component %s: no formula (%s)", base["component"], reason)
    best = max((s.r2_test for s in scored), default=None)
    return FormulaResult(
        expr=None,
        exact_expr=None,
        complexity=None,
        r2_test=best,
        r2_extrapolation=None,
        gradient_agreement=None,
        support=None,
        member_r2={},
        exact_recovery=False if base.pop("has_truths") else None,
        truth_name=None,
        reason=reason,
        **base,
    )


def distill_component(
    X_fit: object,
    y_fit: object,
    names: Sequence[str],
    *,
    X_test: object,
    y_test: object,
    backend: BackendName | SRBackend = "operon",
    backend_options: Mapping[str, Any] | None = None,
    seed: int = 0,
    time_budget: float | None = None,
    X_extrap: object | None = None,
    y_extrap: object | None = None,
    truths: Mapping[str, sympy.Expr] | None = None,
    member_scores: object | None = None,
    member_ids: Sequence[str] | None = None,
    y_grad_test: object | None = None,
    component: int | str = 0,
    layer: str = "",
    min_r2: float = 0.5,
    r2_tolerance: float = 0.01,
    prune_tol: float = 0.02,
    digits: int = 4,
    support_threshold: float = 0.9,
    select_by: Literal["r2", "gradient"] = "r2",
    dimensions: Dimensions | None = None,
) -> FormulaResult:
    """Search, canonicalise, select and judge a formula for one component.

    Parameters
    ----------
    X_fit, y_fit : array-like, shapes (sample, variable) and (sample,)
        Fit split: named inputs and the component's values.
    names : sequence of str
        Input variable names; formulas use ``sympy.Symbol(name)``.
    X_test, y_test : array-like
        Test split, used for selection and ``r2_test``.
    backend : {"operon", "sparse", "pysr"} or SRBackend
        Engine (see :func:`~ensemble_lens.distill.backends.get_backend`);
        ``backend_options`` go to its constructor.
    seed : int
        Seed of the search (recorded in the result).
    time_budget : float, optional
        Seconds for the search; None (default): the search is bounded by the backend's work
        budget only (generations, iterations), so the result does not depend on the machine's
        load. Recorded with the result (``search_budget``).
    X_extrap, y_extrap : array-like, optional
        The task's extrapolation range, for ``r2_extrapolation``.
    truths : mapping of str to sympy.Expr, optional
        Ground-truth latents over the same symbols; gives ``truth_name``/``exact_recovery``.
    member_scores : array-like, shape (member, test sample), optional
        Each member network's own aligned component on the test split; gives ``support`` and
        ``member_r2`` (keys from ``member_ids``, default ``member0``, ...).
    y_grad_test : array-like, shape (test sample, variable), optional
        The component's input gradient on the test split; when absent, gradient agreement
        uses a kNN estimate from ``y_test``
        (see :func:`~ensemble_lens.distill.judge.gradient_agreement`).
    component, layer : int or str, str
        Labels copied into the result.
    min_r2 : float
        Below this best test R^2 the result is "no formula".
    r2_tolerance : float
        Selection tolerance (see module docstring).
    prune_tol, digits : float, int
        Canonicalisation settings (see :func:`~ensemble_lens.distill.canonical.canonicalize`).
    support_threshold : float
        Member R^2 needed to count as supported.
    select_by : {"r2", "gradient"}
        How to pick from the front: the simplest candidate within ``r2_tolerance`` of the best
        test R^2, or (for quantities known only up to a monotone map) the simplest candidate
        within the same tolerance of the best gradient-direction agreement among candidates
        with test R^2 >= ``min_r2`` (Wetzel's criterion: a monotone warp of the truth has the
        truth's gradient directions, a formula imitating the warp does not).
    dimensions : Dimensions, optional
        The units of the inputs and of the component: the search then runs on their
        dimensionless groups, and its formulas come back in the inputs
        (:mod:`~ensemble_lens.distill.dimensions`; recorded as ``dimensionless_groups``).

    Returns
    -------
    FormulaResult

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).uniform(1, 2, size=(200, 2))
    >>> y = X[:, 0] / X[:, 1] ** 2
    >>> res = distill_component(
    ...     X[:150], y[:150], ["a", "b"], X_test=X[150:], y_test=y[150:], backend="sparse"
    ... )
    >>> res.expr, res.r2_test
    (a/b**2, 1.0)
    """
    start = time.perf_counter()
    Xf, yf = validate_xy(X_fit, y_fit, names, "distill_component (fit split)")
    Xt, yt = validate_xy(X_test, y_test, names, "distill_component (test split)")
    for tname, truth in (truths or {}).items():
        check_names(truth, names, f"distill_component: truth {tname!r}")
    engine = _as_backend(backend, backend_options)
    view = None if dimensions is None else dimensions.view(names, component)
    front = _search(engine, Xf, yf, list(names), view, seed=seed, time_budget=time_budget)
    Xc, yc = subsample(Xf, yf, CANONICAL_POINTS, seed)
    scored = score_front(front, Xc, yc, Xt, yt, names, prune_tol=prune_tol, digits=digits)
    base: dict[str, Any] = {
        "component": component,
        "layer": layer,
        "backend": engine.name,
        "seed": seed,
        "front": [
            {"expression": str(s.display), "complexity": s.complexity, "loss": s.loss}
            for s in scored
        ],
        "seconds": 0.0,
        "search_budget": search_budget(engine, time_budget),
        "has_truths": bool(truths),
        "dimensionless_groups": None if view is None else [str(g) for g in view.groups],
    }
    if not scored or max(s.r2_test for s in scored) < min_r2:
        base["seconds"] = time.perf_counter() - start
        return _no_formula(base, scored, f"best test R^2 below min_r2={min_r2}")
    floor = precision_floor(member_scores, yt, r2_tolerance)
    base["selection_floor"] = floor
    if select_by == "gradient":
        if y_grad_test is None:
            scale = Xt.std(axis=0)
            y_grad_test = knn_gradient(Xt, yt) / np.where(scale > 0, scale, 1.0)
        chosen = select_by_gradient(scored, Xt, names, y_grad_test, min_r2, r2_tolerance, seed)
    else:
        chosen = select(scored, r2_tolerance=r2_tolerance, floor=floor)
    judged = _judge(
        chosen,
        Xt,
        yt,
        names,
        truths=truths,
        X_extrap=X_extrap,
        y_extrap=y_extrap,
        member_scores=member_scores,
        member_ids=member_ids,
        y_grad_test=y_grad_test,
        support_threshold=support_threshold,
        seed=seed,
    )
    base.pop("has_truths")
    base["seconds"] = time.perf_counter() - start
    logger.info("component %s: %s (test R^2 %.4f)", component, chosen.display, chosen.r2_test)
    return FormulaResult(
        expr=chosen.display,
        exact_expr=chosen.exact,
        complexity=chosen.complexity,
        r2_test=chosen.r2_test,
        **judged,
        **base,
    )


def _search(
    engine: SRBackend,
    X: np.ndarray,
    y: np.ndarray,
    names: list[str],
    view: DimensionlessView | None,
    *,
    seed: int,
    time_budget: float | None,
) -> list[Candidate]:
    """The engine's front on the inputs, or on their dimensionless groups written back in the
    inputs (``view``); with no group at all, the target over its scale is one constant."""
    if view is None:
        return engine.fit(X, y, names, seed=seed, time_budget=time_budget)
    P, t = view.inputs(X), view.target(X, y)
    if view.groups:
        raw = [c.expr for c in engine.fit(P, t, view.group_names, seed=seed,
                                          time_budget=time_budget)]  # fmt: skip
    else:
        raw = [sympy.Float(float(np.mean(t)))]
    return pareto_front([make_candidate(view.back(e), X, y, names) for e in raw])


def _judge(
    chosen: Scored,
    Xt: np.ndarray,
    yt: np.ndarray,
    names: Sequence[str],
    *,
    truths: Mapping[str, sympy.Expr] | None,
    X_extrap: object | None,
    y_extrap: object | None,
    member_scores: object | None,
    member_ids: Sequence[str] | None,
    y_grad_test: object | None,
    support_threshold: float,
    seed: int,
) -> dict[str, Any]:
    """Extrapolation R^2, gradient agreement, support and truth match of the chosen formula."""
    expr = chosen.display
    out: dict[str, Any] = {
        "r2_extrapolation": None,
        "support": None,
        "member_r2": {},
        "truth_name": None,
        "exact_recovery": None,
    }
    if X_extrap is not None and y_extrap is not None:
        Xe, ye = validate_xy(X_extrap, y_extrap, names, "distill_component (extrapolation)")
        out["r2_extrapolation"] = r2_score(evaluate(expr, Xe, names), ye)
    if y_grad_test is None:
        out["gradient_agreement"] = gradient_agreement(expr, Xt, names, y=yt, seed=seed)
    else:
        out["gradient_agreement"] = gradient_agreement(
            expr, Xt, names, y_grad=y_grad_test, seed=seed
        )
    if member_scores is not None:
        sup = support(expr, member_scores, Xt, names, threshold=support_threshold)
        ids = (
            list(member_ids)
            if member_ids is not None
            else [f"member{k}" for k in range(len(sup.member_r2))]
        )
        if len(ids) != len(sup.member_r2):
            raise ShapeError(
                f"distill_component: {len(ids)} member_ids for {len(sup.member_r2)} members"
            )
        out["support"], out["member_r2"] = (
            sup.fraction,
            dict(zip(ids, sup.member_r2.tolist(), strict=True)),
        )
    if truths:
        Xa = None if X_extrap is None else as_matrix(X_extrap, "distill_component: X_extrap")
        out["truth_name"], out["exact_recovery"] = match_truth(
            chosen.exact, truths, Xt, names, X_also=Xa
        )
    return out


def _distill_task(kwargs: dict[str, Any]) -> FormulaResult:
    """Module-level task for executors: one component, plain numpy arrays in ``kwargs``."""
    return distill_component(**kwargs)


def distill_components(
    X_fit: object,
    Y_fit: object,
    names: Sequence[str],
    *,
    X_test: object,
    Y_test: object,
    components: Sequence[int | str] | None = None,
    member_scores: object | None = None,
    X_extrap: object | None = None,
    Y_extrap: object | None = None,
    executor: Any | None = None,
    seed: int = 0,
    seeds: Sequence[int] | None = None,
    **options: Any,
) -> list[FormulaResult]:
    """Distill several components, inline or through an executor.

    Parameters
    ----------
    X_fit, X_test : array-like, shape (sample, variable)
        Named inputs of the fit and test splits.
    Y_fit, Y_test : array-like, shape (sample, component)
        Component values on each split.
    names : sequence of str
        Input variable names.
    components : sequence of int or str, optional
        Labels of the columns of ``Y_*`` (default 0, 1, ...).
    member_scores : array-like, shape (member, test sample, component), optional
        Each member's aligned components on the test split.
    X_extrap, Y_extrap : array-like, optional
        Extrapolation inputs (sample, variable) and components (sample, component).
    executor : object with ``submit(fn, *args)``, optional
        Runs one module-level task per component; None runs inline.
    seed : int
        Component ``j`` is searched with seed ``seed + j`` (recorded in its result).
    seeds : sequence of int, optional
        One seed per component instead (``seed`` is then not used).
    **options
        Passed to :func:`distill_component` (backend, time_budget, truths, layer, ...);
        ``dimensions`` with one target unit per component gives component ``j`` the ``j``-th.

    Returns
    -------
    list of FormulaResult
        One per component, in column order.
    """
    Yf = as_matrix(Y_fit, "distill_components: Y_fit")
    Yt = as_matrix(Y_test, "distill_components: Y_test")
    labels = list(components) if components is not None else list(range(Yf.shape[1]))
    if not (Yf.shape[1] == Yt.shape[1] == len(labels)):
        raise ShapeError(
            f"distill_components: Y_fit has {Yf.shape[1]} components, Y_test {Yt.shape[1]}, "
            f"labels {len(labels)}; they must agree"
        )
    M = None if member_scores is None else np.asarray(member_scores, dtype=np.float64)
    if M is not None and (M.ndim != 3 or M.shape[2] != Yt.shape[1]):
        raise ShapeError(
            "distill_components: member_scores must be (member, test sample, component) with "
            f"{Yt.shape[1]} components, got shape {M.shape}"
        )
    Ye = None if Y_extrap is None else as_matrix(Y_extrap, "distill_components: Y_extrap")
    dims = options.pop("dimensions", None)
    shared = dict(
        options,
        names=list(names),
        X_fit=as_matrix(X_fit, "distill_components: X_fit"),
        X_test=as_matrix(X_test, "distill_components: X_test"),
        X_extrap=None if X_extrap is None else as_matrix(X_extrap, "distill_components: X_extrap"),
    )
    payloads = [
        dict(
            shared,
            y_fit=Yf[:, j],
            y_test=Yt[:, j],
            y_extrap=None if Ye is None else Ye[:, j],
            member_scores=None if M is None else M[:, :, j],
            component=label,
            seed=seed + j if seeds is None else int(seeds[j]),
            dimensions=None if dims is None else dims.for_component(j, len(labels)),
        )
        for j, label in enumerate(labels)
    ]
    if executor is None:
        return [_distill_task(p) for p in payloads]
    futures = [executor.submit(_distill_task, p) for p in payloads]
    return [_result(f, p["component"]) for f, p in zip(futures, payloads, strict=True)]


def _result(future: Any, component: int | str) -> FormulaResult:
    try:
        return future.result()
    except Exception as err:
        raise ExecutionError(
            f"distilling component {component!r} failed on the executor: {err}"
        ) from err
