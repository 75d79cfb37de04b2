"""The default ``groups.metric`` finds sub-populations without the user naming a metric:
Clock and Pizza networks trained for real (examples/modular_mixed) split into their two
algorithms, while an ensemble of Clock networks alone (each with its own frequencies) stays
one group. Only the defaults of ``similarity`` and ``groups`` are used."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ensemble_lens.config import GroupsConfig
from ensemble_lens.pipeline.runner import run_study
from ensemble_lens.record.store import open_store

pytestmark = pytest.mark.slow  # twelve small networks trained (about 25 s on 2 cores)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "modular_mixed"
P = 23


def _study(lab: Path, kinds: list[str], members: int) -> dict:
    for name in ("train.py", "mixnets.py"):
        shutil.copy(EXAMPLE / name, lab / name)
    train = [sys.executable, "train.py", "--p", str(P), "--members", str(members), "--kinds"]
    subprocess.run(train + kinds, cwd=lab, capture_output=True, text=True, check=True)
    ingest = [
        {"id": "{parent}", "kind": "state_dict", "path": f"runs/{kind}*/model.pt",
         "factory": "mixnets:make", "factory_kwargs": {"kind": kind, "p": P},
         "layers": ["hidden"]}
        for kind in kinds
    ]  # fmt: skip
    cfg = {
        "name": "groups_default",
        "probe": {"path": "probe.csv", "variables": ["a", "b"], "split": 0.25},
        "ensemble": {"ingest": ingest},
        "consensus": {"n_null": 5},
        "distill": {"enabled": False},
        "groups": {"enabled": True, "n_perm": 199, "per_group": False},
        "execution": {"scheduler": "serial"},
    }
    (lab / "study.yaml").write_text(yaml.safe_dump(cfg))
    stages = ("probe", "record", "compare", "templates")
    run_study(lab / "study.yaml", lab / "study.zarr", stages=stages)
    return open_store(lab / "study.zarr").study_attrs()["templates"]["hidden"]["groups"]


def test_default_metric_is_a_corrected_list_with_a_local_measure():
    assert GroupsConfig().metric == ["linear_cka", "mutual_knn"]


def test_default_metric_finds_clock_and_pizza(tmp_path):
    rec = _study(tmp_path, ["clock", "pizza"], 3)
    groups = rec["similarity"]
    assert sorted(map(sorted, groups["groups"])) == [
        ["clock0", "clock1", "clock2"],
        ["pizza0", "pizza1", "pizza2"],
    ]
    assert groups["p_value"] <= 0.05 / 2  # Bonferroni over the two default metrics
    assert set(rec["by_metric"]) == {"linear_cka", "mutual_knn"}


def test_default_metric_keeps_one_population_one_group(tmp_path):
    rec = _study(tmp_path, ["clock"], 6)
    assert rec["similarity"]["n_groups"] == 1, rec
    assert all(m["n_groups"] == 1 for m in rec["by_metric"].values())
