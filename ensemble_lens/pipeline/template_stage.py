"""The templates stage: formula-level consensus and groups of networks, per recorded layer.

Runs after ``distill`` when ``templates.enabled`` or ``groups.enabled``; the science lives in
:mod:`ensemble_lens.distill.shared` (templates), :mod:`ensemble_lens.distill.periodic` (each
member's own components, the Fourier basis over Z_p) and :mod:`ensemble_lens.consensus.groups`.
When the members do not predict their own targets (``consensus.min_member_r2``, as in the
consensus stage), the verdict is in: a layer gets no template search and no groups, and its
record says why (``skipped``). Results are JSON records in the study attributes,
``templates -> {layer: record}``, tagged
with the hash of the members, the probe, and the templates, groups, consensus and distill
config sections (a stage with the same tag is skipped). Templates and per-group formulas are
judged by the rule of the consensus formulas (test R^2, extrapolation, support).
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
    probe_key,
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
                "members": _members_tag(ctx, ids, layer),
                "similarity": ctx.store.result_tag("similarity", layer) if gcfg.enabled else None,
                "templates": tcfg.model_dump(mode="json"),
                "groups": gcfg.model_dump(mode="json"),
                "distill": ctx.cfg.distill.model_dump(mode="json"),
                # per-group consensus, and the probe's extrapolation rows or truth columns,
                # change the verdicts without changing any member
                "consensus": ctx.cfg.consensus.model_dump(mode="json"),
                "probe": probe_key(ctx.store),
            }
        )
        if (done.get(layer) or {}).get("tag") == tag:
            out[layer] = "skipped"
            continue
        if gcfg.enabled and "metric" in gcfg.model_fields_set:
            for metric in _group_metrics(gcfg):  # fails early on a named metric not computed
                _similarity_matrix(ctx, layer, ids, metric, named=True)
        record: dict[str, Any] = {"tag": tag, "members": ids}
        skill = _member_skill(ctx, ids)
        if skill is not None and skill.verdict == "unskilled":
            # the verdict is in: members that do not learn their task carry no law to share
            record.update(no_search(skill, tcfg))
            done[layer] = record
            ctx.store.write_study_attrs(templates=done)
            log.warning("layer %s: %s", layer, record["skipped"])
            out[layer] = record["skipped"]
            continue
        if tcfg.enabled:
            record["templates"] = layer_templates(ctx, layer, ids)
        if gcfg.enabled:
            record["groups"] = layer_groups(ctx, layer, ids, record.get("templates"))
        done[layer] = record
        ctx.store.write_study_attrs(templates=done)
        out[layer] = _summary(record)
    return out


def _member_skill(ctx: StageContext, ids: list[str]) -> Any:
    """The members' skill verdict (``consensus.min_member_r2``, the rule of the consensus
    stage), or None when the check is off."""
    from ..consensus import member_skill

    ccfg = ctx.cfg.consensus
    if ccfg.min_member_r2 is None:
        return None
    metrics = {m: ctx.store.model_attrs(m).get("metrics") for m in ids}
    return member_skill(metrics, min_r2=ccfg.min_member_r2, min_fraction=ccfg.p_support)


def no_search(skill: Any, tcfg: Any) -> dict[str, Any]:
    """The record of a layer whose members do not predict their own targets: no template
    search and no groups (``skipped`` says why; ``member_skill`` holds the verdict)."""
    why = f"no template search: {skill.reason}"
    out: dict[str, Any] = {"skipped": why, "member_skill": skill.attrs()}
    if tcfg.enabled:
        out["templates"] = {
            "verdict": "no shared form",
            "reason": why,
            "best": None,
            "candidates": [],
            "member_formulas": {},
            "r2_threshold": tcfg.r2_threshold,
            "p_support": tcfg.p_support,
        }
    return out


def _summary(record: dict[str, Any]) -> str:
    if record.get("skipped"):
        return str(record["skipped"])
    parts = []
    if "templates" in record:
        best = record["templates"]["best"]
        union = " (only as the union of the groups' forms)" if _groups_differ(record) else ""
        parts.append(
            f"{record['templates']['verdict']}{union}: {best['template'] if best else None}"
        )
    if "groups" in record:
        parts.append(f"{record['groups']['similarity']['n_groups']} group(s)")
    return "; ".join(parts)


def _groups_differ(record: dict[str, Any]) -> bool:
    """Whether the groups found have different templates (``groups.note``): an ensemble-wide
    shared form is then only the union of their terms."""
    return bool((record.get("groups") or {}).get("note"))


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
    from .distill_stage import _probe

    tcfg, dcfg = ctx.cfg.templates, ctx.cfg.distill
    X, names, split = _probe(ctx)  # the variables formulas may use (distill.variables)
    fit = (split != "test") & (split != "extrapolation")
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
        extrapolation=_extrapolation_target(ctx, X, split),
        max_extrapolation_drop=dcfg.max_extrapolation_drop,
        min_support=dcfg.min_support,
        backend=backend,
        backend_options=options,
        time_budget=tcfg.time_budget,
        executor=ctx.executor,
    )
    record = res.to_dict()
    record["judge"] = {
        "max_extrapolation_drop": dcfg.max_extrapolation_drop,
        "min_support": dcfg.min_support,
    }
    record["member_components"] = {
        m: {"labels": c.labels, "share": c.share.tolist(), "basis": c.basis}
        for m, c in comps.items()
    }
    log.info("layer %s templates: %s", layer, _summary({"templates": record}))
    return record


def _extrapolation_target(ctx: StageContext, X: np.ndarray, split: np.ndarray) -> Any:
    """``y -> (X_extrap, y_extrap)`` for a component's values on every probe sample: the
    probe's extrapolation rows with the component's own values there, else the study's
    extrapolation range with the truth the component matches on the test split; None when
    the study has neither."""
    from .distill_stage import _extrapolation

    rows = split == "extrapolation"
    if rows.any():
        return lambda y: (X[rows], y[rows])
    ext = _extrapolation(ctx)
    if ext is None or len(ext.X) == 0:
        return None
    test = split == "test"
    return lambda y: (ext.X, ext.targets(y[test][:, None])[:, 0])


def layer_groups(
    ctx: StageContext, layer: str, ids: list[str], templates: dict[str, Any] | None
) -> dict[str, Any]:
    """Groups by similarity (with the permutation null) and by template; consensus and
    distillation per group when there are several."""
    from ..consensus.groups import find_groups, groups_from_labels

    gcfg = ctx.cfg.groups
    metrics = _group_metrics(gcfg)
    tested = {
        metric: find_groups(
            _similarity_matrix(ctx, layer, ids, metric, named="metric" in gcfg.model_fields_set),
            kind="distance" if metric == "shape_distance" else "similarity",
            max_groups=gcfg.max_groups,
            n_perm=gcfg.n_perm,
            alpha=gcfg.alpha / len(metrics),  # Bonferroni over the metrics tested
            min_size=gcfg.min_size,
            seed=gcfg.seed,
            method=metric,
        )
        for metric in metrics
    }
    # a metric that finds separated groups decides, the smallest p first (first listed on ties)
    groups = min(
        tested.values(),
        key=lambda g: (g.n_groups == 1, 1.0 if g.p_value is None else g.p_value),
    )
    out: dict[str, Any] = {"similarity": groups.to_dict()}
    if len(metrics) > 1:
        out["by_metric"] = {
            m: {"n_groups": g.n_groups, "p_value": g.p_value, "statistic": g.statistic}
            for m, g in tested.items()
        }
    if templates is not None:
        out["template"] = groups_from_labels(ids, _template_labels(ids, templates), "template")
        out["template"] = out["template"].to_dict()
    if gcfg.per_group and groups.n_groups > 1:
        out["per_group"] = [
            group_law(ctx, layer, members) | _group_template(members, templates)
            for members in groups.group_members()
        ]
        shapes = {g.get("template") for g in out["per_group"] if g.get("template")}
        if len(shapes) > 1:  # an ensemble-wide template then only holds the groups' terms
            out["note"] = (
                f"the {groups.n_groups} groups have different templates "
                f"({'; '.join(sorted(shapes))}): read each group's law, not the ensemble's"
            )
    return out


def _group_template(members: list[str], templates: dict[str, Any] | None) -> dict[str, Any]:
    """The template most of the group's members support (judged results first, then fewer
    slots), with the verdict of the templates on the group: its support, test R^2 and
    extrapolation R^2 over the group's members, by the consensus formulas' rule."""
    if templates is None or not templates["candidates"]:
        return {}
    cfg = templates.get("judge") or {}
    verdicts = [_template_on_group(c, members, cfg) for c in templates["candidates"]]
    best = max(
        verdicts,
        key=lambda v: (v["template_is_result"], v["template_support"], -len(v["slots"])),
    )
    p_support = float(templates.get("p_support", 0.0))
    shared = best["template_is_result"] and best["template_support"] >= p_support
    if best["template_is_result"] and not shared:
        best["template_reason"] = (
            f"the best template explains {best['template_support']:.2f} of the group's "
            f"members, below templates.p_support = {p_support:g}"
        )
    best["template_verdict"] = "shared form" if shared else "no shared form"
    if not shared:
        best["rejected_template"], best["template"] = best["template"], None
    best.pop("slots")
    return best


def _template_on_group(
    c: dict[str, Any], members: list[str], cfg: dict[str, Any]
) -> dict[str, Any]:
    """One candidate template judged on a group's members."""
    from ..distill.verdict import formula_failure

    backed = [m for m in members if c["explained"].get(m)]
    share = len(backed) / len(members)
    r2 = float(np.median([c["member_r2"][m] for m in backed])) if backed else None
    ext = [c["member_r2_extrapolation"][m] for m in backed if m in c["member_r2_extrapolation"]]
    r2e = float(np.median(ext)) if ext else None
    failure = formula_failure(
        r2,
        r2e,
        share,
        max_extrapolation_drop=cfg.get("max_extrapolation_drop", 0.5),
        min_support=cfg.get("min_support", 0.5),
    )
    if failure is None and not backed:
        failure = ("support", "no member of the group is explained by any template")
    return {
        "template": c["template"],
        "slots": c["slots"],
        "template_support": share,
        "template_r2_test": r2,
        "template_r2_extrapolation": r2e,
        "frequencies": {m: c["frequencies"].get(m, []) for m in backed},
        "template_is_result": failure is None,
        "template_flags": [] if failure is None else [failure[0]],
        "template_reason": None if failure is None else failure[1],
    }


