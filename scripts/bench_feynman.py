"""The AI Feynman equations through an ensemble, against direct symbolic regression.

Each equation of ``scripts/data/feynman_equations.csv`` (Udrescu & Tegmark 2020, the
ground-truth track of SRBench; the source is named in the file) becomes a
:class:`~ensemble_lens.tasks.FormulaTask` at each noise level, and three routes search for
its law with the same engine, operators, SR seeds and search budget (counted in work:
population x generations, never seconds):

(a) ``ensemble``: K member networks trained on the same noisy data, their consensus latent,
    symbolic regression on the consensus (the study path of ``ensemble-lens run``);
(b) ``direct``: symbolic regression on the members' noisy training rows themselves (its
    formula chosen on their noisy validation rows, as the members' training is);
(c) ``single``: symbolic regression on one network's output (the first member).

A route's *rate* is the share of SR seeds whose formula is an exact recovery by the project's
rule
(:func:`ensemble_lens.distill.exact_recovery`: the formula minus an affine image of the truth
is constant; SRBench's "difference or ratio is a constant" is its two special cases, and a
latent is known only up to scale and offset) on the held-out points and on the extrapolation
range alike, with the constants' fitted digits as the only slack (:func:`exact_everywhere`;
``rate_held_out_only`` is the verdict the search itself returned, on the held-out points,
and every seed's formula, unrounded form and verdicts are kept in the row). Each route also
gets R^2 against the noise-free law on held-out probe points and on the extrapolation range
(after the affine map fitted on the held-out points; the same map carries to the
extrapolation range), and its wall time.

One row per (equation, noise), written as one JSON file; a rerun skips the rows already
written, so an interrupted run resumes. Rows are sharded by equation through the project's
executor (``--profile configs/profiles/local.yaml``, ``.../slurm.yaml``; serial by default)
and gathered into ``--out``'s ``rows.json``.

    python scripts/bench_feynman.py --subset 8                  # the first 8 (fewest inputs)
    python scripts/bench_feynman.py --equations I.12.1,II.3.24 --noise 0,0.1
    python scripts/bench_feynman.py --subset 100 --profile configs/profiles/slurm.yaml

More SR seeds later: a second run with other ``--sr-seeds`` into another ``--out`` (it trains
the same members again: training is deterministic), then one table of both, with the gap
between the ensemble route and direct search and its bootstrap interval over equations:

    python scripts/bench_feynman.py --subset 8 --sr-seeds 2,3 --out runs/more
    python scripts/bench_feynman.py --collect --out runs/bench_feynman --merge runs/more
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import sympy

DATA = Path(__file__).with_name("data") / "feynman_equations.csv"
UNITS = Path(__file__).with_name("data") / "feynman_units.csv"


def read_equations(path: Path = DATA) -> list[dict[str, Any]]:
    """The table's equations: name, output, formula and ``{variable: [low, high]}`` in order
    (the listed variables are counted: the table's own count is wrong in a few rows)."""
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    out = []
    for row in csv.reader(lines[1:]):
        if not row or not row[0]:
            continue
        cells = row[5:]
        variables = {
            cells[i]: [float(cells[i + 1]), float(cells[i + 2])]
            for i in range(0, len(cells) - 2, 3)
            if cells[i]
        }
        out.append({"name": row[0], "output": row[2], "formula": row[3], "variables": variables})
    return out


def with_units(eq: dict[str, Any], path: Path = UNITS) -> dict[str, Any]:
    """The equation with ``dimensions`` (``distill.dimensions``: its inputs' units and its
    output's) from the units table (``--dimensions``); one line when the table lacks one."""
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    units = {(r[0], r[1]): r[2] for r in csv.reader(lines[1:]) if r}
    missing = [v for v in [*eq["variables"], eq["output"]] if (eq["name"], v) not in units]
    if missing:
        raise SystemExit(f"--dimensions: {path.name} gives no unit for {missing} of {eq['name']}")
    variables = {v: units[(eq["name"], v)] for v in eq["variables"]}
    return {**eq, "dimensions": {"variables": variables, "target": units[eq["name"], eq["output"]]}}


def select(equations: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    """``--equations`` by name (in the order given), else the first ``--subset`` of those with
    at most ``--max-inputs`` inputs, fewest inputs first (the table's order within)."""
    if args.equations:
        by_name = {e["name"]: e for e in equations}
        names = args.equations.split(",")
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise SystemExit(f"--equations: unknown equation {unknown[0]!r} (see {DATA.name})")
        return [by_name[n] for n in names]
    small = [e for e in equations if len(e["variables"]) <= args.max_inputs]
    small.sort(key=lambda e: len(e["variables"]))
    return small[: args.subset]


def in_log(eq: dict[str, Any]) -> dict[str, Any]:
    """The equation with its law as ``log(law)`` (``--log-target``): every route then trains
    and searches the logarithm, where a positive law spanning decades has its small values
    weighed like its large ones, and the noise (a fraction of the target's standard
    deviation) is relative. A law that is not positive on its ranges is one line: its log
    would be undefined on part of them, and the task would sample the rest only."""
    from ensemble_lens.tasks import FormulaTask

    task = FormulaTask(eq["formula"], eq["variables"], output=eq["output"])
    for extrapolate in (False, True):
        law = task.law(task.sample_probe(2000, 0, extrapolate=extrapolate).astype(np.float64))
        if not (law > 0).all():
            where = "extrapolation ranges" if extrapolate else "ranges"
            raise SystemExit(f"--log-target: the law of {eq['name']} ({eq['formula']}) is not "
                             f"positive on its {where}")  # fmt: skip
    return {**eq, "formula": f"log({eq['formula']})", "output": f"log_{eq['output']}"}


def row_equation(row: dict[str, Any], table: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The equation as the row ran it: the table's ranges with the row's formula (its law, or
    ``log(law)`` under ``--log-target``; the table's when the row names none)."""
    eq = table[row["equation"]]
    return {**eq, "formula": row.get("formula", eq["formula"])}


def study_config(eq: dict[str, Any], noise: float, store: Path, opts: dict[str, Any]) -> dict:
    return {
        "name": f"feynman-{eq['name']}-{noise}",
        "task": {
            "formula": eq["formula"],
            "variables": eq["variables"],
            "noise": noise,
            "n": opts["n"],
            "output": eq["output"],
        },
        "probe": {"n": opts["probe"], "n_extrapolation": 1000},
        "ensemble": {
            # one draw of rows for every seed, or (--independent-data) one seed per draw
            "seeds": list(range(opts["members"] // len(data_seeds(opts)))),
            "data_subsets": len(data_seeds(opts)),
            # the task's own training (epochs, L-BFGS polish) unless --epochs is given
            **({"train": {"epochs": opts["epochs"]}} if opts["epochs"] else {}),
        },
        "consensus": {"n_null": 20},
        "distill": {
            **search_settings(opts),
            **({"dimensions": eq["dimensions"]} if eq.get("dimensions") else {}),
        },
        "execution": {"scheduler": "serial"},
        "store": str(store),
    }


def data_seeds(opts: dict[str, Any]) -> list[int]:
    """The data seeds of the members' training rows: 0 for all (members differ by their
    initialisation and batch order only), or one per member (``--independent-data``: each
    its own draw of inputs and noise, ``ensemble.data_subsets``)."""
    return list(range(opts["members"])) if opts.get("independent_data") else [0]


def search_settings(opts: dict[str, Any]) -> dict[str, Any]:
    """The one search budget every route gets: work (population x generations), with a time
    limit far above it so that the work, not the clock, ends every search."""
    return {
        "backend": "operon",
        "time_budget": 3600.0,
        "seeds": opts["sr_seeds"],
        "options": {
            "population_size": opts["population"],
            "generations": opts["generations"],
            "max_points": opts["max_points"],
        },
    }


def truth_r2(expr: Any, names: list[str], law: Any, X_test, X_ext) -> tuple[float, float | None]:
    """R^2 of a formula against the noise-free law on held-out and extrapolation points,
    after the affine map fitted on the held-out points (a latent has its own scale)."""
    from ensemble_lens.distill._expr import evaluate
    from ensemble_lens.tasks import r2_score

    def fit(X):
        f = evaluate(expr, X, names)
        return np.broadcast_to(np.nan_to_num(f, nan=0.0, posinf=0.0, neginf=0.0), (len(X),))

    t_test = law(X_test)
    A = np.stack([fit(X_test), np.ones(len(X_test))], 1)
    coef = np.linalg.lstsq(A, t_test, rcond=None)[0]
    r2_test = r2_score(t_test, A @ coef)
    if X_ext is None or not len(X_ext):
        return r2_test, None
    r2_ext = r2_score(law(X_ext), np.stack([fit(X_ext), np.ones(len(X_ext))], 1) @ coef)
    return r2_test, r2_ext


def exact_everywhere(
    expr: Any, truth: Any, names: list[str], X_test: np.ndarray, X_ext: np.ndarray
) -> bool:
    """Whether the formula ``expr`` (unrounded; None: no formula) is the law up to its fitted
    constants: :func:`~ensemble_lens.distill.exact_recovery` by its default rule (each float
    constant moved by at most 2 %, an affine image of the law to 1e-6 of its spread) on the
    held-out points and on the extrapolation range alike.

    The project's rule was 1e-3 on held-out points when this benchmark started; that let a
    formula of another form pass when it matched a smooth law that closely where it was
    fitted: ``1.296*alpha*n*exp(exp(asin(0.334*alpha*n))) - 1.025`` passed for
    ``1 + n*alpha/(1 - n*alpha/3)`` on ``n, alpha`` in [0, 1], and
    ``0.28*theta + 8.4*exp(-1.15*theta)*cos(1.28*theta - 4.38)`` for ``exp(-theta**2/2)`` on
    [1, 3]. This is SRBench's "symbolic solution" in numbers: the difference or ratio to the
    law (after its affine map) is constant.
    """
    from ensemble_lens.distill import exact_recovery

    if expr is None:
        return False
    return all(exact_recovery(expr, truth, X=X, names=names) for X in (X_test, X_ext))


def route_summary(
    results: list[Any], names, law, X_test, X_ext, seconds: float, truth: Any
) -> dict:
    """Rate over SR seeds (:func:`exact_everywhere`), every seed's formula, verdicts and
    canonical front, and the first seed's R^2 against the law."""
    first = results[0]
    r2s = truth_r2(first.expr, names, law, X_test, X_ext) if first.expr is not None else (None,) * 2
    exact = [exact_everywhere(r.exact_expr, truth, names, X_test, X_ext) for r in results]
    return {
        "rate": float(np.mean(exact)),
        "rate_held_out_only": float(np.mean([bool(r.exact_recovery) for r in results])),
        "seeds": [
            {
                "seed": int(r.seed),
                "formula": None if r.expr is None else str(r.expr),
                "exact_form": None if r.exact_expr is None else sympy.srepr(r.exact_expr),
                "exact_held_out": bool(r.exact_recovery),
                "exact": e,
                # what records.pick needs to choose among seeds (the study's answer)
                "r2_test": None if r.r2_test is None else float(r.r2_test),
                "complexity": None if r.expr is None else int(r.complexity),
                "selection_floor": None if r.selection_floor is None else float(r.selection_floor),
                # the canonical front the pick came from: tells a search that never found
                # the law from a selection that passed it over
                "front": list(r.front),
            }
            for r, e in zip(results, exact, strict=True)
        ],
        "formula": None if first.expr is None else str(first.expr),
        "r2_test": None if r2s[0] is None else round(float(r2s[0]), 5),
        "r2_extrapolation": None if r2s[1] is None else round(float(r2s[1]), 5),
        "seconds": round(seconds, 1),
    }


def run_row(eq: dict[str, Any], noise: float, opts: dict[str, Any], out: str) -> dict[str, Any]:
    """One (equation, noise) row; read back when its file exists (resume)."""
    from ensemble_lens import open_store, run_study
    from ensemble_lens.config import load_config
    from ensemble_lens.distill import distill_component
    from ensemble_lens.execution import SerialExecutor
    from ensemble_lens.pipeline.distill_stage import (
        backend_options,
        distill_subspace,
        layer_units,
    )
    from ensemble_lens.pipeline.members import task_of
    from ensemble_lens.pipeline.stages import StageContext

    path = Path(out) / "rows" / f"{eq['name']}__noise{noise:g}.json"
    if path.exists():
        return json.loads(path.read_text())
    store_path = Path(out) / "stores" / f"{eq['name']}__noise{noise:g}.zarr"
    shutil.rmtree(store_path, ignore_errors=True)  # a row is all or nothing
    start = time.perf_counter()
    cfg = load_config(study_config(eq, noise, store_path, opts))
    ex = SerialExecutor()
    run_study(cfg, executor=ex, stages=["probe", "train", "compare", "consensus"])
    store = open_store(cfg.store_path(), mode="a")
    task = task_of(cfg)
    ctx = StageContext(cfg, store, task, ex)
    layer, names = task.latent_layer, list(task.input_names)
    probe = store.probe()
    split = np.asarray(probe["split"].values).astype(str)
    X = probe["inputs"].sel(variable=names).values.astype(np.float64)
    X_test = X[split == "test"]
    # the draw the distill stage checks formulas on (probe seed + 1)
    X_ext = task.sample_probe(1000, cfg.probe.seed + 1, extrapolate=True).astype(np.float64)
    ds = store.read_result("consensus", layer)
    keep = np.flatnonzero(ds["is_consensus"].values)
    members = [m for m in store.complete_models if not m.startswith("null-")]
    row: dict[str, Any] = {
        "equation": eq["name"],
        "formula": eq["formula"],
        "inputs": len(names),
        "noise": noise,
        "members": len(members),
        "independent_data": bool(opts.get("independent_data")),
        "dimensions": bool(eq.get("dimensions")),
        "min_val_r2": round(min(store.model_attrs(m)["metrics"]["val_r2"] for m in members), 5),
        "consensus_components": int(keep.size),
        "train_seconds": round(time.perf_counter() - start, 1),
    }
    args = (names, task.law, X_test, X_ext)
    truth = task.latents[task.output]

    t0 = time.perf_counter()  # (a) the consensus of the ensemble
    if keep.size:
        ids = [str(m) for m in ds["model"].values]
        per, _ = distill_subspace(
            ctx, layer, ds["components"].values[:, keep], ds["member_scores"].values[:, :, keep],
            ids, variance=ds["variance"].values[keep], units=layer_units(ctx, layer, ids),
        )  # fmt: skip
        seconds = time.perf_counter() - t0  # the component recovering the law most often
        summaries = [
            {**route_summary(results, *args, seconds, truth), "component": i}
            for i, (results, _) in enumerate(per)
        ]
        row["ensemble"] = max(summaries, key=lambda v: v["rate"])
    else:
        row["ensemble"] = {"rate": 0.0, "formula": None, "why": "no consensus component"}

    t0 = time.perf_counter()  # (b) direct search on the members' own noisy training rows
    n_train, n_val = task.default_train.n_train, task.default_train.n_val
    # every row any member trained on: one draw (data seed 0), or one per member
    draws = [task.training_data(n_train + n_val, seed=s) for s in data_seeds(opts)]
    X_fit = np.concatenate([x[:n_train] for x, _ in draws])
    y_fit = np.concatenate([y[:n_train] for _, y in draws])
    X_val = np.concatenate([x[n_train:] for x, _ in draws])
    y_val = np.concatenate([y[n_train:] for _, y in draws])
    opts_b = backend_options("operon", dict(cfg.distill.options), task)
    dims = cfg.distill.dimensions.dimensions() if cfg.distill.dimensions else None
    direct = [
        distill_component(
            X_fit,
            y_fit,
            names,
            X_test=X_val,
            y_test=y_val,
            X_extrap=X_ext,
            y_extrap=task.law(X_ext),
            backend="operon",
            backend_options=opts_b,
            time_budget=cfg.distill.time_budget,
            seed=s,
            truths=task.latents,
            component="direct",
            dimensions=dims,
        )
        for s in cfg.distill.seeds
    ]
    row["direct"] = route_summary(direct, *args, time.perf_counter() - t0, truth)

    t0 = time.perf_counter()  # (c) one network's output, in its own (the target's) units
    Y = np.asarray(store.activations(members[0], layer).values, np.float64)
    per, _ = distill_subspace(ctx, layer, Y, Y[None], [members[0]], units=Y)
    row["single"] = route_summary(per[0][0], *args, time.perf_counter() - t0, truth)
    row["seconds"] = round(time.perf_counter() - start, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row, indent=1))
    shutil.rmtree(store_path, ignore_errors=True)
    return row


def judging_draws(eq: dict[str, Any]) -> tuple[list[str], Any, np.ndarray, np.ndarray]:
    """The variable names, the law and the fresh draws (seeds 11 and 12) of the training and
    extrapolation ranges on which --collect judges formulas again."""
    from ensemble_lens.tasks import FormulaTask

    task = FormulaTask(eq["formula"], eq["variables"], output=eq["output"])
    X = task.sample_probe(1000, 11).astype(np.float64)
    X_ext = task.sample_probe(1000, 12, extrapolate=True).astype(np.float64)
    return list(task.input_names), task.latents[task.output], X, X_ext


def rejudge(row: dict[str, Any], eq: dict[str, Any]) -> dict[str, Any]:
    """The row with every seed's verdict and each route's rate recomputed by
    :func:`exact_everywhere`, on fresh draws of the training and extrapolation ranges (the
    unrounded form when the row kept it, else the displayed formula, whose rounded constants
    still move by 2 %; ``judged`` says which)."""
    names, truth, X, X_ext = judging_draws(eq)

    kinds = set()
    for route in ROUTES:
        seeds = row[route].get("seeds") or []
        for seed in seeds:
            if seed.get("exact_form"):
                expr, kind = _srepr(seed["exact_form"]), "unrounded forms"
            else:
                text, kind = seed.get("formula"), "displayed formulas"
                expr = None if text is None else sympy.parse_expr(text)
            seed["exact"] = exact_everywhere(expr, truth, names, X, X_ext)
            kinds.add(kind)
        if seeds:
            row[route]["rate"] = float(np.mean([sd["exact"] for sd in seeds]))
    row["judged"] = f"rejudged by exact_everywhere on {' and '.join(sorted(kinds))}"
    return row


def _srepr(text: str) -> Any:
    """An expression from its ``sympy.srepr`` (sympy's own constructors only)."""
    return eval(text, {k: getattr(sympy, k) for k in dir(sympy) if not k.startswith("_")})


def run_equation(eq: dict[str, Any], noises: list[float], opts: dict, out: str) -> list[dict]:
    """All noise levels of one equation: the unit of work sent to the executor."""
    import torch

    torch.set_num_threads(1)
    return [run_row(eq, noise, opts, out) for noise in noises]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--equations", default="", help="comma-separated names, e.g. I.12.1,I.14.3")
    ap.add_argument("--subset", type=int, default=8, help="first N equations (fewest inputs)")
    ap.add_argument("--max-inputs", type=int, default=5)
    ap.add_argument("--noise", default="0,0.01,0.1")
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--n", type=int, default=10000, help="training examples per member")
    ap.add_argument("--epochs", type=int, default=None, help="default: the task's own (200)")
    ap.add_argument("--probe", type=int, default=2000)
    ap.add_argument("--sr-seeds", default="0,1")
    ap.add_argument("--population", type=int, default=500)
    ap.add_argument("--generations", type=int, default=100)
    ap.add_argument("--max-points", type=int, default=500)
    ap.add_argument(
        "--independent-data",
        action="store_true",
        help="each member trains on its own draw of rows and noise (direct search then gets "
        "every row any member saw)",
    )
    ap.add_argument(
        "--log-target",
        action="store_true",
        help="every route trains and searches log(law), the noise then relative (positive "
        "laws spanning decades; a law not positive on its ranges is an error)",
    )
    ap.add_argument(
        "--dimensions",
        action="store_true",
        help=f"every route searches on dimensionless groups of the units in {UNITS.name} "
        "(an equation the table lacks is an error)",
    )
    ap.add_argument("--profile", default=None, help="execution profile YAML (default: serial)")
    ap.add_argument("--out", default="runs/bench_feynman")
    ap.add_argument("--collect", action="store_true", help="only gather the rows written so far")
    ap.add_argument(
        "--merge",
        nargs="*",
        default=[],
        metavar="DIR",
        help="with --collect: add the SR seeds of other runs' rows (the same equations, noise "
        "and training, other --sr-seeds) to --out's rows",
    )
    ap.add_argument(
        "--rejudge",
        action="store_true",
        help="with --collect: recompute every seed's verdict by the current rule, rewrite rows",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from ensemble_lens.config import ExecutionConfig
    from ensemble_lens.execution import make_executor

    eqs = select(read_equations(), args)
    if args.log_target and args.dimensions:
        raise SystemExit("--log-target and --dimensions: the log of a law has no units")
    if args.log_target and not args.collect:
        eqs = [in_log(e) for e in eqs]
    if args.dimensions and not args.collect:
        eqs = [with_units(e) for e in eqs]
    noises = [float(v) for v in args.noise.split(",")]
    opts = {
        "members": args.members, "n": args.n, "epochs": args.epochs, "probe": args.probe,
        "sr_seeds": [int(s) for s in args.sr_seeds.split(",")], "population": args.population,
        "generations": args.generations, "max_points": args.max_points,
        "independent_data": args.independent_data,
    }  # fmt: skip
    if args.collect:  # gather the rows written so far (a partial run), run nothing
        paths = sorted(Path(args.out, "rows").glob("*.json"))
        rows = [json.loads(p.read_text()) for p in paths]
        if args.rejudge:  # (each merged run is rejudged by its own --collect --rejudge)
            by_name = {e["name"]: e for e in read_equations()}
            rows = [rejudge(r, row_equation(r, by_name)) for r in rows]
            for p, r in zip(paths, rows, strict=True):
                p.write_text(json.dumps(r, indent=1))
        rows = merge_seeds(rows, [Path(d) for d in args.merge])
        if args.merge:
            Path(args.out, "rows_merged.json").write_text(json.dumps(rows, indent=1))
        print(markdown(rows))
        print("\n" + reasons_markdown(rows))
        return
    ex_cfg = ExecutionConfig(scheduler="serial")
    if args.profile:
        import yaml

        ex_cfg = ExecutionConfig.model_validate(yaml.safe_load(Path(args.profile).read_text()))
    out = str(Path(args.out).resolve())
    with make_executor(
        ex_cfg.scheduler, workers=ex_cfg.workers, retries=ex_cfg.retries, jobqueue=ex_cfg.jobqueue
    ) as ex:
        futures = [
            ex.submit(run_equation, eq, noises, opts, out, key=f"feynman-{eq['name']}")
            for eq in eqs
        ]
        rows = [row for f in futures for row in f.result()]
    summary = {"command": vars(args), "rows": rows}
    Path(out, "rows.json").write_text(json.dumps(summary, indent=1))
    print(markdown(rows))


ROUTES = ("ensemble", "direct", "single")


def merge_seeds(rows: list[dict[str, Any]], others: list[Path]) -> list[dict[str, Any]]:
    """``rows`` with the SR seeds of the same rows from other runs' ``rows/`` appended, each
    route's rate recomputed over all seeds. Every SR seed's search is independent of the
    others (its own seed, the same consensus), so runs with disjoint ``--sr-seeds`` add up to
    one run with all of them; the members' validation R^2 must agree to the digit, which
    checks that both runs trained the same members (training is deterministic)."""
    for other in others:
        for row in rows:
            path = other / "rows" / f"{row['equation']}__noise{row['noise']:g}.json"
            if not path.exists():
                raise SystemExit(f"{path}: no such row to merge")
            more = json.loads(path.read_text())
            if more["min_val_r2"] != row["min_val_r2"] or more["members"] != row["members"]:
                raise SystemExit(f"{path}: trained other members than {row['equation']} noise "
                                 f"{row['noise']:g} in --out (val R^2 {more['min_val_r2']} vs "
                                 f"{row['min_val_r2']})")  # fmt: skip
            if more["ensemble"].get("component", 0) != row["ensemble"].get("component", 0):
                raise SystemExit(f"{path}: its ensemble route's best component is another one")
            for route in ROUTES:
                seeds = row[route].get("seeds") or []
                known = {s["seed"] for s in seeds}
                added = more[route].get("seeds") or []
                if known & {s["seed"] for s in added}:
                    raise SystemExit(f"{path}: SR seeds {sorted(known)} are in both runs")
                seeds.extend(added)
                if seeds:
                    row[route]["seeds"] = seeds
                    row[route]["rate"] = float(np.mean([s["exact"] for s in seeds]))
                    row[route]["rate_held_out_only"] = float(
                        np.mean([s["exact_held_out"] for s in seeds])
                    )
            row["seconds"] = round(row["seconds"] + more["seconds"], 1)
    return rows


def study_answer(seeds: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The formula a study returns from these SR seeds, and its verdict: the pick of
    :func:`ensemble_lens.distill.records.pick`, the simplest within the accuracy tolerance of
    the best test R^2, the seeds' own precision floor included. None when a seed lacks what
    ``pick`` needs (rows written before they were kept)."""
    from types import SimpleNamespace

    from ensemble_lens.distill.records import pick

    if not seeds or any("complexity" not in sd for sd in seeds):
        return None
    chosen = pick([
        SimpleNamespace(expr=sd["formula"], r2_test=sd["r2_test"], complexity=sd["complexity"],
                        selection_floor=sd["selection_floor"], seed=sd["seed"])
        for sd in seeds
    ])  # fmt: skip
    hit = next(sd for sd in seeds if sd["seed"] == chosen.seed)
    return {"seed": hit["seed"], "formula": hit["formula"], "exact": hit["exact"]}


def miss_reasons(row: dict[str, Any], eq: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per route, how its SR seeds ended: ``exact``; ``passed over`` (the law, by
    :func:`exact_everywhere` on fresh draws, is on the seed's canonical front but another
    formula was chosen); ``never found`` (it is not on the front); ``no front kept`` (rows
    written before fronts were kept)."""
    names, truth, X, X_ext = judging_draws(eq)
    local = {n: sympy.Symbol(n) for n in names}  # float constants stay floats (2 % slack)
    out = {}
    for route in ROUTES:
        counts = dict.fromkeys(("exact", "passed over", "never found", "no front kept"), 0)
        for sd in row[route].get("seeds") or []:
            if sd["exact"]:
                kind = "exact"
            elif "front" not in sd:
                kind = "no front kept"
            elif any(
                exact_everywhere(
                    sympy.parse_expr(f["expression"], local_dict=local), truth, names, X, X_ext
                )
                for f in sd["front"]
            ):
                kind = "passed over"
            else:
                kind = "never found"
            counts[kind] += 1
        out[route] = counts
    return out


def reasons_markdown(rows: list[dict[str, Any]]) -> str:
    """Per row and route: the study's answer over all seeds (exact or not), and how the seeds
    missed (``never found`` / ``passed over``), the reason written next to the row."""
    by_name = {e["name"]: e for e in read_equations()}
    lines = [
        "| equation | noise | " + " | ".join(ROUTES) + " |",
        "|---|---|" + "---|" * len(ROUTES),
    ]

    rows = sorted(rows, key=lambda r: (r["equation"], r["noise"]))
    answers = [{k: study_answer(r[k].get("seeds") or []) for k in ROUTES} for r in rows]

    def cell(answer: dict[str, Any] | None, counts: dict[str, int]) -> str:
        parts = [] if answer is None else ["answer " + ("exact" if answer["exact"] else "not")]
        parts += [f"{counts[k]} {k}" for k in ("never found", "passed over", "no front kept")
                  if counts[k]]  # fmt: skip
        return ", ".join(parts) or "-"

    for r, answer in zip(rows, answers, strict=True):
        counts = miss_reasons(r, row_equation(r, by_name))
        lines.append(f"| {r['equation']} | {r['noise']:g} | "
                     + " | ".join(cell(answer[k], counts[k]) for k in ROUTES) + " |")  # fmt: skip
    for noise in sorted({r["noise"] for r in rows}):
        level = [a for r, a in zip(rows, answers, strict=True) if r["noise"] == noise]
        if all(a[k] is not None for a in level for k in ROUTES):
            lines.append(f"\nnoise {noise:g}, the study's answer exact on: " + ", ".join(
                f"{k} {sum(a[k]['exact'] for a in level)} of {len(level)}" for k in ROUTES
            ))  # fmt: skip
    return "\n".join(lines)


def markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table, then the mean rate of each route per noise level."""
    lines = [
        "| equation | noise | min val R^2 | ensemble | direct | single | R^2 test / extrap. "
        "(ens., direct, single) | s |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def r2(v: dict[str, Any]) -> str:
        return f"{v.get('r2_test')} / {v.get('r2_extrapolation')}"

    for r in sorted(rows, key=lambda r: (r["equation"], r["noise"])):
        lines.append(
            f"| {r['equation']} | {r['noise']:g} | {r['min_val_r2']} | "
            + " | ".join(f"{r[k]['rate']:.2f}" for k in ROUTES)
            + " | "
            + "; ".join(r2(r[k]) for k in ROUTES)
            + f" | {r['seconds']} |"
        )
    for noise in sorted({r["noise"] for r in rows}):
        sel = [r for r in rows if r["noise"] == noise]
        rates = ", ".join(
            f"{k} {np.mean([r[k]['rate'] for r in sel]):.2f}"
            f" ({np.mean([r[k].get('rate_held_out_only', r[k]['rate']) for r in sel]):.2f})"
            for k in ROUTES
        )
        lines.append(
            f"\nnoise {noise:g} ({len(sel)} equations): {rates}"
            " (in brackets: the rule on held-out points alone)"
        )
        mean, (lo, hi) = paired_gap(sel)
        lines.append(
            f"ensemble - direct: {mean:+.3f} (95 % bootstrap interval over equations "
            f"{lo:+.3f} to {hi:+.3f})"
        )
    return "\n".join(lines)


def paired_gap(rows: list[dict[str, Any]], a: str = "ensemble", b: str = "direct"):
    """Mean over equations of route ``a``'s rate minus route ``b``'s, and its 95 % percentile
    bootstrap interval resampling equations (scipy; a fixed seed, so a table reprints the
    same). The pair is per equation: both routes see the same equation, noise and SR seeds,
    and the equations, not the seeds, are what a benchmark samples."""
    from scipy.stats import bootstrap

    d = np.array([r[a]["rate"] - r[b]["rate"] for r in rows], dtype=np.float64)
    mean = float(d.mean()) if d.size else float("nan")
    if d.size < 2 or np.ptp(d) == 0:
        return mean, (mean, mean)
    ci = bootstrap(
        (d,), np.mean, n_resamples=9999, method="percentile", random_state=0
    ).confidence_interval
    return mean, (float(ci.low), float(ci.high))


if __name__ == "__main__":
    main()
