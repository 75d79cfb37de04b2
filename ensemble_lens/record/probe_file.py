"""A probe set read from the user's own data file instead of a task's sampler.

Tables (CSV through pandas, Parquet through pandas/pyarrow) give one column per variable;
``.npz`` files and xarray datasets (netCDF, Zarr; a ``sample`` dimension) may also hold arrays
that are not flat (images ``(n, C, H, W)``, sequences, token ids): those are handed to the
networks as they are (``inputs``), while the named scalar variables are what formulas use.

Every check happens here, before anything is trained or recorded, and each error names the
file, the column and what was expected.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ShapeError

SPLIT_LABELS = ("fit", "test", "extrapolation")
_TABLES = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}


class ProbeFileError(ShapeError):
    """A probe file lacks a named column, holds non-finite values or has a bad split."""


@dataclass
class ProbeData:
    """What a probe file holds, checked: arrays share their first (sample) axis.

    Attributes
    ----------
    variables : np.ndarray
        ``(sample, variable)`` float64 named scalar variables (may have zero columns).
    names : list of str
        The variables' names, in column order.
    model_inputs : dict of str to np.ndarray
        Arrays fed to the networks as they are (empty: the networks take ``variables``).
    split : np.ndarray or None
        ``"fit"``/``"test"``/``"extrapolation"`` per sample, or None (a seeded random split).
    test_fraction : float or None
        The test fraction of the seeded split when the file names no split column.
    truth : dict of str to np.ndarray
        Ground-truth latents, ``(sample,)`` each.
    truth_formulas : dict of str to str
        The latents whose truth the config gave as a formula of the variables (its text):
        their values in ``truth`` are the formula's, and exact recovery is judged against it.
    targets : dict of str to np.ndarray
        What the networks were trained to predict, column -> ``(sample,)``, in output order.
    sample_ids : np.ndarray or None
        Unique integer sample ids (default ``0..n-1``).
    """

    variables: np.ndarray
    names: list[str]
    model_inputs: dict[str, np.ndarray] = field(default_factory=dict)
    split: np.ndarray | None = None
    test_fraction: float | None = None
    truth: dict[str, np.ndarray] = field(default_factory=dict)
    truth_formulas: dict[str, str] = field(default_factory=dict)
    sample_ids: np.ndarray | None = None
    targets: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.variables.shape[0])


def file_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes, or of a folder's (Zarr) relative paths, sizes and bytes.

    A plain file's digest is remembered for its (path, size, mtime), so a run that expands the
    members twice (the checks before writing, then the members stage) reads each file once.
    """
    p = Path(path)
    if p.is_file():
        st = p.stat()
        return _file_digest(str(p.resolve()), st.st_size, st.st_mtime_ns)
    return _digest(p)


@functools.lru_cache(maxsize=4096)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    return _digest(Path(path))


def _digest(p: Path) -> str:
    h = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        h.update(str(f.relative_to(p) if p.is_dir() else f.name).encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(2**20), b""):
                h.update(block)
    return h.hexdigest()


def read_columns(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], Any]:
    """The arrays of a probe file by name (first axis = sample) and its sample coordinate.

    CSV/TSV and Parquet through pandas (pyarrow), ``.npz`` through numpy, netCDF and Zarr
    through xarray (every data variable with a ``sample`` dimension, ``sample`` first).
    """
    p = Path(path)
    if not p.exists():
        raise ProbeFileError(f"probe file {p}: does not exist")
    kind = _TABLES.get(p.suffix.lower())
    try:
        if kind is not None:
            import pandas as pd

            if kind == "csv":
                sep = "\t" if p.suffix.lower() == ".tsv" else ","
                frame = pd.read_csv(p, sep=sep)
                # pandas renames a repeated header ("y", "y.1"): read the header as written
                with open(p, newline="") as fh:
                    header = next(csv.reader(fh, delimiter=sep), [])
            else:
                frame = pd.read_parquet(p)
                header = [str(c) for c in frame.columns]
            twice = sorted({c for c in header if c.strip() and header.count(c) > 1})
            if twice:
                raise ProbeFileError(
                    f"probe file {p}: column {twice[0]!r} appears more than once in its "
                    "header; give each column its own name"
                )
            # a column with no name in the header (pandas writes its index so) is not read:
            # nothing in a config can name it, and as a default variable it was the row number
            unnamed = (
                {c for c, h in zip(frame.columns, header, strict=True) if not h.strip()}
                if len(header) == len(frame.columns)
                else set()
            )
            return {str(c): frame[c].to_numpy() for c in frame.columns if c not in unnamed}, None
        if p.suffix.lower() == ".npz":
            with np.load(p, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}, None
        return _dataset_columns(p)
    except (OSError, ValueError, ImportError) as err:
        if isinstance(err, ProbeFileError):
            raise
        raise ProbeFileError(f"probe file {p}: cannot read it: {err}") from err


