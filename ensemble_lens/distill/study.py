"""The distillation of a study: consensus subspace -> basis -> search per seed -> records.

Per layer, the consensus subspace (components whose support beats the null) is first put into
a basis that can have simple formulas, from the inputs alone (never from the answer):

* a vector latent that turns with an input vector (``equivariant_vector``, e.g.
  ``("dx", "dy")``) is mapped onto that input basis (:func:`ensemble_lens.align.input_basis_map`);
* any other subspace of more than one component is disentangled by a sparse basis
  (:func:`~ensemble_lens.distill.basis.sparse_basis`): each basis component is the one with a
  pivot monomial of its own.

Each basis component is then searched with every configured SR seed; among the seeds' results
the simplest one within the selection tolerance of the best is kept (0.01 test R^2, narrowed
for nearly exact formulas: :func:`~ensemble_lens.distill.distill.accuracy_tolerance`). Each
formula is judged on the test split, on the extrapolation range (against the ground truth
calibrated affinely on the test split, because networks themselves do not extrapolate), by
gradient agreement, by support across members (their own aligned components mapped the same
way), and by exact recovery.

Everything here takes plain parameters (names, primitives, the equivariant vector, the latent
kind, truths or None, the consensus Dataset, settings); nothing reads a store or a task.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy

from ..errors import ShapeError
from .basis import searched_basis
from .bootstrap import member_bootstrap
from .dimensions import Dimensions
from .distill import distill_components
from .extrapolation import EXTRAPOLATION, Extrapolation, reference
from .judge import STRICT_RTOL, exact_recovery
from .records import no_consensus_record, pick, record, unskilled_record
from .reduce import Split, reduce_modulo_others
from .truth import constants_against_truth, truth_verdict
from .verdict import NO_TRUTH, judge, recovered_with_best_constants

__all__ = [
    "DistillSettings",
    "Extrapolation",
    "LayerDistillation",
    "backend_options",
    "distill_consensus",
    "distill_subspace",
    "strict_recovery",
]

log = logging.getLogger(__name__)

#: The option through which each backend takes extra unary primitives.
_FUNCTION_OPTION = {"operon": "functions", "pysr": "unary_operators"}


@dataclass(frozen=True)
class DistillSettings:
    """How formulas are searched (the ``distill:`` part of a study config).

    Attributes
    ----------
    backend : {"operon", "sparse", "pysr"}
    options : mapping
        The backend's constructor options.
    time_budget : float or None
        Seconds per search; None (default): the backend's work budget only (generations,
        iterations), so the formulas do not depend on the machine's load.
    seeds : sequence of int
        Every basis component is searched once per seed.
    reduce : bool
        Reduce invariants modulo one another (:func:`~ensemble_lens.distill.reduce.
        reduce_modulo_others`) when the latent is known only up to a monotone map.
    max_extrapolation_drop, stability_tolerance, min_support, min_knee : float
        See :mod:`ensemble_lens.distill.verdict`.
    bootstrap : int
        Member resamples, each searched again (:mod:`ensemble_lens.distill.bootstrap`;
        ``bootstrap`` more searches per component); 0: none.
    bootstrap_min_agreement : float
        A formula whose form comes back in a smaller share of the resamples is flagged.
    dimensions : Dimensions or None
        The units of the inputs and of the target: a layer searched in its target's units
        (basis ``"units"``) is searched on the inputs' dimensionless groups
        (:mod:`~ensemble_lens.distill.dimensions`); any other basis has no units, and is
        searched on the inputs (with a warning).
    """

    backend: str = "operon"
    options: Mapping[str, Any] = field(default_factory=dict)
    time_budget: float | None = None
    seeds: Sequence[int] = (0,)
    reduce: bool = True
    max_extrapolation_drop: float = 0.5
    stability_tolerance: float = 0.02
    min_support: float = 0.5
    min_knee: float = 0.5
    bootstrap: int = 0
    bootstrap_min_agreement: float = 0.8
    dimensions: Dimensions | None = None


@dataclass
class LayerDistillation:
    """The formula records of one layer and the view of the subspace that was searched.

    ``view``: ``labels``, ``Y`` (sample, component) and ``M`` (member, sample, component) in
    the searched basis, ``basis`` name, ``extrapolation`` ((inputs, targets) or None); for
    the equivariant basis also ``vector`` (the input vector's names) and ``input_basis``
    (sample, vector): the input vector scaled to the mapped components' length (equal to ``Y``
    when the map is equivariant). Empty when there was no consensus.
    """

    records: list[dict[str, Any]]
    view: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Problem:
    """What one layer's search needs, besides the subspace."""

    X: np.ndarray
    names: list[str]
    test: np.ndarray
    split: np.ndarray
    layer: str
    primitives: tuple[str, ...]
    vector: tuple[str, ...] | None
    latent_kind: str | None
    truths: dict[str, sympy.Expr] | None
    extrapolation: Extrapolation | None
    settings: DistillSettings
    executor: Any
    units: np.ndarray | None = None


