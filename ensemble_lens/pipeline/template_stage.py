"""The templates stage: formula-level consensus and groups of networks, per recorded layer.

Runs after ``distill`` when ``templates.enabled`` or ``groups.enabled``; the science lives in
:mod:`ensemble_lens.distill.shared` (templates), :mod:`ensemble_lens.distill.periodic` (each
member's own components, the Fourier basis over Z_p) and :mod:`ensemble_lens.consensus.groups`.
Results are JSON records in the study attributes, ``templates -> {layer: record}``, tagged
with the hash of the members and both config sections (a stage with the same tag is skipped).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..config import stable_hash
from ..errors import ConfigError
from .stages import (
    StageContext,
    _members_tag,
    analysed_members,
    consensus_settings,
    recorded_layers,
)

log = logging.getLogger(__name__)


def stage_templates(ctx: StageContext) -> dict[str, Any]:
    """Templates and groups of every recorded layer (see the module docstring)."""
    tcfg, gcfg = ctx.cfg.templates, ctx.cfg.groups
    if not (tcfg.enabled or gcfg.enabled):
        return {"skipped": "templates.enabled and groups.enabled are false"}
    done = dict(ctx.store.study_attrs().get("templates") or {})
    out: dict[str, Any] = {}
    for layer in recorded_layers(ctx):
        ids = analysed_members(ctx, layer)
        tag = stable_hash(
            {
                "members": _members_tag(ctx, ids),
                "similarity": ctx.store.result_tag("similarity", layer) if gcfg.enabled else None,
                "templates": tcfg.model_dump(mode="json"),
                "groups": gcfg.model_dump(mode="json"),
                "distill": ctx.cfg.distill.model_dump(mode="json"),
            }
        )
        if (done.get(layer) or {}).get("tag") == tag:
            out[layer] = "skipped"
            continue
        if gcfg.enabled:
            _similarity_matrix(ctx, layer, ids)  # fails early on a metric not computed
        record: dict[str, Any] = {"tag": tag, "members": ids}
        if tcfg.enabled:
            record["templates"] = layer_templates(ctx, layer, ids)
        if gcfg.enabled:
            record["groups"] = layer_groups(ctx, layer, ids, record.get("templates"))
        done[layer] = record
        ctx.store.write_study_attrs(templates=done)
        out[layer] = _summary(record)
    return out


def _summary(record: dict[str, Any]) -> str:
    parts = []
    if "templates" in record:
        best = record["templates"]["best"]
        parts.append(f"{record['templates']['verdict']}: {best['template'] if best else None}")
    if "groups" in record:
        parts.append(f"{record['groups']['similarity']['n_groups']} group(s)")
    return "; ".join(parts)


def periodic_inputs(ctx: StageContext) -> dict[str, int]:
    """The task's declared periodic inputs, updated by ``templates.periodic``; only inputs
    of the probe."""
    declared = dict(getattr(ctx.task, "periodic_inputs", None) or {})
    declared.update(ctx.cfg.templates.periodic)
    names = set(ctx.store.probe_names)
    unknown = sorted(set(ctx.cfg.templates.periodic) - names)
    if unknown:
        raise ConfigError(
            f"templates.periodic: inputs {unknown} are not probe variables "
            f"(expected a subset of {sorted(names)})"
        )
    return {k: int(v) for k, v in declared.items() if k in names}


def _backend(ctx: StageContext, periodic: dict[str, int]) -> tuple[Any, Any]:
    from ..distill.periodic import FourierBackend
    from .distill_stage import backend_options

    name = ctx.cfg.templates.backend
    if name == "fourier" or (name == "auto" and periodic):
        if not periodic:
            raise ConfigError(
                "templates.backend 'fourier': expected periodic inputs (task.periodic_inputs or "
                "templates.periodic), got none"
            )
        return FourierBackend(periodic), None
    engine = ctx.cfg.distill.backend if name == "auto" else name
    return engine, backend_options(engine, ctx.cfg.distill.options, ctx.inputs)


def layer_templates(ctx: StageContext, layer: str, ids: list[str]) -> dict[str, Any]:
    """The shared-template record of one layer (:meth:`TemplateConsensus.to_dict` plus the
    members' component labels and the basis they came from)."""
    from ..distill.periodic import member_components
    from ..distill.shared import shared_templates

    tcfg = ctx.cfg.templates
    names = list(ctx.inputs.variables)  # the variables formulas may use (distill.variables)
    probe = ctx.store.probe().sel(variable=names)
    X = probe["inputs"].values.astype(np.float64)
    fit = probe["split"].values != "test"
    periodic = periodic_inputs(ctx)
    comps = {
        m: member_components(
            np.asarray(ctx.store.activations(m, layer).values, np.float64),
            X,
            names,
            fit,
            periodic=periodic,
            max_components=tcfg.max_components,
            variance_keep=tcfg.variance_keep,
        )
        for m in ids
    }
    backend, options = _backend(ctx, periodic)
    res = shared_templates(
        comps,
        X,
        names,
        fit,
        periodic=periodic,
        r2_threshold=tcfg.r2_threshold,
        p_support=tcfg.p_support,
        max_points=tcfg.max_points,
        seed=tcfg.seed,
        backend=backend,
        backend_options=options,
        time_budget=tcfg.time_budget,
        executor=ctx.executor,
    )
    record = res.to_dict()
    record["member_components"] = {
        m: {"labels": c.labels, "share": c.share.tolist(), "basis": c.basis}
        for m, c in comps.items()
    }
    log.info("layer %s templates: %s", layer, _summary({"templates": record}))
    return record


def layer_groups(
    ctx: StageContext, layer: str, ids: list[str], templates: dict[str, Any] | None
) -> dict[str, Any]:
    """Groups by similarity (with the permutation null) and by template; consensus and
    distillation per group when there are several."""
    from ..consensus.groups import find_groups, groups_from_labels

    gcfg = ctx.cfg.groups
    matrix = _similarity_matrix(ctx, layer, ids)
    groups = find_groups(
        matrix,
        kind="distance" if gcfg.metric == "shape_distance" else "similarity",
        max_groups=gcfg.max_groups,
        n_perm=gcfg.n_perm,
        alpha=gcfg.alpha,
        min_size=gcfg.min_size,
        seed=gcfg.seed,
        method=gcfg.metric,
    )
    out: dict[str, Any] = {"similarity": groups.to_dict()}
    if templates is not None:
        out["template"] = groups_from_labels(ids, _template_labels(ids, templates), "template")
        out["template"] = out["template"].to_dict()
    if gcfg.per_group and groups.n_groups > 1:
        out["per_group"] = [
            group_law(ctx, layer, members) | _group_template(members, templates)
            for members in groups.group_members()
        ]
    return out


def _group_template(members: list[str], templates: dict[str, Any] | None) -> dict[str, Any]:
    """The judged template most of the group's members support (ties: fewer slots first),
    and that share."""
    if templates is None or not templates["candidates"]:
        return {}

    def share(c: dict[str, Any]) -> float:
        return float(np.mean([bool(c["explained"].get(m)) for m in members]))

    best = max(templates["candidates"], key=lambda c: (share(c), -len(c["slots"])))
    return {
        "template": best["template"] if share(best) > 0 else None,
        "template_support": share(best),
    }


def _similarity_matrix(ctx: StageContext, layer: str, ids: list[str]) -> Any:
    """The ``groups.metric`` matrix of the members, or a clear error."""
    metric = ctx.cfg.groups.metric
    if ctx.store.result_tag("similarity", layer) is None:
        raise ConfigError(f"groups: layer {layer!r} has no similarity results; run 'compare'")
    sims = ctx.store.read_result("similarity", layer)
    if metric not in sims:
        raise ConfigError(
            f"groups.metric {metric!r}: not computed for layer {layer!r} (computed: "
            f"{sorted(sims.data_vars)}); add it to similarity.metrics"
        )
    return sims[metric].sel(model=ids, model_=ids)


def _template_labels(ids: list[str], templates: dict[str, Any]) -> list[str]:
    """Each member's first-ranked template that explains one of its components, or 'none'."""
    labels = []
    for m in ids:
        first = next(
            (c["template"] for c in templates["candidates"] if c["explained"].get(m)), None
        )
        labels.append(first or "none")
    return labels


def group_law(ctx: StageContext, layer: str, members: list[str]) -> dict[str, Any]:
    """Consensus (same settings as the study's, no untrained null) and distillation of one
    group's members; the best formula per consensus basis component."""
    from ..consensus import find_consensus
    from .distill_stage import distill_subspace

    record: dict[str, Any] = {"members": members, "size": len(members), "formulas": []}
    if len(members) < 2:
        record["reason"] = "one member: no consensus"
        return record
    ccfg = ctx.cfg.consensus
    acts = {m: np.asarray(ctx.store.activations(m, layer).values, np.float64) for m in members}
    ds = find_consensus(
        acts,
        split=ctx.store.probe()["split"].values,
        **consensus_settings(ccfg),
        executor=ctx.executor,
    )
    keep = np.flatnonzero(ds["is_consensus"].values)
    record["n_consensus"] = int(keep.size)
    if keep.size == 0 or not ctx.cfg.distill.enabled:
        record["reason"] = "no consensus component" if keep.size == 0 else "distill disabled"
        return record
    per_seed, _ = distill_subspace(
        ctx,
        layer,
        ds["components"].values[:, keep],
        ds["member_scores"].values[:, :, keep],
        members,
        variance=ds["variance"].values[keep],
    )
    for results, basis in per_seed:
        good = [r for r in results if r.expr is not None]
        best = max(good, key=lambda r: r.r2_test) if good else results[0]
        rec = best.to_dict()
        record["formulas"].append(
            {k: rec[k] for k in ("component", "expression", "r2_test", "support")}
            | {"basis": basis}
        )
    return record