def _group_metrics(gcfg: Any) -> list[str]:
    """``groups.metric`` as a list."""
    return [gcfg.metric] if isinstance(gcfg.metric, str) else list(gcfg.metric)


def _similarity_matrix(
    ctx: StageContext, layer: str, ids: list[str], metric: str, *, named: bool
) -> Any:
    """One ``groups.metric`` matrix of the members: from the compare stage, or computed here
    for a default metric it did not compute; a metric the user named must have been computed
    (a clear error otherwise)."""
    if ctx.store.result_tag("similarity", layer) is None:
        raise ConfigError(f"groups: layer {layer!r} has no similarity results; run 'compare'")
    sims = ctx.store.read_result("similarity", layer)
    if metric not in sims and not named:
        from ..similarity import pairwise

        acts = [ctx.store.activations(m, layer).values for m in ids]
        return pairwise(dict(zip(ids, acts, strict=True)), metric)
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


#: the keys of a formula record kept in a group's law (the full record is in ``distill/``
#: for the study's consensus; a group's keeps what the report shows)
GROUP_FORMULA_KEYS = (
    "component", "expression", "rejected_expression", "r2_test", "r2_extrapolation",
    "support", "member_r2", "is_result", "flags", "reason", "basis", "exact_recovery",
    "truth_name", "complexity", "knee",
)  # fmt: skip


