"""The distill stage: read the consensus and the probe, distill, write the formulas.

The science (basis choice, seeds, reduction, judging) lives in
:mod:`ensemble_lens.distill.study`; this stage only turns the store and what the study knows
of its latents (:class:`~ensemble_lens.pipeline.inputs.StudyInputs`: from a task, or from the
config and the probe file of a study without one) into the plain parameters of
:func:`~ensemble_lens.distill.study.distill_consensus` and writes what it returns. The names
re-exported below keep their old import path.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np

from ..config import stable_hash
from ..distill.basis import major_components, shared_units, sparse_basis
from ..distill.records import no_consensus_record
from ..distill.reduce import MIN_GENERATOR_R2, Split, reduce_modulo_others
from ..distill.study import DistillSettings, Extrapolation, distill_consensus
from ..distill.study import backend_options as _backend_options
from ..distill.study import distill_subspace as _distill_subspace
from ..distill.study import strict_recovery as _strict_recovery
from .stages import CountedExecutor, StageContext, probe_key

__all__ = [
    "MIN_GENERATOR_R2",
    "Split",
    "backend_options",
    "distill_layer",
    "distill_subspace",
    "layer_units",
    "major_components",
    "probe_test_inputs",
    "reduce_modulo_others",
    "sparse_basis",
    "stage_distill",
    "strict_recovery",
]

log = logging.getLogger(__name__)


def stage_distill(ctx: StageContext) -> dict[str, Any]:
    """Distill every consensus layer; store all formulas (and "no formula" verdicts)."""
    dcfg = ctx.cfg.distill
    layers = ctx.store.result_layers("consensus")
    tags = {layer: ctx.store.result_tag("consensus", layer) for layer in layers}
    # the probe tag too: a probe file's truth columns or extrapolation rows change the verdicts
    # without changing any member or consensus
    probe_tag = probe_key(ctx.store)
    tag = stable_hash({"consensus": tags, "distill": _distill_key(dcfg), "probe": probe_tag})
    if not dcfg.enabled:
        return {"skipped": "distill.enabled is false"}
    if ctx.store.formulas_tag() == tag:
        return {"skipped": "formulas up to date"}
    if not ctx.inputs.variables:
        reason = (
            "the probe has no named scalar variables (or distill.variables is empty): formulas "
            "need them; similarity and consensus were computed"
        )
        log.warning("distill skipped: %s", reason)
        records = [
            {**no_consensus_record(layer, ctx.store.read_result("consensus", layer)),
             "reason": reason}
            for layer in layers
        ]  # fmt: skip
        ctx.store.write_formulas(records, tag)
        return {"skipped": reason}
    records: list[dict[str, Any]] = []
    counted = replace(ctx, executor=CountedExecutor(ctx, "SR components"))
    for layer in layers:
        records += distill_layer(counted, layer)
    ctx.store.write_formulas(records, tag)
    found = [r for r in records if r.get("is_result")]
    return {"formulas": len(found), "components": len(records)}


def _distill_key(dcfg: Any) -> dict[str, Any]:
    """The distill settings in the formulas' tag; the bootstrap's and the dimensions only when
    they are on, so formulas distilled before they existed stay up to date."""
    dump = dcfg.model_dump(mode="json")
    if not dump["bootstrap"]:
        del dump["bootstrap"], dump["bootstrap_min_agreement"]
    if dump["dimensions"] is None:
        del dump["dimensions"]
    return dump


def distill_layer(ctx: StageContext, layer: str) -> list[dict[str, Any]]:
    """Formula records for the consensus components of one layer. When the consensus holds
    the members on the probe's extrapolation rows, those rows join as samples labelled
    "extrapolation" (the reference of ``r2_extrapolation`` when there is no truth there)."""
    ds = ctx.store.read_result("consensus", layer)
    X, names, split = _probe(ctx)
    n = len(split)
    full = ds
    if "extrapolation_components" in ds:
        full, X, split = _with_extrapolation_rows(ctx, ds, X, names, split)
    units = layer_units(ctx, layer, [str(m) for m in ds["model"].values], len(split))
    out = distill_consensus(full, X, names, split, layer=layer, units=units, **_law(ctx))
    for rec in out.records:  # why there is no extrapolation check, when there is none
        unchecked = rec.get("extrapolation_reference") is None
        rec["extrapolation_note"] = ds.attrs.get("extrapolation_unchecked") if unchecked else None
    if out.view.get("basis") == "equivariant":
        view = {**out.view, "Y": out.view["Y"][:n], "input_basis": out.view["input_basis"][:n]}
        _store_equivariant_view(ctx, layer, ds, view)
    return out.records


def layer_units(
    ctx: StageContext, layer: str, members: list[str], rows: int | None = None
) -> np.ndarray | None:
    """The members' mean raw activations of ``layer`` on the probe when they share its units
    (:func:`~ensemble_lens.distill.basis.shared_units`), padded with NaN to ``rows`` samples
    (the extrapolation rows appended after the probe's); None otherwise."""
    mean = shared_units([ctx.store.activations(m, layer) for m in members])
    if mean is None or rows is None or rows == len(mean):
        return mean
    return np.r_[mean, np.full((rows - len(mean), mean.shape[1]), np.nan)]


def _with_extrapolation_rows(
    ctx: StageContext, ds: Any, X: np.ndarray, names: list[str], split: np.ndarray
) -> tuple[Any, np.ndarray, np.ndarray]:
    """The consensus, inputs and split labels with the extrapolation samples appended."""
    import xarray as xr

    Xe = ctx.store.extrapolation_probe()["inputs"].sel(variable=names).values
    full = xr.Dataset(
        {
            "components": (
                ("sample", "component"),
                np.r_[ds["components"].values, ds["extrapolation_components"].values],
            ),
            "member_scores": (
                ("model", "sample", "component"),
                np.concatenate(
                    [ds["member_scores"].values, ds["extrapolation_member_scores"].values], axis=1
                ),
            ),
            "is_consensus": ds["is_consensus"],
            "variance": ds["variance"],
        },
        coords={"model": ds["model"].values},
        attrs=ds.attrs,
    )
    split = np.r_[split, ["extrapolation"] * len(Xe)]
    return full, np.r_[X, np.asarray(Xe, np.float64)], split


def distill_subspace(
    ctx: StageContext,
    layer: str,
    Y: np.ndarray,
    M: np.ndarray,
    member_ids: list[str],
    variance: np.ndarray | None = None,
    units: np.ndarray | None = None,
) -> tuple[list[tuple[list[Any], str]], dict[str, Any]]:
    """:func:`ensemble_lens.distill.study.distill_subspace` on the study's probe and task."""
    X, names, split = _probe(ctx)
    return _distill_subspace(
        Y, M, member_ids, X, names, split, layer=layer, variance=variance, units=units,
        **_law(ctx),
    )  # fmt: skip


def strict_recovery(task: Any, result: Any, X_test: np.ndarray, names: list[str]) -> bool | None:
    """The strict verdict (unrounded constants, 1e-3) for the truth a formula matched, on the
    test inputs ``X_test`` (sample, variable); None when there is nothing to check.
    ``task``: a Task or the study's :class:`~ensemble_lens.pipeline.inputs.StudyInputs`."""
    return _strict_recovery(_truths(task), result, X_test, names)


def backend_options(backend: str, options: dict[str, Any], task: Any) -> dict[str, Any] | None:
    """The study's backend options, plus the task's (or StudyInputs') ``sr_functions`` when the
    study names no primitives of its own (the sparse backend has a fixed library and takes
    none)."""
    return _backend_options(backend, options, tuple(getattr(task, "sr_functions", ()) or ()))


def probe_test_inputs(ctx: StageContext) -> tuple[np.ndarray, list[str]]:
    """The probe's test-split inputs (float64) and their names."""
    X, names, split = _probe(ctx)
    return X[split == "test"], names


def _probe(ctx: StageContext) -> tuple[np.ndarray, list[str], np.ndarray]:
    """The probe's inputs (float64) on the variables formulas may use, their names and the
    split labels."""
    names = list(ctx.inputs.variables)
    probe = ctx.store.probe().sel(variable=names)
    X = probe["inputs"].values.astype(np.float64)
    return X, names, np.asarray(probe["split"].values).astype(str)


def _truths(task: Any) -> dict[str, Any] | None:
    """Truth formulas of a Task (``latents``) or of StudyInputs (``truths``), or None."""
    truths = getattr(task, "truths", None) or getattr(task, "latents", None)
    return dict(truths) if truths else None


def _law(ctx: StageContext) -> dict[str, Any]:
    """The keyword arguments of the distill entry points that come from the study's inputs
    (task or config and probe file) and the config."""
    inputs, dcfg = ctx.inputs, ctx.cfg.distill
    return {
        "primitives": tuple(inputs.sr_functions),
        "equivariant_vector": tuple(inputs.equivariant_vector)
        if inputs.equivariant_vector
        else None,
        "latent_kind": inputs.latent_kind,
        "truths": inputs.truths,
        "extrapolation": _extrapolation(ctx),
        "settings": DistillSettings(
            backend=dcfg.backend,
            options=dict(dcfg.options),
            time_budget=dcfg.time_budget,
            seeds=tuple(dcfg.seeds),
            reduce=dcfg.reduce,
            max_extrapolation_drop=dcfg.max_extrapolation_drop,
            stability_tolerance=dcfg.stability_tolerance,
            min_support=dcfg.min_support,
            min_knee=dcfg.min_knee,
            bootstrap=dcfg.bootstrap,
            bootstrap_min_agreement=dcfg.bootstrap_min_agreement,
            dimensions=dcfg.dimensions.dimensions() if dcfg.dimensions else None,
        ),
        "executor": ctx.executor,
    }


def _extrapolation(ctx: StageContext) -> Extrapolation | None:
    """The extrapolation range and the truth values there and on the test split: a task's
    range (``probe.n_extrapolation`` samples), or a probe file's extrapolation rows with truth
    columns; None when the study has neither."""
    inputs = ctx.inputs
    if inputs.extrapolation is None or inputs.test_truth is None:
        return None
    if ctx.task is not None and ctx.cfg.probe.n_extrapolation == 0:
        return None
    drawn = inputs.extrapolation(ctx.cfg.probe.n_extrapolation, ctx.cfg.probe.seed + 1)
    if drawn is None:
        return None
    Xe, truth_ext = drawn
    # by name: a probe file may order its columns unlike the task's inputs (the columns of Xe
    # and of what test_truth takes)
    cols = list(inputs.input_names or ctx.store.probe_names)
    probe = ctx.store.probe()
    missing = [c for c in cols if c not in ctx.store.probe_names]
    missing += [v for v in inputs.variables if v not in cols]
    if missing:
        log.warning(
            "no extrapolation check against the truth: %s are not both probe variables and "
            "task inputs",
            missing,
        )
        return None
    full_test = probe["inputs"].sel(variable=cols).values[probe["split"].values == "test"]
    keep = [cols.index(v) for v in inputs.variables]
    return Extrapolation(
        X=np.asarray(Xe, np.float64)[:, keep],
        truth_test=inputs.test_truth(full_test.astype(np.float32)),
        truth=truth_ext,
    )


def _store_equivariant_view(ctx: StageContext, layer: str, ds: Any, view: dict[str, Any]) -> None:
    """Add to the consensus result the mapped components and, for comparison, the input
    vector's direction scaled to the same length (equal when the map is equivariant)."""
    ds = ds.assign(
        mapped_components=(("sample", "vector"), view["Y"]),
        input_basis=(("sample", "vector"), view["input_basis"]),
    ).assign_coords(vector=view["vector"])
    ctx.store.write_result("consensus", layer, ds, ctx.store.result_tag("consensus", layer) or "")
