"""Train small networks of two (or more) kinds on (a + b) mod p and save what a lab keeps:
runs/<kind><seed>/model.pt (state_dicts) and probe.csv (every pair a, b of Z_p x Z_p).

    python train.py                               # 3 clock + 3 pizza members, p = 23
    python train.py --p 31 --kinds clock summed   # another modulus, another architecture

Full-batch AdamW with weight decay 1 on 80 % of the pairs; prints each member's accuracy on
the other 20 %. No ensemble_lens import.
"""

import argparse
from pathlib import Path

import numpy as np
import torch
from mixnets import make

HERE = Path(__file__).parent


def pairs(p: int) -> np.ndarray:
    return np.stack(np.meshgrid(np.arange(p), np.arange(p), indexing="ij"), -1).reshape(-1, 2)


def train_one(kind: str, p: int, seed: int, epochs: int) -> tuple[torch.nn.Module, float]:
    torch.manual_seed(seed)
    net = make(kind, p)
    grid = pairs(p)
    x, y = torch.tensor(grid), torch.tensor(grid.sum(1) % p)
    order = np.random.default_rng(seed).permutation(p * p)
    fit, val = order[: int(0.8 * p * p)], order[int(0.8 * p * p) :]
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=1.0)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x[fit]), y[fit]).backward()
        opt.step()
    with torch.no_grad():
        acc = float((net(x[val]).argmax(1) == y[val]).float().mean())
    return net, acc


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--p", type=int, default=23)
    ap.add_argument("--kinds", nargs="+", default=["clock", "pizza"])
    ap.add_argument("--members", type=int, default=3, help="members of each kind")
    ap.add_argument("--epochs", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    for kind in args.kinds:
        for seed in range(args.members):
            net, acc = train_one(kind, args.p, seed, args.epochs)
            folder = args.out / "runs" / f"{kind}{seed}"
            folder.mkdir(parents=True, exist_ok=True)
            torch.save(net.state_dict(), folder / "model.pt")
            print(f"{kind}{seed}: validation accuracy {acc:.3f}")
    np.savetxt(
        args.out / "probe.csv", pairs(args.p), fmt="%d", delimiter=",", header="a,b", comments=""
    )


if __name__ == "__main__":
    main()
