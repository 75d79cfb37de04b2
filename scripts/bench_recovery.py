"""Law recovery across the task suite: the consensus pipeline versus single networks.

For each task: train K networks, find the consensus of their latents, run symbolic regression
on it with several SR seeds, and count a seed as an exact recovery when every ground-truth
latent of the task is matched exactly (difference or ratio constant) by one of the formulas.
The same distillation (same basis map, backend, seeds and time budget) then runs on each of
the first ``--singles`` networks alone: its own top principal components, as many as the
consensus has (or as the task has latents when there is no consensus). Reported per task:
exact-recovery rate of the consensus and the median single network, mean extrapolation R^2,
and the time. ``*_best_rate`` columns count a seed when every truth is exactly recovered by
its formula with each constant at its best-supported value
(:mod:`ensemble_lens.distill.constants`: the extrapolation-range refit when that is tight and
the fit range's value lies outside it); the other columns are unchanged. With a task's truth
the extrapolation target is the truth itself there, so this column says "right form, and the
constants the fit range leaves open are those of the law", not that the networks measured
them.

Baselines (``--baselines raw,kan``), on the same tasks, backend, SR seeds and time budget:

* ``raw``: symbolic regression directly on the raw inputs and each training target, where the
  task allows it (the training inputs are the probe variables and the targets are real
  columns: the bottleneck tasks); a seed counts when every ground-truth latent is exactly
  recovered by the formula of some target column.
* ``kan``: a Kolmogorov-Arnold network (pykan, ``pip install pykan``) on the same inputs and
  targets, ``auto_symbolic``, the same exact-recovery verdict on its output formulas (one
  network, seed 0).

The "single networks" columns are the single-network distillation of Cranmer et al. (2020):
SR on one network's own latent (its top principal components).

    python scripts/bench_recovery.py                      # all 9 tasks (long: tens of minutes)
    python scripts/bench_recovery.py --tasks gravity,spring --members 4 --sr-seeds 0,1
    python scripts/bench_recovery.py --epochs-fraction 0.2   # imperfect (under-trained) members
    python scripts/bench_recovery.py --data-fraction 0.1     # members on their own small data sets
    python scripts/bench_recovery.py --tasks kepler,bottleneck --baselines raw,kan
    python scripts/bench_recovery.py --tasks screened --task-params '{"dim": 3}'
    python scripts/bench_recovery.py --tasks modular --members 6 --singles 6

A task whose known answer is a template, not one formula (modular addition), gets the
templates stage instead: per member, whether the ensemble's shared form has the truth's form
(``task.truth_template``) and gives that member integer frequencies ``k``; the single-network
column runs the same stage on one member alone.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import sympy

from ensemble_lens import open_store, run_study
from ensemble_lens.config import load_config
from ensemble_lens.distill.verdict import constants_verdict, recovered_with_best_constants
from ensemble_lens.execution import make_executor
from ensemble_lens.pipeline.distill_stage import (
    distill_subspace,
    probe_test_inputs,
    strict_recovery,
)
from ensemble_lens.pipeline.members import task_of
from ensemble_lens.pipeline.stages import StageContext
from ensemble_lens.tasks import get_task, list_tasks


def study(task: str, store: Path, args: argparse.Namespace) -> dict[str, Any]:
    ensemble: dict[str, Any] = {"seeds": list(range(args.members))}
    default = get_task(task, **args.task_params).default_train
    train: dict[str, Any] = {}
    epochs = args.epochs_fraction * default.epochs
    if args.data_fraction != 1.0:
        # every member draws its own, smaller training set; as many optimiser steps as usual
        train["n_train"] = max(default.batch_size, round(args.data_fraction * default.n_train))
        train["data_seed"] = None
        epochs /= args.data_fraction
    if train or args.epochs_fraction != 1.0:
        train["epochs"] = max(1, round(epochs))
        ensemble["train"] = train
    return {
        "name": f"recovery-{task}",
        "task": {"name": task, "params": args.task_params},
        "probe": {"n": args.probe, "n_extrapolation": 1000},
        "ensemble": ensemble,
        "consensus": {"n_null": 20},
        "distill": {"backend": args.backend, "time_budget": args.budget, "seeds": args.sr_seeds},
        "store": str(store),
    }


def recovered(per_component: list[tuple[list[Any], str]], truths: set[str], i: int, hits) -> bool:
    """Whether the formulas of the i-th SR seed exactly recover every truth (each component's
    result list holds one result per seed, in seed order; ``hits(result)``: the truths a
    result recovers)."""
    return truths <= set().union(*(hits(rs[i]) for rs, _ in per_component))


def exact_hits(r: Any) -> set[str]:
    """The truths a formula recovers by the default verdict (each float constant may move by
    2 %); a formula reduced modulo other components also by the verdict of the formula it
    replaced."""
    out = {r.truth_name} if r.exact_recovery else set()
    return out | ({r.unreduced_truth_name} if r.unreduced_exact_recovery else set())


def best_constants_hits(view: dict[str, Any], test: np.ndarray, X_test, names, truths, ids):
    """``hits(result)``: the truth a formula recovers with each constant at its best-supported
    value (the constants verdict on the searched view: its component, the members' own
    components and the extrapolation range); a formula reduced modulo other components has no
    constants verdict and keeps the default one."""
    labels, ext = list(view["labels"]), view["extrapolation"]
    verdicts: dict[int, dict[str, Any]] = {}

    def hits(r: Any) -> set[str]:
        if r.reduced_modulo or r.expr is None or r.truth_name is None:
            return exact_hits(r)
        j = labels.index(r.component)
        cons = constants_verdict(
            r.expr, X_test, view["Y"][test, j], view["M"][:, test, j], ids, names,
            extrapolation=None if ext is None else (ext[0], ext[1][:, j]),
        )  # fmt: skip
        verdicts[id(r)] = cons
        found = recovered_with_best_constants(r.expr, cons, truths[r.truth_name], X_test, names)
        return {r.truth_name} if found else set()

    hits.verdicts = verdicts  # type: ignore[attr-defined]
    return hits


def constants_brief(cons: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Each constant's verdict, consensus value, fit-range interval, extrapolation refit and
    best-supported value (4 significant figures), for the row."""

    def r4(v: Any) -> Any:
        return None if v is None else float(f"{v:.4g}")

    return [
        {
            "verdict": c["verdict"],
            "value": r4(c["value"]),
            "fit_range": [r4(c["fit_low"]), r4(c["fit_high"])],
            "members": [r4(c["low"]), r4(c["high"])],
            "extrapolation": r4(c["extrapolation"]),
            "best": r4(c["best"]),
            "best_source": c["best_source"],
        }
        for c in (cons or {}).get("constants", [])
    ]


