"""All-pairs similarity against peer packages and against pair-by-pair, time and peak memory.

The same seeded data (K networks of width d on n samples) goes through this library and through
the peers that have the measure: rsatoolbox (RSA), repsim (kernel CKA, CCA), netrep (shape
metrics and CCA; not on PyPI: pass ``--netrep-src`` pointing at a checkout's root, it is never
vendored here) and scikit-learn (ridge predictivity, pair by pair). Each side runs in its own
process, so its peak resident memory (above the process's state after loading the data) is its
own; all sides run with ``--threads`` BLAS threads (default 1). Wall and CPU seconds are both
reported: on a shared, loaded machine the CPU time of a one-thread side is the steadier figure.
A second table compares ``pairwise`` with a loop over pairs through the single-pair function of
the same measure.

Our side runs under every name of the measure (``NAMES``: standardized names and aliases
give the same path, so the same time) and, for the moments-based measures, also with
``precision="float32"`` (its largest deviation from float64 is reported), and is compared
with the GEMM floor of this machine measured in the same run (``floor``: the centred
``Z^T Z`` of all K networks side by side, one BLAS ``syrk`` in float64 and in float32; target
for float64: within 1.5x). netrep's side is its
own ``netrep.multiset.pairwise_distances`` (one process), or a loop of ``LinearMetric`` fits
where that function is missing.

Usage (on a quiet machine; each side runs in its own process)::

    PYTHONPATH=. python scripts/bench_peers.py --tiny          # a check that every side runs
    PYTHONPATH=. python scripts/bench_peers.py --ks 20,64 --only rsa
    PYTHONPATH=. python scripts/bench_peers.py --full --only shape,cca --netrep-src /tmp/netrep
    PYTHONPATH=. python scripts/bench_peers.py                  # K=20, everything
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np

#: measure -> (library name, n, d); ``--full`` uses n=5000, d=256 for shape and cca (issue 13)
MEASURES: dict[str, tuple[str, int, int]] = {
    "rsa": ("rsa-rdm=correlation-compare=spearman", 500, 64),
    "cka": ("cka-kernel=(rbf-sigma=8.0)-hsic=gretton-score", 500, 64),
    "shape": ("procrustes-distance=angular", 2000, 128),
    "cca": ("cca-score", 2000, 128),
    "predictivity": ("ridge-lambda=1-pearsonr-cv=5folds", 1000, 32),
}
FULL = {"rsa": (1000, 256), "shape": (5000, 256), "cca": (5000, 256)}
#: every name of a measure (standardized names and aliases), each timed on our side
NAMES: dict[str, tuple[str, ...]] = {
    "rsa": ("rsa-rdm=correlation-compare=spearman", "rsa"),
    "cka": ("cka-kernel=(rbf-sigma=8.0)-hsic=gretton-score",),
    "shape": (
        "procrustes-distance=angular",
        "procrustes-score",
        "nbs-distance=angular",
        "orthogonal_angular_shape_metric_centered",
        "shape_metric-alpha=1.0-distance=angular",
        "shape_distance",
        "procrustes_similarity",
    ),
    "cca": (
        "cca-score",
        "cca-distance=angular",
        "shape_metric-alpha=0.0-distance=angular",
        "svcca-score",
        "mean_cca",
    ),
    "predictivity": ("ridge-lambda=1-pearsonr-cv=5folds",),
}
#: measures with a float32 route (``precision="float32"``: the moments pass as float32 BLAS
#: products over 1024-row sub-chunks added in float64, factorisations in float64) and a GEMM
#: floor (``floor`` side)
FLOAT32 = ("shape", "cca")
#: targets of issue 25 for the moments-based measures: float64 within this factor of the
#: floor; netrep / ours at least this, in float64 and in float32
FLOOR_TARGET, NETREP_TARGET = 1.5, {"float64": 3.0, "float32": 5.0}


def make_data(k: int, n: int, d: int, seed: int = 0) -> list[np.ndarray]:
    """K networks sharing a 16-d latent, each with its own map and noise."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 16))
    return [
        np.tanh(z @ rng.normal(size=(16, d)) / 4) + 0.3 * rng.normal(size=(n, d)) for _ in range(k)
    ]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ------------------------------------------------------------------------------- sides
