"""Studies on the user's own networks and files, with no task: patterns, null twins, errors."""

import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from ensemble_lens.errors import ConfigError, IngestError, ShapeError
from ensemble_lens.pipeline.runner import run_study
from ensemble_lens.record.store import open_store

NETS = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, width), nn.Tanh())
        self.latent = nn.Linear(width, 4)
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        return self.head(self.latent(self.body(x)))


def make(width=16):
    return Net(width)


class Pooled(nn.Module):
    def forward(self, x):
        return x.sum(0, keepdim=True)


def pooled():
    return Pooled()


class Conv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.latent = nn.Linear(12, 4)

    def forward(self, x):
        return self.latent(torch.tanh(self.conv(x)).flatten(1))


def conv():
    return Conv()


class ImageAndTokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(9, 3)
        self.latent = nn.Linear(16 + 3, 4)

    def forward(self, image, tokens):
        return self.latent(torch.cat([image.flatten(1), self.emb(tokens).mean(1)], 1))


def image_and_tokens():
    return ImageAndTokens()


class TwoArgs(nn.Module):
    def __init__(self):
        super().__init__()
        self.latent = nn.Bilinear(2, 1, 4)

    def forward(self, a, b):
        return self.latent(a, b)


def two_args():
    return TwoArgs()


def split_xy(batch):
    return batch[:, :2], batch[:, 2:]
