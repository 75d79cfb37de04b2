"""Probe sets from the user's data files: CSV, Parquet, .npz, netCDF, Zarr (real files)."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ensemble_lens.errors import ShapeError
from ensemble_lens.record.probe_file import ProbeFileError, read_probe_file
from ensemble_lens.record.store import open_store


def _frame(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 3))
    split = np.where(np.arange(n) % 5 == 0, "test", "fit").astype(object)
    split[-6:] = "extrapolation"
    return pd.DataFrame(
        {
            "x1": x[:, 0],
            "x2": x[:, 1],
            "x3": x[:, 2],
            "u": x[:, 0] * np.exp(-x[:, 1]),
            "part": split,
            "id": np.arange(100, 100 + n),
        }
    )


def _column(frame, c):
    v = frame[c].to_numpy()
    return v.astype(str) if v.dtype == object else v


def _write(frame, path):
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path)
    elif path.suffix == ".npz":
        np.savez(path, **{c: _column(frame, c) for c in frame.columns})
    else:
        ds = xr.Dataset({c: ("sample", _column(frame, c)) for c in frame.columns})
        ds = ds.assign_coords(sample=frame["id"].to_numpy())
        if path.suffix == ".nc":
            ds.to_netcdf(path)
        else:
            ds.to_zarr(path, mode="w")


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npz", ".nc", ".zarr"])
def test_every_format_reads_the_same_probe(tmp_path, suffix):
    frame = _frame()
    path = tmp_path / f"probe{suffix}"
    _write(frame, path)
    data = read_probe_file(
        path, variables=["x1", "x2", "x3"], split="part", truth={"u": "u"}, sample_id="id"
    )
    np.testing.assert_allclose(data.variables, frame[["x1", "x2", "x3"]].to_numpy())
    np.testing.assert_allclose(data.truth["u"], frame["u"].to_numpy())
    assert list(data.split) == list(frame["part"])
    assert list(data.sample_ids) == list(frame["id"])


def test_default_variables_are_the_numeric_columns_left(tmp_path):
    _frame().to_csv(tmp_path / "p.csv", index=False)
    data = read_probe_file(tmp_path / "p.csv", split="part", truth={"u": "u"}, sample_id="id")
    assert data.names == ["x1", "x2", "x3"]


def test_extrapolation_rows_are_kept_apart_in_the_store(tmp_path):
    frame = _frame()
    _write(frame, tmp_path / "p.parquet")
    data = read_probe_file(tmp_path / "p.parquet", split="part", truth={"u": "u"}, sample_id="id")
    store = open_store(tmp_path / "s.zarr", mode="w")
    store.write_probe(data.variables, data.names, data.sample_ids, data.split, truth=data.truth)
    assert store.n_samples == 54
    assert set(store.probe()["split"].values) == {"fit", "test"}
    ext = store.extrapolation_probe()
    assert ext.sizes["sample"] == 6
    np.testing.assert_allclose(ext["truth_u"].values, frame["u"].to_numpy()[-6:])
    np.testing.assert_allclose(ext["inputs"].values, frame[["x1", "x2", "x3"]].to_numpy()[-6:])


def test_missing_column_names_file_and_columns(tmp_path):
    _frame().to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(
        ProbeFileError, match=r"p.csv: no column 'x4' .*the file has \['id', 'part'"
    ):
        read_probe_file(tmp_path / "p.csv", variables=["x1", "x4"])


def test_truth_column_with_nan_is_an_error(tmp_path):
    frame = _frame()
    frame.loc[7, "u"] = np.nan
    frame.to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(
        ProbeFileError,
        match=r"truth column 'u' \(latent 'u'\): expected finite .* 1 NaN/inf .*row 7",
    ):
        read_probe_file(tmp_path / "p.csv", variables=["x1"], truth={"u": "u"})


def test_bad_split_labels_and_missing_file(tmp_path):
    frame = _frame()
    frame.loc[3, "part"] = "train"
    frame.to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(
        ProbeFileError, match=r"split column 'part': expected values .* \['train'\]"
    ):
        read_probe_file(tmp_path / "p.csv", split="part")
    with pytest.raises(ProbeFileError, match=r"nope\.csv: does not exist"):
        read_probe_file(tmp_path / "nope.csv")


def test_images_are_stored_as_they_are(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(40, 1, 4, 4)).astype(np.float32)
    tokens = rng.integers(0, 9, size=(40, 5))
    np.savez(tmp_path / "p.npz", images=images, tokens=tokens, brightness=images.mean((1, 2, 3)))
    data = read_probe_file(tmp_path / "p.npz")
    assert data.names == ["brightness"]
    assert sorted(data.model_inputs) == ["images", "tokens"]
    store = open_store(tmp_path / "s.zarr", mode="w")
    store.write_probe(data.variables, data.names, model_inputs=data.model_inputs)
    got = store.model_inputs()
    np.testing.assert_array_equal(got["images"].values, images)
    assert got["tokens"].dtype.kind == "i"
    assert store.probe_names == ("brightness",)


def test_write_probe_names_columns_itself(tmp_path):
    store = open_store(tmp_path / "s.zarr", mode="w")
    store.write_probe(np.zeros((20, 3), np.float32))
    assert store.probe_names == ("x0", "x1", "x2")
    images = np.ones((20, 2, 3, 3), np.float32)
    store = open_store(tmp_path / "t.zarr", mode="w")
    store.write_probe(images)
    assert store.probe_names == ()
    assert store.model_inputs().shape == (20, 2, 3, 3)
    with pytest.raises(ShapeError, match="names are for a"):
        store.write_probe(images, names=["a"])


def test_columns_of_the_wrong_kind_or_length(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros(10), y=np.zeros(9))
    with pytest.raises(ProbeFileError, match=r"expected every array to have 10 samples"):
        read_probe_file(tmp_path / "a.npz")
    pd.DataFrame({"x": ["a", "b"], "y": [1.0, 2.0]}).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(ProbeFileError, match=r"variable column 'x': expected one numeric value"):
        read_probe_file(tmp_path / "b.csv", variables=["x"])
    (tmp_path / "c.parquet").write_text("not parquet")
    with pytest.raises(ProbeFileError, match=r"c.parquet: cannot read it"):
        read_probe_file(tmp_path / "c.parquet")
    xr.Dataset({"x": ("row", np.zeros(3))}).to_netcdf(tmp_path / "d.nc")
    with pytest.raises(ProbeFileError, match=r"expected an xarray dataset with a 'sample' dim"):
        read_probe_file(tmp_path / "d.nc")


def test_store_refuses_model_inputs_it_cannot_hold(tmp_path):
    store = open_store(tmp_path / "s.zarr", mode="w")
    with pytest.raises(ShapeError, match=r"probe model input 'img': expected 5 samples first"):
        store.write_probe(np.zeros((5, 1)), ["a"], model_inputs={"img": np.zeros((4, 2, 2))})
    split = ["fit", "test", "fit", "extrapolation", "test"]
    with pytest.raises(ShapeError, match=r"extrapolation samples are supported for named"):
        store.write_probe(
            np.zeros((5, 1)), ["a"], split=split, model_inputs={"img": np.zeros((5, 2, 2))}
        )


def test_target_columns_are_kept_apart_from_the_variables(tmp_path):
    frame = _frame().assign(y=lambda f: 2 * f["u"])
    _write(frame, tmp_path / "p.parquet")
    data = read_probe_file(tmp_path / "p.parquet", split="part", sample_id="id", target=["y"])
    assert "y" not in data.names and "u" in data.names  # u is no truth here: a variable
    store = open_store(tmp_path / "s.zarr", mode="w")
    store.write_probe(data.variables, data.names, data.sample_ids, data.split, targets=data.targets)
    assert store.target_names() == ("y",)
    np.testing.assert_allclose(store.probe()["target_y"].values, frame["y"].to_numpy()[:54])
    ext = store.extrapolation_probe()
    np.testing.assert_allclose(ext["target_y"].values, frame["y"].to_numpy()[-6:])
    frame.loc[3, "y"] = np.inf
    frame.to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(ProbeFileError, match=r"target column 'y': expected finite .*row 3"):
        read_probe_file(tmp_path / "p.csv", variables=["x1"], target=["y"])


@pytest.mark.parametrize("sep, suffix", [(",", ".csv"), ("\t", ".tsv")])
def test_a_header_naming_a_column_twice_is_one_line(tmp_path, sep, suffix):
    # an input named y and the target written as y: pandas would read the second as "y.1"
    # and the config's "y" would silently be the input
    path = tmp_path / f"p{suffix}"
    path.write_text(sep.join(["x", "y", "y"]) + "\n" + sep.join(["1.0", "2.0", "3.0"]) + "\n")
    with pytest.raises(ProbeFileError) as err:
        read_probe_file(path, variables=["x", "y"], target=["y"])
    assert str(err.value) == (
        f"probe file {path}: column 'y' appears more than once in its header; give each "
        "column its own name"
    )


@pytest.mark.parametrize("name", ["lambda", "T (K)", "1x", "x-1"])
def test_a_variable_no_formula_can_name_is_one_line(tmp_path, name):
    # a column called lambda reached the search and failed there, after the store was written
    path = tmp_path / "p.csv"
    pd.DataFrame({name: [1.0, 2.0, 3.0], "z": [0.5, 0.1, 0.2]}).to_csv(path, index=False)
    with pytest.raises(ProbeFileError) as err:
        read_probe_file(path)
    assert str(err.value) == (
        f"probe file {path}: variable column {name!r} cannot name a formula's variable "
        "(letters, digits and _, not starting with a digit, not a Python keyword); rename the "
        "column, or list probe.variables without it"
    )
    assert read_probe_file(path, variables=["z"]).names == ["z"]


def test_a_column_with_no_name_is_not_read(tmp_path):
    # DataFrame.to_csv writes the index as a first column with an empty header; as a default
    # variable it was the row number, and now "Unnamed: 0" could never name a variable
    path = tmp_path / "p.csv"
    pd.DataFrame({"x1": [1.0, 2.0, 3.0], "x2": [0.5, 0.1, 0.2]}).to_csv(path)
    assert read_probe_file(path).names == ["x1", "x2"]
