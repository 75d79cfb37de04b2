"""The distill stage: symbolic regression on the consensus components only.

Per layer, the consensus subspace (components whose support beats the null) is first put into
a basis that can have simple formulas, from the inputs alone (never from the answer):

* a vector latent that turns with an input vector (``task.equivariant_vector``, e.g.
  ``("dx", "dy")``) is mapped onto that input basis (:func:`ensemble_lens.align.input_basis_map`);
* any other subspace of more than one component is disentangled by a sparse basis
  (:func:`sparse_basis`): each basis component is the one with a pivot monomial of its own.

Each basis component is then searched with every configured SR seed; among the seeds' results
the simplest one within 0.01 test R^2 of the best is kept. Each formula is judged on the test
split, on the extrapolation range (against the task's ground truth calibrated affinely on the
test split, because networks themselves do not extrapolate), by gradient agreement, by support
across members (their own aligned components mapped the same way), and by exact recovery.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ..config import stable_hash
from .stages import StageContext

log = logging.getLogger(__name__)


def stage_distill(ctx: StageContext) -> dict[str, Any]:
    """Distill every consensus layer; store all formulas (and "no formula" verdicts)."""
    dcfg = ctx.cfg.distill
    layers = ctx.store.result_layers("consensus")
    tags = {layer: ctx.store.result_tag("consensus", layer) for layer in layers}
    tag = stable_hash({"consensus": tags, "distill": dcfg.model_dump(mode="json")})
    if not dcfg.enabled:
        return {"skipped": "distill.enabled is false"}
    if ctx.store.formulas_tag() == tag:
        return {"skipped": "formulas up to date"}
    records: list[dict[str, Any]] = []
    if not ctx.inputs.variables:
        reason = (
            "the probe has no named scalar variables (or distill.variables is empty): formulas "
            "need them; similarity and consensus were computed"
        )
        log.warning("distill skipped: %s", reason)
        records = [_empty_record(layer, reason) for layer in layers]
        ctx.store.write_formulas(records, tag)
        return {"skipped": reason}
    for layer in layers:
        records += distill_layer(ctx, layer)
    ctx.store.write_formulas(records, tag)
    found = [r for r in records if r.get("expression")]
    return {"formulas": len(found), "components": len(records)}


def distill_layer(ctx: StageContext, layer: str) -> list[dict[str, Any]]:
    """Formula records for the consensus components of one layer."""
    ds = ctx.store.read_result("consensus", layer)
    keep = np.flatnonzero(ds["is_consensus"].values)
    if keep.size == 0:
        log.warning("layer %s: no consensus component beats the null; no formula fitted", layer)
        return [_no_consensus(layer, ds)]
    per_seed, view = distill_subspace(
        ctx,
        layer,
        ds["components"].values[:, keep],
        ds["member_scores"].values[:, :, keep],
        [str(m) for m in ds["model"].values],
        variance=ds["variance"].values[keep],
    )
    if view["basis"] == "equivariant":
        _store_equivariant_view(ctx, layer, ds, view)
    X_test, names = probe_test_inputs(ctx)
    records = []
    for results, basis in per_seed:
        pick = _pick(results)
        rec = _record(pick, results, basis)
        rec["exact_recovery_strict"] = strict_recovery(ctx.inputs, pick, X_test, names)
        records.append(rec)
    return records


def strict_recovery(inputs: Any, result: Any, X_test: np.ndarray, names: list[str]) -> bool | None:
    """The strict verdict (unrounded constants, 1e-3) for the truth a formula matched, on the
    test inputs ``X_test`` (sample, variable); None when there is nothing to check.
    ``inputs``: the :class:`~ensemble_lens.pipeline.inputs.StudyInputs` (its ``truths``)."""
    from ..distill import exact_recovery

    truths = getattr(inputs, "truths", None) or getattr(inputs, "latents", None)  # or a Task
    if result.truth_name is None or result.exact_expr is None or not truths:
        return None
    truth = truths[result.truth_name]
    return exact_recovery(result.exact_expr, truth, X=X_test, names=names, const_tol=None)


def probe_test_inputs(ctx: StageContext) -> tuple[np.ndarray, list[str]]:
    """The probe's test-split inputs (float64) and their names."""
    probe = ctx.store.probe().sel(variable=list(ctx.inputs.variables))
    test = probe["split"].values == "test"
    return probe["inputs"].values[test].astype(np.float64), list(ctx.inputs.variables)