def group_law(ctx: StageContext, layer: str, members: list[str]) -> dict[str, Any]:
    """Consensus (same settings as the study's, no untrained null) and distillation of one
    group's members, judged like the study's consensus formulas
    (:func:`~ensemble_lens.distill.study.distill_consensus`: member skill, test R^2,
    extrapolation, support across the group's members, ``distill.min_support``)."""
    from ..consensus import find_consensus, member_skill
    from ..distill.study import distill_consensus
    from .distill_stage import _law, _probe

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
        device=ctx.cfg.execution.device,
    )
    if ccfg.min_member_r2 is not None:
        metrics = {m: ctx.store.model_attrs(m).get("metrics") for m in members}
        ds.attrs.update(
            member_skill(metrics, min_r2=ccfg.min_member_r2, min_fraction=ccfg.p_support).attrs()
        )
    record["n_consensus"] = int(ds["is_consensus"].values.sum())
    if not ctx.cfg.distill.enabled or not ctx.inputs.variables:
        record["reason"] = "distill disabled" if ctx.inputs.variables else "no input variables"
        return record
    X, names, split = _probe(ctx)
    out = distill_consensus(ds, X, names, split, layer=layer, **_law(ctx))
    record["formulas"] = [{k: rec.get(k) for k in GROUP_FORMULA_KEYS} for rec in out.records]
    if not any(r["is_result"] for r in record["formulas"]):
        reasons = {r.get("reason") for r in record["formulas"] if r.get("reason")}
        record["reason"] = "; ".join(sorted(reasons)) or "no formula is a result"
    return record