def backend_options(
    backend: str, options: Mapping[str, Any], primitives: Sequence[str] = ()
) -> dict[str, Any] | None:
    """The study's backend options, plus the declared SR ``primitives`` (``exp``, ``cos``...)
    when the study names no primitives of its own (the sparse backend has a fixed library and
    takes none)."""
    out = dict(options)
    key = _FUNCTION_OPTION.get(backend)
    if key and primitives and key not in out:
        out[key] = list(primitives)
    return out or None


def distill_consensus(
    consensus: Any,
    X: np.ndarray,
    names: Sequence[str],
    split: np.ndarray,
    *,
    layer: str,
    primitives: Sequence[str] = (),
    equivariant_vector: Sequence[str] | None = None,
    latent_kind: str | None = None,
    truths: Mapping[str, sympy.Expr] | None = None,
    extrapolation: Extrapolation | None = None,
    settings: DistillSettings | None = None,
    executor: Any | None = None,
    units: np.ndarray | None = None,
) -> LayerDistillation:
    """Formula records for the consensus components of one layer.

    Parameters
    ----------
    consensus : xarray.Dataset
        One layer's consensus result (:func:`ensemble_lens.consensus.find_consensus`):
        ``components`` (sample, component), ``member_scores`` (model, sample, component),
        ``is_consensus``, ``variance`` (component).
    X : ndarray, shape (sample, variable)
        The probe's inputs, in the consensus' sample order.
    names : sequence of str
        One name per input variable; formulas are written in these.
    split : ndarray of str, shape (sample,)
        ``"test"`` marks the held-out samples, ``"extrapolation"`` samples beyond the fitted
        range (used, with the components there as target, when ``extrapolation`` is None);
        the others are fitted.
    layer : str
        Label copied into the records.
    primitives : sequence of str
        Unary functions the search may use besides arithmetic (``exp``, ``log``, ``cos``...).
    equivariant_vector : sequence of str, optional
        Input names of a vector the latent turns with (e.g. ``("dx", "dy")``).
    latent_kind : str, optional
        ``"monotone"`` for quantities known only up to a monotone map (selection by gradient
        agreement, reduction modulo one another).
    truths : mapping of str to sympy.Expr, optional
        Ground-truth latents, for the recovery verdicts; None when there is no truth.
    extrapolation : Extrapolation, optional
        For ``r2_extrapolation``.
    settings : DistillSettings, optional
    executor : object with ``submit``, optional
    units : ndarray, shape (sample, unit), optional
        The members' mean raw activations when every member shares the layer's units (a
        regression output, :func:`ensemble_lens.distill.basis.shared_units`; NaN where unknown):
        the subspace is then searched in those units (basis ``"units"``,
        :func:`~ensemble_lens.distill.basis.units_map`).

    Returns
    -------
    LayerDistillation
        One record per basis component (docs/CONTRACTS.md "Formulas"), judged by
        :func:`ensemble_lens.distill.verdict.judge`; a single "no formula" record when the
        members are unskilled (``consensus.attrs["member_skill"] == "unskilled"``, see
        :func:`ensemble_lens.consensus.member_skill`) or no component is consensus.
    """
    _check_inputs(consensus, X, names, split)
    no_truth = {
        "ground_truth": bool(truths),
        "truth_note": None if truths else NO_TRUTH,
        "extrapolation_reference": reference(extrapolation, split),
    }
    keep = np.flatnonzero(consensus["is_consensus"].values)
    if consensus.attrs.get("member_skill") == "unskilled":
        log.warning("layer %s: %s", layer, consensus.attrs.get("member_skill_reason"))
        return LayerDistillation([{**unskilled_record(layer, consensus, keep.size), **no_truth}])
    if keep.size == 0:
        log.warning("layer %s: no consensus component beats the null; no formula fitted", layer)
        return LayerDistillation([{**no_consensus_record(layer, consensus), **no_truth}])
    problem = _problem(
        X, names, split, layer, primitives, equivariant_vector, latent_kind, truths,
        extrapolation, settings, executor, units,
    )  # fmt: skip
    per_seed, view = _search(
        problem,
        consensus["components"].values[:, keep],
        consensus["member_scores"].values[:, :, keep],
        [str(m) for m in consensus["model"].values],
        consensus["variance"].values[keep],
    )
    ids = [str(m) for m in consensus["model"].values]
    records = [_judged(problem, j, results, basis, view, ids) for j, (results, basis) in
               enumerate(per_seed)]  # fmt: skip
    if problem.settings.bootstrap:
        _bootstrap(problem, records, [pick(results) for results, _ in per_seed], view)
    for rec in records:
        rec["extrapolation_reference"] = no_truth["extrapolation_reference"]
        if skill := consensus.attrs.get("member_skill"):
            rec["member_skill"] = skill
    return LayerDistillation(records, view)


