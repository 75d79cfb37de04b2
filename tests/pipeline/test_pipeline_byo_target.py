"""`probe.target`: networks trained elsewhere are judged on what they were trained to predict.

A null ensemble fitted to shuffled targets shares a function (every member saw the same
shuffle), so its consensus and even a formula's support can look like a law; only the members'
skill on their own targets tells. Real torch training, a real Parquet probe, a real store.
"""

import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from ensemble_lens.errors import ShapeError
from ensemble_lens.pipeline.runner import run_study

pytestmark = pytest.mark.slow  # six networks trained for real (about 20 s on 2 idle cores)

NETS = """
from torch import nn


def make():
    return nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 3), nn.Linear(3, 1))
"""


def _train(x: np.ndarray, y: np.ndarray, seed: int, make) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = make()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    X, Y = torch.tensor(x, dtype=torch.float32), torch.tensor(y[:, None], dtype=torch.float32)
    for _ in range(150):
        loss = torch.nn.functional.mse_loss(net(X), Y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """Three networks on u = x1 * x2 and three on one shared shuffle of the same targets."""
    root = tmp_path_factory.mktemp("lab")
    (root / "tnets.py").write_text(NETS)
    sys.path.insert(0, str(root))
    import tnets

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (600, 3))
    y = x[:, 0] * x[:, 1]
    for kind, targets in (("real", y), ("null", rng.permutation(y))):
        for seed in range(3):
            (root / kind / f"s{seed}").mkdir(parents=True)
            net = _train(x, targets, seed, tnets.make)
            torch.save(net.state_dict(), root / kind / f"s{seed}" / "model.pt")
    probe = rng.uniform(-1, 1, (400, 3))
    frame = pd.DataFrame(probe, columns=["x1", "x2", "x3"]).assign(
        u=probe[:, 0] * probe[:, 1], v=probe[:, 2]
    )
    frame.to_parquet(root / "probe.parquet")
    sys.path.remove(str(root))
    sys.modules.pop("tnets", None)
    return root


def _config(root, kind, tmp_path, **probe):
    cfg = {
        "name": kind,
        "probe": {
            "path": str(root / "probe.parquet"),
            "split": 0.3,
            "target": probe.pop("target", ["u"]),
            "variables": ["x1", "x2", "x3"],
            **probe,
        },
        "distill": {"seeds": [0], "options": {"population_size": 200, "generations": 20}},
        "ensemble": {
            "ingest": [
                {
                    "id": "{parent}",
                    "kind": "state_dict",
                    "path": f"{kind}/s*/model.pt",
                    "factory": "tnets:make",
                    "layers": ["2"],
                }
            ],
        },
        "consensus": {"n_null": 5},
        "execution": {"scheduler": "serial"},
        "store": str(tmp_path / f"{kind}.zarr"),
    }
    path = root / f"{kind}-{tmp_path.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_members_skill_comes_from_the_target_column(lab, tmp_path):
    stages = ["probe", "train", "record", "compare", "consensus"]
    store = run_study(_config(lab, "real", tmp_path), stages=stages).store
    assert store.target_names() == ("u",) and "u" not in store.probe_names
    for m in ("s0", "s1", "s2"):
        metrics = store.model_attrs(m)["metrics"]
        assert metrics["val_r2"] > 0.9 and metrics["val_r2_on"] == "probe.target"
    assert "val_r2" not in (store.model_attrs("null-s0").get("metrics") or {})
    ds = store.read_result("consensus", "2")
    assert ds.attrs["member_skill"] == "skilled"


def test_a_shuffled_target_ensemble_stops_short_of_formulas(lab, tmp_path):
    result = run_study(_config(lab, "null", tmp_path))
    skills = [result.store.model_attrs(m)["metrics"]["val_r2"] for m in ("s0", "s1", "s2")]
    assert max(skills) < 0.3, skills
    assert result.formulas and all(r["expression"] is None for r in result.formulas)
    assert all(r["member_skill"] == "unskilled" for r in result.formulas)
    assert "0 of 3 members predict their own targets" in result.formulas[0]["reason"]


def test_without_targets_the_null_is_stopped_by_its_formulas_verdicts(lab, tmp_path):
    # no skill to check: the shared fit of the shuffled targets reaches the search, and what
    # stops it is how its formulas look (no knee on the front, or members not carrying it)
    result = run_study(_config(lab, "null", tmp_path, target=None))
    assert result.formulas and not any(r["is_result"] for r in result.formulas)
    flags = {f for r in result.formulas for f in r["flags"]}
    assert flags & {"no_knee", "support", "extrapolation"}, result.formulas


def test_output_width_must_match_the_target_columns(lab, tmp_path):
    path = _config(lab, "real", tmp_path, target=["u", "v"])
    with pytest.raises(ShapeError, match=r"member 's0' .*gives 1 output value.*expected 2"):
        run_study(path, stages=["probe", "train", "record"])
    assert not (tmp_path / "real.zarr").exists()  # raised before anything was written
