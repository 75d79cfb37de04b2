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

Usage::

    PYTHONPATH=. python scripts/bench_peers.py                  # K=20, a few minutes
    PYTHONPATH=. python scripts/bench_peers.py --k 64 --only rsa,cka
    PYTHONPATH=. python scripts/bench_peers.py --netrep-src /tmp/netrep
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
FULL = {"shape": (5000, 256), "cca": (5000, 256)}


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


def ours(measure: str, nets: list[np.ndarray]) -> np.ndarray:
    from ensemble_lens.similarity import pairwise

    return pairwise(nets, MEASURES[measure][0], n_jobs=1, max_bytes=MAX_BYTES[0]).values


def ours_loop(measure: str, nets: list[np.ndarray]) -> np.ndarray:
    from ensemble_lens.similarity import measure as get

    m = get(MEASURES[measure][0])
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
    "rsatoolbox": ["rsatoolbox", "rsatoolbox.rdm", "rsatoolbox.data"],
    "repsim": ["repsim"],
    "netrep": ["netrep.metrics"],
    "sklearn": ["sklearn.linear_model", "ensemble_lens.similarity.regression"],
}


def sizes(measure: str, full: bool) -> tuple[int, int]:
    """(n, d) of a measure's data."""
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
    return {"seconds": secs, "cpu": cpu, "peak_mb": _rss_mb() - base, "sample": float(vals[0, 1])}


def _child(side: str, measure: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        side,
        "--only",
        measure,
        "--k",
        str(args.k),
        "--threads",
        str(args.threads),
        "--max-bytes",
        str(args.max_bytes),
    ]
    cmd += ["--full"] if args.full else []
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
    return f"{r['seconds']:8.2f} s {r['cpu']:8.2f} s cpu {r['peak_mb']:8.1f} MB"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=20, help="networks (K x K pairs)")
    ap.add_argument("--only", default=",".join(MEASURES), help="comma-separated measures")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads of every side")
    ap.add_argument("--netrep-src", help="root of a netrep checkout (it is not on PyPI)")
    ap.add_argument("--no-loop", action="store_true", help="skip the pair-by-pair comparison")
    ap.add_argument("--full", action="store_true", help="shape and cca at n=5000, d=256")
    ap.add_argument("--side-timeout", type=int, default=600, help="seconds per side")
    ap.add_argument("--max-bytes", type=int, default=2**30, help="pairwise(max_bytes=) of ours")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.netrep_src:
        sys.path.insert(0, args.netrep_src)
    MAX_BYTES[0] = args.max_bytes
    if args.child:
        print(json.dumps(run_side(args.child, args.only, args.k, args.threads, args.full)))
        return
    print(
        f"K={args.k}, {args.threads} BLAS thread(s), max_bytes={args.max_bytes}; "
        "wall time, CPU time and peak RSS above the loaded data"
    )
    for measure in args.only.split(","):
        name = MEASURES[measure][0]
        n, d = sizes(measure, args.full)
        print(f"\n{measure}: {name}  (n={n}, d={d})")
        mine = _child("ours", measure, args)
        print(f"  {'ensemble_lens':<22}{_fmt(mine)}")
        sides = PEERS[measure] + ([] if args.no_loop else ["ours_loop"])
        for side in sides:
            r = _child(side, measure, args)
            ratio = (
                f"  x{r['seconds'] / mine['seconds']:.1f} time, x{r['cpu'] / mine['cpu']:.1f} cpu"
                if "error" not in r and "error" not in mine
                else ""
            )
            label = "pair by pair (ours)" if side == "ours_loop" else side
            print(f"  {label:<22}{_fmt(r)}{ratio}")


if __name__ == "__main__":
    main()
