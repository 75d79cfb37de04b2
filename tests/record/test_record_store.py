import json

import numpy as np
import pytest
import xarray as xr

from ensemble_lens.errors import ShapeError, StoreError
from ensemble_lens.record.store import SCHEMA_VERSION, open_store


def test_probe_round_trip(probe_store):
    probe = open_store(probe_store.path).probe()
    assert probe["inputs"].dims == ("sample", "variable")
    assert probe_store.probe_names == ("a", "b", "c")
    assert set(np.unique(probe["split"].values)) == {"fit", "test"}
    assert int((probe["split"].values == "test").sum()) == 250
    assert probe_store.truth_names() == ("ab",)


def test_missing_store_and_newer_schema(tmp_path):
    with pytest.raises(StoreError, match="no study store at"):
        open_store(tmp_path / "nope.zarr")
    store = open_store(tmp_path / "s.zarr", mode="w")
    store.write_study_attrs(schema_version=SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="newer than this ensemble_lens understands"):
        open_store(tmp_path / "s.zarr")


def test_read_only_store_refuses_writes(probe_store):
    ro = open_store(probe_store.path, mode="r")
    with pytest.raises(StoreError, match="read-only"):
        ro.write_activations("m", "l", np.zeros((1000, 2)))


def test_write_activations_round_trip_and_chunks(probe_store):
    values = np.random.default_rng(1).normal(size=(1000, 7)).astype(np.float32)
    probe_store.write_activations("m1", "enc.0", values, attrs={"seed": 3, "metrics": {"r2": 0.5}})
    store = open_store(probe_store.path)
    da = store.activations("m1", "enc.0")
    assert da.dims == ("sample", "unit")
    assert np.array_equal(da.values, values)
    assert np.array_equal(da["sample"].values, store.sample_ids)
    assert store.status("m1") == "complete"
    assert store.model_attrs("m1")["metrics"] == {"r2": 0.5}
    meta = json.loads((store.path / "models/m1/acts/enc.0/activations/zarr.json").read_text())
    assert meta["chunk_grid"]["configuration"]["chunk_shape"][1] == 7  # all units in one chunk
    assert meta["data_type"] == "float32"


def test_sample_count_and_id_mismatch(probe_store):
    with pytest.raises(
        ShapeError, match=r"model 'm' layer 'l': expected 1000 samples like the probe set, got 999"
    ):
        probe_store.write_activations("m", "l", np.zeros((999, 2)))
    da = xr.DataArray(
        np.zeros((1000, 2)), dims=("sample", "unit"), coords={"sample": np.arange(1000)[::-1]}
    )
    with pytest.raises(ShapeError, match="sample ids differ from the probe"):
        probe_store.write_activations("m", "l", da)
    with pytest.raises(ShapeError, match="3 non-finite"):
        bad = np.zeros((1000, 2))
        bad[:3, 0] = np.nan
        probe_store.write_activations("m", "l", bad)
    assert probe_store.models == []  # nothing half-written


def test_stacked_and_width_error(probe_store):
    for i, w in enumerate((4, 4, 5)):
        probe_store.write_activations(f"m{i}", "l", np.full((1000, w), i, np.float32))
    with pytest.raises(StoreError, match=r"different widths across models \(m0: 4, m1: 4, m2: 5\)"):
        probe_store.stacked("l")
    st = probe_store.stacked("l", models=["m0", "m1"])
    assert st.dims == ("model", "sample", "unit")
    assert list(st["model"].values) == ["m0", "m1"]
    assert float(st.sel(model="m1").mean()) == 1.0


def test_missing_model_and_layer_errors(probe_store):
    probe_store.write_activations("m0", "l", np.zeros((1000, 2)))
    with pytest.raises(StoreError, match=r"has no model 'zz' \(models: m0\)"):
        probe_store.activations("zz", "l")
    with pytest.raises(StoreError, match=r"has no layer 'q' \(layers: l\)"):
        probe_store.activations("m0", "q")
    assert probe_store.status("zz") == "missing"


def test_existing_layer_needs_overwrite(probe_store):
    probe_store.write_activations("m0", "l", np.zeros((1000, 2)))
    with pytest.raises(StoreError, match="already has layer 'l'"):
        probe_store.write_activations("m0", "l", np.ones((1000, 2)))
    probe_store.write_activations("m0", "k", np.ones((1000, 3)))
    assert probe_store.layers("m0") == ["k", "l"]
    probe_store.write_activations("m0", "l", np.ones((1000, 2)), overwrite=True)
    assert float(probe_store.activations("m0", "l").values.mean()) == 1.0