def _store_equivariant_view(ctx: StageContext, layer: str, ds: Any, view: dict[str, Any]) -> None:
    """Add to the consensus result the mapped components and, for comparison, the input
    vector's direction scaled to the same length (equal when the map is equivariant)."""
    probe = ctx.store.probe()
    names = list(ctx.store.probe_names)
    vec = list(ctx.inputs.equivariant_vector or ())
    d = probe["inputs"].values[:, [names.index(v) for v in vec]]
    y = view["Y"]
    scale = np.linalg.norm(y, axis=1) / np.maximum(np.linalg.norm(d, axis=1), 1e-300)
    ds = ds.assign(
        mapped_components=(("sample", "vector"), y),
        input_basis=(("sample", "vector"), d * scale[:, None]),
    ).assign_coords(vector=vec)
    ctx.store.write_result("consensus", layer, ds, ctx.store.result_tag("consensus", layer) or "")


def distill_subspace(
    ctx: StageContext,
    layer: str,
    Y: np.ndarray,
    M: np.ndarray,
    member_ids: list[str],
    variance: np.ndarray | None = None,
) -> tuple[list[tuple[list[Any], str]], dict[str, Any]]:
    """SR on a subspace Y (sample, c) with member projections M (model, sample, c).

    Returns, per basis component, the FormulaResults of every configured seed and the basis
    name, and the view searched (``labels``, ``Y`` in that basis, ``basis``). Used for the
    consensus and (by scripts/bench_recovery.py) for single networks.
    ``variance``: the share of the members' variance each component carries (default: the
    columns' variances).
    """
    probe = ctx.store.probe().sel(variable=list(ctx.inputs.variables))
    X = probe["inputs"].values.astype(np.float64)
    names = list(ctx.inputs.variables)
    weights = Y.var(axis=0) if variance is None else np.asarray(variance, dtype=np.float64)
    labels, Y, M, basis = _basis(ctx.inputs, Y, M, X, names, weights)
    test = probe["split"].values == "test"
    fit = ~test
    truths = ctx.inputs.truths
    Xe, Ye = _extrapolation(ctx, X[test], Y[test], names)
    dcfg = ctx.cfg.distill
    monotone = ctx.inputs.latent_kind == "monotone"
    options = {
        "executor": ctx.executor,
        "backend": dcfg.backend,
        "backend_options": backend_options(dcfg.backend, dcfg.options, ctx.inputs),
        "time_budget": dcfg.time_budget,
        "select_by": "gradient" if monotone else "r2",
        "truths": truths,
        "layer": layer,
        "member_ids": member_ids,
    }
    results: dict[Any, list[Any]] = {}
    for seed in dcfg.seeds:
        from ..distill import distill_components

        out = distill_components(
            X[fit],
            Y[fit],
            names,
            X_test=X[test],
            Y_test=Y[test],
            components=labels,
            member_scores=M[:, test, :],
            X_extrap=Xe,
            Y_extrap=Ye,
            seed=seed,
            **options,
        )
        if dcfg.reduce and monotone and len(labels) > 1:
            split = Split(X[fit], X[test], Y[fit], Y[test], M[:, test, :])
            out = reduce_modulo_others(
                out,
                split,
                names,
                extrapolate=lambda Xt, Yt: _extrapolation(ctx, Xt, Yt, names),
                **options,
            )
        for res in out:
            results.setdefault(res.component, []).append(res)
    view = {"labels": labels, "Y": Y, "basis": basis}
    return [(rs, basis) for rs in results.values()], view


class Split(NamedTuple):
    """Inputs, components (sample, c) and member scores (member, test sample, c) of a search."""

    X_fit: np.ndarray
    X_test: np.ndarray
    Y_fit: np.ndarray
    Y_test: np.ndarray
    M_test: np.ndarray


#: least test R^2 of a formula that other components are reduced modulo
MIN_GENERATOR_R2 = 0.9