def _bootstrap(
    problem: _Problem, records: list[dict[str, Any]], picks: list[Any], view: dict[str, Any]
) -> None:
    """Add the member bootstrap's verdict (:mod:`~ensemble_lens.distill.bootstrap`) to the
    records, flagging ``"bootstrap"`` those below the agreement asked for."""
    options = _search_options(problem, [], view["basis"])
    options["truths"] = None  # the forms are compared, not judged

    def search(Xf, Yf, Xt, Yt, labels, seeds):
        return distill_components(
            Xf, Yf, problem.names, X_test=Xt, Y_test=Yt, components=labels, seeds=seeds,
            **options,
        )  # fmt: skip

    fit = ~problem.test & (problem.split != EXTRAPOLATION)
    cfg = problem.settings
    verdicts = member_bootstrap(
        picks, problem.X, view["M"], view["Y"], (fit, problem.test), search,
        n=cfg.bootstrap, min_agreement=cfg.bootstrap_min_agreement,
        seed=cfg.seeds[0] if cfg.seeds else 0,
    )  # fmt: skip
    for rec, verdict in zip(records, verdicts, strict=True):
        flag = verdict.pop("bootstrap_flag", None)
        rec.update(verdict)
        if flag is not None:
            rec.setdefault("flags", []).append("bootstrap")
            rec["bootstrap_note"] = flag


def _judged(
    problem: _Problem,
    j: int,
    results: list[Any],
    basis: str,
    view: dict[str, Any],
    member_ids: list[str],
) -> dict[str, Any]:
    """The record of basis component ``j`` from its seeds' results, with every verdict."""
    test = problem.test
    chosen = pick(results)
    rec = record(chosen, results, basis)
    rec["exact_recovery_strict"] = strict_recovery(
        problem.truths, chosen, problem.X[test], problem.names
    )
    ext = view["extrapolation"]
    rec = judge(
        rec,
        chosen,
        results,
        X=problem.X[test],
        y=view["Y"][test, j],
        member_y=view["M"][:, test, j],
        member_ids=member_ids,
        names=problem.names,
        extrapolation=None if ext is None else (ext[0], ext[1][:, j]),
        ground_truth=problem.truths is not None,
        max_extrapolation_drop=problem.settings.max_extrapolation_drop,
        stability_tolerance=problem.settings.stability_tolerance,
        min_support=problem.settings.min_support,
        # a latent known up to a monotone map is chosen by gradient agreement, not values
        min_knee=0.0 if problem.latent_kind == "monotone" else problem.settings.min_knee,
        extrapolation_reference=reference(problem.extrapolation, problem.split),
    )
    rec.update(exact_recovery_best=None, constants_truth=None, truth_verdict=None)
    if problem.truths and chosen.truth_name and chosen.expr is not None:
        truth = problem.truths[chosen.truth_name]
        rec["exact_recovery_best"] = recovered_with_best_constants(
            chosen.expr, rec.get("constants"), truth, problem.X[test], problem.names
        )
        rec["constants_truth"] = constants_against_truth(
            chosen.expr, rec.get("constants"), truth, problem.X[test], problem.names
        )
        rec["truth_verdict"] = truth_verdict(rec)
    return rec