"""

STAGES = ["probe", "train", "record", "compare", "consensus"]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A user's folder: nets module, a CSV probe, three state_dicts in runs/seed*/model.pt."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the config's folder is put on it
    (tmp_path / "byo_nets.py").write_text(NETS)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (300, 3))
    pd.DataFrame(x, columns=["x1", "x2", "x3"]).to_csv(tmp_path / "probe.csv", index=False)
    for seed in (10, 2, 1):
        torch.manual_seed(seed)
        net = torch.nn.Sequential()
        (tmp_path / "runs" / f"seed{seed}").mkdir(parents=True)
        sys.path.insert(0, str(tmp_path))
        import byo_nets

        torch.save(byo_nets.make().state_dict(), tmp_path / "runs" / f"seed{seed}" / "model.pt")
        del net
    sys.modules.pop("byo_nets", None)
    sys.path.remove(str(tmp_path))
    yield tmp_path
    sys.modules.pop("byo_nets", None)


def _config(folder, ingest, **extra):
    cfg = {
        "name": "byo",
        "probe": {"path": "../probe.csv", "variables": ["x1", "x2", "x3"], "split": 0.3},
        "ensemble": {"ingest": ingest},
        "consensus": {"n_null": 5},
        "distill": {"enabled": False},
        "execution": {"scheduler": "serial"},
        "store": str(folder / "study.zarr"),
        **extra,
    }
    path = folder / "sub" / "study.yaml"
    path.parent.mkdir(exist_ok=True)
    (folder / "sub" / "byo_nets.py").write_text(NETS)  # next to the config, not on sys.path
    path.write_text(yaml.safe_dump(cfg))
    return path


STATE = {
    "id": "{parent}",
    "kind": "state_dict",
    "path": "../runs/seed*/model.pt",
    "factory": "byo_nets:make",
    "layers": ["latent"],
}


def test_state_dict_pattern_expands_in_order_with_untrained_twins(folder):
    result = run_study(_config(folder, [STATE]), stages=STAGES)
    store = result.store
    attrs = store.study_attrs()
    assert [m["id"] for m in attrs["members"]] == [
        "seed1",
        "null-seed1",
        "seed2",
        "null-seed2",
        "seed10",
        "null-seed10",
    ]
    assert attrs["members"][4]["file"].endswith("runs/seed10/model.pt")
    assert "untrained twins (3 networks" in attrs["null"]
    m = store.model_attrs("seed10")
    assert m["pattern"] == "../runs/seed*/model.pt" and m["index"] == 2
    assert store.model_attrs("null-seed2")["twin_of"] == "seed2"
    trained = torch.load(folder / "runs" / "seed2" / "model.pt")
    assert not np.allclose(store.activations("seed2", "latent"), 0)
    twin, other = (store.activations(k, "latent").values for k in ("null-seed2", "null-seed1"))
    assert not np.allclose(twin, other)  # each twin its own seed
    assert "latent.weight" in trained
    ds = store.read_result("consensus", "latent")
    assert ds.attrs["null_method"] == "permutation+untrained"
    again = run_study(_config(folder, [STATE]), stages=STAGES)
    assert again.outcomes["train"] == []  # same files: nothing recorded again


def test_torchscript_pattern_and_the_null_it_says(folder):
    sys.path.insert(0, str(folder))
    import byo_nets

    for k in range(3):
        torch.manual_seed(k)
        torch.jit.script(byo_nets.make()).save(str(folder / f"net_{k}.ts"))
    ingest = [{"id": "ts{index}", "kind": "torchscript", "path": "../net_*.ts", "layers": [""]}]
    store = run_study(_config(folder, ingest), stages=STAGES).store
    assert store.complete_models == ["ts0", "ts1", "ts2"]
    assert store.layers("ts1") == ["output"]
    assert store.study_attrs()["null"].startswith("permutation only")


def test_activations_only_ensemble(folder):
    n = 300
    rng = np.random.default_rng(1)
    x = pd.read_csv(folder / "probe.csv").to_numpy()
    shared = np.c_[x[:, 0] * np.exp(-x[:, 1]), x[:, 2] ** 2]
    shared = (shared - shared.mean(0)) / shared.std(0)
    for k in range(4):
        acts = np.c_[shared, 0.3 * rng.normal(size=(n, 2))] @ rng.normal(size=(4, 4))
        np.savez(folder / f"acts{k}.npz", hidden=acts, sample_ids=np.arange(n))
    ingest = [{"id": "a{stem}", "kind": "activations", "path": "../acts*.npz"}]
    store = run_study(_config(folder, ingest), stages=STAGES).store
    assert store.complete_models == ["aacts0", "aacts1", "aacts2", "aacts3"]
    ds = store.read_result("consensus", "hidden")
    assert int(ds["is_consensus"].sum()) == 2


def test_a_pattern_that_matches_nothing(folder):
    bad = {**STATE, "path": "../runs/*/weights.pt"}
    with pytest.raises(
        IngestError, match=r"ingest entry '\{parent\}': pattern '../runs/\*/weights"
    ):
        run_study(_config(folder, [bad]), stages=STAGES)
    assert not (folder / "study.zarr").exists()  # refused before anything is written


def test_a_factory_that_does_not_fit_names_the_keys(folder):
    torch.save(
        {"body.0.weight": torch.zeros(16, 3), "extra.bias": torch.zeros(2)},
        folder / "runs" / "seed2" / "model.pt",
    )
    with pytest.raises(
        IngestError,
        match=r"model 'seed2': state_dict .*seed2/model.pt does not fit .*missing keys "
        r"body.0.bias, latent.weight.*; unexpected keys extra.bias",
    ):
        run_study(_config(folder, [STATE]), stages=STAGES)
    assert not (folder / "study.zarr").exists()  # refused before anything was written


def test_outputs_that_differ_in_sample_count(folder):
    np.savez(folder / "acts0.npz", hidden=np.zeros((300, 2)), sample_ids=np.arange(300))
    np.savez(folder / "acts1.npz", hidden=np.zeros((299, 2)), sample_ids=np.arange(299))
    ingest = [{"id": "{stem}", "kind": "activations", "path": "../acts*.npz"}]
    with pytest.raises(
        ShapeError, match=r"member 'acts1' file .*acts1.npz layer 'hidden': expected 300 samples"
    ):
        run_study(_config(folder, ingest), stages=STAGES)
    pooled = [{"id": "pooled", "kind": "module", "factory": "byo_nets:pooled", "layers": [""]}]
    with pytest.raises(
        ShapeError,
        match=r"model 'pooled' layer 'output': expected an output "
        r"with 4 rows .*\(member 'pooled' file byo_nets:pooled\)",
    ):
        run_study(_config(folder, pooled), stages=STAGES)
    assert not (folder / "study.zarr").exists()  # refused before anything was written


def test_ids_that_collide_and_a_study_with_no_members(folder):
    with pytest.raises(ConfigError, match="matches 3 files, so 'id' must be a template"):
        run_study(_config(folder, [{**STATE, "id": "net"}]), stages=STAGES)
    with pytest.raises(ConfigError, match="a study without 'task' needs members"):
        run_study(_config(folder, []), stages=STAGES)


def test_members_in_memory(folder):
    sys.path.insert(0, str(folder))
    import byo_nets

    nets = {}
    for k in range(3):
        torch.manual_seed(k)
        nets[f"net{k}"] = byo_nets.make()
    cfg = yaml.safe_load(_config(folder, []).read_text())
    cfg["record"] = {"layers": ["latent"]}
    cfg["probe"]["path"] = "probe.csv"  # a mapping's paths are relative to the working dir
    store = run_study(cfg, members=nets, stages=["probe", "compare", "consensus"]).store
    assert store.complete_models == ["net0", "net1", "net2"]
    assert store.model_attrs("net1")["source"] == "in_memory"
    arrays = {k: store.activations(k, "latent").values for k in nets}
    cfg["store"] = str(folder / "arrays.zarr")
    store2 = run_study(cfg, members=arrays, stages=["probe", "compare", "consensus"]).store
    np.testing.assert_array_equal(store2.activations("net2", "latent").values, arrays["net2"])
    with pytest.raises(IngestError, match="member 'short' layer 'latent': expected 300 samples"):
        run_study(cfg, members={"short": arrays["net0"][:10]}, stages=["probe", "compare"])


def test_image_probe_without_named_variables(folder):
    rng = np.random.default_rng(0)
    np.savez(folder / "images.npz", image=rng.normal(size=(200, 1, 4, 4)).astype(np.float32))
    ingest = [
        {"id": "c{index}", "kind": "module", "factory": "byo_nets:conv", "layers": ["latent"]}
    ]
    ingest = [ingest[0] | {"id": f"c{k}", "factory_kwargs": {}} for k in range(3)]
    path = _config(
        folder, ingest, probe={"path": "../images.npz", "split": 0.3}, distill={"enabled": True}
    )
    result = run_study(path, stages=[*STAGES, "distill"])
    assert result.store.probe_names == ()
    assert result.store.result_layers("consensus") == ["latent"]
    assert "no named scalar variables" in result.outcomes["distill"]["skipped"]
    assert "no named scalar variables" in result.formulas[0]["reason"]


def test_a_task_declaring_exp_gets_it_in_the_search(tmp_path):
    """A user task declares ``sr_functions = ("exp",)`` as a class attribute; the study's
    description carries it to operon, which then finds the law with its exp and the judge
    matches it against the task's truth."""
    import sympy

    from ensemble_lens.config import load_config
    from ensemble_lens.distill import distill_component
    from ensemble_lens.pipeline.distill_stage import backend_options
    from ensemble_lens.pipeline.inputs import study_inputs
    from ensemble_lens.tasks import Task

    class Decay(Task):
        name = "decay"
        input_names = ("x1", "x2")
        x1, x2 = sympy.symbols("x1 x2")
        latents = {"u": x1 * sympy.exp(-x2)}  # noqa: RUF012
        latent_kind = "scalar"
        sr_functions = ("exp",)

        def sample_probe(self, n, seed, *, extrapolate=False):
            return np.random.default_rng(seed).uniform(-1.5, 1.5, (n, 2)).astype(np.float32)

        make_data = build_model = probe_module = None

    store = open_store(tmp_path / "s.zarr", mode="w")
    store.write_probe(Decay().sample_probe(600, 0), ["x1", "x2"])
    cfg = load_config({"task": {"name": "gravity"}})
    inputs = study_inputs(cfg, Decay(), store)
    assert inputs.sr_functions == ("exp",) and inputs.truths == Decay.latents
    X = store.probe()["inputs"].values.astype(np.float64)
    y = X[:, 0] * np.exp(-X[:, 1])
    res = distill_component(
        X[:400],
        y[:400],
        ["x1", "x2"],
        X_test=X[400:],
        y_test=y[400:],
        backend_options=backend_options(
            "operon", {"population_size": 300, "generations": 50}, inputs
        ),
        truths=inputs.truths,
        seed=0,
    )
    assert "exp" in str(res.expr) and res.r2_test > 0.999
    assert res.exact_recovery