def scores(per_component, truths: set[str], n_seeds: int, strict_hits, best_hits) -> dict[str, Any]:
    """Exact-recovery rate (default, strict and with the best-supported constants) over SR
    seeds, and mean extrapolation R^2."""
    rate = np.mean([recovered(per_component, truths, i, exact_hits) for i in range(n_seeds)])
    strict_rate = np.mean(
        [recovered(per_component, truths, i, strict_hits) for i in range(n_seeds)]
    )
    best_rate = np.mean([recovered(per_component, truths, i, best_hits) for i in range(n_seeds)])
    ext = [
        r.r2_extrapolation for rs, _ in per_component for r in rs if r.r2_extrapolation is not None
    ]
    return {
        "rate": float(rate),
        "strict": float(strict_rate),
        "best": float(best_rate),
        "extrap": float(np.mean(ext)) if ext else None,
    }


def _shown(r: Any) -> str:
    """A formula as the table shows it: with what it is reduced modulo, if anything."""
    if r.reduced_modulo:
        return f"{r.expr} (modulo component {', '.join(r.reduced_modulo)}: + {r.modulo_expr})"
    return str(r.expr)


def single_subspace(acts: np.ndarray, fit: np.ndarray, c: int) -> np.ndarray:
    """A network's own top-c principal components (fit split), on every sample."""
    mean = acts[fit].mean(0)
    _, _, vt = np.linalg.svd(acts[fit] - mean, full_matrices=False)
    return (acts - mean) @ vt[:c].T