def test_failed_write_keeps_previous_model(probe_store):
    probe_store.write_activations("m0", "l", np.zeros((1000, 2)))
    with pytest.raises(RuntimeError), probe_store.model_writer("m0", overwrite=True) as w:
        w.write_layer("l", np.ones((1000, 2), np.float32))
        raise RuntimeError("boom")
    assert float(probe_store.activations("m0", "l").values.sum()) == 0.0
    assert probe_store.status("m0") == "complete"


def test_probe_cannot_change_under_models(probe_store):
    probe_store.write_activations("m0", "l", np.zeros((1000, 2)))
    with pytest.raises(StoreError, match="recorded on another probe set"):
        probe_store.write_probe(np.zeros((1000, 3)), ["a", "b", "c"])


def test_results_round_trip_with_string_coords(probe_store):
    ids = ["m0", "m1"]
    ds = xr.Dataset(
        {"linear_cka": (("model", "model_"), np.array([[1.0, 0.3], [0.3, 1.0]]))},
        coords={"model": ids, "model_": ids},
        attrs={"note": {"k": 1}},
    )
    probe_store.write_result("similarity", "enc.0", ds, tag="t1")
    back = open_store(probe_store.path).read_result("similarity", "enc.0")
    assert list(back["model"].values) == ids
    assert back.attrs["note"] == {"k": 1}
    np.testing.assert_array_equal(back["linear_cka"].values, ds["linear_cka"].values)
    assert probe_store.result_tag("similarity", "enc.0") == "t1"
    assert probe_store.result_tag("consensus", "enc.0") is None
    with pytest.raises(StoreError, match="no consensus result for layer"):
        probe_store.read_result("consensus", "enc.0")


def test_formulas_round_trip(probe_store):
    records = [{"component": 0, "expression": "2*x", "support": 1.0}]
    probe_store.write_formulas(records, tag="x")
    assert open_store(probe_store.path).read_formulas() == records
    assert probe_store.formulas_tag() == "x"


def test_bad_names_rejected(probe_store):
    with pytest.raises(StoreError, match="not a valid name"):
        probe_store.write_activations("a/b", "l", np.zeros((1000, 2)))


def test_interrupted_swap_is_restored_only_when_stale(probe_store, monkeypatch):
    import os
    import time

    from ensemble_lens.record import store as store_mod

    probe_store.write_activations("m0", "l", np.ones((1000, 2)))
    trash = probe_store.path / "_trash"
    trash.mkdir()
    moved = trash / "models--m0--deadbeef"
    os.rename(probe_store.path / "models" / "m0", moved)  # a swap cut between its renames
    assert open_store(probe_store.path, mode="a").status("m0") == "missing"  # too fresh: kept
    old = time.time() - 2 * store_mod._TRASH_GRACE_S
    os.utime(moved, (old, old))
    reopened = open_store(probe_store.path, mode="a")
    assert reopened.status("m0") == "complete"
    assert float(reopened.activations("m0", "l").values.sum()) == 2000.0


def test_truth_and_target_columns_read_back_in_the_order_written(tmp_path):
    """The file system lists a group's arrays in any order; truth and target columns come
    back in the order they were written (targets follow the networks' outputs)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2)).astype(np.float32)
    names = ["v", "u", "zeta", "a", "m", "b", "y", "c"]
    store = open_store(tmp_path / "s.zarr", "w")
    store.write_probe(
        x,
        ["p", "q"],
        truth={n: x[:, 0] * i for i, n in enumerate(names)},
        targets={n: x[:, 1] * i for i, n in enumerate(reversed(names))},
    )
    again = open_store(tmp_path / "s.zarr", "r")
    assert again.truth_names() == tuple(names)
    assert again.target_names() == tuple(reversed(names))


def test_creation_cleans_what_a_killed_creation_left(tmp_path):
    # a run killed while zarr wrote _staging's metadata leaves zarr's temporary file and no
    # root metadata; creating the store again removes it and writes the group whole
    path = tmp_path / "s.zarr"
    (path / "_staging").mkdir(parents=True)
    partial = path / "_staging" / "zarr.3e7fa30358f94f21a67ef174d4b3a0b1.partial"
    partial.write_text('{"zarr_format": 3, "node_')
    (path / ".zarr.json.1a2b3c4d").write_text("{")  # killed before the root's rename
    store = open_store(path, mode="a")
    assert [p.name for p in (path / "_staging").iterdir()] == ["zarr.json"]
    assert not list(path.glob(".zarr.json.*"))
    assert json.loads((path / "_staging" / "zarr.json").read_text())["node_type"] == "group"
    assert store.complete_models == []