def _dataset_columns(p: Path) -> tuple[dict[str, np.ndarray], Any]:
    import xarray as xr

    if p.is_dir() or p.suffix.lower() == ".zarr":
        ds = xr.open_zarr(str(p), consolidated=None)
    else:
        ds = xr.open_dataset(p)
    with ds:
        if "sample" not in ds.dims:
            raise ProbeFileError(
                f"probe file {p}: expected an xarray dataset with a 'sample' dimension, "
                f"got dims {dict(ds.sizes)}"
            )
        out = {}
        for name, var in ds.data_vars.items():
            if "sample" in var.dims:
                other = [d for d in var.dims if d != "sample"]
                out[str(name)] = np.asarray(var.transpose("sample", *other).values)
        ids = np.asarray(ds["sample"].values) if "sample" in ds.coords else None
    return out, ids


def read_probe_file(
    path: str | os.PathLike[str],
    *,
    variables: list[str] | None = None,
    split: str | float | None = None,
    truth: dict[str, str] | None = None,
    inputs: list[str] | None = None,
    sample_id: str | None = None,
    target: list[str] | None = None,
) -> ProbeData:
    """Read and check a probe file.

    Parameters
    ----------
    path
        CSV/TSV, Parquet, ``.npz``, netCDF or Zarr.
    variables
        Named scalar variables (default: every numeric 1-D column that is not the split, a
        truth, an input or the id column).
    split
        The split column (values ``fit``/``test``/``extrapolation``) or a test fraction.
    truth
        Latent name -> column of its ground-truth values, or a formula of the variables
        (``"q1*q2/r**2"``; any text that is not a column of the file is read as one).
    inputs
        Arrays fed to the networks as they are (default: the non-flat arrays, if any).
    sample_id
        Column of unique integer sample ids.
    target
        Columns the networks were trained to predict, in the order of their outputs.

    Raises
    ------
    ProbeFileError
        A named column that the file lacks (the message lists the columns it has), a
        non-numeric or non-finite variable, a truth column with NaN, bad split labels.
    """
    p = Path(path)
    cols, coord_ids = read_columns(p)
    where = f"probe file {p}"
    truth, target = dict(truth or {}), list(target or [])
    formulas = {k: v for k, v in truth.items() if v not in cols}
    truth = {k: v for k, v in truth.items() if v in cols}
    named = [c for c in (variables or []) + list(truth.values()) + (inputs or []) + target]
    named += [c for c in (split, sample_id) if isinstance(c, str)]
    missing = [c for c in named if c not in cols]
    if missing:
        raise ProbeFileError(
            f"{where}: no column {missing[0]!r} (expected by the config; the file has "
            f"{sorted(cols)})"
        )
    n = _n_rows(cols, where)
    reserved = set(truth.values()) | set(target)
    reserved |= {c for c in (split, sample_id) if isinstance(c, str)}
    model_in = _model_inputs(cols, inputs, reserved, where)
    if variables is None:
        variables = [
            c
            for c, v in cols.items()
            if v.ndim == 1 and v.dtype.kind in "biuf" and c not in reserved and c not in model_in
        ]
    from ..distill._expr import NAME_RULE, is_formula_name

    for c in variables:  # a formula names them; "lambda" or "T (K)" broke the search late
        if not is_formula_name(c):
            raise ProbeFileError(
                f"{where}: variable column {c!r} cannot name a formula's variable "
                f"({NAME_RULE}); rename the column, or list probe.variables without it"
            )
    X = np.empty((n, len(variables)))
    for j, c in enumerate(variables):
        X[:, j] = _finite(cols[c], where, f"variable column {c!r}")
    data = ProbeData(X, list(variables), model_in)
    for latent, col in truth.items():
        data.truth[latent] = _finite(cols[col], where, f"truth column {col!r} (latent {latent!r})")
    for latent, text in formulas.items():
        data.truth[latent] = _truth_formula(text, X, list(variables), where, latent, sorted(cols))
        data.truth_formulas[latent] = text
    for col in target:
        data.targets[col] = _finite(cols[col], where, f"target column {col!r}")
    if isinstance(split, str):
        data.split = _split_labels(cols[split], where, split)
    elif split is not None:
        data.test_fraction = float(split)
    if sample_id is not None:
        data.sample_ids = np.asarray(cols[sample_id])
    elif coord_ids is not None and np.asarray(coord_ids).dtype.kind in "iu":
        data.sample_ids = np.asarray(coord_ids)
    return data


