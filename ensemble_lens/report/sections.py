"""The report's sections: provenance, similarity, consensus (formulas: formula_section.py).

Each function takes the dict from :func:`ensemble_lens.report.results.collect_results` (and
the store where raw arrays are drawn) and returns the section's HTML body; a section without
data returns a short note instead.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from . import figures
from .html import (
    ARCH_NAME_KEYS,
    FigureSink,
    Num,
    Raw,
    details,
    duration,
    esc,
    fmt,
    note,
    r2_cell,
    table,
)
from .results import network_count
from .stops import stopped_early, stopped_early_line

if TYPE_CHECKING:
    from ..record.store import StudyStore

log = logging.getLogger(__name__)

_FIRST_METRICS = ("val_r2", "val_loss", "train_loss", "seconds")


# -------------------------------------------------------------------- provenance
def _flat(prefix: str, value: Any) -> list[str]:
    """``key=value`` items of a (nested) architecture dict, nested keys joined by dots."""
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _flat(f"{prefix}{k}.", v)]
    return [f"{prefix[:-1]}={fmt(value)}"]


def _architecture(arch: Any) -> Raw:
    """The whole architecture: its name in bold, then every parameter (wrapped, never cut)."""
    if not isinstance(arch, dict):
        return Raw(esc(fmt(arch)))
    name_key = next((k for k in ARCH_NAME_KEYS if k in arch), None)
    name = f"<b>{esc(fmt(arch[name_key]))}</b> " if name_key else ""
    params = [item for k, v in arch.items() if k != name_key for item in _flat(f"{k}.", v)]
    return Raw(f'<span class="arch">{name}{esc(", ".join(params))}</span>')


def _members_table(models: list[dict[str, Any]]) -> str:
    keys: list[str] = []
    for m in models:
        for k in m["attrs"].get("metrics") or {}:
            if k not in keys:
                keys.append(k)
    keys = [k for k in _FIRST_METRICS if k in keys] + sorted(
        k for k in keys if k not in _FIRST_METRICS
    )
    rows = []
    for m in models:
        a, metrics = m["attrs"], m["attrs"].get("metrics") or {}
        rows.append(
            [
                m["id"],
                _architecture(a.get("architecture")),
                a.get("seed"),
                a.get("source"),
                m["status"],
                *[_metric_cell(k, metrics.get(k)) for k in keys],
            ]
        )
    headers = ["id", "architecture", "seed", "source", "status", *keys]
    return table(headers, rows)


def _metric_cell(key: str, value: Any) -> Any:
    """A member metric: a duration, an R^2 (:func:`~.html.fmt_r2`), or the value."""
    if key == "seconds":
        return Num(duration(value))
    return r2_cell(value) if key.endswith("r2") and isinstance(value, (int, float)) else value


def _versions_table(versions: dict[str, Any], per_row: int = 3) -> str:
    items = sorted(versions.items())
    rows = []
    for start in range(0, len(items), per_row):
        chunk = items[start : start + per_row]
        row = [x for pair in chunk for x in pair]
        rows.append(row + [""] * (2 * per_row - len(row)))
    width = min(per_row, len(items))
    return table(["package", "version"] * width, [r[: 2 * width] for r in rows])


def provenance_section(results: dict[str, Any]) -> str:
    """Task, members table, config hash, package versions and stage timings."""
    prov = results["provenance"]
    parts = [
        table(
            ["field", "value"],
            [
                ["task", prov.get("task")],
                ["config sha256", Raw(f"<code>{esc(fmt(prov.get('config_sha256')))}</code>")],
                ["store", results.get("store")],
                ["store schema", prov.get("schema_version")],
                ["ensemble_lens", prov.get("package_version")],
                ["networks", network_count(prov)],
            ],
        )
    ]
    parts.append("<h3>Ensemble members</h3>")
    if clock := stopped_early_line(stopped_early(prov["models"])):
        parts.append(note(clock))
    parts.append(
        _members_table(prov["models"]) if prov["models"] else note("The store holds no models.")
    )
    timings = prov.get("stage_timings") or {}
    parts.append("<h3>Timings per stage</h3>")
    if timings:
        total = sum(v for v in timings.values() if isinstance(v, (int, float)))
        rows = [
            [
                k,
                Num(duration(v)),
                Num(f"{100 * v / total:.1f} %") if total and isinstance(v, (int, float)) else "—",
            ]
            for k, v in timings.items()
        ]
        total_row = [Raw("<b>total</b>"), Num(duration(total)), ""]
        parts.append(table(["stage", "time", "share"], [*rows, total_row]))
    else:
        parts.append(note("No stage timings recorded."))
    versions = prov.get("package_versions") or {}
    parts.append("<h3>Package versions</h3>")
    parts.append(_versions_table(versions) if versions else note("No package versions recorded."))
    config = prov.get("config")
    if config is not None:
        parts.append(details("Configuration (JSON)", f"<pre>{esc(fmt(config))}</pre>"))
    else:
        parts.append(note("No configuration recorded in the store."))
    if prov.get("other_attrs"):
        parts.append(
            details("Other study attributes", f"<pre>{esc(fmt(prov['other_attrs']))}</pre>")
        )
    return "".join(parts)


# -------------------------------------------------------------------- similarity
def _aux_slices(name: str, aux: dict[str, Any]) -> list[tuple[str, np.ndarray]]:
    """(title, K x K matrix) per slice of an auxiliary variable (e.g. a CI's low / high)."""
    values = np.array(aux["values"], dtype=float)
    if values.ndim == 2:
        return [(name, values)]
    if values.ndim == 3 and values.shape[2] <= 3:
        dim = aux["dims"][2]
        labels = (aux.get("extra_coords") or {}).get(dim) or list(range(values.shape[2]))
        return [(f"{name} [{dim}={lab}]", values[:, :, i]) for i, lab in enumerate(labels)]
    return []


def _aux_figures(layer: dict[str, Any], metric: str, sink: FigureSink) -> str:
    out = []
    order = layer["metrics"][metric]["order"]
    for name, aux in layer["auxiliary"].items():
        if aux["metric"] != metric:
            continue
        slices = _aux_slices(name, aux)
        if not slices:
            out.append(note(f"{name} has dims {aux['dims']}; its values are in results.json."))
        rng = (0.0, 1.0) if "pvalue" in name else None
        for title, values in slices:
            svg = figures.heatmap_svg(
                values,
                layer["models"],
                order,
                title,
                cmap_name="cividis",
                value_range=rng,
                cell_format="{:.2g}",
            )
            out.append(sink.figure(svg, f"{title} (same order as {metric})"))
    return "".join(out)


def _similarity_layer(name: str, layer: dict[str, Any], sink: FigureSink) -> str:
    rows = [
        [m, e["kind"], e["mean_off_diagonal"], e["min_off_diagonal"], e["max_off_diagonal"]]
        for m, e in layer["metrics"].items()
    ]
    parts = [
        f"<h3>Layer <code>{esc(name)}</code></h3>",
        table(["metric", "kind", "mean off-diagonal", "min", "max"], rows),
    ]
    figs: list[str] = []
    for metric, entry in layer["metrics"].items():
        z = np.array(entry["linkage"], dtype=float) if entry["linkage"] else None
        matrix = np.array(entry["matrix"], dtype=float)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            parts.append(note(f"{metric}: not a square model x model matrix; see results.json."))
            continue
        svg = figures.heatmap_svg(
            matrix, layer["models"], entry["order"], f"{name}: {metric}", linkage=z
        )
        basis = "distance" if entry["kind"] == "distance" else "1 − similarity"
        cap = f"{metric} between networks, ordered by average-linkage clustering on {basis}."
        figs.append(sink.figure(svg, cap) + _aux_figures(layer, metric, sink))
    emb = layer.get("embedding")
    if emb:
        coords = np.array([emb["coords"][m] for m in layer["models"]], dtype=float)
        svg = figures.embedding_svg(
            coords, layer["models"], f"{name}: networks in 2-D", emb["source"]
        )
        share = (
            f" The two axes carry {100 * emb['explained']:.0f} % of the positive spectrum."
            if emb.get("explained") is not None
            else ""
        )
        figs.append(sink.figure(svg, f"Classical MDS of the networks on {emb['source']}.{share}"))
    else:
        parts.append(note("No 2-D embedding: the layer has neither shape_distance nor linear_cka."))
    return "".join(parts) + f'<div class="figs">{"".join(figs)}</div>'


def similarity_section(results: dict[str, Any], sink: FigureSink) -> str:
    """Per layer: summary table, clustered heatmaps (with p-values / CIs) and the MDS map."""
    layers = results["similarity"]
    if not layers:
        return note("No similarity results in the store: run the similarity stage to fill this.")
    return "".join(_similarity_layer(n, layer, sink) for n, layer in layers.items())


# -------------------------------------------------------------------- consensus
def _consensus_figures(layer: dict[str, Any], sink: FigureSink) -> str:
    rows = layer["table"]
    comps = [str(r["component"]) for r in rows]

    def col(key: str) -> np.ndarray:
        return np.array([np.nan if r[key] is None else r[key] for r in rows], dtype=float)

    figs = []
    if all(r["sharedness"] is not None for r in rows) and rows:
        null = np.nan_to_num(col("null_threshold"), nan=0.0)
        svg = figures.sharedness_svg(
            comps, col("sharedness"), col("variance"), null, col("is_consensus") > 0.5
        )
        figs.append(
            sink.figure(
                svg,
                "Sharedness per component above the null band (hatched), "
                "and against the variance each component explains.",
            )
        )
    if all(r["support"] is not None for r in rows) and rows:
        p = layer["attrs"].get("p_support")
        svg = figures.support_svg(
            comps,
            col("support"),
            col("is_consensus") > 0.5,
            float(p) if isinstance(p, (int, float)) else None,
        )
        figs.append(
            sink.figure(svg, "Fraction of member networks in which each component beats the null.")
        )
    if layer["member_support"]:
        grid = np.array([layer["member_support"][m] for m in layer["models"]], dtype=bool)
        svg = figures.member_support_svg(grid, layer["models"], comps)
        figs.append(sink.figure(svg, "Which member supports which component."))
    return f'<div class="figs">{"".join(figs)}</div>'


def _vector_figure(store: StudyStore, name: str, info: dict[str, Any], sink: FigureSink) -> str:
    if not info["drawable"]:
        return note(f"{info['mapped_var']} and input_basis have different shapes; not drawn.")
    ds = store.read_result("consensus", name)
    basis = np.asarray(ds[info["basis_var"]].values, dtype=float)
    mapped = np.asarray(ds[info["mapped_var"]].transpose(*info["dims"]).values, dtype=float)
    svg = figures.vector_scatter_svg(basis, mapped, info["component_names"])
    return sink.figure(
        svg,
        "Consensus subspace mapped onto the equivariant input basis: each "
        "aligned vector component against the matching basis component.",
    )


#: consensus attrs replaced by the probe's own count in the parameters table
_PROBE_COUNTS = {"n_extrapolation": "extrapolation"}


def _parameters_table(layer: dict[str, Any]) -> str:
    """The consensus parameters as a table. ``n_extrapolation`` is the study's extrapolation
    samples (:func:`~.results.probe_samples`: the probe's rows kept apart, or those drawn from
    a task's range), not the consensus attr (the consensus uses the fit and test rows only)."""
    counts = layer.get("probe_samples") or {}
    rows = []
    for key, value in layer["attrs"].items():
        if isinstance(value, dict):
            continue
        if key in _PROBE_COUNTS and _PROBE_COUNTS[key] in counts:
            value = counts[_PROBE_COUNTS[key]]
            source = counts.get("extrapolation_source") or "none"
            key += f" ({source}; the consensus uses the fit and test rows only)"
        shown = ", ".join(map(fmt, value)) if isinstance(value, list) else value
        rows.append([key, Raw(esc(fmt(shown))) if isinstance(shown, str) else shown])
    return table(["parameter", "value"], rows)


def _consensus_layer(store: StudyStore, name: str, layer: dict[str, Any], sink: FigureSink) -> str:
    attrs = layer["attrs"]
    untrained = bool(layer["table"]) and "untrained_r2" in layer["table"][0]
    extra = ["untrained R²", "remainder agreement"] if untrained else []
    rows = [
        [
            r["component"],
            r["sharedness"],
            r["variance"],
            r["null_threshold"],
            r["support"],
            *([r2_cell(r["untrained_r2"]), r["learned_agreement"]] if untrained else []),
            Raw('<span class="ok">yes</span>') if r["is_consensus"] else "no",
        ]
        for r in layer["table"]
    ]
    parts = [
        f"<h3>Layer <code>{esc(name)}</code></h3>",
        f"<p>{layer['n_consensus']} of {len(rows)} components are consensus "
        f"({esc(layer['null']['statement'])}). {esc(layer['formula_bridge'])}</p>",
        details("Consensus parameters", _parameters_table(layer)) if attrs else "",
    ]
    if not rows:
        return "".join([*parts, note("The consensus result holds no components.")])
    header = ["component", "sharedness", "variance", "null threshold", "support", *extra]
    parts.append(table([*header, "consensus?"], rows))
    if untrained:
        parts.append(
            note(
                "Untrained R²: how well untrained twins reproduce the component (ridge, test "
                "split). Remainder agreement: how consistently trained members carry what the "
                "twins miss; a component is learned when the twins reproduce under "
                f"{fmt(attrs.get('max_untrained_r2'))} of what trained members do, or when "
                f"that remainder (at least {fmt(attrs.get('min_learned_share'))} of its "
                "variance) agrees above "
                f"{fmt(attrs.get('untrained_threshold'))}, the most any untrained component's "
                "remainder agrees among the twins."
            )
        )
    weights = layer.get("member_weights") or {}
    if weights and len(set(weights.values())) > 1:
        listed = ", ".join(f"{m} {fmt(w)}" for m, w in weights.items())
        parts.append(
            note(
                "Consensus scores are the members' aligned projections averaged with these "
                f"weights ({attrs.get('member_weighting', 'given')}): {listed}."
            )
        )
    parts.append(_consensus_figures(layer, sink))
    if layer.get("vector"):
        parts.append(_vector_figure(store, name, layer["vector"], sink))
    return "".join(parts)


def consensus_section(results: dict[str, Any], store: StudyStore, sink: FigureSink) -> str:
    """Per layer: which components are shared beyond the null, with support and figures."""
    layers = results["consensus"]
    if not layers:
        return note("No consensus results in the store: run the consensus stage to fill this.")
    return "".join(_consensus_layer(store, n, layer, sink) for n, layer in layers.items())