def run_task(task_name: str, args: argparse.Namespace, root: Path, ex: Any) -> dict[str, Any]:
    start = time.perf_counter()
    cfg = load_config(study(task_name, root / f"{task_name}.zarr", args))
    run_study(cfg, executor=ex, stages=["probe", "train", "compare", "consensus"])
    store = open_store(cfg.store_path(), mode="a")
    task = task_of(cfg)
    ctx = StageContext(cfg, store, task, ex)
    layer = task.latent_layer
    ds = store.read_result("consensus", layer)
    keep = np.flatnonzero(ds["is_consensus"].values)
    truths = set(task.latents)
    members = [m for m in store.complete_models if not m.startswith("null-")]  # not the twins
    val_r2 = [store.model_attrs(m)["metrics"]["val_r2"] for m in members]
    row: dict[str, Any] = {
        "task": task_name,
        "task_params": args.task_params,
        "members": len(val_r2),
        "min_val_r2": round(float(min(val_r2)), 4),
        "consensus_components": int(keep.size),
        "member_weights": [round(float(w), 3) for w in ds["member_weight"].values],
    }
    probe = store.probe()
    fit = probe["split"].values == "fit"
    test = np.asarray(probe["split"].values).astype(str) == "test"
    X_test, names = probe_test_inputs(ctx)

    def strict(r: Any) -> set[str]:
        """The truth a formula recovers by the strict verdict (as stored: not reduced)."""
        return {r.truth_name} if strict_recovery(task, r, X_test, names) else set()

    n_seeds = len(args.sr_seeds)
    cons = {"rate": 0.0, "strict": 0.0, "best": 0.0, "extrap": None}
    row["formulas"] = []
    if keep.size:
        ids = list(ds["model"].values)
        per, view = distill_subspace(
            ctx,
            layer,
            ds["components"].values[:, keep],
            ds["member_scores"].values[:, :, keep],
            ids,
            variance=ds["variance"].values[keep],
        )
        best = best_constants_hits(view, test, X_test, names, task.latents, ids)
        cons = scores(per, truths, n_seeds, strict, best)
        row["formulas"] = [_shown(rs[0]) for rs, _ in per]
        row["constants"] = [constants_brief(best.verdicts.get(id(rs[0]))) for rs, _ in per]
    row.update(
        consensus_rate=cons["rate"],
        consensus_strict_rate=cons["strict"],
        consensus_best_rate=cons["best"],
        consensus_extrap_r2=cons["extrap"],
    )
    row["consensus_seconds"] = round(time.perf_counter() - start, 1)
    c = int(keep.size) or len(truths)
    singles = []
    for m in members[: args.singles]:
        Y = single_subspace(np.asarray(store.activations(m, layer).values, np.float64), fit, c)
        per, view = distill_subspace(ctx, layer, Y, Y[None], [m])
        best = best_constants_hits(view, test, X_test, names, task.latents, [m])
        singles.append(scores(per, truths, n_seeds, strict, best))
    row["single_rates"] = [round(x["rate"], 2) for x in singles]
    row["single_strict_rates"] = [round(x["strict"], 2) for x in singles]
    row["single_best_rates"] = [round(x["best"], 2) for x in singles]
    # medians of the unrounded rates: compared with the (unrounded) consensus rate
    row["single_median_rate"] = float(np.median([x["rate"] for x in singles])) if singles else None
    row["single_median_strict_rate"] = (
        float(np.median([x["strict"] for x in singles])) if singles else None
    )
    ext = [x["extrap"] for x in singles if x["extrap"] is not None]
    row["single_extrap_r2"] = float(np.median(ext)) if ext else None
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def _truth_key(task: Any) -> str:
    """The template key of the task's truth template (its constants given any numbers)."""
    from ensemble_lens.distill.template import make_template

    inputs = {sympy.Symbol(n) for n in task.input_names}
    free = sorted(task.truth_template.free_symbols - inputs, key=str)
    numeric = task.truth_template.subs({s: 0.3 + 0.1 * i for i, s in enumerate(free)})
    return make_template(numeric, periodic=task.periodic_inputs).key


def _template_hit(rec: dict[str, Any], member: str, key: str, tol: float = 0.05) -> bool:
    """Whether the shared form is the truth's and explains ``member`` with integer ``k``."""
    best = rec["best"]
    if rec["verdict"] != "shared form" or best is None or best["key"] != key:
        return False
    ks = best["frequencies"].get(member) or []
    return bool(best["explained"].get(member)) and all(abs(k - round(k)) <= tol for k in ks)