def _check_inputs(consensus: Any, X: Any, names: Sequence[str], split: Any) -> None:
    """One clear error when the probe does not fit the consensus result."""
    n = consensus.sizes["sample"]
    shape = np.shape(X)
    if len(shape) != 2 or shape[0] != n:
        raise ShapeError(
            f"distill_consensus: expected inputs X of shape ({n}, variable) like the consensus "
            f"samples, got {shape}"
        )
    if len(names) != shape[1]:
        raise ShapeError(
            f"distill_consensus: expected one name per input column ({shape[1]}), got "
            f"{len(names)} names {list(names)}"
        )
    if np.shape(split) != (n,):
        raise ShapeError(
            f"distill_consensus: expected split labels of shape ({n},), got {np.shape(split)}"
        )
    if not (np.asarray(split).astype(str) == "test").any():
        raise ShapeError("distill_consensus: the split has no 'test' sample to judge formulas on")


def distill_subspace(
    Y: np.ndarray,
    M: np.ndarray,
    member_ids: Sequence[str],
    X: np.ndarray,
    names: Sequence[str],
    split: np.ndarray,
    *,
    layer: str,
    variance: np.ndarray | None = None,
    primitives: Sequence[str] = (),
    equivariant_vector: Sequence[str] | None = None,
    latent_kind: str | None = None,
    truths: Mapping[str, sympy.Expr] | None = None,
    extrapolation: Extrapolation | None = None,
    settings: DistillSettings | None = None,
    executor: Any | None = None,
    units: np.ndarray | None = None,
) -> tuple[list[tuple[list[Any], str]], dict[str, Any]]:
    """SR on a subspace Y (sample, c) with member projections M (model, sample, c).

    Returns, per basis component, the FormulaResults of every configured seed and the basis
    name, and the view searched (see :class:`LayerDistillation`). Used for the consensus and
    (by scripts/bench_recovery.py) for single networks. ``variance``: the share of the
    members' variance each component carries (default: the columns' variances). The other
    parameters are those of :func:`distill_consensus`.
    """
    problem = _problem(
        X, names, split, layer, primitives, equivariant_vector, latent_kind, truths,
        extrapolation, settings, executor, units,
    )  # fmt: skip
    weights = Y.var(axis=0) if variance is None else np.asarray(variance, dtype=np.float64)
    return _search(problem, Y, M, list(member_ids), weights)


def strict_recovery(
    truths: Mapping[str, sympy.Expr] | None, result: Any, X_test: np.ndarray, names: Sequence[str]
) -> bool | None:
    """The strict verdict (unrounded constants, 1e-3) for the truth a formula matched, on the
    test inputs ``X_test`` (sample, variable); None when there is nothing to check."""
    if result.truth_name is None or result.exact_expr is None or not truths:
        return None
    truth = truths[result.truth_name]
    return exact_recovery(
        result.exact_expr, truth, X=X_test, names=names, const_tol=None, rtol=STRICT_RTOL
    )


def _problem(
    X, names, split, layer, primitives, vector, latent_kind, truths, extrapolation, settings,
    executor, units=None,
) -> _Problem:  # fmt: skip
    return _Problem(
        X=np.asarray(X, dtype=np.float64),
        names=list(names),
        test=np.asarray(split).astype(str) == "test",
        split=np.asarray(split).astype(str),
        layer=layer,
        primitives=tuple(primitives or ()),
        vector=tuple(vector) if vector else None,
        latent_kind=latent_kind,
        truths=dict(truths) if truths else None,
        extrapolation=extrapolation,
        settings=settings or DistillSettings(),
        executor=executor,
        units=None if units is None else np.asarray(units, dtype=np.float64),
    )


