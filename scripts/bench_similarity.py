"""Benchmark all-pairs similarity: shared-moments ``pairwise`` vs pair-by-pair public functions.

Reports, in one run (so every ratio is against baselines measured on the same machine state):

* the machine's float64 GEMM rate and the FLOP lower bound of the moments pass
  (``n * (K d)^2`` flops for the symmetric rank-k update of all networks side by side);
* for K x K linear CKA, mean CCA and Procrustes similarity: ``pairwise`` time (each metric with
  its own streaming pass), the time of one shared ``compute_moments`` pass feeding all three,
  the pair-by-pair time of the public single-pair functions (for large K a random subset of
  pairs is timed and extrapolated, marked ``~``), the speedup and the max abs difference;
* an out-of-core case: activations in a zarr-backed StudyStore larger than the memory they
  are streamed through, with the peak RSS growth of a child process for two sample counts.

Usage::

    .venv/bin/python scripts/bench_similarity.py            # n=5000, d=256, K=20 and 100
    .venv/bin/python scripts/bench_similarity.py --quick    # small sizes, seconds
    .venv/bin/python scripts/bench_similarity.py --k 20 --no-ooc
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from ensemble_lens.similarity import (
    compute_moments,
    linear_cka,
    mean_cca,
    pairwise,
    procrustes_similarity,
)

METRICS = {
    "linear_cka": linear_cka,
    "mean_cca": mean_cca,
    "procrustes_similarity": procrustes_similarity,
}


def gemm_rate(size: int = 3000, repeats: int = 3) -> float:
    """Best float64 GEMM rate (flop/s, 2 m n k) over a few square products."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(size, size)), rng.normal(size=(size, size))
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2.0 * size**3 / best


