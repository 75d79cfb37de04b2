"""A truncated and a deleted chunk: found by inspect --verify, named by the stage that meets
them, and repaired by --redo without touching the rest."""

from __future__ import annotations

import numpy as np
import pytest
from fault_tasks import fault_config

from ensemble_lens import open_store, run_study
from ensemble_lens.cli import main
from ensemble_lens.errors import StoreDamagedError
from ensemble_lens.record.verify import verify_store

CHUNK = "models/{}/acts/latent/activations/c/0/0"


@pytest.mark.slow
def test_truncated_and_deleted_chunks(tmp_path, write_config, capsys):
    store_path = tmp_path / "s.zarr"
    cfg = fault_config(store_path)
    path = write_config(cfg)
    run_study(cfg, stages=["probe", "train"])
    store = open_store(store_path)
    before = {m: store.activations(m, "latent").values.copy() for m in ("s0", "s1")}
    assert verify_store(store) == []
    truncated = store_path / CHUNK.format("s0")
    truncated.write_bytes(truncated.read_bytes()[:20])
    (store_path / CHUNK.format("s1")).unlink()

    assert main(["inspect", "--verify", str(store_path)]) == 1
    out = capsys.readouterr()
    lines = [line for line in out.out.splitlines() if line.startswith("damaged:")]
    assert len(lines) == 2, out.out
    assert lines[0].startswith("damaged: model 's0' layer 'latent': chunk (0, 0) (rows 0-199) ")
    assert "is unreadable (RuntimeError: Zstd decompression error" in lines[0]
    assert lines[0].endswith("rerun with --redo s0")
    expected = "damaged: model 's1' layer 'latent': chunk (0, 0) (rows 0-199) is missing; "
    assert lines[1] == expected + "rerun with --redo s1"
    assert "2 damaged part(s)" in out.err
    assert main(["inspect", str(store_path)]) == 0  # a plain inspect still reads the summary
    capsys.readouterr()

    # a stage that would read the damaged members refuses before it starts, naming the
    # first damage (a truncated chunk, found by its size) instead of computing on NaN
    assert main(["compare", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: store {store_path}: model 's0' layer 'latent': chunk (0, 0)")
    assert "is unreadable" in err and "rerun with --redo s0 (and 1 more;" in err
    assert not (store_path / "similarity").exists()

    # with only the truncated chunk left, the decoder error is named too
    assert main(["train", str(path), "--redo", "s1"]) == 0
    capsys.readouterr()
    assert main(["compare", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "model 's0' layer 'latent': chunk (0, 0) (rows 0-199) is unreadable" in err
    assert err.endswith("rerun with --redo s0")

    assert main(["run", str(path), "--redo", "s0"]) == 0
    capsys.readouterr()
    store = open_store(store_path)
    assert verify_store(store) == []
    for m, values in before.items():  # training is deterministic: nothing lost
        np.testing.assert_array_equal(store.activations(m, "latent").values, values)
    assert store.read_formulas() and store.result_layers("consensus") == ["latent"]


def test_verify_through_an_executor_and_results(tmp_path):
    from ensemble_lens.execution import make_executor

    store_path = tmp_path / "s.zarr"
    run_study(fault_config(store_path), stages=["probe", "train", "compare"])
    target = next((store_path / "similarity" / "latent" / "linear_cka" / "c").rglob("*"))
    while target.is_dir():
        target = next(target.iterdir())
    target.unlink()
    with make_executor("serial") as ex:
        damage = verify_store(store_path, ex)
    assert len(damage) == 1 and damage[0].array == "similarity/latent/linear_cka"
    line = damage[0].line(store_path)
    assert line.startswith("result 'similarity/latent/linear_cka': chunk (0, 0)")
    assert line.endswith("rerun with --redo similarity/latent")
    with pytest.raises(StoreDamagedError, match=r"result 'similarity/latent/linear_cka': chunk"):
        open_store(store_path).read_result("similarity", "latent")


def test_a_stage_reading_a_damaged_result_names_it(tmp_path, write_config, capsys):
    store_path = tmp_path / "s.zarr"
    cfg = fault_config(store_path)
    run_study(cfg, stages=["probe", "train", "compare", "consensus"])
    group = store_path / "consensus" / "latent"
    chunk = next(p for p in (group / "components" / "c").rglob("*") if p.is_file())
    chunk.write_bytes(chunk.read_bytes()[:7])
    assert main(["distill", str(write_config(cfg))]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: store {store_path}: result 'consensus/latent/components': chunk")
    assert "is unreadable" in err
    assert err.endswith("rerun with --redo consensus/latent")
    meta = store_path / "models" / "s1" / "acts" / "latent" / "activations" / "zarr.json"
    meta.write_text(meta.read_text()[:40])
    lines = [d.line(store_path) for d in verify_store(store_path)]
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"model 's1' layer 'latent': its metadata ({meta}) is unreadable (")
    assert lines[0].endswith("rerun with --redo s1")
    assert lines[1].startswith("result 'consensus/latent/components': chunk (0, 0)")
    assert main(["inspect", str(store_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: cannot summarise {store_path} (")
    assert err.endswith(f"`ensemble-lens inspect --verify {store_path}` lists what is damaged")
