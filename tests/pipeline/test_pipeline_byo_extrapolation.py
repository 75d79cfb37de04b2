"""Extrapolation without a truth, member bootstrap and seeds of untrained twins: studies on
the user's own files (real CSV/Parquet, real torch state_dicts, real Zarr stores)."""

import numpy as np
import pandas as pd
import pytest
import yaml

from ensemble_lens.errors import ConfigError, IngestError, ShapeError
from ensemble_lens.pipeline.runner import run_study
from ensemble_lens.record.store import open_store

STAGES = ["probe", "train", "record", "compare", "consensus", "distill"]


def _write(folder, cfg):
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_task_study_with_a_probe_file_in_another_column_order(tmp_path, user_task_path):
    """The task's inputs are (x1, x2, x3); the file has (x3, x1, x2). The extrapolation range
    the task draws and the truth it computes on the test split are matched by name."""
    rng = np.random.default_rng(0)
    n = 500
    x = rng.uniform(-1, 1, (n, 3))  # x1, x2, x3
    frame = pd.DataFrame({"x3": x[:, 2], "x1": x[:, 0], "x2": x[:, 1]})
    frame.to_csv(tmp_path / "probe.csv", index=False)
    latents = np.c_[x[:, 0] * x[:, 1], x[:, 2]]
    for k in range(4):
        acts = np.c_[latents, 0.05 * rng.normal(size=(n, 1))] @ rng.normal(size=(3, 3))
        np.savez(tmp_path / f"h{k}.npz", hidden=acts, sample_ids=np.arange(n))
    cfg = {
        "name": "order",
        "task": {"name": "user_tasks:ProductTask"},
        "probe": {"path": "probe.csv", "split": 0.3, "n_extrapolation": 300},
        "ensemble": {
            "seeds": [],
            "untrained_null": False,
            "ingest": [{"id": "{stem}", "kind": "activations", "path": "h*.npz"}],
        },
        "consensus": {"n_null": 5},
        "distill": {"backend": "sparse"},
        "execution": {"scheduler": "serial"},
        "store": str(tmp_path / "study.zarr"),
    }
    result = run_study(_write(tmp_path, cfg), stages=STAGES)
    found = {f["truth_name"]: f for f in result.formulas if f["is_result"]}
    assert set(found) == {"u", "v"}
    for f in found.values():
        assert f["r2_extrapolation"] > 0.95, f
        assert f["extrapolation_reference"] == "truth"


NETS = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, 32), nn.SiLU(), nn.Linear(32, 32), nn.SiLU())
        self.latent = nn.Linear(32, 2)
        self.head = nn.Linear(2, 1)

    def forward(self, x):
        return self.head(self.latent(self.body(x)))


def make():
    return Net()
"""


def _law_inputs(rng, n_in, n_ext):
    """In-range rows on [-1, 1]^2 (fit/test) and extrapolation rows with x1 in [1, 1.3]."""
    inside = rng.uniform(-1, 1, (n_in, 2))
    beyond = np.c_[rng.uniform(1.0, 1.3, n_ext), rng.uniform(-1, 1, n_ext)]
    split = np.r_[np.where(rng.random(n_in) < 0.3, "test", "fit"), ["extrapolation"] * n_ext]
    return np.r_[inside, beyond], split


@pytest.fixture
def ext_nets(tmp_path, monkeypatch):
    """The user's module of networks, next to the config."""
    import importlib
    import sys

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "ext_nets.py").write_text(NETS)
    yield importlib.import_module("ext_nets")
    sys.modules.pop("ext_nets", None)


@pytest.fixture
def trained_folder(tmp_path, ext_nets):
    """Four small torch networks trained here with plain torch on u = x1 * x2 (no
    ensemble_lens), saved as state_dicts, and a Parquet probe with an extrapolation split
    and no truth column."""
    import torch

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(-1, 1, (800, 2)).astype(np.float32))
    y = x[:, :1] * x[:, 1:]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: threads only contend
    for seed in range(4):
        torch.manual_seed(seed)
        net = ext_nets.make()
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(300):
            opt.zero_grad()
            loss = torch.mean((net(x) - y) ** 2)
            loss.backward()
            opt.step()
        (tmp_path / "runs" / f"seed{seed}").mkdir(parents=True)
        torch.save(net.state_dict(), tmp_path / "runs" / f"seed{seed}" / "model.pt")
    torch.set_num_threads(threads)
    X, split = _law_inputs(rng, 700, 200)
    pd.DataFrame({"x1": X[:, 0], "x2": X[:, 1], "part": split}).to_parquet(
        tmp_path / "probe.parquet"
    )
    return tmp_path