def _extrapolate(problem: _Problem, X_test: np.ndarray, Y_test: np.ndarray):
    """Extrapolation inputs and targets for components ``Y_test``, or (None, None). The
    range carries its own truth values (a task's formulas evaluated there, or a probe file's
    truth columns), so truth formulas are not needed."""
    ext = problem.extrapolation
    if ext is None or len(ext.X) == 0:
        return None, None
    return ext.X, ext.targets(Y_test)


def _extrapolation_split(problem: _Problem, Y: np.ndarray):
    """Without a given extrapolation range: the probe's samples labelled "extrapolation",
    with the components themselves there as the target (the members' own values), or
    (None, None) when the probe has none."""
    ext = problem.split == EXTRAPOLATION
    if problem.extrapolation is not None or not ext.any():
        return None, None
    return problem.X[ext], Y[ext]


def _search(
    problem: _Problem, Y: np.ndarray, M: np.ndarray, member_ids: list[str], weights: np.ndarray
) -> tuple[list[tuple[list[Any], str]], dict[str, Any]]:
    """Per basis component, every seed's FormulaResult and the basis name; and the view."""
    X, names, test = problem.X, problem.names, problem.test
    in_range = problem.split != EXTRAPOLATION
    labels, Y, M, basis = searched_basis(
        problem.vector, Y, M, X, names, weights, in_range, problem.units
    )
    fit = ~test & in_range
    Xe, Ye = _extrapolate(problem, X[test], Y[test])
    if Xe is None:
        Xe, Ye = _extrapolation_split(problem, Y)
    cfg = problem.settings
    if cfg.dimensions is not None and basis != "units":
        log.warning(
            "layer %s: searched in the %s basis, which has no units; distill.dimensions not "
            "applied (only an output layer every member writes in its target's units has them)",
            problem.layer, basis,
        )  # fmt: skip
    monotone = problem.latent_kind == "monotone"
    options = _search_options(problem, member_ids, basis)
    results: dict[Any, list[Any]] = {}
    for seed in cfg.seeds:
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
        if cfg.reduce and monotone and len(labels) > 1:
            split = Split(X[fit], X[test], Y[fit], Y[test], M[:, test, :])
            out = reduce_modulo_others(
                out,
                split,
                names,
                extrapolate=lambda Xt, Yt: _extrapolate(problem, Xt, Yt),
                **options,
            )
        for res in out:
            results.setdefault(res.component, []).append(res)
    view = {"labels": labels, "Y": Y, "M": M, "basis": basis}
    view["extrapolation"] = None if Xe is None else (Xe, Ye)
    if basis == "equivariant":
        view.update(_input_view(problem, Y))
    return [(rs, basis) for rs in results.values()], view


def _search_options(problem: _Problem, member_ids: list[str], basis: str) -> dict[str, Any]:
    """The keyword arguments of :func:`distill_components` that the study's settings set;
    the dimensions only for a layer searched in its target's units (basis ``"units"``)."""
    cfg = problem.settings
    return {
        "dimensions": cfg.dimensions if basis == "units" else None,
        "executor": problem.executor,
        "backend": cfg.backend,
        "backend_options": backend_options(cfg.backend, cfg.options, problem.primitives),
        "time_budget": cfg.time_budget,
        "select_by": "gradient" if problem.latent_kind == "monotone" else "r2",
        "truths": problem.truths,
        "layer": problem.layer,
        "member_ids": member_ids,
    }


def _input_view(problem: _Problem, Y: np.ndarray) -> dict[str, Any]:
    """The input vector's direction scaled to the mapped components' length, for comparison."""
    assert problem.vector is not None
    d = problem.X[:, [problem.names.index(v) for v in problem.vector]]
    scale = np.linalg.norm(Y, axis=1) / np.maximum(np.linalg.norm(d, axis=1), 1e-300)
    return {"vector": list(problem.vector), "input_basis": d * scale[:, None]}
