"""Train 6 small networks on u = x1 * exp(-x2) with plain torch and save what a lab would keep:
one state_dict per seed (runs/seed<k>/model.pt) and a CSV of the inputs (probe.csv).

    python train.py            # the real ensemble
    python train.py --shuffle  # a null ensemble: the same networks trained on shuffled targets

x3 is a distractor: the networks see it, the law does not use it. No ensemble_lens import.
"""

import argparse
import csv
from pathlib import Path

import numpy as np
import torch
from mynets import make

HERE = Path(__file__).parent


def law(x: np.ndarray) -> np.ndarray:
    return x[:, 0] * np.exp(-x[:, 1])


def inputs(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.5, 1.5, (n, 3)).astype(np.float32)


def train_one(seed: int, x: np.ndarray, y: np.ndarray, epochs: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = make()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    X, Y = torch.from_numpy(x), torch.from_numpy(y[:, None])
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(X), generator=gen).split(64):
            loss = torch.nn.functional.mse_loss(net(X[idx]), Y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--members", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--n-train", type=int, default=3000)
    ap.add_argument("--n-probe", type=int, default=2000)
    ap.add_argument("--shuffle", action="store_true", help="train on shuffled targets (null)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    x = inputs(args.n_train, 0)
    y = law(x).astype(np.float32)
    if args.shuffle:
        y = np.random.default_rng(1).permutation(y)
    for seed in range(args.members):
        net = train_one(seed, x, y, args.epochs)
        with torch.no_grad():
            mse = float(((net(torch.from_numpy(x))[:, 0].numpy() - y) ** 2).mean())
        folder = args.out / "runs" / f"seed{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), folder / "model.pt")
        print(f"seed {seed}: train mse {mse:.4f} -> {folder / 'model.pt'}")
    probe = inputs(args.n_probe, 7)
    with open(args.out / "probe.csv", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["x1", "x2", "x3"])
        out.writerows(probe.tolist())
    print(f"probe: {args.n_probe} rows -> {args.out / 'probe.csv'}")


if __name__ == "__main__":
    main()
