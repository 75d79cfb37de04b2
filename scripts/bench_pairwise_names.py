"""``pairwise`` against a loop over pairs, for every name that ``measure_names()`` lists.

For each name, the same seeded K networks go through ``pairwise(nets, name, n_jobs=1)`` and
through two loops over pairs of the measure's single-pair call (``measure(name)(X_i, X_j)``):
over every (i, j), the diagonal included, and over ``i < j`` only (both orders for asymmetric
measures, no diagonal: the fewest calls for the off-diagonal matrix); interleaved, ``--reps``
times each, one BLAS thread. The table gives the median seconds of each and the ratios
(loop / pairwise: above 1, pairwise is faster), the path pairwise took and the per-network
states it computed. Names whose smaller ratio is below ``--flag`` are listed at the end.
Values are checked equal (pairwise's diagonal against the full loop's; a distance's is 0).

Usage (a quiet machine; about a minute at the defaults, K=8, n=300, d=24)::

    PYTHONPATH=. python scripts/bench_pairwise_names.py
    PYTHONPATH=. python scripts/bench_pairwise_names.py --k 20 --n 1000 --d 64 --only rsa,cka
    PYTHONPATH=. python scripts/bench_pairwise_names.py --tiny      # a check that it runs
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from ensemble_lens.similarity import measure, measure_names, pairwise

#: names that need an optional extra or take seconds per network at any size
SLOW = ("gs", "imd_score")


def make_data(k: int, n: int, d: int, seed: int = 0) -> list[np.ndarray]:
    """K non-negative networks sharing a latent (non-negative: the poisson RDM needs rates)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 6))
    return [np.abs(np.tanh(z @ rng.normal(size=(6, d))) + 0.3 * rng.normal(size=(n, d)))
            for _ in range(k)]  # fmt: skip


def loop(name: str, nets: list[np.ndarray]) -> np.ndarray:
    """A reviewer's loop over every (i, j), the diagonal included (the 0 of a distance too)."""
    m = measure(name)
    k = len(nets)
    return np.array([[m(nets[i], nets[j]) for j in range(k)] for i in range(k)])


def loop_upper(name: str, nets: list[np.ndarray]) -> np.ndarray:
    """A reviewer's loop over ``i < j`` (both orders for an asymmetric measure), no diagonal:
    the fewest calls that give the off-diagonal matrix."""
    m = measure(name)
    k = len(nets)
    out = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(i + 1, k):
            out[i, j] = m(nets[i], nets[j])
            out[j, i] = out[i, j] if m.symmetric else m(nets[j], nets[i])
    return out


def time_name(name: str, nets: list[np.ndarray], reps: int) -> dict[str, object]:
    """Median seconds of pairwise and of both loops (interleaved), path and states."""
    t_pw, t_all, t_up, attrs = [], [], [], {}
    off = ~np.eye(len(nets), dtype=bool)
    for _ in range(reps):
        t0 = time.perf_counter()
        res = pairwise(nets, name, n_jobs=1)
        t_pw.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref = loop(name, nets)
        t_all.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        up = loop_upper(name, nets)
        t_up.append(time.perf_counter() - t0)
        attrs = res.attrs
        np.testing.assert_allclose(res.values[off], ref[off], rtol=1e-6, atol=1e-8, err_msg=name)
        np.testing.assert_allclose(res.values[off], up[off], rtol=1e-6, atol=1e-8, err_msg=name)
        diag = np.diag(ref) if measure(name).kind != "distance" else 0.0 * np.diag(ref)
        np.testing.assert_allclose(np.diag(res.values), diag, rtol=1e-6, atol=1e-7, err_msg=name)
    a, b, c = statistics.median(t_pw), statistics.median(t_all), statistics.median(t_up)
    return {"pairwise": a, "loop": b, "ratio": b / a, "upper": c, "ratio_upper": c / a,
            "method": attrs["method"], "states": attrs["states"]}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--d", type=int, default=24)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated name prefixes")
    ap.add_argument("--flag", type=float, default=0.9, help="list names below this ratio")
    ap.add_argument("--tiny", action="store_true", help="K=3, n=40, d=5, one rep")
    args = ap.parse_args(argv)
    if args.tiny:
        args.k, args.n, args.d, args.reps = 3, 40, 5, 1
    nets = make_data(args.k, args.n, args.d)
    prefixes = tuple(p for p in args.only.split(",") if p)
    names = [n for n, _ in measure_names() if not prefixes or n.startswith(prefixes)]
    print(f"K={args.k}, n={args.n}, d={args.d}, {args.reps} rep(s), 1 BLAS thread; median s")
    print(f"{'name':<62}{'pairwise':>10}{'all i,j':>10}{'/pw':>7}{'i<j':>10}{'/pw':>7}"
          "  path (states)")  # fmt: skip
    slow = []
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pairwise(nets[:2], "cka", n_jobs=1)  # warm-up: thread-pool scan, lazy imports
        for name in names:
            if measure(name).family.key in SLOW:
                print(f"{name:<62}  skipped (seconds per network)")
                continue
            try:
                r = time_name(name, nets, args.reps)
            except Exception as err:  # a name that cannot run on these data: say why
                print(f"{name:<62}  n/a: {type(err).__name__}: {str(err)[:60]}")
                continue
            print(f"{name:<62}{r['pairwise']:10.4f}{r['loop']:10.4f}{r['ratio']:7.2f}"
                  f"{r['upper']:10.4f}{r['ratio_upper']:7.2f}  "
                  f"{r['method']} ({r['states']})")  # fmt: skip
            low = min(r["ratio"], r["ratio_upper"])  # type: ignore[type-var]
            if low < args.flag:
                slow.append(f"{name} ({low:.2f})")
    print(f"\nbelow {args.flag}: {', '.join(slow) or 'none'}")


if __name__ == "__main__":
    main()