def reduce_modulo_others(
    results: list[Any],
    split: Split,
    names: list[str],
    *,
    extrapolate: Callable[[np.ndarray, np.ndarray], tuple[Any, Any]] | None = None,
    r2_tolerance: float = 0.01,
    **options: Any,
) -> list[Any]:
    """Each component's formula modulo the other components' formulas, where that is simpler.

    Conserved quantities and invariants are known only up to functions of one another
    (:mod:`ensemble_lens.distill.reduce`). For each component ``j`` whose formula is a
    polynomial of the inputs, :func:`~ensemble_lens.distill.reduce.polynomial_reduction`
    finds the products of the other components' formulas (those with test R^2 >=
    ``MIN_GENERATOR_R2``) whose subtraction cancels the most monomials. Their multiples and
    the surviving monomials are refitted together on the component (fit split); the surviving
    monomials, as the formula of the remainder ``y_j - sum(c_m g_m)``, are canonicalised and
    judged like any formula (members' scores reduced the same way; extrapolation target
    ``extrapolate(X_test, remainder)``; exact recovery). The reduction replaces the component's
    formula when it is simpler (lower complexity) and the rebuilt component
    ``formula + sum(c_m g_m)`` explains the component on the test split as well (R^2 within
    ``r2_tolerance``), and when none of the components it is reduced modulo has itself been
    replaced (no two components reduced modulo each other). ``options``: those of
    :func:`~ensemble_lens.distill.distill_component` (the backend's are not used).
    """
    import sympy

    from ..distill import distill_component
    from ..distill._expr import evaluate, r2_score
    from ..distill.canonical import rounded_form
    from ..distill.reduce import FixedFront, polynomial_reduction

    search_only = ("executor", "backend", "backend_options", "seed")
    judge = {k: v for k, v in options.items() if k not in search_only}
    exprs = [
        r.expr if r.expr is not None and r.r2_test >= MIN_GENERATOR_R2 else None for r in results
    ]
    out = list(results)
    locked: set[int] = set()  # components others are reduced modulo
    for j, before in enumerate(results):
        others = [e if i != j else None for i, e in enumerate(exprs)]
        if before.expr is None or j in locked:
            continue
        red = polynomial_reduction(before.expr, others, names, split.X_fit)
        if red is None:
            continue
        used = sorted({i for src in red.sources for i in src})
        if any(out[i].reduced_modulo is not None for i in used):
            continue
        G_fit, G_test = (
            np.column_stack([evaluate(g, x, names) for g in red.generators])
            for x in (split.X_fit, split.X_test)
        )
        T_fit = np.column_stack([evaluate(t, split.X_fit, names) for t in red.monomials])
        A = np.column_stack([T_fit, G_fit, np.ones(len(T_fit))])
        if not (np.isfinite(A).all() and np.isfinite(G_test).all()):
            continue
        c = np.linalg.lstsq(A, split.Y_fit[:, j], rcond=None)[0][T_fit.shape[1] : -1]
        g_test = G_test @ c
        r_test = split.Y_test[:, j] - g_test
        Xe, Ye = extrapolate(split.X_test, r_test[:, None]) if extrapolate else (None, None)
        res = distill_component(
            split.X_fit,
            split.Y_fit[:, j] - G_fit @ c,
            names,
            X_test=split.X_test,
            y_test=r_test,
            backend=FixedFront(red.monomials),
            seed=before.seed,
            X_extrap=Xe,
            y_extrap=None if Ye is None else Ye[:, 0],
            member_scores=split.M_test[:, :, j] - g_test[None],
            component=before.component,
            **judge,
        )
        if res.expr is None or res.complexity >= before.complexity:
            continue
        rebuilt = r2_score(evaluate(res.expr, split.X_test, names) + g_test, split.Y_test[:, j])
        if rebuilt < before.r2_test - r2_tolerance:
            continue
        modulo = sum(
            (sympy.Float(cm) * g for cm, g in zip(c, red.factored, strict=True)), sympy.Integer(0)
        )
        res.r2_test = rebuilt
        res.reduced_modulo = [str(results[i].component) for i in used]
        res.modulo_expr = rounded_form(modulo, digits=4)
        res.unreduced_expr = before.expr
        res.unreduced_exact_recovery = before.exact_recovery
        res.unreduced_truth_name = before.truth_name
        res.backend, res.front = before.backend, before.front
        res.seconds += before.seconds
        log.info(
            "component %s: %s modulo %s (component = formula + %s; was %s)",
            res.component,
            res.expr,
            res.reduced_modulo,
            res.modulo_expr,
            before.expr,
        )
        out[j] = res
        locked.update(used)
    return out


#: The option through which each backend takes extra unary primitives.
_FUNCTION_OPTION = {"operon": "functions", "pysr": "unary_operators"}


def backend_options(backend: str, options: dict[str, Any], task: Any) -> dict[str, Any] | None:
    """The study's backend options, plus the task's ``sr_functions`` when the study names no
    primitives of its own (the sparse backend has a fixed library and takes none)."""
    out = dict(options)
    key = _FUNCTION_OPTION.get(backend)
    functions = tuple(getattr(task, "sr_functions", ()) or ())
    if key and functions and key not in out:
        out[key] = list(functions)
    return out or None


