"""The machine-readable results of a study: every number the report shows, from the store.

:func:`collect_results` reads the study store once and returns a JSON-serialisable dict; the
HTML page and the terminal summary are both drawn from it, so the page, ``results.json`` and
the store cannot disagree. Non-finite floats become ``None`` (JSON has no NaN).

Layout of the returned dict::

    {"format": "ensemble_lens.results/1",
     "findings": [finding] (:mod:`ensemble_lens.report.findings`: what to read first),
     "provenance": {task, config, config_sha256, schema_version, package_version,
                    package_versions, stage_timings, other_attrs (members, configs: every
                    config that ran on the store), models: [{id, status, attrs}],
                    n_members, n_untrained_twins,
                    made_by: {"similarity/<layer>" | "consensus/<layer>" | "distill":
                    sha256 of the config that made it}},
     "similarity": {layer: {tag, models, models_, metrics: {name: {kind, matrix,
                    mean_off_diagonal, min_off_diagonal, max_off_diagonal, order, linkage}},
                    auxiliary: {var: {metric, dims, values, extra_coords}}, embedding, other,
                    attrs}},
     "consensus": {layer: {tag, attrs, components, models, table: [row], member_support,
                   member_weights, n_consensus, vector, probe_samples: {fit, test,
                   extrapolation, extrapolation_source},
                   null: {method, n_permutations, n_untrained, statement},
                   formula_bridge: str}},
     "formulas": [record as stored],
     "formula_checks": [{layer, component, disagreeing_members, threshold,
                         seed: {seed, base_seed, component_index, matches_config, statement},
                         front_on_pareto: [bool | None per front point]}],
     "ground_truth": {judged, truth_variables, statement},
     "seed_rule": str,
     "notes": [str]}

``seed`` is the SR seed the formula was searched with (``base + j`` for component ``j``; see
:func:`ensemble_lens.report.explain.formula_seeds`); ``front_on_pareto`` is False for a
candidate another one dominates (no more complex and no lossier). Without ground truth
``ground_truth.statement`` is "no ground truth: recovery is not judged".
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .explain import (
    formula_bridge,
    formula_seeds,
    ground_truth,
    null_used,
    pareto_mask,
    seed_rule,
)
from .findings import build_findings
from .stops import stopped_early

if TYPE_CHECKING:
    import xarray as xr

    from ..record.store import StudyStore

log = logging.getLogger(__name__)

FORMAT = "ensemble_lens.results/1"
DISAGREE_BELOW = 0.9
_PAIR_DIMS = ("model", "model_")
_AUX_SUFFIX = re.compile(r"^(pvalue|p|ci\w*|lower|upper|low|high|lo|hi|null\w*|std|se|stderr)$")
_PROVENANCE_KEYS = (
    "task",
    "config",
    "config_sha256",
    "schema_version",
    "package_version",
    "package_versions",
    "stage_timings",
)
_CONSENSUS_COLUMNS = ("sharedness", "variance", "null_threshold", "support", "is_consensus")
#: present when the consensus ran with untrained twins (consensus/untrained.py)
_UNTRAINED_COLUMNS = ("trained_r2", "untrained_r2", "learned_agreement", "is_learned")
_MAPPED_NAMES = ("mapped_components", "mapped")


# -------------------------------------------------------------------- JSON conversion
def to_json(value: Any) -> Any:
    """Recursively convert numpy values to plain Python; non-finite floats become None."""
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, np.generic):
        return to_json(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -------------------------------------------------------------------- numerics shown on the page
def is_distance(name: str, attrs: Mapping[str, Any] | None = None) -> bool:
    """Whether a similarity-result variable is a distance (0 = identical) by name or attrs."""
    kind = str((attrs or {}).get("kind", ""))
    return kind == "distance" or "distance" in name or name.endswith("_dist")


def to_distance(matrix: np.ndarray, distance: bool) -> np.ndarray:
    """Symmetric (K, K) distances: the matrix itself or ``1 - similarity``.

    The result is symmetrised (a NaN entry takes its transpose's value), clipped at 0 with a
    zero diagonal; pairs missing both ways are set to the largest finite distance (or 1).
    """
    m = np.asarray(matrix, dtype=np.float64)
    d = m if distance else 1.0 - m
    d = 0.5 * (np.where(np.isnan(d), d.T, d) + np.where(np.isnan(d.T), d, d.T))
    finite = d[np.isfinite(d)]
    d = np.where(np.isfinite(d), d, finite.max() if finite.size else 1.0)
    d = np.clip(d, 0.0, None)
    np.fill_diagonal(d, 0.0)
    return d


def cluster_order(distance: np.ndarray) -> tuple[list[int], np.ndarray | None]:
    """Average-linkage clustering of a (K, K) distance matrix.

    Returns the optimal leaf order and the scipy linkage matrix ((K - 1, 4); None for K < 2).
    """
    from scipy.cluster.hierarchy import average, leaves_list, optimal_leaf_ordering
    from scipy.spatial.distance import squareform

    k = distance.shape[0]
    if k < 2:
        return list(range(k)), None
    condensed = squareform(distance, checks=False)
    z = average(condensed)
    if k > 2:
        z = optimal_leaf_ordering(z, condensed)
    return [int(i) for i in leaves_list(z)], z


def classical_mds(distance: np.ndarray, n_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Classical (Torgerson) multidimensional scaling.

    Parameters
    ----------
    distance
        (K, K) symmetric distances.
    n_components
        Embedding dimensions kept (fewer when B has fewer positive eigenvalues).

    Returns
    -------
    coords
        (K, n_components) coordinates; Euclidean distances between rows reproduce
        ``distance`` exactly when it is Euclidean of rank <= n_components. Columns beyond the
        positive spectrum are zero. Each column's largest-magnitude entry is positive.
    eigenvalues
        (K,) eigenvalues of the double-centred matrix ``B = -J D^2 J / 2``, descending.
    """
    d = np.asarray(distance, dtype=np.float64)
    k = d.shape[0]
    j = np.eye(k) - np.full((k, k), 1.0 / k)
    b = -0.5 * j @ (d**2) @ j
    w, v = np.linalg.eigh(0.5 * (b + b.T))
    w, v = w[::-1], v[:, ::-1]
    coords = np.zeros((k, n_components))
    tol = 1e-10 * max(float(np.abs(w).max(initial=0.0)), 1.0)
    for c in range(min(n_components, k)):
        if w[c] > tol:
            col = v[:, c] * math.sqrt(w[c])
            coords[:, c] = col if col[np.argmax(np.abs(col))] >= 0 else -col
    return coords, w


def _off_diagonal(matrix: np.ndarray) -> np.ndarray:
    k = matrix.shape[0]
    vals = matrix[~np.eye(k, dtype=bool)] if matrix.shape == (k, k) else matrix.ravel()
    return vals[np.isfinite(vals)]


# -------------------------------------------------------------------- provenance
def _model_entry(store: StudyStore, model_id: str) -> dict[str, Any]:
    status = store.status(model_id)
    attrs = store.model_attrs(model_id) if store.has_model(model_id) else {}
    return {"id": model_id, "status": attrs.get("status", status), "attrs": to_json(attrs)}


def provenance(store: StudyStore) -> dict[str, Any]:
    """Study attributes (task, config, hash, versions, timings), every model's attributes,
    and the networks counted apart: ``n_members`` (trained or ingested) and
    ``n_untrained_twins`` (``source`` "untrained", the consensus null's twins)."""
    attrs = store.study_attrs()
    out: dict[str, Any] = {key: to_json(attrs.get(key)) for key in _PROVENANCE_KEYS}
    out["other_attrs"] = to_json({k: v for k, v in attrs.items() if k not in _PROVENANCE_KEYS})
    out["models"] = [_model_entry(store, m) for m in store.models]
    twins = sum(m["attrs"].get("source") == "untrained" for m in out["models"])
    out["n_members"] = len(out["models"]) - twins
    out["n_untrained_twins"] = twins
    out["stopped_early"] = stopped_early(out["models"])  # members the clock stopped
    return out


def network_count(prov: Mapping[str, Any]) -> str:
    """The members and the untrained twins counted apart, e.g. ``"8 networks + 8 untrained
    twins"`` (``"8 networks"`` without twins).

    >>> network_count({"n_members": 8, "n_untrained_twins": 8})
    '8 networks + 8 untrained twins'
    """
    members, twins = prov.get("n_members", 0), prov.get("n_untrained_twins", 0)
    text = f"{members} network{'s' if members != 1 else ''}"
    return text + (f" + {twins} untrained twin{'s' if twins != 1 else ''}" if twins else "")


def probe_samples(store: StudyStore, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The probe's rows by role: ``fit``, ``test``, and ``extrapolation``: the probe's rows
    kept apart, else, for a task's study (``config``'s ``task``), the ``probe.n_extrapolation``
    samples drawn from the task's extrapolation range; ``extrapolation_source`` says which."""
    if not store.has_probe():
        return {}
    split = np.asarray(store.probe()["split"].values)
    ext, source = int(store.n_extrapolation), "probe rows kept apart"
    cfg = config if isinstance(config, Mapping) else {}
    drawn = (cfg.get("probe") or {}).get("n_extrapolation")
    if not ext and cfg.get("task") and isinstance(drawn, int) and drawn > 0:
        ext, source = drawn, "drawn from the task's extrapolation range"
    return {
        "fit": int((split == "fit").sum()),
        "test": int((split == "test").sum()),
        "extrapolation": ext,
        "extrapolation_source": source if ext else None,
    }


# -------------------------------------------------------------------- similarity
def _split_variables(ds: xr.Dataset) -> tuple[list[str], dict[str, str], list[str]]:
    """(metrics, {auxiliary var: its metric}, other vars) of a similarity Dataset."""
    pairwise = sorted(str(n) for n, v in ds.data_vars.items() if tuple(v.dims[:2]) == _PAIR_DIMS)
    aux: dict[str, str] = {}
    for name in pairwise:
        for base in pairwise:
            rest = name[len(base) + 1 :]
            if base != name and name.startswith(base + "_") and _AUX_SUFFIX.match(rest):
                aux[name] = base
    metrics = [n for n in pairwise if n not in aux and ds[n].ndim == 2]
    other = sorted(str(n) for n in ds.data_vars if str(n) not in metrics and str(n) not in aux)
    return metrics, aux, other


def _metric_entry(name: str, da: xr.DataArray, same_ids: bool) -> dict[str, Any]:
    values = np.asarray(da.values)
    off = _off_diagonal(values.astype(np.float64))
    distance = is_distance(name, da.attrs)
    order, linkage = list(range(values.shape[0])), None
    if same_ids and values.shape[0] == values.shape[1]:
        order, linkage = cluster_order(to_distance(values, distance))
    return {
        "kind": "distance" if distance else "similarity",
        "matrix": to_json(values),
        "mean_off_diagonal": to_json(off.mean()) if off.size else None,
        "min_off_diagonal": to_json(off.min()) if off.size else None,
        "max_off_diagonal": to_json(off.max()) if off.size else None,
        "order": order,
        "linkage": to_json(linkage) if linkage is not None else None,
    }


def _embedding(ds: xr.Dataset, metrics: list[str], ids: list[str]) -> dict[str, Any] | None:
    if "shape_distance" in metrics:
        source, d = "shape_distance", to_distance(ds["shape_distance"].values, True)
    elif "linear_cka" in metrics:
        source, d = "1 - linear_cka", to_distance(ds["linear_cka"].values, False)
    else:
        return None
    if len(ids) < 2:
        return None
    coords, eig = classical_mds(d, 2)
    positive = eig[eig > 0]
    explained = float(eig[:2].clip(min=0).sum() / positive.sum()) if positive.size else None
    return {
        "source": source,
        "coords": {m: to_json(coords[i]) for i, m in enumerate(ids)},
        "eigenvalues": to_json(eig),
        "explained": explained,
    }


def _aux_entry(da: xr.DataArray, metric: str) -> dict[str, Any]:
    extra = {str(d): to_json(da[d].values) for d in da.dims[2:] if d in da.coords}
    return {
        "metric": metric,
        "dims": [str(d) for d in da.dims],
        "values": to_json(da.values),
        "extra_coords": extra,
    }


def similarity_layer(ds: xr.Dataset) -> dict[str, Any]:
    """JSON summary of one layer's similarity Dataset (see the module docstring)."""
    ids = [str(m) for m in ds["model"].values] if "model" in ds.coords else []
    ids_ = [str(m) for m in ds["model_"].values] if "model_" in ds.coords else ids
    metrics, aux, other = _split_variables(ds)
    same = ids == ids_
    return {
        "tag": ds.attrs.get("tag"),
        "models": ids,
        "models_": ids_,
        "metrics": {m: _metric_entry(m, ds[m], same) for m in metrics},
        "auxiliary": {name: _aux_entry(ds[name], base) for name, base in aux.items()},
        "embedding": _embedding(ds, metrics, ids) if same else None,
        "other": {n: {"dims": list(ds[n].dims), "values": to_json(ds[n].values)} for n in other},
        "attrs": to_json({k: v for k, v in ds.attrs.items() if k != "tag"}),
    }


# -------------------------------------------------------------------- consensus
def _column(ds: xr.Dataset, name: str, n: int) -> list[Any]:
    if name not in ds.data_vars:
        return [None] * n
    return to_json(np.asarray(ds[name].values).reshape(-1))


def _vector_info(ds: xr.Dataset) -> dict[str, Any] | None:
    mapped = next((n for n in _MAPPED_NAMES if n in ds.data_vars), None)
    if "input_basis" not in ds.data_vars or mapped is None:
        return None
    basis, target = ds["input_basis"], ds[mapped]
    ok = basis.ndim == 2 and basis.shape == target.shape and basis.dims[0] == "sample"
    return {
        "basis_var": "input_basis",
        "mapped_var": mapped,
        "dims": list(target.dims),
        "drawable": bool(ok),
        "component_names": [str(c) for c in target[target.dims[-1]].values] if ok else [],
    }


def consensus_layer(ds: xr.Dataset) -> dict[str, Any]:
    """JSON summary of one layer's consensus Dataset: per-component table and support."""
    n = int(ds.sizes.get("component", 0))
    comps = to_json(ds["component"].values) if "component" in ds.coords else list(range(n))
    names = _CONSENSUS_COLUMNS + tuple(c for c in _UNTRAINED_COLUMNS if c in ds.data_vars)
    cols = {c: _column(ds, c, n) for c in names}
    table = [{"component": comps[i], **{c: cols[c][i] for c in cols}} for i in range(n)]
    models: list[str] = []
    support: dict[str, list[Any]] = {}
    if "member_support" in ds.data_vars:
        ms = ds["member_support"].transpose("model", "component")
        models = [str(m) for m in ms["model"].values] if "model" in ms.coords else []
        support = {m: to_json(ms.values[i]) for i, m in enumerate(models)}
    weights: dict[str, Any] = {}
    if "member_weight" in ds.data_vars and "model" in ds["member_weight"].coords:
        w = ds["member_weight"]
        weights = {str(m): to_json(v) for m, v in zip(w["model"].values, w.values, strict=True)}
    return {
        "tag": ds.attrs.get("tag"),
        "attrs": to_json({k: v for k, v in ds.attrs.items() if k != "tag"}),
        "components": comps,
        "models": models,
        "table": table,
        "member_support": support,
        "member_weights": weights,
        "n_consensus": sum(1 for row in table if row["is_consensus"]),
        "vector": _vector_info(ds),
    }


# -------------------------------------------------------------------- formulas and the whole
def formulas_and_laws(store: StudyStore) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The stored formula records and the templates stage's laws per layer, JSON-ready; a
    formula that its layer's shared template shows to be an average over different laws is
    marked so (:func:`~ensemble_lens.distill.mixture.mark_mixtures`: ``is_result`` False, flag
    ``"mixture"``). The one reading of both channels: results.json, ``inspect`` and the run
    summary all see the same records."""
    from ..distill.mixture import mark_mixtures

    laws = to_json(store.study_attrs().get("templates") or {})
    formulas = []
    for rec in to_json(store.read_formulas()):
        templates = (laws.get(str(rec.get("layer"))) or {}).get("templates")
        formulas.extend(mark_mixtures([rec], templates))
    return formulas, laws


def formula_checks(formulas: list[dict[str, Any]], config: Any = None) -> list[dict[str, Any]]:
    """Per formula, the members whose own latent it explains with R^2 below 0.9, the SR seed
    it was searched with (base + component index, from ``config``'s ``distill.seeds``) and
    which front candidates are on the Pareto front."""
    out = []
    seeds = formula_seeds(formulas, config)
    for rec, seed in zip(formulas, seeds, strict=True):
        r2 = rec.get("member_r2") or {}
        low = sorted(m for m, v in r2.items() if v is None or v < DISAGREE_BELOW)
        out.append(
            {
                "layer": rec.get("layer"),
                "component": rec.get("component"),
                "disagreeing_members": low,
                "threshold": DISAGREE_BELOW,
                "seed": seed,
                "front_on_pareto": pareto_mask(rec.get("front") or []),
            }
        )
    return out


def collect_results(store: StudyStore) -> dict[str, Any]:
    """Every number the report shows, straight from ``store``, as JSON-serialisable data.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from ensemble_lens.record.store import open_store
    >>> store = open_store(os.path.join(tempfile.mkdtemp(), "s.zarr"), "w")
    >>> collect_results(store)["similarity"]
    {}
    """
    notes = []
    sim = {
        layer: similarity_layer(store.read_result("similarity", layer))
        for layer in store.result_layers("similarity")
    }
    cons = {
        layer: consensus_layer(store.read_result("consensus", layer))
        for layer in store.result_layers("consensus")
    }
    formulas, laws = formulas_and_laws(store)
    prov = provenance(store)
    samples = probe_samples(store, prov.get("config"))
    for layer, entry in cons.items():
        entry["probe_samples"] = samples
        entry["null"] = null_used(entry["attrs"])
        entry["formula_bridge"] = formula_bridge(
            entry, [f for f in formulas if f.get("layer") == layer]
        )
    # which config (its sha256, a key of provenance.other_attrs.configs) made each result
    prov["made_by"] = {
        **{f"similarity/{k}": v["attrs"].get("config_sha256") for k, v in sim.items()},
        **{f"consensus/{k}": v["attrs"].get("config_sha256") for k, v in cons.items()},
        "distill": store.formulas_config_sha256(),
    }
    if not store.models:
        notes.append("the store holds no models")
    for kind, found in (("similarity", sim), ("consensus", cons), ("formulas", formulas)):
        if not found:
            notes.append(f"no {kind} results in the store")
    return {
        "format": FORMAT,
        "store": store.path.name,
        # what the study found, results first; `formulas` and `laws` are the evidence
        "findings": build_findings(formulas, laws),
        "provenance": prov,
        "similarity": sim,
        "consensus": cons,
        "formulas": formulas,
        "formula_checks": formula_checks(formulas, prov.get("config")),
        # the templates stage per layer: groups (sizes, members, permutation p), each group's
        # law and template with verdicts, the shared template with its constants per member
        "laws": laws,
        "ground_truth": ground_truth(store, formulas),
        "seed_rule": seed_rule(prov.get("config")),
        "notes": notes,
    }