def make_nets(k: int, n: int, d: int, seed: int = 0) -> dict[str, np.ndarray]:
    """K networks sharing a 32-d latent, each in its own mixed basis with noise."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 32))
    return {
        f"net{i:03d}": np.tanh(z @ rng.normal(size=(32, d)) / 4) + 0.5 * rng.normal(size=(n, d))
        for i in range(k)
    }


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def pair_by_pair(nets, fn, pairs, threads=None):  # type: ignore[no-untyped-def]
    arrs = list(nets.values())
    with threadpool_limits(limits=threads, user_api="blas"):
        t = time.perf_counter()
        vals = [fn(arrs[i], arrs[j]) for i, j in pairs]
        return np.array(vals), time.perf_counter() - t


def best_threads(nets, fn, pairs):  # type: ignore[no-untyped-def]
    """The faster BLAS setting for the baseline (default threads or 1) on a few pairs:
    on a loaded machine multithreaded OpenBLAS is pathologically slow on small factorisations,
    and the baseline should not be handicapped by that."""
    probe = pairs[:3]
    t_default = pair_by_pair(nets, fn, probe)[1]
    t_one = pair_by_pair(nets, fn, probe, threads=1)[1]
    return (1, "1") if t_one < t_default else (None, "all")


def bench_k(k: int, n: int, d: int, rate: float, max_pairs: int) -> list[dict]:
    nets = make_nets(k, n, d)
    all_pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    rng = np.random.default_rng(1)
    sampled = len(all_pairs) > max_pairs
    pairs = (
        [all_pairs[i] for i in rng.choice(len(all_pairs), max_pairs, replace=False)]
        if sampled
        else all_pairs
    )
    lower = n * (k * d) ** 2 / rate
    shared = None
    if 8 * (k * d) ** 2 <= 2**30:  # the full D x D fits the default budget: share one pass
        mom, t_mom = timed(compute_moments, nets)
        shared = {"pass": t_mom}
        for name in METRICS:
            shared[name] = timed(pairwise, mom, name)[1]
    rows = []
    for name, fn in METRICS.items():
        mat, t_pw = timed(pairwise, nets, name)
        threads, label = best_threads(nets, fn, pairs)
        vals, t_pp = pair_by_pair(nets, fn, pairs, threads)
        t_pp_all = t_pp * len(all_pairs) / len(pairs)
        diff = max(abs(mat.values[i, j] - v) for (i, j), v in zip(pairs, vals, strict=True))
        rows.append(
            {
                "K": k,
                "metric": name,
                "pairwise_s": t_pw,
                "pair_by_pair_s": t_pp_all,
                "sampled": f"{len(pairs)}/{len(all_pairs)}" if sampled else "all",
                "pp_threads": label,
                "speedup": t_pp_all / t_pw,
                "max_abs_diff": diff,
                "lower_bound_s": lower,
                "ratio_to_lb": t_pw / lower,
                "shared": shared,
            }
        )
    return rows


def print_rows(rows: list[dict], rate: float, n: int, d: int) -> None:
    print(f"\nGEMM rate (float64, measured now): {rate / 1e9:.1f} GFLOP/s; n={n}, d={d}")
    print("pair-by-pair: public single-pair functions; '~' = sampled pairs, extrapolated;")
    print("  run with the faster of default/1 BLAS threads (column 'pp BLAS thr')")
    print("LB = FLOP lower bound of one moments pass, n (K d)^2 / GEMM rate; pw/LB = pairwise / LB")
    head = (
        f"{'K':>4} {'metric':<22} {'pairwise s':>10} {'pair-by-pair s':>15} {'speedup':>8} "
        f"{'max|diff|':>10} {'LB s':>7} {'pw/LB':>6} {'pp BLAS thr':>11}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        pp = ("~" if r["sampled"] != "all" else "") + f"{r['pair_by_pair_s']:.2f}"
        print(
            f"{r['K']:>4} {r['metric']:<22} {r['pairwise_s']:>10.2f} {pp:>15} "
            f"{r['speedup']:>7.1f}x {r['max_abs_diff']:>10.1e} {r['lower_bound_s']:>7.2f} "
            f"{r['ratio_to_lb']:>6.2f} {r['pp_threads']:>11}"
        )
    for k in sorted({r["K"] for r in rows}):
        krows = [r for r in rows if r["K"] == k]
        sh = krows[0]["shared"]
        pp = sum(r["pair_by_pair_s"] for r in krows)
        pw = sum(r["pairwise_s"] for r in krows)
        print(
            f"K={k}: all three metrics, separate passes: {pw:.2f} s vs pair-by-pair {pp:.2f} s "
            f"({pp / pw:.1f}x); pairs sampled: {krows[0]['sampled']}"
        )
        if sh:
            tot = sh["pass"] + sum(sh[m] for m in METRICS)
            lb = krows[0]["lower_bound_s"]
            print(
                f"K={k}: one shared compute_moments pass {sh['pass']:.2f} s "
                f"(LB {lb:.2f} s, {sh['pass'] / lb:.2f}x) + per-pair stages "
                + ", ".join(f"{m} {sh[m]:.2f} s" for m in METRICS)
                + f" = {tot:.2f} s total ({pp / tot:.1f}x faster than pair-by-pair, "
                f"{tot / lb:.2f}x the one-pass LB)"
            )


# ----------------------------------------------------------------------------- out-of-core


def write_store(path: str, n: int, k: int, d: int, layer: str = "h") -> None:
    """A StudyStore with K models, written block by block (never all in memory)."""
    from ensemble_lens.record.store import open_store

    store = open_store(path, mode="w")
    store.write_probe(np.zeros((n, 1), np.float32), names=["x"])
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(16, d)).astype(np.float32)
    for m in range(k):
        with store.model_writer(f"m{m}") as w:
            lw = w.layer(layer, d)
            for a in range(0, n, 20_000):
                b = min(a + 20_000, n)
                z = np.random.default_rng(a).normal(size=(b - a, 16)).astype(np.float32)
                lw.append(np.tanh(z @ mix) + rng.normal(size=(b - a, d)).astype(np.float32))
            lw.close()


def ooc_child(path: str) -> None:
    """Runs in a fresh process: one streaming pass while a thread samples the RSS; prints JSON."""
    import threading

    import psutil

    from ensemble_lens.record.store import open_store

    store = open_store(path, mode="r")
    _ = store.activations(store.models[0], "h").isel(sample=slice(0, 2)).values  # warm imports
    proc, peak, done = psutil.Process(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.002)

    base = proc.memory_info().rss
    sampler = threading.Thread(target=sample)
    sampler.start()
    t = time.perf_counter()
    mom = compute_moments((store, "h"), chunk_size=8192)
    dt = time.perf_counter() - t
    done.set()
    sampler.join()
    print(
        json.dumps(
            {
                "n": mom.n,
                "D": int(sum(mom.widths)),
                "seconds": dt,
                "rss_growth_mb": (peak[0] - base) / 2**20,
            }
        )
    )


def bench_ooc(ns: list[int], k: int, d: int) -> None:
    print(f"\nOut-of-core: StudyStore (zarr, float32), K={k}, d={d}, chunk_size=8192")
    print(
        f"{'n':>8} {'data MB (f32)':>14} {'as f64 MB':>10} {'pass s':>7} {'peak RSS growth MB':>19}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for n in ns:
            path = os.path.join(tmp, f"s{n}.zarr")
            write_store(path, n, k, d)
            out = subprocess.run(
                [sys.executable, __file__, "--ooc-child", path],
                check=True,
                capture_output=True,
                text=True,
            )
            res = json.loads(out.stdout.strip().splitlines()[-1])
            data_mb = n * k * d * 4 / 2**20
            print(
                f"{n:>8} {data_mb:>14.0f} {2 * data_mb:>10.0f} {res['seconds']:>7.2f} "
                f"{res['rss_growth_mb']:>19.0f}"
            )
    print(
        "peak RSS growth = max RSS sampled every 2 ms during the pass minus RSS before it "
        "(fresh child process); flat in n: chunk buffer (8192 x D f64) + D x D sums + zarr chunks"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes (n=2000, d=64, K=8,20)")
    p.add_argument("--k", type=int, nargs="+", help="ensemble sizes (default 20 100)")
    p.add_argument("--n", type=int, help="samples (default 5000)")
    p.add_argument("--d", type=int, help="units per network (default 256)")
    p.add_argument("--max-pairs", type=int, default=24, help="pairs timed pair-by-pair at most")
    p.add_argument("--no-ooc", action="store_true", help="skip the out-of-core case")
    p.add_argument("--ooc-child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.ooc_child:
        ooc_child(args.ooc_child)
        return
    warnings.simplefilter("ignore")
    n = args.n or (2000 if args.quick else 5000)
    d = args.d or (64 if args.quick else 256)
    ks = args.k or ([8, 20] if args.quick else [20, 100])
    max_pairs = args.max_pairs if not args.quick else 400
    warm = make_nets(2, 50, 4)  # one-time imports (xarray, threadpoolctl) out of the timings
    for name, fn in METRICS.items():
        pairwise(warm, name)
        fn(*warm.values())
    rate = gemm_rate(1500 if args.quick else 3000)
    rows = []
    for k in ks:
        rows += bench_k(k, n, d, rate, max_pairs if k > 20 else 10**9)
        print(f"done K={k}", file=sys.stderr, flush=True)
    print_rows(rows, rate, n, d)
    if not args.no_ooc:
        bench_ooc([25_000, 100_000] if args.quick else [50_000, 200_000], 8, 128)


if __name__ == "__main__":
    main()
