"""How time and memory grow with the number of members K and the number of samples n.

Reports, in one run (every ratio against a floor measured in the same run):

* the machine's float64 GEMM rate (``bench_similarity.gemm_rate``);
* **K scaling**: a study of K small members (the ``bottleneck`` task, a width-8 one-layer
  network, 512 training examples, 3 epochs) through train + record, compare (linear CKA and
  mean CCA from shared moments) and consensus (MCCA, 4 null refits) on a LocalCluster, in
  batches of members per task; per stage the wall time, the peak RSS of the main process and
  of the busiest worker (each K runs in a fresh child process), and the moments pass' GEMM
  floor ``n D^2 / rate`` (``D = 2K`` units side by side);
* **n scaling, out of core**: one streaming moments pass over a zarr StudyStore of K=20
  networks of 32 units (float32 on disk) for each n, in a fresh process: time, the GEMM floor
  ``n D^2 / rate`` and the peak RSS growth (``bench_similarity.ooc_child``);
* **compare stage alone** (``--compare K ...``): the all-pairs stage on a store of K synthetic
  members (8 units, n=2000, the configs' four default metrics), in blocks against the stage
  before blocks (``--old-max-k``: above it the old path runs in one process, since through
  the executor it takes about an hour at K=1000), each in a fresh process;
* **MCCA solvers** (``--mcca K``, and K=1000 with ``--full``): the iterative (Lanczos) and the
  dense solver of :class:`~ensemble_lens.align.MultisetCCA` on K networks, wall and CPU time.
* **moments pass per device** (``--device torch-cpu cuda``): ``compute_moments`` of K networks
  of ``--device-d`` units (float32 in memory, like recorded activations) on the numpy path
  and on each torch device, float64 and float32 products (numpy's float32: BLAS ``ssyrk``),
  same run: seconds (best of 2),
  speed-up over numpy and the largest covariance error relative to the numpy result's largest
  entry.

Usage::

    python scripts/bench_scale.py                      # K = 50, 200; n = 1e4, 1e5 (minutes)
    python scripts/bench_scale.py --full               # K = 50, 200, 1000; n = 1e4, 1e5, 1e6
    python scripts/bench_scale.py --k 1000 --train-mode vmap --no-n
    python scripts/bench_scale.py --n 1000000 --no-k
    python scripts/bench_scale.py --no-k --no-n --mcca 1000
    python scripts/bench_scale.py --no-k --no-n --compare 200 1000   # compare stage alone
    python scripts/bench_scale.py --k 1000 --no-n --slurm   # on SLURM jobs (scripts/slurm_local.sh)
    python scripts/bench_scale.py --no-k --no-n --device torch-cpu       # numpy vs torch on CPU
    python scripts/bench_scale.py --no-k --no-n --device torch-cpu cuda \
        --device-k 50 200 --device-n 100000                              # when a GPU is lent
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_similarity import gemm_rate, write_store  # noqa: E402  (a sibling script)

STAGES = ["probe", "train", "compare", "consensus"]


def study_config(k: int, store: str, args: argparse.Namespace) -> dict:
    """A study of K tiny bottleneck members (no untrained null, no distillation)."""
    return {
        "name": f"scale-k{k}",
        "task": {"name": "bottleneck"},
        "probe": {"n": args.probe, "n_extrapolation": 0},
        "ensemble": {
            "seeds": list(range(k)),
            "architectures": [{"width": 8, "depth": 1}],
            "train": {"epochs": 3, "n_train": 512, "n_val": 128, "batch_size": 64},
            "untrained_null": False,
        },
        "similarity": {"metrics": ["linear_cka", "mean_cca"]},
        "consensus": {"n_null": 4},
        "distill": {"enabled": False},
        "execution": {
            "scheduler": "local",
            "workers": args.workers,
            "members_per_task": args.members_per_task,
            "train_mode": args.train_mode,
        },
        "store": store,
    }


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def k_child(k: int, args: argparse.Namespace) -> None:
    """Runs in a fresh process: one study of K members; prints JSON (times, peak RSS)."""
    from ensemble_lens import run_study

    out: dict = {"K": k}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = study_config(k, os.path.join(tmp, "s.zarr"), args)
        with _executor(args, tmp) as ex:
            for stage in STAGES:
                t = time.perf_counter()
                run_study(cfg, executor=ex, stages=[stage])
                out[stage] = time.perf_counter() - t
                out[f"{stage}_main_mb"] = _maxrss_mb()
                print(f"  K={k} {stage}: {out[stage]:.1f} s", file=sys.stderr, flush=True)
            workers = ex.client.run(_maxrss_mb)
            out["worker_peak_mb"] = max(workers.values())
    print(json.dumps(out))


def _executor(args: argparse.Namespace, tmp: str):  # type: ignore[no-untyped-def]
    """A LocalCluster of ``--workers`` processes, or with ``--slurm`` as many one-core SLURM
    jobs through dask-jobqueue (the site values of the one-node cluster that
    scripts/slurm_local.sh starts: partition ``debug``, no --exclusive)."""
    from ensemble_lens.config import JobqueueConfig
    from ensemble_lens.execution import make_executor

    if not args.slurm:
        return make_executor("local", workers=args.workers)
    options = {
        "queue": "debug",
        "walltime": "01:00:00",
        "job_extra_directives": [],
        "python": sys.executable,
        "log_directory": os.path.join(tmp, "logs"),
        "local_directory": os.path.join(tmp, "logs"),
    }
    jobqueue = JobqueueConfig(
        kind="slurm", jobs=args.workers, cores=1, memory=args.slurm_memory, options=options
    )
    return make_executor("jobqueue", jobqueue=jobqueue)


def bench_k(ks: list[int], rate: float, args: argparse.Namespace) -> None:
    print(
        f"\nK scaling: bottleneck members (width 8, depth 1, 512 examples, 3 epochs), probe "
        f"n={args.probe}, {args.workers} {'SLURM jobs' if args.slurm else 'workers'}, "
        f"train_mode={args.train_mode}, "
        f"members_per_task={args.members_per_task or 'auto'}"
    )
    head = (
        f"{'K':>5} {'train+rec s':>11} {'compare s':>9} {'consensus s':>11} "
        f"{'moments floor s':>15} {'main peak MB':>12} {'worker peak MB':>14}"
    )
    print(head)
    for k in ks:
        cmd = [sys.executable, __file__, "--k-child", str(k), *_child_flags(args)]
        # the child's per-stage progress goes to stderr, shown as it comes
        res = json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout)
        floor = args.probe * (2 * k) ** 2 / rate
        main = max(res[f"{s}_main_mb"] for s in STAGES)
        print(
            f"{k:>5} {res['train']:>11.1f} {res['compare']:>9.1f} {res['consensus']:>11.1f} "
            f"{floor:>15.4f} {main:>12.0f} {res['worker_peak_mb']:>14.0f}"
        )
    print(
        "train+rec: members trained and recorded; compare: all-pairs linear CKA + mean CCA; "
        "peaks: max RSS of the process (ru_maxrss)"
    )


def _child_flags(args: argparse.Namespace) -> list[str]:
    flags = ["--probe", str(args.probe), "--workers", str(args.workers)]
    flags += ["--train-mode", args.train_mode]
    if args.slurm:
        flags += ["--slurm", "--slurm-memory", args.slurm_memory]
    if args.members_per_task:
        flags += ["--members-per-task", str(args.members_per_task)]
    return flags


def bench_n(ns: list[int], rate: float, k: int = 20, d: int = 32) -> None:
    print(f"\nn scaling, out of core: moments pass over a zarr StudyStore, K={k}, d={d}, D={k * d}")
    print(
        f"{'n':>8} {'data MB (f32)':>13} {'pass s':>7} {'GEMM floor s':>12} {'x floor':>7} "
        f"{'peak RSS growth MB':>18}"
    )
    similarity = os.path.join(HERE, "bench_similarity.py")
    with tempfile.TemporaryDirectory() as tmp:
        for n in ns:
            path = os.path.join(tmp, f"s{n}.zarr")
            write_store(path, n, k, d)
            cmd = [sys.executable, similarity, "--ooc-child", path]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            res = json.loads(out.strip().splitlines()[-1])
            floor = n * (k * d) ** 2 / rate
            print(
                f"{n:>8} {n * k * d * 4 / 2**20:>13.0f} {res['seconds']:>7.2f} {floor:>12.3f} "
                f"{res['seconds'] / floor:>7.1f} {res['rss_growth_mb']:>18.0f}"
            )


COMPARE_METRICS = ["linear_cka", "mean_cca", "procrustes_similarity", "shape_distance"]


def _old_compare(path: str, executor: object) -> None:
    """The compare stage before blocks (``_similarity_dataset`` of 1938433):
    every member's activations in the driver, one shared moments pass, one ``pairwise`` call
    per metric through the executor (``executor=None``: in this process, one BLAS thread)."""
    from ensemble_lens.record.store import open_store
    from ensemble_lens.similarity import compute_moments, pairwise

    store = open_store(path)
    data = {m: store.activations(m, "h") for m in store.complete_models}
    shared = compute_moments(data, executor=executor)
    for metric in COMPARE_METRICS:
        pairwise(shared, metric, executor=executor, n_jobs=1)


def compare_child(path: str, way: str, args: argparse.Namespace) -> None:
    """Runs in a fresh process: one compare stage (``new``, ``old`` or ``old-inline``) over the
    store at ``path``; prints JSON (seconds, peak RSS of this process and of the workers)."""
    from ensemble_lens.config import load_config
    from ensemble_lens.execution import make_executor
    from ensemble_lens.pipeline.stages import StageContext, stage_similarity
    from ensemble_lens.record.store import open_store

    sim = {"metrics": COMPARE_METRICS, "block_memory": args.block_memory}
    cfg = load_config({"name": "compare", "similarity": sim})
    with make_executor("local", workers=args.workers) as ex:
        t = time.perf_counter()
        if way == "new":  # the stage itself (run_study wants a task or ingested members)
            stage_similarity(StageContext(cfg, open_store(path, mode="a"), None, ex))
        else:
            _old_compare(path, ex if way == "old" else None)
        out = {"seconds": time.perf_counter() - t, "main_mb": _maxrss_mb()}
        out["worker_mb"] = max(ex.client.run(_maxrss_mb).values())
    print(json.dumps(out))


def bench_compare(ks: list[int], args: argparse.Namespace, n: int = 2000, d: int = 8) -> None:
    """The compare stage alone on stores of K synthetic members, blocks against the stage
    before blocks, each in a fresh process, same run."""
    print(
        f"\ncompare stage alone: K members of {d} units, n={n}, metrics {COMPARE_METRICS}, "
        f"LocalCluster of {args.workers} workers, block_memory {args.block_memory}"
    )
    print(
        f"{'K':>5} {'pairs':>8} {'way':<24} {'s':>8} {'us/pair':>8} {'main MB':>8} {'worker MB':>9}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for k in ks:
            path = os.path.join(tmp, f"c{k}.zarr")
            write_store(path, n, k, d)
            pairs = k * (k - 1) // 2
            ways = ["new"] + (
                [] if args.no_old else ["old" if k <= args.old_max_k else "old-inline"]
            )
            for way in ways:
                cmd = [sys.executable, __file__, "--compare-child", path, way]
                cmd += ["--workers", str(args.workers), "--block-memory", args.block_memory]
                res = json.loads(
                    subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
                )
                label = {"new": "blocks (executor)", "old": "before blocks (executor)",
                         "old-inline": "before blocks (1 process)"}[way]  # fmt: skip
                print(
                    f"{k:>5} {pairs:>8} {label:<24} {res['seconds']:>8.1f} "
                    f"{res['seconds'] / pairs * 1e6:>8.0f} {res['main_mb']:>8.0f} "
                    f"{res['worker_mb']:>9.0f}",
                    flush=True,
                )
    print("us/pair: wall time per member pair, all four metrics; MB: peak RSS (ru_maxrss)")


def bench_mcca(k: int, n: int = 2000, d: int = 2) -> None:
    """MultisetCCA on K synthetic networks sharing 2 latents: iterative vs dense solver."""
    import numpy as np

    from ensemble_lens.align import MultisetCCA

    rng = np.random.default_rng(0)
    z = rng.normal(size=(n, 2))
    nets = [z @ rng.normal(size=(2, d)) + 0.1 * rng.normal(size=(n, d)) for _ in range(k)]
    print(f"\nMCCA, K={k} networks of {d} units, n={n}: solver, wall s, CPU s, top eigenvalues")
    for solver in ("iterative", "dense"):
        wall, cpu = time.perf_counter(), time.process_time()
        fit = MultisetCCA(solver=solver, n_components=2).fit(nets)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"{solver:>9} {wall:8.1f} {cpu:8.1f}  {np.round(fit.maxvar_eigenvalues_, 4)}")


def _moments_timed(nets: dict, device: str, precision: str, repeats: int = 2):  # type: ignore
    """(moments, best seconds of ``repeats`` passes)."""
    from ensemble_lens.similarity import compute_moments

    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        mom = compute_moments(nets, device=device, precision=precision)  # type: ignore[arg-type]
        best = min(best, time.perf_counter() - t)
    return mom, best


def bench_device(devices: list[str], ks: list[int], n: int, d: int, rate: float) -> None:
    """The moments pass on the numpy path against the torch path on each device, same run."""
    import numpy as np
    import torch

    print(
        f"\nmoments pass per device: K networks of {d} units, n={n} (float32 in memory); "
        f"torch {torch.__version__}, {torch.get_num_threads()} torch threads"
        + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "")
    )
    print(f"{'K':>5} {'D':>6} {'path':<11} {'precision':<9} {'s':>8} {'x numpy':>8} "
          f"{'rel err':>9} {'GEMM floor s':>12}")  # fmt: skip
    rng = np.random.default_rng(0)
    for dev in devices:  # warm up (CUDA context, kernels) outside the timings
        _moments_timed({"w": rng.normal(size=(256, 8))}, dev, "float64", 1)
    for k in ks:
        z = rng.normal(size=(n, 16)).astype(np.float32)
        nets = {f"m{i}": np.tanh(z @ rng.normal(size=(16, d)).astype(np.float32)) + 0.5
                for i in range(k)}  # fmt: skip
        ref, base = _moments_timed(nets, "cpu", "float64")
        floor = n * (k * d) ** 2 / rate
        rows = [("numpy", "float64", base, 0.0)]
        mom32, sec32 = _moments_timed(nets, "cpu", "float32")  # BLAS ssyrk, float64 sums
        rows.append(("numpy", "float32", sec32, float(np.abs(mom32.cov - ref.cov).max()
                                                     / np.abs(ref.cov).max())))  # fmt: skip
        for dev in devices:
            for prec in ("float64", "float32"):
                mom, sec = _moments_timed(nets, dev, prec)
                err = float(np.abs(mom.cov - ref.cov).max() / np.abs(ref.cov).max())
                rows.append((dev, prec, sec, err))
        for path, prec, sec, err in rows:
            print(f"{k:>5} {k * d:>6} {path:<11} {prec:<9} {sec:>8.2f} {base / sec:>8.2f} "
                  f"{err:>9.1e} {floor:>12.2f}", flush=True)  # fmt: skip
    print(
        "x numpy: numpy s / these s; rel err: max |cov - cov_numpy| / max |cov_numpy|; "
        "floor: n D^2 / (this CPU's float64 GEMM rate)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--full", action="store_true", help="K up to 1000 and n up to 1e6")
    p.add_argument("--k", type=int, nargs="*", help="member counts (default 50 200)")
    p.add_argument("--n", type=int, nargs="*", help="sample counts (default 1e4 1e5)")
    p.add_argument("--no-k", action="store_true", help="skip the K scaling")
    p.add_argument("--no-n", action="store_true", help="skip the n scaling")
    p.add_argument("--mcca", type=int, default=None, help="MCCA solvers at this K (--full: 1000)")
    p.add_argument("--probe", type=int, default=2000, help="probe samples of the K studies")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--members-per-task", type=int, default=None)
    p.add_argument("--train-mode", choices=["member", "vmap"], default="vmap")
    p.add_argument("--compare", type=int, nargs="*", help="compare stage alone at these K")
    p.add_argument("--block-memory", default="1GB", help="similarity.block_memory (--compare)")
    p.add_argument("--old-max-k", type=int, default=200, help="above: old path in 1 process")
    p.add_argument("--no-old", action="store_true", help="--compare: blocks only")
    p.add_argument("--slurm", action="store_true", help="K studies on SLURM jobs (jobqueue)")
    p.add_argument("--slurm-memory", default="3GB", help="memory per SLURM worker job")
    p.add_argument("--device", nargs="*", help="moments pass: numpy vs these torch devices")
    p.add_argument("--device-k", type=int, nargs="*", default=[20, 50], help="K (--device)")
    p.add_argument("--device-n", type=int, default=20_000, help="samples (--device)")
    p.add_argument("--device-d", type=int, default=32, help="units per network (--device)")
    p.add_argument("--k-child", type=int, help=argparse.SUPPRESS)
    p.add_argument("--compare-child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.k_child:
        k_child(args.k_child, args)
        return
    if args.compare_child:
        compare_child(*args.compare_child, args)
        return
    rate = gemm_rate()
    print(f"float64 GEMM: {rate / 1e9:.1f} GFLOP/s (best of 3, 3000^3)")
    if not args.no_k:
        bench_k(args.k or ([50, 200, 1000] if args.full else [50, 200]), rate, args)
    if not args.no_n:
        bench_n(args.n or ([10**4, 10**5, 10**6] if args.full else [10**4, 10**5]), rate)
    if args.mcca or args.full:
        bench_mcca(args.mcca or 1000)
    if args.compare:
        bench_compare(args.compare, args)
    if args.device:
        bench_device(args.device, args.device_k, args.device_n, args.device_d, rate)


if __name__ == "__main__":
    main()