def _byo_config(folder, ingest, **extra):
    return {
        "name": "ext",
        "probe": {"path": "probe.parquet", "split": "part"},
        "ensemble": {"ingest": ingest},
        "consensus": {"n_null": 10},
        "distill": {"backend": "sparse"},
        "execution": {"scheduler": "serial"},
        "store": str(folder / "study.zarr"),
        **extra,
    }


STATE = {
    "id": "{parent}",
    "kind": "state_dict",
    "path": "runs/seed*/model.pt",
    "factory": "ext_nets:make",
    "layers": ["latent"],
}


@pytest.mark.slow
def test_extrapolation_without_truth_against_the_consensus_there(trained_folder):
    import json

    path = _write(trained_folder, _byo_config(trained_folder, [STATE]))
    result = run_study(path, stages=[*STAGES, "report"])
    store = result.store
    assert store.n_extrapolation == 200
    assert store.extrapolation_layers("seed2") == ["latent"]
    assert store.extrapolation_layers("null-seed2") == []  # twins: fit and test only
    ds = store.read_result("consensus", "latent")
    assert ds.sizes["sample"] == 700 and ds.sizes["extrapolation_sample"] == 200
    (f,) = [r for r in result.formulas if r["is_result"]]
    assert f["ground_truth"] is False
    assert f["extrapolation_reference"] == "consensus of the networks on the extrapolation rows"
    assert f["r2_test"] > 0.95 and f["r2_extrapolation"] > f["r2_test"] - 0.1, f
    from ensemble_lens.report import collect_results

    saved = json.loads((result.report.parent / "results.json").read_text())
    (rec,) = [r for r in saved["formulas"] if r.get("is_result")]
    assert rec["extrapolation_reference"] == f["extrapolation_reference"]
    html = result.report.read_text()
    assert "consensus of the networks on the extrapolation rows" in html
    assert collect_results(store)["formulas"]

    # resume: nothing is built again; an old store (no extrapolation group) gets only that
    tags = {m: store.model_attrs(m)["tag"] for m in store.complete_models}
    again = run_study(path, stages=STAGES)
    assert again.outcomes["train"] == [] and again.outcomes["consensus"] == {"latent": "skipped"}
    import shutil

    shutil.rmtree(store.path / "extrapolation")
    shutil.rmtree(store.path / "consensus")
    old = run_study(path, stages=STAGES)
    assert old.outcomes["train"] == []  # no member recorded or trained again
    assert {m: store.model_attrs(m)["tag"] for m in store.complete_models} == tags
    assert store.extrapolation_layers("seed0") == ["latent"]
    (g,) = [r for r in old.formulas if r["is_result"]]
    assert g["r2_extrapolation"] == pytest.approx(f["r2_extrapolation"], abs=1e-6)


def _activation_files(folder, X, split, name="h", with_extrapolation=True, collapse=False):
    """Four activations-only members holding u = x1 * x2 (mixed with noise units): one file
    per member on the probe's fit/test rows, one on its extrapolation rows (where, with
    ``collapse``, u is 0: members that do not follow the law beyond the range)."""
    rng = np.random.default_rng(3)
    u = X[:, 0] * X[:, 1]
    inside = split != "extrapolation"
    if collapse:
        u = np.where(inside, u, 0.0)
    for k in range(4):
        acts = np.c_[u, 0.2 * rng.normal(size=(len(u), 2))] @ rng.normal(size=(3, 3))
        ids = np.arange(len(u))
        np.savez(folder / f"{name}{k}.npz", hidden=acts[inside], sample_ids=ids[inside])
        if with_extrapolation:
            (folder / "ext").mkdir(exist_ok=True)
            np.savez(folder / "ext" / f"{name}{k}.npz", hidden=acts[~inside])