#: ``--max-bytes`` of our side (memory budget of pairwise's tiles and states)
MAX_BYTES = [2**30]


#: the name our side runs under (set per child process by ``--name``)
NAME = [""]
PRECISION = ["float64"]


def ours(measure: str, nets: list[np.ndarray]) -> np.ndarray:
    from ensemble_lens.similarity import pairwise

    name = NAME[0] or MEASURES[measure][0]
    out = pairwise(nets, name, n_jobs=1, max_bytes=MAX_BYTES[0], precision=PRECISION[0])
    return out.values


def floor_side(measure: str, nets: list[np.ndarray]) -> np.ndarray:
    """The products no method of a moments-based measure avoids: every network's centred
    cross-product with every other, here all at once as ``Z^T Z`` of the K centred networks
    side by side (one BLAS ``syrk``, the fastest form), in the route's precision. Its time is
    the machine's floor for the measure; the per-pair factorisations come on top."""
    dtype = np.float32 if PRECISION[0] == "float32" else np.float64
    z = np.hstack(nets).astype(dtype)
    z -= z.mean(axis=0)
    g = z.T @ z
    o = np.concatenate([[0], np.cumsum([x.shape[1] for x in nets])])
    k = len(nets)
    return np.array([[np.trace(g[o[i] : o[i + 1], o[j] : o[j + 1]]) for j in range(k)]
                     for i in range(k)])  # fmt: skip


def ours_loop(measure: str, nets: list[np.ndarray]) -> np.ndarray:
    from ensemble_lens.similarity import measure as get

    m = get(NAME[0] or MEASURES[measure][0])
    k = len(nets)
    out = np.zeros((k, k))
    for i in range(k):
        for j in range(i if m.symmetric else 0, k):
            out[i, j] = m(nets[i], nets[j])
            if m.symmetric:
                out[j, i] = out[i, j]
    return out


def rsatoolbox_side(measure: str, nets: list[np.ndarray]) -> np.ndarray:
    import rsatoolbox

    rdms = rsatoolbox.rdm.calc_rdm([rsatoolbox.data.Dataset(x) for x in nets], method="correlation")
    return rsatoolbox.rdm.compare(rdms, rdms, method="spearman")


def repsim_side(measure: str, nets: list[np.ndarray]) -> np.ndarray:
    import repsim

    if measure == "cka":  # repsim's rbf kernel picks its own bandwidth (median heuristic)
        return repsim.cka(nets, kernel_type="rbf", estimator="gretton")
    return repsim.cca(nets)


def netrep_side(measure: str, nets: list[np.ndarray]) -> np.ndarray:
    from netrep.metrics import LinearMetric

    metric = LinearMetric(alpha=1.0 if measure == "shape" else 0.0, score_method="angular")
    try:
        from netrep.multiset import pairwise_distances
    except ImportError:
        pairwise_distances = None
    if pairwise_distances is not None:  # netrep's own all-pairs routine, one process
        out = pairwise_distances(metric, nets, verbose=False)  # serial in netrep's multiset
        return np.asarray(out[0] if isinstance(out, tuple) else out)
    k = len(nets)
    out = np.zeros((k, k))
    for i in range(k):  # netrep's own pairwise_distances uses a process pool; one thread here
        for j in range(i + 1, k):
            out[i, j] = out[j, i] = metric.fit(nets[i], nets[j]).score(nets[i], nets[j])
    return out