def run_template_task(task_name: str, args: argparse.Namespace, root: Path, ex: Any) -> dict:
    """A task whose known answer is a template (modular addition): per member, whether the
    ensemble's shared form is the truth's form and gives the member integer frequencies,
    against the same templates stage on each of the first ``--singles`` members alone."""
    from ensemble_lens.pipeline.template_stage import layer_templates

    start = time.perf_counter()
    cfg = study(task_name, root / f"{task_name}.zarr", args)
    cfg["probe"]["n_extrapolation"] = 0
    cfg["distill"]["enabled"] = False
    cfg["templates"] = {"enabled": True, "max_components": 3}
    cfg = load_config(cfg)
    run_study(cfg, executor=ex, stages=["probe", "train", "compare", "consensus", "templates"])
    store = open_store(cfg.store_path(), mode="a")
    task = task_of(cfg)
    layer, key = task.latent_layer, _truth_key(task)
    rec = store.study_attrs()["templates"][layer]["templates"]
    members = [m for m in store.complete_models if not m.startswith("null-")]
    hits = [_template_hit(rec, m, key) for m in members]
    row: dict[str, Any] = {
        "task": task_name,
        "members": len(members),
        "min_val_acc": min(store.model_attrs(m)["metrics"]["val_acc"] for m in members),
        "template": rec["best"]["template"] if rec["best"] else None,
        "verdict": rec["verdict"],
        "consensus_rate": float(np.mean(hits)),
        "frequencies": {
            m: sorted(round(k, 2) for k in ks)
            for m, ks in (rec["best"] or {}).get("frequencies", {}).items()
        },
        "consensus_seconds": round(time.perf_counter() - start, 1),
    }
    ctx = StageContext(cfg, store, task, ex)
    singles, shown = [], []
    for m in members[: args.singles]:
        alone = layer_templates(ctx, layer, [m])
        singles.append(float(_template_hit(alone, m, key)))
        best = alone["best"] or {}
        ks = sorted(round(k, 2) for k in (best.get("frequencies") or {}).get(m, []))
        shown.append(f"{alone['verdict']}: {best.get('template')} k={ks}")
    row["single_rates"] = singles
    row["single_templates"] = shown
    row["single_median_rate"] = float(np.median(singles)) if singles else None
    row["single_mean_rate"] = float(np.mean(singles)) if singles else None
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def raw_data(task: Any, n: int) -> tuple[np.ndarray, np.ndarray] | str:
    """The task's training inputs and real-valued targets (float64) when the inputs are the
    probe variables, else why raw-input baselines do not apply."""
    data = task.make_data(min(n, task.default_train.n_train + task.default_train.n_val), seed=1)
    x, y = data.get("x"), data["target"]
    if x is None or x.ndim != 2 or x.shape[1] != len(task.input_names):
        return "training inputs are not the probe variables (systems, trajectories)"
    if not y.is_floating_point():
        return "classification targets"
    Y = y.numpy().astype(np.float64)
    return x.numpy().astype(np.float64), Y.reshape(len(Y), -1)


def _truth_rate(per_column: list[list[Any]], truths: set[str], n_seeds: int, hits) -> float:
    return float(
        np.mean(
            [recovered([(rs, "") for rs in per_column], truths, i, hits) for i in range(n_seeds)]
        )
    )


def raw_baseline(task: Any, args: argparse.Namespace) -> dict[str, Any]:
    """SR from the raw inputs to each target column, every SR seed, same backend and budget."""
    from ensemble_lens.distill import distill_component
    from ensemble_lens.pipeline.distill_stage import backend_options

    data = raw_data(task, args.probe)
    if isinstance(data, str):
        return {"raw_rate": None, "raw_reason": data}
    X, Y = data
    n_fit, names = round(0.75 * len(X)), list(task.input_names)
    per_column = [
        [
            distill_component(
                X[:n_fit],
                Y[:n_fit, j],
                names,
                X_test=X[n_fit:],
                y_test=Y[n_fit:, j],
                backend=args.backend,
                backend_options=backend_options(args.backend, {}, task),
                time_budget=args.budget,
                seed=seed,
                truths=task.latents,
                component=f"y{j}",
            )
            for seed in args.sr_seeds
        ]
        for j in range(Y.shape[1])
    ]
    return {
        "raw_rate": _truth_rate(per_column, set(task.latents), len(args.sr_seeds), exact_hits),
        "raw_formulas": [str(rs[0].expr) for rs in per_column],
    }


