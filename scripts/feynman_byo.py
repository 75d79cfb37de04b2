"""An AI Feynman equation through the bring-your-own path: networks trained outside the project.

For one equation of ``scripts/data/feynman_equations.csv`` and a noise level, this writes a
folder as a lab would hand it over, then (``--run``) runs ``ensemble-lens run`` on it:

- ``nets.py``: the networks' module, plain torch (an MLP on inputs mapped onto [-1, 1]);
- ``runs/s<k>/model.pt``: one state_dict per seed, trained here with plain torch (Adam with a
  cosine schedule, mean squared error on noisy targets: Gaussian noise of ``--noise`` times
  the target's standard deviation, SRBench's definition), no ensemble_lens code involved;
- ``probe.csv``: fresh inputs, the noisy target the networks were trained to predict (named
  by the law's output), and nothing else;
- ``study.yaml``: the networks' output ingested (``layers: [""]``, searched in the target's
  units), ``probe.target`` (each network's skill), and the law as ``probe.truth``, a
  formula of the variables, so every formula the study finds is judged against it.

This is the check of issue 23 on held-out equations ("networks we train outside the project
and noise we choose, through the bring-your-own path"). Every setting is a flag; nothing
depends on the clock (seeded training, search budgeted by work).

    python scripts/feynman_byo.py II.10.9 --noise 0.05 --out runs/byo_II.10.9 --run

``--dimensions`` adds ``distill.dimensions`` from ``scripts/data/feynman_units.csv``: the
output is then searched on the variables' dimensionless groups.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_feynman import read_equations, with_units  # the table, its ranges and units

NETS = '''"""The networks of this folder: plain torch, no ensemble_lens."""
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, width={width}):
        super().__init__()
        self.register_buffer("lo", torch.tensor({lo}))
        self.register_buffer("hi", torch.tensor({hi}))
        self.f = nn.Sequential(
            nn.Linear({d}, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
            nn.Linear(width, 1),
        )

    def forward(self, x):
        return self.f(2 * (x - self.lo) / (self.hi - self.lo) - 1)


def make():
    return Net()
'''


def train(folder: Path, X: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> list[float]:
    """Train ``--members`` networks with plain torch; save each state_dict; their train MSE."""
    import importlib.util

    import torch

    torch.set_num_threads(1)
    spec = importlib.util.spec_from_file_location("nets", folder / "nets.py")
    nets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nets)
    Xt, Yt = torch.from_numpy(X.astype(np.float32)), torch.from_numpy(y[:, None].astype(np.float32))
    losses = []
    for seed in range(args.members):
        torch.manual_seed(100 + seed)
        net = nets.make()
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(args.epochs):
            for idx in torch.randperm(len(Xt), generator=gen).split(128):
                loss = torch.nn.functional.mse_loss(net(Xt[idx]), Yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            sched.step()
        with torch.no_grad():
            losses.append(float(torch.nn.functional.mse_loss(net(Xt), Yt)))
        (folder / "runs" / f"s{seed}").mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), folder / "runs" / f"s{seed}" / "model.pt")
    return losses


def target_column(names: list[str], output: str) -> str:
    """The probe's column of the noisy target: the law's output name, unless an input has it
    (II.6.15a has an input ``y``)."""
    return output if output not in names else f"{output}_measured"


def study_yaml(
    names: list[str], output: str, formula: str, args: argparse.Namespace, dimensions=None
) -> dict:
    """The study on the files; ``dimensions`` (``distill.dimensions``) when given."""
    from ensemble_lens.distill.backends import DEFAULT_FUNCTIONS

    return {
        "name": "feynman_byo",
        "probe": {
            "path": "probe.csv",
            "variables": names,
            "split": 0.25,
            "target": [target_column(names, output)],
            "truth": {output: formula},
        },
        "ensemble": {
            "ingest": [
                {
                    "id": "{parent}",
                    "kind": "state_dict",
                    "path": "runs/s*/model.pt",
                    "factory": "nets:make",
                    "layers": [""],
                }
            ]
        },
        "consensus": {"n_null": 20},
        "distill": {
            "functions": list(DEFAULT_FUNCTIONS),  # the formula tasks' search set
            "seeds": [int(s) for s in args.sr_seeds.split(",")],
            "options": {
                "population_size": args.population,
                "generations": args.generations,
                "max_points": args.max_points,
            },
            **({"dimensions": dimensions} if dimensions else {}),
        },
        "execution": {"scheduler": "serial"},
        "store": "study.zarr",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("equation", help="a name of the table, e.g. II.10.9")
    ap.add_argument("--noise", type=float, default=0.05, help="fraction of the target's std")
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--n", type=int, default=8000, help="training rows (shared by the members)")
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--probe", type=int, default=2000)
    ap.add_argument("--sr-seeds", default="0,1,2,3")
    ap.add_argument("--population", type=int, default=500)
    ap.add_argument("--generations", type=int, default=100)
    ap.add_argument("--max-points", type=int, default=500)
    ap.add_argument("--out", default=None, help="the folder (default runs/byo_<equation>)")
    ap.add_argument("--run", action="store_true", help="then run the study and print formulas")
    ap.add_argument(
        "--dimensions",
        action="store_true",
        help="search the output on dimensionless groups (units from bench_feynman's table)",
    )
    args = ap.parse_args()
    import yaml

    by_name = {e["name"]: e for e in read_equations()}
    if args.equation not in by_name:
        sys.exit(
            f"feynman_byo: unknown equation {args.equation!r} (e.g. {', '.join(list(by_name)[:4])})"
        )
    eq = by_name[args.equation]
    from ensemble_lens.tasks import FormulaTask

    law = FormulaTask(eq["formula"], eq["variables"], output=eq["output"]).law  # the truth
    names = list(eq["variables"])
    lo = [eq["variables"][v][0] for v in names]
    hi = [eq["variables"][v][1] for v in names]
    folder = Path(args.out or f"runs/byo_{args.equation}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nets.py").write_text(NETS.format(width=args.width, lo=lo, hi=hi, d=len(names)))

    rng = np.random.default_rng(3)
    X = rng.uniform(lo, hi, (args.n, len(names)))
    t = law(X)
    scale = float(t.std())
    y = t + args.noise * scale * rng.standard_normal(len(t))
    mse = train(folder, X, y, args)

    Xp = np.random.default_rng(9).uniform(lo, hi, (args.probe, len(names)))
    yp = law(Xp)
    yp = yp + args.noise * scale * np.random.default_rng(10).standard_normal(len(yp))
    with open(folder / "probe.csv", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow([*names, target_column(names, eq["output"])])
        out.writerows(np.column_stack([Xp, yp]).tolist())
    dims = with_units(eq)["dimensions"] if args.dimensions else None
    cfg = study_yaml(names, eq["output"], eq["formula"], args, dims)
    (folder / "study.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    print(f"{args.equation} {eq['formula']}: {args.members} networks, train MSE / var "
          f"{', '.join(f'{m / scale**2:.2g}' for m in mse)} -> {folder}")  # fmt: skip
    if not args.run:
        return
    done = subprocess.run(["ensemble-lens", "run", "study.yaml"], cwd=folder, text=True,
                          capture_output=True)  # fmt: skip
    if done.returncode:
        sys.exit(done.stderr[-2000:])
    results = json.loads((folder / "study.report" / "results.json").read_text())
    for rec in results["formulas"]:
        if rec.get("expression") is None:
            print(f"{rec['layer']}/{rec['component']}: no formula ({rec.get('reason')})")
            continue
        print(f"{rec['layer']}/{rec['component']}: {rec['expression']}  exact "
              f"{rec['exact_recovery']} (seeds exact {rec['seeds_exact']} of "
              f"{rec['seeds_tried']}), R2 test {rec['r2_test']:.5f}")  # fmt: skip


if __name__ == "__main__":
    main()
