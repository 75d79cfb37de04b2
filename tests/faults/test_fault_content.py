"""Results that describe the store: content-addressed stages, one study per store, verify
over every part, and a damaged store refused by a plain run (issue 21)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fault_tasks import fault_config

from ensemble_lens import open_store, run_study
from ensemble_lens.cli import main
from ensemble_lens.errors import ConfigError
from ensemble_lens.record._zarrio import content_bytes
from ensemble_lens.record.verify import verify_store
from ensemble_lens.similarity import linear_cka


def _listing(root):
    """Every path under ``root`` with its size and modification time (but the lock file,
    which says who ran last)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.name != ".lock"
    }


def _err_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    return [line for line in err if line.startswith("error:")][-1]


def _cka(store, a, b):
    x, y = (np.asarray(store.activations(m, "latent").values, np.float64) for m in (a, b))
    return linear_cka(x, y)


def test_a_member_rebuilt_with_other_content_recomputes_what_used_it(tmp_path, capsys):
    store_path = tmp_path / "s.zarr"
    cfg = fault_config(store_path, ensemble={"seeds": [0, 1, 2]})
    run_study(cfg)
    store = open_store(store_path)
    digests = {m: store.layer_digest(m, "latent") for m in ("s0", "s1", "s2")}
    assert len(set(digests.values())) == 3 and all(digests.values())
    before = store.read_result("similarity", "latent")["linear_cka"]
    assert before.sel(model="s0", model_="s1") == pytest.approx(_cka(store, "s0", "s1"), 1e-9)
    consensus_tag = store.result_tag("consensus", "latent")
    assert main(["inspect", "--verify", "--results", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert "similarity/latent: agrees: made from the members' stored content" in out
    assert "similarity/latent/linear_cka ('s0', 's1'): stored" in out and "DISAGREES" not in out

    # s0 rebuilt with other content under the same settings (its settings tag is unchanged)
    rng = np.random.default_rng(7)
    other = store.activations("s0", "latent").values + rng.normal(0, 0.5, (200, 1))
    open_store(store_path, mode="a").write_activations("s0", "latent", other, overwrite=True)
    store = open_store(store_path)
    assert store.model_attrs("s0")["tag"] and store.layer_digest("s0", "latent") != digests["s0"]
    assert verify_store(store) == []  # the new content carries its own digest: not damage
    assert main(["inspect", "--verify", "--results", str(store_path)]) == 1
    out = capsys.readouterr().out
    assert "similarity/latent: DISAGREES: made from other member content" in out
    assert "rerun with --redo similarity/latent" in out
    assert "similarity/latent/linear_cka ('s0', 's1'): stored" in out

    result = run_study(cfg)
    assert result.outcomes["compare"] == {"latent": "written"}
    assert result.outcomes["consensus"] == {"latent": "written"}
    store = open_store(store_path)
    assert store.result_tag("consensus", "latent") != consensus_tag
    after = store.read_result("similarity", "latent")["linear_cka"]
    for a, b in [("s0", "s1"), ("s0", "s2"), ("s1", "s2")]:
        assert after.sel(model=a, model_=b) == pytest.approx(_cka(store, a, b), rel=1e-9)
    assert float(after.sel(model="s1", model_="s2")) == pytest.approx(
        float(before.sel(model="s1", model_="s2")), rel=1e-12
    )  # the pair that did not use s0 has the same value
    assert main(["inspect", "--verify", "--results", str(store_path)]) == 0
    # a rerun with nothing changed recomputes nothing
    again = run_study(cfg)
    assert again.outcomes["compare"] == {"latent": "skipped"}
    assert again.outcomes["consensus"] == {"latent": "skipped"}


def test_one_config_per_store(tmp_path, write_config, capsys):
    store_path = tmp_path / "s.zarr"
    cfg = fault_config(store_path)
    run_study(cfg, stages=["probe", "train"])
    listing = _listing(store_path)

    other = write_config(fault_config(store_path, ensemble={"seeds": [5, 6]}), "other.yaml")
    assert main(["run", str(other)]) == 2
    line = _err_line(capsys)
    assert line.startswith(f"error: store {store_path} holds the study of members s0, s1; ")
    assert "this config adds s5, s6 and leaves out s0, s1: give it a store of its own" in line
    probe = write_config(fault_config(store_path, probe={"n": 300}), "probe.yaml")
    assert main(["run", str(probe)]) == 2
    line = _err_line(capsys)
    assert "with another task or probe (probe.n: 200 in the store, 300 here)" in line
    assert line.endswith(
        "give this config a store of its own (--store PATH, or 'store:' in the config)"
    )
    more = write_config(fault_config(store_path, ensemble={"seeds": [0, 1, 2]}), "more.yaml")
    assert main(["train", str(more)]) == 2
    assert "to add members to this study pass --add-members" in _err_line(capsys)
    assert _listing(store_path) == listing  # refused before anything was written

    assert main(["train", str(more), "--add-members"]) == 0
    store = open_store(store_path)
    attrs = store.study_attrs()
    assert [e["id"] for e in attrs["members"]] == ["s0", "s1", "s2"]
    assert [c["config"]["ensemble"]["seeds"] for c in attrs["configs"]] == [[0, 1], [0, 1, 2]]
    assert main(["compare", str(more)]) == 0
    capsys.readouterr()
    ds = store.read_result("similarity", "latent")
    assert list(ds["model"].values) == ["s0", "s1", "s2"]
    assert ds.attrs["config_sha256"] == attrs["configs"][1]["sha256"]
    with pytest.raises(ConfigError, match="leaves out s2"):
        run_study(fault_config(store_path), stages=["compare"])


def test_verify_covers_probe_root_and_content(tmp_path, write_config, capsys):
    store_path = tmp_path / "s.zarr"
    cfg = fault_config(store_path)
    path = write_config(cfg)
    run_study(cfg, stages=["probe", "train", "compare"])
    store = open_store(store_path)
    digests = {m: store.layer_digest(m, "latent") for m in ("s0", "s1")}

    # a deleted probe group
    import shutil

    shutil.rmtree(store_path / "probe")
    assert main(["inspect", "--verify", str(store_path)]) == 1
    out = capsys.readouterr().out
    assert (
        f"damaged: probe: the group is missing ({store_path / 'probe'}); rerun with --redo probe"
        in out
    )
    assert main(["run", str(path)]) == 2
    assert "probe: the group is missing" in _err_line(capsys)
    assert main(["run", str(path), "--redo", "probe"]) == 0
    capsys.readouterr()
    store = open_store(store_path)
    assert {m: store.layer_digest(m, "latent") for m in digests} == digests
    assert verify_store(store) == []

    # a truncated root zarr.json: named with its repair, by verify and by a run
    root = store_path / "zarr.json"
    root.write_text(root.read_text()[:50])
    assert main(["inspect", "--verify", str(store_path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(
        f"damaged: store metadata: {root} is not valid Zarr metadata (JSONDecodeError"
    )
    assert "rerun with --redo root" in out
    assert main(["run", str(path)]) == 2
    line = _err_line(capsys)
    assert line.startswith(f"error: store {store_path}: metadata file {root} is not valid Zarr")
    assert "rerun with --redo root" in line
    assert main(["run", str(path), "--redo", "root"]) == 0
    capsys.readouterr()
    store = open_store(store_path)
    assert verify_store(store) == [] and store.study_attrs()["schema_version"] == 1
    assert {m: store.layer_digest(m, "latent") for m in digests} == digests

    # a chunk rewritten with valid but other values: only the digest tells
    import zarr

    arr = zarr.open_array(str(store_path / "models/s1/acts/latent/activations"), mode="r+")
    arr[0, 0] = arr[0, 0] + 1.0
    lines = [d.line(store_path) for d in verify_store(store_path)]
    assert lines == [
        "model 's1' layer 'latent': its content differs from the digest written with it "
        "(changed after it was written); rerun with --redo s1"
    ]
    # with its size made to match (a same-size overwrite), only reading finds it: the cheap
    # check before a run passes, and the stage that reads it refuses
    group = store_path / "models" / "s1"
    body = json.loads((group / "zarr.json").read_text())
    body["attributes"]["stored_bytes"] = content_bytes(group)
    (group / "zarr.json").write_text(json.dumps(body))
    assert main(["compare", str(path), "--redo", "similarity/latent"]) == 2
    line = _err_line(capsys)
    assert line == (
        f"error: store {store_path}: model 's1' layer 'latent': its content differs from the "
        "digest written with it (changed after it was written); rerun with --redo s1"
    )
    assert not (store_path / "similarity" / "latent").exists()  # dropped, as asked
    assert main(["compare", str(path), "--redo", "s1"]) == 2  # compare does not build members
    capsys.readouterr()
    assert main(["run", str(path), "--redo", "s1"]) == 0
    capsys.readouterr()
    assert verify_store(store_path) == []
    assert open_store(store_path).layer_digest("s1", "latent") == digests["s1"]  # deterministic

    # a result group's metadata
    meta = store_path / "similarity" / "latent" / "zarr.json"
    meta.write_text("{")
    lines = [d.line(store_path) for d in verify_store(store_path)]
    assert any(
        line.startswith(f"result 'similarity/latent': its metadata ({meta}) is unreadable")
        and line.endswith("rerun with --redo similarity/latent")
        for line in lines
    ), lines


@pytest.mark.parametrize("damage", ["truncated", "deleted", "member metadata"])
def test_a_plain_run_refuses_a_damaged_store(tmp_path, write_config, capsys, damage):
    store_path = tmp_path / "s.zarr"
    cfg = fault_config(store_path)
    path = write_config(cfg)
    assert main(["run", str(path)]) == 0
    capsys.readouterr()
    chunk = store_path / "models/s0/acts/latent/activations/c/0/0"
    if damage == "truncated":
        chunk.write_bytes(chunk.read_bytes()[:20])
        expected = "model 's0' layer 'latent': chunk (0, 0) (rows 0-199) is unreadable"
    elif damage == "deleted":
        chunk.unlink()
        expected = "model 's0' layer 'latent': chunk (0, 0) (rows 0-199) is missing"
    else:
        meta = store_path / "models/s0/zarr.json"
        meta.write_text(meta.read_text()[:30])
        expected = f"model 's0': its metadata ({meta}) is unreadable (JSONDecodeError"
    listing = _listing(tmp_path)
    assert main(["run", str(path)]) == 2
    line = _err_line(capsys)
    assert line.startswith(f"error: store {store_path}: {expected}"), line
    assert "rerun with --redo s0" in line
    assert _listing(tmp_path) == listing  # the report and results.json were not rewritten
    assert main(["report", str(store_path)]) == 2
    capsys.readouterr()
    assert main(["run", str(path), "--redo", "s0"]) == 0
    assert verify_store(store_path) == []


def test_every_input_check_before_the_first_write(tmp_path, write_config, capsys):
    store_path = tmp_path / "s.zarr"
    missing = tmp_path / "nowhere.csv"
    cases = [
        (
            fault_config(store_path, probe={"path": str(missing)}),
            f"probe file {missing}: does not exist",
        ),
        (
            fault_config(store_path, probe={"n": 10, "test_fraction": 0.1}),
            "probe (probe.n 10, test_fraction 0.1): 10 rows (9 fit, 1 test); the consensus "
            "needs at least 3 fit and 3 test rows",
        ),
    ]
    named = fault_config(store_path, name="../../x")
    named.pop("store")
    cases.append((named, "name '../../x': expected one path component"))
    small = tmp_path / "small.csv"
    small.write_text("x,y\n" + "".join(f"{i},{i + 1}\n" for i in range(5)))
    cases.append(
        (
            fault_config(store_path, task="no task", probe={"path": str(small)},
                         ensemble={"seeds": [], "ingest": [{"id": "a", "kind": "activations",
                                                            "path": str(small)}]}),
            f"probe file {small}: 5 rows",
        )
    )  # fmt: skip
    acts = tmp_path / "acts.npz"
    np.savez(acts, latent=np.zeros((7, 3), np.float32))
    cases.append(
        (
            fault_config(store_path, ensemble={"seeds": [], "ingest": [
                {"id": "a", "kind": "activations", "path": str(acts)}]}),
            "member 'a'",
        )
    )  # fmt: skip
    for cfg, expected in cases:
        if cfg["task"]["name"] == "no task":
            del cfg["task"]
        path = write_config(cfg)
        before = _listing(tmp_path)
        assert main(["run", str(path)]) == 2
        line = _err_line(capsys)
        assert expected in line, line
        assert _listing(tmp_path) == before, line  # nothing created, nothing changed
        assert not (tmp_path / "runs").exists() and not store_path.exists()


def test_bad_arguments_are_one_line(tmp_path, write_config, capsys):
    path = write_config(fault_config(tmp_path / "s.zarr"))
    assert main(["compare", str(path), "--redo", "similarity/../x"]) == 2
    assert _err_line(capsys) == (
        "error: --redo similarity/../x: expected similarity/<layer> with a layer name, got '../x'"
    )
    (tmp_path / "file").write_text("")
    inside = write_config(fault_config(tmp_path / "file" / "s.zarr"), "inside.yaml")
    assert main(["run", str(inside)]) == 2
    assert _err_line(capsys) == (
        f"error: store {tmp_path / 'file' / 's.zarr'}: {tmp_path / 'file'} is a regular file, "
        "not a folder"
    )
    assert main(["inspect", "--results", str(tmp_path)]) == 2
    assert _err_line(capsys) == "error: inspect --results: expected it with --verify"
    assert main(["inspect", "--verify", str(tmp_path / "none.zarr")]) == 2
    assert _err_line(capsys) == (
        f"error: no study store at {tmp_path / 'none.zarr'} (expected a Zarr v3 directory)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "inside.yaml", "study.yaml"]