@pytest.mark.slow
def test_activations_members_with_and_without_extrapolation_files(tmp_path):
    rng = np.random.default_rng(1)
    X, split = _law_inputs(rng, 500, 120)
    frame = pd.DataFrame({"x1": X[:, 0], "x2": X[:, 1], "part": split})
    frame.to_csv(tmp_path / "probe.csv", index=False)
    _activation_files(tmp_path, X, split)
    entry = {"id": "{stem}", "kind": "activations", "path": "h*.npz"}
    cfg = _byo_config(tmp_path, [entry], probe={"path": "probe.csv", "split": "part"})
    result = run_study(_write(tmp_path, cfg), stages=STAGES)
    (f,) = result.formulas
    assert f["is_result"] is True and f["extrapolation_reference"] is None
    assert f["r2_extrapolation"] is None
    assert f["extrapolation_note"].startswith(
        "extrapolation not checked against the networks: 4 of 4 members"
    )
    assert "activations-only member without an 'extrapolation_path'" in f["extrapolation_note"]

    cfg["ensemble"]["ingest"] = [{**entry, "extrapolation_path": "ext/{stem}.npz"}]
    result = run_study(_write(tmp_path, cfg), stages=STAGES)
    assert result.outcomes["train"] == []  # the members are not ingested again
    (f,) = result.formulas
    assert f["is_result"] and f["extrapolation_note"] is None
    assert f["extrapolation_reference"] == "consensus of the networks on the extrapolation rows"
    assert f["r2_extrapolation"] > f["r2_test"] - 0.05

    _activation_files(tmp_path, X, split, collapse=True)  # changed files: recorded again
    (f,) = run_study(_write(tmp_path, cfg), stages=STAGES).formulas
    assert f["r2_extrapolation"] < 0 and f["r2_test"] > 0.95
    assert f["is_result"] is False and "extrapolation" in f["flags"]
    assert "not presented as a result" in f["reason"]

    np.savez(tmp_path / "ext" / "h2.npz", hidden=np.zeros((119, 3)))
    with pytest.raises(
        ShapeError,
        match=r"member 'h2' extrapolation file .*h2.npz layer 'hidden': expected \(120, unit\)",
    ):
        run_study(_write(tmp_path, cfg), stages=STAGES)
    cfg["ensemble"]["ingest"] = [{**entry, "extrapolation_path": "ext/{stem}_x.npz"}]
    with pytest.raises(IngestError, match=r"extrapolation_path 'ext/\{stem\}_x.npz': file .*"):
        run_study(_write(tmp_path, cfg), stages=STAGES)


def test_untrained_twins_of_single_file_entries_get_their_own_seeds(tmp_path, ext_nets):
    """Twins of a pattern keep their index as seed; twins of single-file entries (each the
    index 0 of its entry) and of a second pattern get seeds of their own, from their ids."""
    import torch

    for name in ("a", "b", "p0", "p1", "q0"):
        torch.save(ext_nets.make().state_dict(), tmp_path / f"{name}.pt")
    X = np.random.default_rng(0).uniform(-1, 1, (200, 2))
    pd.DataFrame(X, columns=["x1", "x2"]).to_csv(tmp_path / "probe.csv", index=False)
    entries = [
        {**STATE, "id": "{stem}", "path": "p*.pt"},
        {**STATE, "id": "a", "path": "a.pt"},
        {**STATE, "id": "b", "path": "b.pt"},
        {**STATE, "id": "{stem}", "path": "q*.pt"},
    ]
    cfg = _byo_config(tmp_path, entries, probe={"path": "probe.csv", "split": 0.3})
    store = run_study(_write(tmp_path, cfg), stages=["probe", "record"]).store
    seeds = {m: store.model_attrs(f"null-{m}")["untrained_seed"] for m in ("p0", "p1", "a", "b")}
    seeds["q0"] = store.model_attrs("null-q0")["untrained_seed"]
    assert seeds["p0"] == 0 and seeds["p1"] == 1  # as before: tags unchanged
    assert len(set(seeds.values())) == 5
    a, b = (store.activations(f"null-{m}", "latent").values for m in ("a", "b"))
    assert not np.allclose(a, b)
    again = run_study(_write(tmp_path, cfg), stages=["probe", "record"])
    assert again.outcomes["record"] == []  # stable seeds: nothing recorded again


@pytest.mark.slow
def test_members_in_memory_on_the_extrapolation_rows(trained_folder, ext_nets):
    import torch

    nets = {}
    for k in range(4):
        nets[f"n{k}"] = net = ext_nets.make()
        net.load_state_dict(torch.load(trained_folder / "runs" / f"seed{k}" / "model.pt"))
    cfg = _byo_config(trained_folder, [], record={"layers": ["latent"]})
    cfg["probe"]["path"] = str(trained_folder / "probe.parquet")
    stages = ["probe", "compare", "consensus", "distill"]
    result = run_study(cfg, members=nets, stages=stages)
    assert result.store.extrapolation_layers("n3") == ["latent"]
    (f,) = [r for r in result.formulas if r["is_result"]]
    assert f["extrapolation_reference"] == "consensus of the networks on the extrapolation rows"
    arrays = {k: result.store.activations(k, "latent").values for k in nets}
    cfg["store"] = str(trained_folder / "arrays.zarr")
    (g,) = run_study(cfg, members=arrays, stages=stages).formulas
    assert g["extrapolation_reference"] is None
    assert "given as activations in memory" in g["extrapolation_note"]