@pytest.mark.cluster
@pytest.mark.slow
def test_workers_import_the_module_next_to_the_config(folder):
    """Workers started before the study know nothing of the config's folder; each member task
    puts it on the worker's path itself."""
    from ensemble_lens.execution import make_executor

    with make_executor("local", workers=1) as ex:
        result = run_study(_config(folder, [STATE]), executor=ex, stages=["probe", "record"])
    assert result.store.complete_models == [
        "null-seed1",
        "null-seed10",
        "null-seed2",
        "seed1",
        "seed10",
        "seed2",
    ]


@pytest.mark.slow
def test_truth_columns_and_extrapolation_rows_of_the_file_judge_the_formula(folder):
    rng = np.random.default_rng(2)
    n_in, n_ext = 400, 100
    x = np.r_[rng.uniform(-1, 1, (n_in, 2)), rng.uniform(1, 2, (n_ext, 2))]
    split = np.r_[np.where(rng.random(n_in) < 0.3, "test", "fit"), ["extrapolation"] * n_ext]
    frame = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "u": x[:, 0] * x[:, 1], "part": split})
    frame.to_csv(folder / "table.csv", index=False)
    u = frame["u"].to_numpy()[:n_in]
    for k in range(4):
        acts = np.c_[u / u.std(), 0.2 * rng.normal(size=(n_in, 2))] @ rng.normal(size=(3, 3))
        np.savez(folder / f"h{k}.npz", hidden=acts, sample_ids=np.arange(n_in))
    ingest = [{"id": "{stem}", "kind": "activations", "path": "../h*.npz"}]
    probe = {"path": "../table.csv", "split": "part", "truth": {"u": "u"}}
    distill = {"backend": "sparse", "enabled": True}
    result = run_study(
        _config(folder, ingest, probe=probe, distill=distill), stages=[*STAGES, "distill"]
    )
    assert result.store.extrapolation_probe().sizes["sample"] == n_ext
    (formula,) = result.formulas
    assert sympy_equal_up_to_scale(formula["expression"], "x1*x2")
    assert formula["r2_extrapolation"] > 0.99  # against the file's truth on its extrapolation rows
    assert formula["exact_recovery"] is None  # truth values, not a formula: not judged
    from ensemble_lens.report import collect_results

    said = collect_results(result.store)["ground_truth"]
    assert said["judged"] is False and said["truth_variables"] == ["u"]
    assert said["statement"].startswith("no ground truth: recovery is not judged (the probe's")