def kan_baseline(task: Any, args: argparse.Namespace) -> dict[str, Any]:
    """pykan on the raw inputs and targets, auto_symbolic, exact recovery of its outputs."""
    try:
        import torch
        from kan import KAN
    except ImportError:
        return {"kan_rate": None, "kan_reason": "pykan is not installed (pip install pykan)"}
    from ensemble_lens.distill import exact_recovery

    data = raw_data(task, args.probe)
    if isinstance(data, str):
        return {"kan_rate": None, "kan_reason": data}
    X, Y = data
    n_fit = round(0.75 * len(X))
    t = {
        k: torch.tensor(v, dtype=torch.float32)
        for k, v in (
            ("train_input", X[:n_fit]),
            ("train_label", Y[:n_fit]),
            ("test_input", X[n_fit:]),
            ("test_label", Y[n_fit:]),
        )
    }
    start = time.perf_counter()
    model = KAN(
        width=[X.shape[1], len(task.latents), Y.shape[1]], grid=5, k=3, seed=0, auto_save=False
    )
    model.fit(t, opt="Adam", lr=1e-2, steps=args.kan_steps, log=10**9)
    model.auto_symbolic(lib=["x", "x^2", "x^3", "1/x", "sqrt", "sin", "exp"], verbose=0)
    model.fit(t, opt="Adam", lr=1e-2, steps=args.kan_steps // 4, log=10**9)
    names = list(task.input_names)
    formulas = [sympy.sympify(str(f)) for f in model.symbolic_formula(var=names)[0]]
    found = {
        name
        for name, truth in task.latents.items()
        if any(
            exact_recovery(f, truth, X=X[n_fit:], names=list(task.input_names)) for f in formulas
        )
    }
    return {
        "kan_rate": float(found == set(task.latents)),
        "kan_formulas": [str(f) for f in formulas],
        "kan_seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # tasks with a ground-truth formula (modular addition has a template, not one formula)
    ap.add_argument("--tasks", default=",".join(t for t in list_tasks() if get_task(t).latents))
    ap.add_argument("--members", type=int, default=6)
    ap.add_argument("--singles", type=int, default=4, help="single networks compared")
    ap.add_argument("--sr-seeds", default="0,1,2")
    ap.add_argument(
        "--budget",
        type=float,
        default=None,
        help="SR seconds per component (default: none, the backend's work budget decides, so "
        "the rows do not depend on the machine's load)",
    )
    ap.add_argument("--backend", default="operon", choices=["operon", "sparse"])
    ap.add_argument("--probe", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--epochs-fraction",
        type=float,
        default=1.0,
        help="train members for this fraction of the task's default epochs (imperfect members)",
    )
    ap.add_argument(
        "--data-fraction",
        type=float,
        default=1.0,
        help="each member trains on its own draw of this fraction of the task's training set "
        "(epochs scaled up to keep the number of optimiser steps)",
    )
    ap.add_argument("--baselines", default="", help="comma list of: raw, kan (see the docstring)")
    ap.add_argument("--kan-steps", type=int, default=200, help="Adam steps of the KAN baseline")
    ap.add_argument("--out", type=Path, help="also write the rows as JSON here")
    ap.add_argument(
        "--task-params",
        type=json.loads,
        default={},
        help="JSON parameters of every task, e.g. '{\"dim\": 3}' for 3-D n-body systems",
    )
    args = ap.parse_args()
    args.sr_seeds = [int(s) for s in args.sr_seeds.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, make_executor("local", workers=args.workers) as ex:
        for name in args.tasks.split(","):
            task = get_task(name, **args.task_params)
            if not task.latents and getattr(task, "truth_template", None) is not None:
                rows.append(run_template_task(name, args, Path(tmp), ex))
                print(json.dumps(rows[-1]), flush=True)
                continue
            rows.append(run_task(name, args, Path(tmp), ex))
            if "raw" in args.baselines.split(","):
                rows[-1].update(raw_baseline(task, args))
            if "kan" in args.baselines.split(","):
                rows[-1].update(kan_baseline(task, args))
            print(json.dumps(rows[-1]), flush=True)
    summary = summarize(rows)
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    exact = [r["task"] for r in rows if r["consensus_rate"] > 0]
    strict = [r["task"] for r in rows if r.get("consensus_strict_rate", 0) > 0]
    best = [r["task"] for r in rows if r.get("consensus_best_rate", 0) > 0]
    at_least = [r["task"] for r in rows if r["consensus_rate"] >= (r["single_median_rate"] or 0)]
    higher = [r["task"] for r in rows if r["consensus_rate"] > (r["single_median_rate"] or 0)]
    return {
        "tasks": len(rows),
        "exact_recovery_tasks": exact,
        "strict_exact_recovery_tasks": strict,
        "best_constants_exact_recovery_tasks": best,
        "consensus_at_least_median_single": f"{len(at_least)}/{len(rows)}",
        "consensus_strictly_higher": higher,
        "targets": "exact on >= 7 of 9; consensus >= median single on all; strictly higher on >= 3",
    }


if __name__ == "__main__":
    main()