def sklearn_side(measure: str, nets: list[np.ndarray]) -> np.ndarray:
    from sklearn.linear_model import Ridge

    from ensemble_lens.similarity.regression import folds

    k, n = len(nets), nets[0].shape[0]
    out = np.zeros((k, k))
    for i in range(k):
        for j in range(k):  # DeepDive's procedure (the name's): contiguous folds, pooled
            pred = np.empty_like(nets[j])
            for tr, te in folds(n, 5, None):
                pred[te] = Ridge(alpha=1.0).fit(nets[i][tr], nets[j][tr]).predict(nets[i][te])
            yc, pc = nets[j] - nets[j].mean(0), pred - pred.mean(0)
            out[i, j] = np.mean((yc * pc).sum(0) / np.sqrt((yc**2).sum(0) * (pc**2).sum(0)))
    return out


SIDES = {
    "ours": ours,
    "floor": floor_side,
    "ours_loop": ours_loop,
    "rsatoolbox": rsatoolbox_side,
    "repsim": repsim_side,
    "netrep": netrep_side,
    "sklearn": sklearn_side,
}
PEERS = {
    "rsa": ["rsatoolbox"],
    "cka": ["repsim"],
    "shape": ["netrep"],
    "cca": ["netrep", "repsim"],
    "predictivity": ["sklearn"],
}


#: modules each side imports before the clock starts (imports are not part of the work)
IMPORTS = {
    "ours": ["ensemble_lens.similarity", "xarray", "scipy.stats", "scipy.optimize"],
    "ours_loop": ["ensemble_lens.similarity", "xarray", "scipy.stats", "scipy.optimize"],
    "floor": ["numpy"],
    "rsatoolbox": ["rsatoolbox", "rsatoolbox.rdm", "rsatoolbox.data"],
    "repsim": ["repsim"],
    "netrep": ["netrep.metrics"],
    "sklearn": ["sklearn.linear_model", "ensemble_lens.similarity.regression"],
}


TINY = [False]


def sizes(measure: str, full: bool) -> tuple[int, int]:
    """(n, d) of a measure's data."""
    if TINY[0]:
        return 60, 8
    if full and measure in FULL:
        return FULL[measure]
    return MEASURES[measure][1], MEASURES[measure][2]


def run_side(side: str, measure: str, k: int, threads: int, full: bool = False) -> dict[str, Any]:
    """In this process: import, load data, then time one side; peak RSS above that state."""
    import importlib

    from threadpoolctl import threadpool_limits

    for mod in IMPORTS[side]:
        importlib.import_module(mod)
    n, d = sizes(measure, full)
    with threadpool_limits(limits=threads):
        SIDES[side](measure, make_data(3, 60, 8, seed=1))  # warm-up: lazy imports, caches
    nets = make_data(k, n, d)
    base = _rss_mb()
    with threadpool_limits(limits=threads):
        t0, c0 = time.perf_counter(), time.process_time()
        vals = SIDES[side](measure, nets)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    vals = np.asarray(vals, dtype=float)
    out = {"seconds": secs, "cpu": cpu, "peak_mb": _rss_mb() - base, "sample": float(vals[0, 1])}
    if side == "ours" and PRECISION[0] == "float32":  # its error against float64
        PRECISION[0] = "float64"
        out["max_error"] = float(np.max(np.abs(vals - np.asarray(ours(measure, nets)))))
    return out