def sympy_equal_up_to_scale(expr, law):
    import sympy

    ratio = sympy.nsimplify(sympy.simplify(sympy.sympify(expr) / sympy.sympify(law)), rational=True)
    return ratio.free_symbols == set()


def test_dicts_of_tensors_and_an_input_fn_reach_the_networks(folder):
    rng = np.random.default_rng(0)
    np.savez(
        folder / "multi.npz",
        image=rng.normal(size=(120, 1, 4, 4)).astype(np.float32),
        tokens=rng.integers(0, 9, size=(120, 5)),
    )
    ingest = [
        {
            "id": f"m{k}",
            "kind": "module",
            "factory": "byo_nets:image_and_tokens",
            "layers": ["latent"],
            "factory_kwargs": {},
        }
        for k in range(2)
    ]
    store = run_study(
        _config(folder, ingest, probe={"path": "../multi.npz", "split": 0.3}),
        stages=["probe", "record"],
    ).store
    assert store.activations("m1", "latent").shape == (120, 4)
    two = [
        {
            "id": "t",
            "kind": "module",
            "factory": "byo_nets:two_args",
            "layers": ["latent"],
            "input_fn": "byo_nets:split_xy",
        }
    ]
    path = _config(folder, two)
    store = run_study(path, store=folder / "two.zarr", stages=["probe", "record"]).store
    assert store.activations("t", "latent").shape == (300, 4)
    no_fn = [{**two[0], "input_fn": None}]
    with pytest.raises(
        IngestError,
        match=r"member 't' file byo_nets:two_args: the network "
        r"failed on a probe batch \(TypeError",
    ):
        run_study(_config(folder, no_fn), store=folder / "bad.zarr", stages=["probe", "record"])


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (
            {"distill": {"variables": ["x1", "y"]}},
            ShapeError,
            r"probe.csv: distill.variables names \['y'\], expected variables of the probe",
        ),
        (
            {"ensemble": {"ingest": [{**STATE, "path": "../runs/seed1/nope.pt", "id": "a"}]}},
            ConfigError,
            r"ensemble.ingest.0.path: no such file or directory: .*nope.pt",
        ),
        (
            {"ensemble": {"ingest": [{**STATE, "id": "{folder}"}]}},
            ConfigError,
            r"id template '\{folder\}': expected placeholders",
        ),
        (
            {"ensemble": {"ingest": [{**STATE, "id": "x{index}"}, {**STATE, "id": "x{index}"}]}},
            ConfigError,
            r"member id 'x0' is given twice",
        ),
        (
            {"ensemble": {"ingest": [{**STATE, "layers": None}]}},
            IngestError,
            r"member 'seed1': no layers to record; expected 'layers'",
        ),
    ],
)
def test_config_mistakes_are_one_line_before_recording(folder, change, error, message):
    path = _config(folder, [STATE])
    cfg = yaml.safe_load(path.read_text())
    cfg.update(change)
    cfg["distill"] = {"enabled": False, **cfg.get("distill", {})}
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(error, match=message):
        run_study(path, stages=STAGES)
    store = folder / "study.zarr"  # most mistakes are refused before the store is made
    assert not store.exists() or open_store(store).models == []


