"""Recording overhead versus the bare forward pass, and peak memory versus probe size.

Measured in the same run: the bare forward pass streams the same probe batches through the
same model under ``torch.inference_mode()`` with nothing captured or written; recording is
:func:`ensemble_lens.record_activations` of one hidden layer, then of all four, into a fresh Zarr
store. Because a recorder must write its bytes, the run also measures this disk's plain
file-write rate for the same number of bytes and reports the overhead against
``max(bare forward, bytes / disk rate)`` too.
Peak memory is the peak RSS of a fresh subprocess that records probes of different sizes: it
must not grow with the probe size (only the probe inputs, n x 32 float32, do).

    python scripts/bench_record.py            # 100k-sample probe (target: overhead <= 1.5x)
    python scripts/bench_record.py --quick    # 20k samples
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WIDTH, N_IN = 256, 32


def make_mlp(seed: int = 0):
    import torch

    torch.manual_seed(seed)
    layers = []
    d = N_IN
    for _ in range(4):
        layers += [torch.nn.Linear(d, WIDTH), torch.nn.ReLU()]
        d = WIDTH
    return torch.nn.Sequential(*layers, torch.nn.Linear(WIDTH, 4))


def bare_forward(model, probe: np.ndarray, batch_size: int) -> float:
    import torch

    start = time.perf_counter()
    with torch.inference_mode():
        for a in range(0, probe.shape[0], batch_size):
            model(torch.from_numpy(probe[a : a + batch_size]))
    return time.perf_counter() - start


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def disk_write_rate(root: Path, nbytes: int) -> float:
    """MB/s of plain file writes of 4 MB blocks (the I/O floor of any recorder here)."""
    block = np.random.default_rng(1).normal(size=2**20).astype(np.float32).tobytes()
    out = root / "raw"
    out.mkdir(parents=True)
    start = time.perf_counter()
    for i in range(max(1, nbytes // len(block))):
        (out / f"c{i}").write_bytes(block)
    return max(1, nbytes // len(block)) * len(block) / 2**20 / (time.perf_counter() - start)


def record_once(n: int, batch_size: int, root: Path, layers=("1", "3", "5", "7")) -> dict:
    import ensemble_lens as el

    probe = np.random.default_rng(0).normal(size=(n, N_IN)).astype(np.float32)
    store = el.open_store(root / f"bench{n}-{len(layers)}.zarr", mode="w")
    store.write_probe(probe, [f"x{i}" for i in range(N_IN)])
    model = make_mlp()
    el.record_activations(model, store, "warmup", ["1"], batch_size=batch_size)  # imports
    bare = min(bare_forward(model, probe, batch_size) for _ in range(3))
    start = time.perf_counter()
    el.record_activations(model, store, "mlp", list(layers), batch_size=batch_size)
    rec = time.perf_counter() - start
    stored = _dir_bytes(store.path / "models" / "mlp")
    return {"bare": bare, "record": rec, "stored_MB": stored / 2**20}


def peak_rss_child(n: int, batch_size: int) -> float:
    """Peak RSS (MB) of a fresh process that records an n-sample probe."""
    here = str(Path(__file__).parent)
    code = (
        f"import resource, sys, tempfile, pathlib; sys.path.insert(0, {here!r});"
        "import bench_record as b;"
        f"b.record_once({n}, {batch_size}, pathlib.Path(tempfile.mkdtemp()));"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--batch-size", type=int, default=4096)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    n = 20_000 if args.quick else 100_000
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, layers in (("1 layer", ("5",)), ("4 layers", ("1", "3", "5", "7"))):
            r = record_once(n, args.batch_size, Path(tmp), layers)
            rate = disk_write_rate(Path(tmp) / label.replace(" ", "_"), int(r["stored_MB"] * 2**20))
            floor = max(r["bare"], r["stored_MB"] / rate)
            rows[label] = {
                "bare_forward_s": round(r["bare"], 3),
                "record_s": round(r["record"], 3),
                "overhead_vs_forward": round(r["record"] / r["bare"], 2),
                "stored_MB": round(r["stored_MB"], 1),
                "disk_MB_per_s": round(rate, 1),
                "io_floor_s": round(floor, 3),
                "overhead_vs_floor": round(r["record"] / floor, 2),
            }
    sizes = [n // 4, n] if args.quick else [25_000, 100_000, 200_000]
    peaks = {m: peak_rss_child(m, args.batch_size) for m in sizes}
    result = {
        "n_samples": n,
        "width": WIDTH,
        "batch_size": args.batch_size,
        "target_ratio": 1.5,
        "runs": rows,
        "peak_rss_MB_by_n (4 layers)": {str(k): round(v, 1) for k, v in peaks.items()},
        "peak_growth_MB": round(max(peaks.values()) - min(peaks.values()), 1),
        "activation_MB_at_largest_n": round(max(sizes) * WIDTH * 16 / 2**20, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