def _pick(results: list[Any]) -> Any:
    """The simplest seed result within 0.01 test R^2 of the best one (or the first result
    when no seed found a formula)."""
    good = [r for r in results if r.expr is not None]
    if not good:
        return results[0]
    best = max(r.r2_test for r in good)
    return min(
        (r for r in good if r.r2_test >= best - 0.01), key=lambda r: (r.complexity, -r.r2_test)
    )


def _record(pick: Any, results: list[Any], basis: str) -> dict[str, Any]:
    rec = pick.to_dict()
    rec.update(
        basis=basis,
        seeds_tried=[r.seed for r in results],
        seeds_exact=[r.seed for r in results if r.exact_recovery],
        reduced_modulo=pick.reduced_modulo,
        modulo_expression=None if pick.modulo_expr is None else str(pick.modulo_expr),
        unreduced_expression=None if pick.unreduced_expr is None else str(pick.unreduced_expr),
        unreduced_exact_recovery=pick.unreduced_exact_recovery,
        unreduced_truth_name=pick.unreduced_truth_name,
    )
    if pick.expr is None:
        rec["reason"] = pick.reason
    return rec


def _no_consensus(layer: str, ds: Any) -> dict[str, Any]:
    return _empty_record(
        layer,
        f"no component is shared beyond the null ({ds.attrs.get('null_method')} null, "
        f"{ds.sizes['component']} aligned components tested): nothing to distill",
    )


def _empty_record(layer: str, reason: str) -> dict[str, Any]:
    """A formula record with no formula, and why."""
    return {
        "component": None,
        "layer": layer,
        "expression": None,
        "srepr": None,
        "latex": None,
        "complexity": None,
        "r2_test": None,
        "r2_extrapolation": None,
        "gradient_agreement": None,
        "support": None,
        "member_r2": {},
        "exact_recovery": None,
        "truth_name": None,
        "front": [],
        "backend": None,
        "seed": None,
        "seconds": 0.0,
        "reason": reason,
    }


def _basis(
    inputs: Any, Y: np.ndarray, M: np.ndarray, X: np.ndarray, names: list[str], weights: np.ndarray
):
    """(labels, Y, member scores, basis name) in the basis the formulas are searched in."""
    vec = tuple(inputs.equivariant_vector) if inputs.equivariant_vector else None
    if vec and Y.shape[1] >= len(vec) and all(v in names for v in vec):
        from ..align import input_basis_map

        top = major_components(weights, len(vec))
        m = input_basis_map(Y[:, top], X, vector_names=vec, input_names=names)
        mapped = np.stack([s[:, top] @ m.matrix + m.offset for s in M])
        return [f"{v}-component" for v in vec], m.components.values, mapped, "equivariant"
    if Y.shape[1] > 1:
        R = sparse_basis(Y, X)
        if R is not None:
            labels = [f"c{j}" for j in range(Y.shape[1])]
            return labels, Y @ R, np.einsum("ksc,cd->ksd", M, R), "sparse"
    return [f"c{j}" for j in range(Y.shape[1])], Y, M, "aligned"


def major_components(weights: np.ndarray, at_least: int, share: float = 0.95) -> np.ndarray:
    """Indices of the fewest largest-variance components holding ``share`` of the variance.

    The equivariant map is fitted on these only: small components can carry further vector
    fields ``s'(x) d`` (gauge terms of the receiver), and with several such fields in the span
    the most-parallel map is not identified.
    """
    order = np.argsort(-weights, kind="stable")
    cum = np.cumsum(weights[order]) / max(float(weights.sum()), 1e-300)
    k = max(at_least, int(np.searchsorted(cum, share - 1e-12)) + 1)
    return np.sort(order[: min(k, len(order))])