@pytest.mark.slow
def test_trained_members_are_rebuilt_from_their_checkpoints_there(tmp_path, user_task_path):
    """A task study whose probe file has extrapolation rows: each trained member is run on
    them from the checkpoint its group stores, as it would be on a probe of those rows."""
    from user_tasks import ProductTask, tiny_config

    from ensemble_lens.models.spec import ArchSpec
    from ensemble_lens.models.train import load_checkpoint
    from ensemble_lens.record.recorder import record_activations

    rng = np.random.default_rng(4)
    X = np.r_[rng.uniform(-1, 1, (400, 3)), rng.uniform(1, 1.5, (80, 3))]
    split = np.r_[np.where(rng.random(400) < 0.3, "test", "fit"), ["extrapolation"] * 80]
    frame = pd.DataFrame({"x1": X[:, 0], "x2": X[:, 1], "x3": X[:, 2], "part": split})
    frame.to_csv(tmp_path / "probe.csv", index=False)
    cfg = tiny_config(tmp_path / "study.zarr", probe={"path": "probe.csv", "split": "part"})
    cfg["ensemble"]["seeds"] = [0, 1]
    store = run_study(_write(tmp_path, cfg), stages=["probe", "train", "consensus"]).store
    ds = store.read_result("consensus", "latent")
    assert ds.sizes["extrapolation_sample"] == 80
    task = ProductTask()
    arch = ArchSpec(**store.model_attrs("s1")["architecture"])
    model = load_checkpoint(task, arch, store.checkpoint("s1"), seed=1)
    alone = open_store(tmp_path / "alone.zarr", mode="w")
    alone.write_probe(X[400:].astype(np.float32), ["x1", "x2", "x3"])
    record_activations(task.probe_module(model), alone, "s1", ["latent"])
    np.testing.assert_allclose(
        store.extrapolation_activations("s1", "latent").values,
        alone.activations("s1", "latent").values,
        rtol=1e-6,
        atol=1e-6,
    )


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"layer": "other"}, IngestError, r"member 'h0' extrapolation file .*h0.npz: no layer"),
        ({"ids": True}, ShapeError, r"sample ids differ from the probe's extrapolation samples"),
        ({"nan": True}, ShapeError, r"h0.npz layer 'hidden': non-finite activation values"),
        ({"template": "ext/{folder}.npz"}, ConfigError, r"expected placeholders \{stem\}"),
    ],
)
def test_extrapolation_files_that_do_not_fit_are_refused_first(tmp_path, change, error, message):
    rng = np.random.default_rng(1)
    X, split = _law_inputs(rng, 200, 40)
    pd.DataFrame({"x1": X[:, 0], "x2": X[:, 1], "part": split}).to_csv(tmp_path / "p.csv")
    _activation_files(tmp_path, X, split)
    bad = np.load(tmp_path / "ext" / "h0.npz")["hidden"]
    arrays = {change.get("layer", "hidden"): bad}
    if change.get("ids"):
        arrays["sample_ids"] = np.arange(40)[::-1]
    if change.get("nan"):
        arrays["hidden"] = np.where(np.arange(40)[:, None] == 3, np.nan, bad)
    np.savez(tmp_path / "ext" / "h0.npz", **arrays)
    entry = {"id": "{stem}", "kind": "activations", "path": "h*.npz"}
    entry["extrapolation_path"] = change.get("template", "ext/{stem}.npz")
    cfg = _byo_config(tmp_path, [entry], probe={"path": "p.csv", "split": "part"})
    with pytest.raises(error, match=message):
        run_study(_write(tmp_path, cfg), stages=STAGES)
    store = tmp_path / "study.zarr"
    assert not store.exists() or open_store(store).models == []  # before any is recorded


def test_extrapolation_errors_of_the_store_and_the_config(tmp_path):
    from ensemble_lens.config import load_config
    from ensemble_lens.errors import StoreError

    with pytest.raises(ConfigError, match=r"'extrapolation_path' is for kind 'activations'"):
        load_config({"ensemble": {"ingest": [{**STATE, "extrapolation_path": "e.npz"}]}})
    store = open_store(tmp_path / "s.zarr", mode="w")
    store.write_probe(np.zeros((10, 2), np.float32), ["x1", "x2"])
    with pytest.raises(StoreError, match=r"has no extrapolation samples in its probe"):
        store.extrapolation_inputs()
    with pytest.raises(StoreError, match=r"model 'm' has no layer 'h' recorded on the extrap"):
        store.extrapolation_activations("m", "h")
