"""Training throughput: members trained per minute with 1 and 2 worker processes, same run.

Each setting trains the same members (gravity graph networks on a reduced budget, so the
benchmark takes minutes) into a fresh store through ``run_study(stages=["probe", "train"])`` on
a ``distributed.LocalCluster`` of single-threaded workers; the cluster is started before the
clock starts. Target: 2 workers at least 1.7x the throughput of 1 on a 2-core machine.
``--demo`` also times the whole default study (``configs/demo.yaml``) end to end.

    python scripts/bench_train.py [--members 4] [--epochs 4] [--demo]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from ensemble_lens import run_study
from ensemble_lens.execution import make_executor


def study(store: Path, members: int, epochs: int) -> dict:
    return {
        "name": "bench-train",
        "task": {"name": "gravity"},
        "probe": {"n": 2000},
        "ensemble": {
            "seeds": list(range(members)),
            "untrained_null": False,  # time training only
            "train": {"epochs": epochs, "n_train": 6000, "n_val": 1000, "patience": 100},
        },
        "store": str(store),
    }


def throughput(workers: int, members: int, epochs: int, root: Path) -> dict:
    with make_executor("local", workers=workers) as ex:
        start = time.perf_counter()
        result = run_study(
            study(root / f"w{workers}.zarr", members, epochs),
            executor=ex,
            stages=["probe", "train"],
        )
        wall = time.perf_counter() - start
    built = len(result.outcomes["train"])
    return {
        "workers": workers,
        "members": built,
        "wall_s": round(wall, 1),
        "members_per_minute": round(60 * built / wall, 2),
    }


def demo_wall(root: Path) -> float:
    start = time.perf_counter()
    config = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
    run_study(config, store=root / "demo.zarr")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--demo", action="store_true", help="also time configs/demo.yaml end to end")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = throughput(1, args.members, args.epochs, Path(tmp))
        two = throughput(2, args.members, args.epochs, Path(tmp))
        out = {
            "one_worker": one,
            "two_workers": two,
            "target_speedup": 1.7,
            "speedup": round(two["members_per_minute"] / one["members_per_minute"], 2),
        }
        if args.demo:
            out["demo_wall_s"] = round(demo_wall(Path(tmp)), 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
