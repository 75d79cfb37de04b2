import numpy as np
import pytest
import torch
import yaml

from ensemble_lens import open_store
from ensemble_lens.cli import main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("run", "train", "record", "compare", "inspect", "report"):
        assert cmd in out


def test_record_config_ingests_listed_models(tmp_path, monkeypatch, capsys):
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parents[1] / "pipeline"
    monkeypatch.syspath_prepend(str(here))
    import user_tasks

    net = user_tasks.make_net(8)
    torch.save(net.state_dict(), tmp_path / "w.pt")
    torch.jit.script(net).save(str(tmp_path / "net.ts"))
    acts = np.random.default_rng(0).normal(size=(300, 5)).astype(np.float32)
    np.savez(tmp_path / "acts.npz", hidden=acts)
    cfg = {
        "task": {"name": "user_tasks:ProductTask"},
        "probe": {"n": 300},
        "ensemble": {
            "seeds": [],
            "ingest": [
                {
                    "id": "sd",
                    "kind": "state_dict",
                    "path": str(tmp_path / "w.pt"),
                    "factory": "user_tasks:make_net",
                    "factory_kwargs": {"width": 8},
                    "layers": ["0", "2"],
                },
                {
                    "id": "ts",
                    "kind": "torchscript",
                    "path": str(tmp_path / "net.ts"),
                    "layers": [""],
                },
                {
                    "id": "npz",
                    "kind": "activations",
                    "path": str(tmp_path / "acts.npz"),
                    "sample_ids": "probe_order",
                },
            ],
        },
        "execution": {"scheduler": "serial"},
        "store": str(tmp_path / "s.zarr"),
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["record", str(tmp_path / "c.yaml")]) == 0
    store = open_store(tmp_path / "s.zarr")
    assert store.complete_models == ["npz", "null-sd", "sd", "ts"]  # + the untrained twin of sd
    x = torch.from_numpy(store.probe()["inputs"].values)
    with torch.no_grad():
        np.testing.assert_array_equal(store.activations("sd", "2").values, net(x).numpy())
        np.testing.assert_array_equal(store.activations("ts", "output").values, net(x).numpy())
    np.testing.assert_array_equal(store.activations("npz", "hidden").values, acts)
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "s.zarr")]) == 0
    out = capsys.readouterr().out
    assert "schema version" in out and "300x5" in out and "x1, x2, x3" in out
    del sys.modules["user_tasks"]


def test_errors_exit_2_with_message(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "missing.zarr")]) == 2
    assert "no study store at" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("task: {name: gravity}\nprobe: {n: 5}\n")
    assert main(["run", str(tmp_path / "bad.yaml")]) == 2
    assert "probe.n: Input should be greater than or equal to 10" in capsys.readouterr().err


def test_every_command_has_a_description(capsys):
    from ensemble_lens.cli import _parser

    parser = _parser()
    subs = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in subs.choices.items():
        assert sub.description and len(sub.description) > 20, name
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert sub.description.split()[0] in capsys.readouterr().out


def test_measures_family_filters_and_unknown_family_is_an_error(capsys):
    assert main(["measures", "--family", "svcca"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith("svcca") for line in lines)
    assert main(["measures", "--family", "ckaa"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        "error: measures --family 'ckaa': no measure name starts with it; "
        "closest families: cka, " in captured.err
    )
    assert main(["measures", "--family", "zzz"]) == 2
    assert "families: aligned_cosine_similarity, " in capsys.readouterr().err