def sparse_basis(
    Y: np.ndarray,
    X: np.ndarray,
    *,
    max_degree: int = 4,
    tol: float = 0.05,
    target: float = 0.999,
    max_corr: float = 0.95,
) -> Any:
    """A change of basis R (c, c) of the subspace Y (n, c) whose columns have simple formulas.

    The monomials of the inputs that explain the subspace are chosen by simultaneous
    orthogonal matching pursuit (greedy, jointly for all components, until every component is
    explained to R^2 >= ``target``; robust to the collinear libraries that redundant inputs
    such as ``r`` next to ``x, y`` make). Their coefficient matrix C (c, terms) is brought to
    reduced row echelon form with pivots taken greedily from the simplest monomials, and basis
    component ``j`` is the combination that contains pivot monomial ``j`` and no other pivot.
    Returns None when the library cannot explain the subspace (R^2 < 0.9), or when the new
    basis is degenerate (two of its components correlate beyond ``max_corr``: with imperfect
    members a noise monomial can become a pivot, and the general linear map then squeezes one
    quantity into a near copy of another -- Kepler members trained on 10 % of the data gave
    two angular momenta and no energy): the components are then searched as aligned.
    """
    from ..distill.sparse import library, monomial_exponents

    n = min(len(Y), 3000)
    Xs, Ys = X[:n], Y[:n] - Y[:n].mean(0)
    Ys = Ys / Ys.std(0)
    exps = monomial_exponents(Xs, max_power=2, max_degree=max_degree)
    theta = library(Xs, exps)
    ok = np.isfinite(theta).all(0) & (theta.std(0) > 0)
    exps, theta = exps[ok], theta[:, ok]
    theta = (theta - theta.mean(0)) / theta.std(0)
    chosen, coef = _somp(theta, Ys, max_terms=6 * Y.shape[1], target=target)
    r2 = 1 - (Ys - theta[:, chosen] @ coef).var(0)
    if r2.min() < 0.9:
        return None
    order = sorted(range(len(chosen)), key=lambda i: (np.abs(exps[chosen[i]]).sum(), chosen[i]))
    C = coef.T  # (c, chosen terms)
    pivots: list[int] = []
    for t in order:
        if len(pivots) == C.shape[0]:
            break
        col = C[:, t]
        if pivots:
            basis = C[:, pivots]
            col = col - basis @ np.linalg.lstsq(basis, col, rcond=None)[0]
        if np.linalg.norm(col) > tol * np.linalg.norm(C[:, t]) + 1e-12:
            pivots.append(t)
    if len(pivots) < C.shape[0]:
        return None
    R = np.linalg.inv(C[:, pivots].T) / Y[:n].std(0)[:, None]
    corr = np.corrcoef((Y[:n] @ R).T)
    if np.abs(corr[~np.eye(len(corr), dtype=bool)]).max() > max_corr:
        return None
    return R


def _somp(theta: np.ndarray, Y: np.ndarray, max_terms: int, target: float):
    """Simultaneous OMP: greedy columns of ``theta`` explaining every column of ``Y``."""
    chosen: list[int] = []
    resid, coef = Y, np.zeros((0, Y.shape[1]))
    for _ in range(min(max_terms, theta.shape[1])):
        score = np.linalg.norm(theta.T @ resid, axis=1)
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
        coef = np.linalg.lstsq(theta[:, chosen], Y, rcond=None)[0]
        resid = Y - theta[:, chosen] @ coef
        if (1 - resid.var(0) / Y.var(0)).min() >= target:
            break
    return chosen, coef


def _extrapolation(ctx: StageContext, X_test: np.ndarray, Y_test: np.ndarray, names: list[str]):
    """Extrapolation inputs and the truth there, affinely calibrated to each component."""
    inputs = ctx.inputs
    n = ctx.cfg.probe.n_extrapolation
    if inputs.extrapolation is None or inputs.test_truth is None or n == 0:
        return None, None
    drawn = inputs.extrapolation(n, ctx.cfg.probe.seed + 1)
    if drawn is None:
        return None, None
    Xe, truth_ext = drawn
    all_names = list(ctx.store.probe_names)
    full_test = ctx.store.probe()["inputs"].values[ctx.store.probe()["split"].values == "test"]
    truth_test = inputs.test_truth(full_test.astype(np.float32))
    Xe = Xe[:, [all_names.index(v) for v in names]]
    n = len(Xe)
    Ye = np.empty((n, Y_test.shape[1]))
    for j in range(Y_test.shape[1]):
        y = Y_test[:, j]
        fits = {}
        for name, t in truth_test.items():
            A = np.column_stack([t, np.ones_like(t)])
            coef, *_ = np.linalg.lstsq(A, y, rcond=None)
            fits[name] = (1 - np.var(y - A @ coef) / np.var(y), coef)
        name = max(fits, key=lambda k: fits[k][0])  # the truth this component is closest to
        coef = fits[name][1]
        Ye[:, j] = coef[0] * truth_ext[name] + coef[1]
    return Xe, Ye
