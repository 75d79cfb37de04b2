"""Bad input is one line and a non-zero exit, found before anything is written."""

from __future__ import annotations

import pytest
from fault_tasks import fault_config

from ensemble_lens.cli import main


def _err_line(capsys):
    """The one error line (log lines may come before it)."""
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error:")]
    assert len(errors) == 1 and err[-1] == errors[0], err
    return errors[0]


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"train": {"epoch": 3}}, "ensemble.train.epoch: Extra inputs are not permitted"),
        (
            {"architectures": [{"widht": 8}]},
            "ensemble.architectures.0.widht: Extra inputs are not permitted",
        ),
        (
            {"architectures": [{}, {"width": "wide"}]},
            "ensemble.architectures.1.width: Input should be a valid integer",
        ),
        ({"train": {"lr": -1}}, "ensemble.train.lr: Input should be greater than 0"),
    ],
)
def test_nested_config_errors_name_the_yaml_path(tmp_path, write_config, capsys, section, expected):
    store = tmp_path / "s.zarr"
    path = write_config(fault_config(store, ensemble=section), name="demo.yaml")
    assert main(["run", str(path)]) == 2
    assert _err_line(capsys).startswith(f"error: {path}: {expected}")
    assert not store.exists()  # nothing written: no store, no probe


def test_no_members_is_an_error(tmp_path, write_config, capsys):
    store = tmp_path / "s.zarr"
    path = write_config(fault_config(store, ensemble={"seeds": []}))
    assert main(["run", str(path)]) == 2
    assert "ensemble: the study has no members" in _err_line(capsys)
    assert not store.exists()


def test_store_that_is_a_regular_file(tmp_path, write_config, capsys):
    (tmp_path / "file.zarr").write_text("not a store")
    path = write_config(fault_config(tmp_path / "s.zarr"))
    assert main(["run", str(path), "--store", str(tmp_path / "file.zarr")]) == 2
    line = _err_line(capsys)
    assert f"store {tmp_path / 'file.zarr'}: expected a study store directory" in line
    assert "regular file" in line
    assert (tmp_path / "file.zarr").read_text() == "not a store"


def _ingest_config(tmp_path, path, kind="state_dict"):
    member = {"id": "sd", "kind": kind, "path": str(path), "factory": "user_tasks:make_net"}
    return fault_config(tmp_path / "s.zarr", ensemble={"seeds": [], "ingest": [member]})


def test_garbage_state_dict_refused_before_writing(tmp_path, write_config, capsys):
    garbage = tmp_path / "w.pt"
    garbage.write_bytes(b"hello, not a torch file")
    assert main(["record", str(write_config(_ingest_config(tmp_path, garbage)))]) == 2
    assert _err_line(capsys) == (
        f"error: ensemble.ingest.0.path: {garbage} is not a torch file (torch.save writes a "
        "zip archive or a pickle; this starts with b'hell')"
    )
    assert not (tmp_path / "s.zarr").exists()
    missing = tmp_path / "nowhere.pt"
    assert main(["record", str(write_config(_ingest_config(tmp_path, missing)))]) == 2
    assert (
        _err_line(capsys) == f"error: ensemble.ingest.0.path: no such file or directory: {missing}"
    )


def test_garbage_pickle_state_dict_is_one_line(tmp_path, write_config, capsys):
    garbage = tmp_path / "w.pt"  # starts like a pickle, fails inside the unpickler
    garbage.write_bytes(b"\x80\x02garbage that is not a torch file" * 10)
    assert main(["record", str(write_config(_ingest_config(tmp_path, garbage)))]) == 2
    line = _err_line(capsys)
    assert f"model 'sd': cannot read state_dict {garbage}: not a torch state_dict file" in line
    assert "weights_only" not in line and "pop from empty list" not in line


def test_redo_of_an_unknown_member(tmp_path, write_config, capsys):
    path = write_config(fault_config(tmp_path / "s.zarr"))
    assert main(["train", str(path), "--redo", "s7"]) == 2
    expected = "error: --redo s7: not a member these stages build (members: s0, s1) nor a part"
    assert _err_line(capsys).startswith(expected)
    assert main(["record", str(path), "--redo", "s0"]) == 2  # record builds ingested ones only
    expected0 = "error: --redo s0: not a member these stages build (members: none) nor a part"
    assert _err_line(capsys).startswith(expected0)
    assert main(["compare", str(path), "--redo", "s0"]) == 2
    assert "error: --redo s0: not a member these stages build" in _err_line(capsys)
    assert not (tmp_path / "s.zarr").exists()


def test_debug_shows_the_traceback(tmp_path, write_config, capsys):
    path = write_config(fault_config(tmp_path / "s.zarr", ensemble={"train": {"epoch": 3}}))
    assert main(["run", str(path), "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("error: ")
    assert main(["--debug", "run", str(path)]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_an_ingested_file_must_stay_to_resume_or_redo(tmp_path, write_config, capsys):
    import numpy as np

    acts = tmp_path / "acts.npz"
    np.savez(acts, hidden=np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32))
    member = {"id": "npz", "kind": "activations", "path": str(acts), "sample_ids": "probe_order"}
    cfg = fault_config(tmp_path / "s.zarr", ensemble={"seeds": [], "ingest": [member]})
    path = write_config(cfg)
    assert main(["record", str(path)]) == 0
    capsys.readouterr()
    acts.unlink()  # a member's tag hashes its file, so the file must stay to resume or redo
    assert main(["record", str(path)]) == 2
    assert _err_line(capsys) == f"error: ensemble.ingest.0.path: no such file or directory: {acts}"
    assert main(["record", str(path), "--redo", "npz"]) == 2
    assert _err_line(capsys) == f"error: ensemble.ingest.0.path: no such file or directory: {acts}"
