import pytest

from ensemble_lens.config import load_config
from ensemble_lens.errors import ConfigError


def test_unknown_key_names_yaml_path(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "task: {name: gravity}\nensemble:\n  train: {}\n  architectures:\n    - {}\n  seedz: [1]\n"
    )
    with pytest.raises(
        ConfigError, match=r"bad.yaml: ensemble.seedz: Extra inputs are not permitted"
    ):
        load_config(path)


def test_bad_value_names_yaml_path(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("task: {name: gravity}\nconsensus: {alpha: 2}\n")
    with pytest.raises(ConfigError, match=r"consensus.alpha: Input should be less than 1"):
        load_config(path)


def test_unreadable_and_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "none.yaml")
    (tmp_path / "x.yaml").write_text("task: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "x.yaml")


def test_ingest_entry_needs_factory():
    with pytest.raises(ConfigError, match=r"ensemble.ingest.0: kind 'state_dict' needs 'factory'"):
        load_config(
            {
                "task": {"name": "gravity"},
                "ensemble": {"ingest": [{"id": "a", "kind": "state_dict", "path": "w.pt"}]},
            }
        )


def test_probe_target_needs_a_probe_file():
    with pytest.raises(ConfigError, match=r"probe: target \['y'\]: .*probe.path"):
        load_config({"task": {"name": "gravity"}, "probe": {"target": ["y"]}})


def test_shipped_configs_are_valid():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "configs"
    paths = sorted(root.rglob("*.yaml"))
    assert paths, "configs/ must ship ready studies"
    for path in paths:
        if "profiles" in path.parts:
            continue
        cfg = load_config(path)
        assert cfg.task is not None
        # results never depend on machine load: no shipped study stops by the clock
        clocks = (
            cfg.ensemble.train.get("max_seconds"),
            cfg.distill.time_budget,
            cfg.templates.time_budget,
        )
        assert clocks == (None, None, None), (path.name, clocks)


def test_execution_profiles_are_valid_and_apply():
    from pathlib import Path

    from ensemble_lens.config import with_profile

    root = Path(__file__).resolve().parents[2] / "configs"
    cfg = load_config(root / "demo.yaml")
    expected = {
        "local": "local",
        "serial": "serial",
        "scheduler": "tcp://127.0.0.1:8786",
        "slurm": "jobqueue",
        "gpu": "local",
    }
    found = {
        p.stem: with_profile(cfg, p).execution.scheduler for p in (root / "profiles").glob("*.yaml")
    }
    assert found == expected
    slurm = with_profile(cfg, root / "profiles" / "slurm.yaml")
    assert slurm.execution.jobqueue.kind == "slurm" and slurm.execution.jobqueue.jobs == 4
    gpu = with_profile(cfg, root / "profiles" / "gpu.yaml").execution
    assert (gpu.device, gpu.train_mode) == ("cuda", "vmap")


def test_bad_profile_names_its_path(tmp_path):
    from ensemble_lens.config import with_profile

    (tmp_path / "p.yaml").write_text("scheduler: local\nworkerz: 3\n")
    cfg = load_config({"task": {"name": "gravity"}})
    with pytest.raises(ConfigError, match=r"p.yaml \(execution profile\): workerz: Extra inputs"):
        with_profile(cfg, tmp_path / "p.yaml")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"ensmble": {}}, r"ensmble: Extra inputs are not permitted; did you mean 'ensemble'\?"),
        ({"distill": {"bakend": "operon"}}, r"distill.bakend: .*; did you mean 'backend'\?"),
        ({"ensemble": {"train": {"epoch": 3}}}, r"ensemble.train.epoch: .*did you mean 'epochs'"),
        (
            {"ensemble": {"architectures": [{}, {"widht": 8}]}},
            r"ensemble.architectures.1.widht: .*; did you mean 'width'\?",
        ),
        (
            {"ensemble": {"ingest": [{"id": "a", "kind": "activations", "pathh": "a.npz"}]}},
            r"ensemble.ingest.0.pathh: .*; did you mean 'path'\?",
        ),
        (
            {"execution": {"jobqueue": {"kindd": "slurm"}}},
            r"execution.jobqueue.kindd: .*; did you mean 'kind'\?",
        ),
        ({"zzz": 1}, r"zzz: Extra inputs are not permitted; valid keys: base_dir, consensus, "),
    ],
)
def test_unknown_key_gets_the_closest_valid_key(data, message):
    with pytest.raises(ConfigError, match=message):
        load_config(data)


def test_profile_typo_gets_the_closest_key(tmp_path):
    from ensemble_lens.config import with_profile

    (tmp_path / "p.yaml").write_text("schedulr: serial\n")
    with pytest.raises(ConfigError, match=r"schedulr: .*; did you mean 'scheduler'\?"):
        with_profile(load_config({}), tmp_path / "p.yaml")
