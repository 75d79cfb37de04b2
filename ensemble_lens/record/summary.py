"""What a study store holds, as rich renderables for ``ensemble-lens inspect``."""

from __future__ import annotations

from typing import Any

from .store import StudyStore


def store_renderables(store: StudyStore) -> list[Any]:
    """A header (path, schema, probe variables) and a table of models, layers, shapes, status."""
    from rich.table import Table

    from ..report.html import fmt_r2

    attrs = store.study_attrs()
    head = Table.grid(padding=(0, 2))
    head.add_row("store", str(store.path))
    head.add_row("schema version", str(attrs.get("schema_version")))
    head.add_row("written by", f"ensemble-lens {attrs.get('package_version', '?')}")
    if attrs.get("study"):
        head.add_row("study", f"{attrs.get('study')} (task {attrs.get('task')})")
    if store.has_probe():
        probe = store.probe()
        n_test = int((probe["split"].values == "test").sum())
        apart = (
            f", {store.n_extrapolation} extrapolation kept apart" if store.n_extrapolation else ""
        )
        head.add_row(
            "probe",
            f"{store.n_samples} samples ({n_test} test{apart}), variables: "
            + ", ".join(store.probe_names),
        )
        if store.truth_names():
            head.add_row("ground truth", ", ".join(store.truth_names()))
    else:
        head.add_row("probe", "none written yet")
    twins = sum(
        store.status(m) == "complete" and store.model_attrs(m).get("source") == "untrained"
        for m in store.models
    )
    counted = f"{len(store.models) - twins} members" + (
        f" + {twins} untrained twins" if twins else ""
    )
    table = Table(title=counted, show_edge=False)
    for col in ("model", "status", "source", "seed", "layer", "shape", "val_r2"):
        table.add_column(col)
    for mid in store.models:
        status = store.status(mid)
        if status != "complete":
            table.add_row(mid, f"[red]{status}[/]", "", "", "", "", "")
            continue
        meta = store.model_attrs(mid)
        r2 = meta.get("metrics", {}).get("val_r2")
        for i, layer in enumerate(store.layers(mid) or [""]):
            shape = tuple(store.activations(mid, layer).shape) if layer else ()
            first = i == 0
            table.add_row(
                mid if first else "",
                status if first else "",
                str(meta.get("source", "")) if first else "",
                str(meta.get("seed", "")) if first else "",
                layer,
                "x".join(map(str, shape)),
                fmt_r2(r2) if first and isinstance(r2, float) else "",
            )
    return [head, table]