def _n_rows(cols: dict[str, np.ndarray], where: str) -> int:
    sizes = {k: int(np.shape(v)[0]) if np.ndim(v) else 1 for k, v in cols.items()}
    if not sizes:
        raise ProbeFileError(f"{where}: holds no columns")
    n = next(iter(sizes.values()))
    bad = {k: s for k, s in sizes.items() if s != n}
    if bad:
        raise ProbeFileError(f"{where}: expected every array to have {n} samples, got {bad}")
    return n


def _model_inputs(
    cols: dict[str, np.ndarray], inputs: list[str] | None, reserved: set[str], where: str
) -> dict[str, np.ndarray]:
    if inputs is None:
        inputs = [c for c, v in cols.items() if v.ndim > 1 and c not in reserved]
    out = {}
    for name in inputs:
        arr = np.asarray(cols[name])
        if arr.dtype.kind not in "biuf":
            raise ProbeFileError(
                f"{where}: input array {name!r} must be numeric, got dtype {arr.dtype}"
            )
        out[name] = arr
    return out


def _truth_formula(
    text: str, X: np.ndarray, names: list[str], where: str, latent: str, columns: list[str]
) -> np.ndarray:
    """The values on the probe of a truth given as a formula of the probe's variables."""
    from ..distill._expr import evaluate
    from ..errors import TaskError
    from ..tasks.formula import parse_formula

    try:
        expr = parse_formula(text, names)
    except TaskError as err:
        raise ProbeFileError(
            f"{where}: truth of {latent!r}: {text!r} is neither a column of the file "
            f"({columns}) nor a formula of its variables ({err})"
        ) from None
    values = np.broadcast_to(np.asarray(evaluate(expr, X, names), np.float64), (len(X),))
    return _finite(values, where, f"truth formula {text!r} (latent {latent!r})")


def _finite(values: np.ndarray, where: str, what: str) -> np.ndarray:
    v = np.asarray(values)
    if v.ndim != 1 or v.dtype.kind not in "biuf":
        raise ProbeFileError(
            f"{where}: {what}: expected one numeric value per sample, got dtype {v.dtype} "
            f"and shape {v.shape}"
        )
    v = v.astype(np.float64)
    bad = int((~np.isfinite(v)).sum())
    if bad:
        first = int(np.flatnonzero(~np.isfinite(v))[0])
        raise ProbeFileError(
            f"{where}: {what}: expected finite values, got {bad} NaN/inf (first at row {first})"
        )
    return v


def _split_labels(values: np.ndarray, where: str, column: str) -> np.ndarray:
    labels = np.asarray(values).astype(str)
    bad = sorted({str(v) for v in np.unique(labels)} - set(SPLIT_LABELS))
    if bad:
        raise ProbeFileError(
            f"{where}: split column {column!r}: expected values {list(SPLIT_LABELS)}, got {bad[:5]}"
        )
    return labels