def _child(
    side: str, measure: str, args: argparse.Namespace, name: str = "", precision: str = "float64"
) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", side, "--only", measure, "--k", str(args.k)]
    cmd += ["--threads", str(args.threads), "--max-bytes", str(args.max_bytes)]
    cmd += ["--name", name, "--precision", precision] if name else []
    cmd += ["--full"] if args.full else []
    cmd += ["--tiny"] if args.tiny else []
    if args.netrep_src:
        cmd += ["--netrep-src", args.netrep_src]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=args.side_timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {args.side_timeout} s"}
    if res.returncode != 0:
        return {"error": (res.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def _fmt(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"n/a ({r['error'][:60]})"
    err = f"  max |float32 - float64| {r['max_error']:.1e}" if "max_error" in r else ""
    return f"{r['seconds']:8.2f} s {r['cpu']:8.2f} s cpu {r['peak_mb']:8.1f} MB{err}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=20, help="networks (K x K pairs)")
    ap.add_argument("--ks", default="", help="comma-separated K values (default: --k)")
    ap.add_argument("--only", default=",".join(MEASURES), help="comma-separated measures")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads of every side")
    ap.add_argument("--netrep-src", help="root of a netrep checkout (it is not on PyPI)")
    ap.add_argument("--no-loop", action="store_true", help="skip the pair-by-pair comparison")
    ap.add_argument("--full", action="store_true", help="the issue's sizes (RSA n=1000, d=256; "
                    "shape and cca n=5000, d=256)")  # fmt: skip
    ap.add_argument("--tiny", action="store_true", help="n=60, d=8, K=4: check every side runs")
    ap.add_argument("--side-timeout", type=int, default=600, help="seconds per side")
    ap.add_argument("--max-bytes", type=int, default=2**30, help="pairwise(max_bytes=) of ours")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--name", default="", help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="float64", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.netrep_src:
        sys.path.insert(0, args.netrep_src)
    MAX_BYTES[0], TINY[0] = args.max_bytes, args.tiny
    NAME[0], PRECISION[0] = args.name, args.precision
    if args.child:
        print(json.dumps(run_side(args.child, args.only, args.k, args.threads, args.full)))
        return
    ks = [4] if args.tiny else [int(k) for k in (args.ks or str(args.k)).split(",")]
    for k in ks:
        args.k = k
        print(f"\nK={k}, {args.threads} BLAS thread(s), max_bytes={args.max_bytes}; "
              "wall time, CPU time and peak RSS above the loaded data")  # fmt: skip
        for measure in args.only.split(","):
            _report(measure, args)


def _report(measure: str, args: argparse.Namespace) -> None:
    """One measure: ours under every name (and float32), then each peer with ratios."""
    n, d = sizes(measure, args.full)
    print(f"\n{measure}  (n={n}, d={d})")
    runs = [(name, "float64") for name in NAMES[measure]]
    runs += [(NAMES[measure][0], "float32")] if measure in FLOAT32 else []
    mine = {}
    for name, precision in runs:
        r = _child("ours", measure, args, name, precision)
        mine[(name, precision)] = r
        label = name if precision == "float64" else f"{name} [float32]"
        print(f"  {label:<48}{_fmt(r)}")
    base = mine[(NAMES[measure][0], "float64")]
    if measure in FLOAT32:
        _report_floor(measure, args, mine)
    sides = PEERS[measure] + ([] if args.no_loop else ["ours_loop"])
    for side in sides:
        r = _child(side, measure, args, NAMES[measure][0])
        label = "pair by pair (ours)" if side == "ours_loop" else side
        print(f"  {label:<48}{_fmt(r)}")
        for (name, precision), m in mine.items():
            if "error" not in r and "error" not in m:
                goal = NETREP_TARGET[precision] if side == "netrep" else None
                aim = f" (target >= {goal:g}x)" if goal else ""
                print(f"    {side} / {name} [{precision}]: x{r['seconds'] / m['seconds']:.1f} "
                      f"time, x{r['cpu'] / m['cpu']:.1f} cpu{aim}")  # fmt: skip
    if "error" in base:
        print(f"  (ours failed: {base['error']})")


def _report_floor(measure: str, args: argparse.Namespace, mine: dict) -> None:
    """The GEMM floor in each precision, measured in this run, and ours against it."""
    for precision in ("float64", "float32"):
        r = _child("floor", measure, args, NAMES[measure][0], precision)
        print(f"  {'GEMM floor: Z^T Z of all networks [' + precision + ']':<48}{_fmt(r)}")
        for (name, prec), m in mine.items():
            if prec == precision and "error" not in r and "error" not in m:
                aim = f" (target <= {FLOOR_TARGET:g}x)" if precision == "float64" else ""
                print(f"    {name} [{prec}] / floor: x{m['seconds'] / r['seconds']:.2f} time, "
                      f"x{m['cpu'] / r['cpu']:.2f} cpu{aim}")  # fmt: skip


if __name__ == "__main__":
    main()