def test_in_memory_members_that_cannot_be_recorded(folder):
    cfg = yaml.safe_load(_config(folder, []).read_text())
    cfg["probe"]["path"] = "probe.csv"
    with pytest.raises(IngestError, match=r"member 'net': an nn.Module needs the layers"):
        run_study(cfg, members={"net": torch.nn.Linear(3, 2)}, stages=["probe"])
    with pytest.raises(IngestError, match=r"member 'v': expected an nn.Module, a \(sample, unit\)"):
        run_study(cfg, members={"v": np.zeros(300)}, stages=["probe"])


def test_in_memory_members_may_not_reuse_config_ids(folder):
    acts = np.random.default_rng(0).normal(size=(300, 4))
    with pytest.raises(ConfigError, match=r"id\(s\) seed1 are also members of the config"):
        run_study(_config(folder, [STATE]), stages=STAGES, members={"seed1": acts})
    assert not (folder / "study.zarr").exists()


def test_ingested_outputs_are_searched_in_the_targets_units(folder):
    """Networks' outputs, read from files, share the target's units: the formula is written
    in them (basis "units"), with no offset or scale of the consensus; the same quantity
    stored in each network's own scale and offset (a hidden unit) is searched as aligned."""
    import sympy

    from ensemble_lens.distill._expr import evaluate

    n = 300
    rng = np.random.default_rng(2)
    x = pd.read_csv(folder / "probe.csv").to_numpy()
    law = 2.5 * x[:, 0] * x[:, 1] + 1.0
    for k in range(4):
        out = law + 1e-3 * rng.normal(size=n)
        hidden = (0.5 + k) * out - 3.0 * k
        arrays = {"out": out[:, None], "hidden": hidden[:, None], "sample_ids": np.arange(n)}
        np.savez(folder / f"acts{k}.npz", **arrays)
    ingest = [{"id": "a{stem}", "kind": "activations", "path": "../acts*.npz"}]
    distill = {"backend": "sparse", "seeds": [0]}
    store = run_study(_config(folder, ingest, distill=distill)).store
    records = {r["layer"]: r for r in store.read_formulas() if r.get("expression")}
    assert records["out"]["basis"] == "units" and records["hidden"]["basis"] == "aligned"
    got = evaluate(sympy.sympify(records["out"]["expression"]), x, ["x1", "x2", "x3"])
    assert np.max(np.abs(got - law)) < 0.01 * law.std(), records["out"]["expression"]
    hidden = evaluate(sympy.sympify(records["hidden"]["expression"]), x, ["x1", "x2", "x3"])
    assert np.max(np.abs(hidden - law)) > 0.1 * law.std()  # the consensus' own frame


@pytest.mark.parametrize(("truth", "exact"), [("2.5*x1*x2 + 1", True), ("2.5*x1*x2**2 + 1", False)])
def test_a_truth_given_as_a_formula_judges_recovery(folder, truth, exact):
    """``probe.truth`` may give the law as a formula of the probe's variables instead of a
    column: its values become the truth on the probe and the formula is judged against it,
    as a task's law is (exact recovery), for networks read from files."""
    n = 300
    x = pd.read_csv(folder / "probe.csv").to_numpy()
    law = 2.5 * x[:, 0] * x[:, 1] + 1.0
    rng = np.random.default_rng(3)
    for k in range(3):
        out = law + 1e-4 * rng.normal(size=n)
        np.savez(folder / f"acts{k}.npz", out=out[:, None], sample_ids=np.arange(n))
    ingest = [{"id": "a{stem}", "kind": "activations", "path": "../acts*.npz"}]
    path = _config(folder, ingest, distill={"backend": "sparse", "seeds": [0]})
    cfg = yaml.safe_load(path.read_text())
    cfg["probe"]["truth"] = {"u": truth}
    path.write_text(yaml.safe_dump(cfg))
    store = run_study(path).store
    (record,) = [r for r in store.read_formulas() if r.get("expression")]
    assert record["truth_name"] == "u" and record["exact_recovery"] is exact
    probe = store.probe()
    np.testing.assert_allclose(
        probe["truth_u"].values, 2.5 * x[:, 0] * x[:, 1] ** (1 + (not exact)) + 1.0, rtol=1e-6
    )


def test_a_truth_that_is_no_column_and_no_formula_is_one_line(folder):
    path = _config(folder, [STATE])
    cfg = yaml.safe_load(path.read_text())
    cfg["probe"]["truth"] = {"u": "x1*q"}
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(
        ShapeError,
        match=r"probe.csv: truth of 'u': 'x1\*q' is neither a column of the file "
        r"\(\['x1', 'x2', 'x3'\]\) nor a formula of its variables \(.*unknown variable 'q'",
    ):
        run_study(path, stages=STAGES)
    assert not (folder / "study.zarr").exists() or open_store(folder / "study.zarr").models == []
