"""The probe part of :class:`~ensemble_lens.record.store.StudyStore`: the shared probe set
every network is recorded on (``probe/`` in the store's layout, see ``store.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ShapeError, StoreError
from ._probe_data import _decode_strings, _encode_strings, _per_sample, _probe_dataset, _with_extras
from ._zarrio import (
    _EXTRA_PREFIXES,
    _EXTRAP_PREFIX,
    _INPUT_PREFIX,
    _TARGET_PREFIX,
    _read_attrs,
    _xr,
    _zarr,
    chunk_rows,
    dataset_digest,
    stamp_bytes,
)

if TYPE_CHECKING:
    import xarray as xr


def stored_digest(group_dir: Path) -> str:
    """The content digest of a written Zarr group (the probe), as read back from disk:
    every variable, and the attributes but ``digest`` and ``stored_bytes``."""
    ds = _xr().open_dataset(str(group_dir), engine="zarr", consolidated=False).load()
    for key in ("digest", "stored_bytes"):
        ds.attrs.pop(key, None)
    return dataset_digest(ds)


class ProbePart:
    """Probe methods of the store (a mixin: ``StudyStore`` provides ``path``, ``models``,
    ``_writable``, ``_staging_dir``, ``_swap_in``, ``_open`` and ``_probe_cache``)."""

    path: Path
    _probe_cache: xr.Dataset | None

    if TYPE_CHECKING:
        models: list[str]

        def _writable(self) -> None: ...
        def _staging_dir(self, label: str) -> Path: ...
        def _swap_in(self, staged: Path, target: Path) -> None: ...
        def _open(self, group: str, chunks: Any = None, cache: bool = True) -> xr.Dataset: ...

    def write_probe(
        self,
        inputs: Any,
        names: Sequence[str] | None = None,
        sample_ids: Sequence[Any] | np.ndarray | None = None,
        split: Sequence[str] | np.ndarray | None = None,
        *,
        truth: Mapping[str, Any] | None = None,
        test_fraction: float = 0.25,
        seed: int = 0,
        model_inputs: Mapping[str, Any] | None = None,
        targets: Mapping[str, Any] | None = None,
    ) -> None:
        """Write the shared probe set every network is recorded on.

        Parameters
        ----------
        inputs
            (sample, variable) array of the named input variables. An array that is not
            flat (images (n, C, H, W), sequences, token ids) or a dict of such arrays is
            stored as it is and fed to the networks (``model_inputs``), with no named
            variables.
        names
            One name per variable (column); default ``x0, x1, ...``.
        sample_ids
            Unique integer ids, one per sample; default ``0..n-1``.
        split
            ``"fit"``/``"test"``/``"extrapolation"`` per sample (or booleans, True = test).
            Default: a seeded random split with ``test_fraction`` of the samples in "test".
            Extrapolation samples (named inputs and truth) are kept apart
            (:meth:`extrapolation_probe`); networks are recorded on fit and test samples.
        truth
            Optional ground-truth latents, name -> (sample,) array.
        model_inputs
            Arrays (sample, ...) the networks take instead of the named variables, name ->
            array (one array: the model gets it; several: a dict of tensors). Read back
            with :meth:`model_inputs`.
        targets
            Optional values the networks were trained to predict, name -> (sample,) array, in
            the order of the networks' outputs (``target_<name>``; see :attr:`target_names`).

        Raises
        ------
        StoreError
            When models were already recorded on a different probe.
        """
        self._writable()
        if model_inputs is None and (isinstance(inputs, Mapping) or np.ndim(inputs) > 2):
            if names is not None:
                raise ShapeError(
                    "probe: names are for a (sample, variable) table; inputs that are not "
                    "flat are stored as they are (give named variables as a table instead)"
                )
            model_inputs = dict(inputs) if isinstance(inputs, Mapping) else {"input": inputs}
            n = len(next(iter(model_inputs.values())))
            inputs, names = np.zeros((n, 0), np.float32), []
        if names is None:
            width = 1 if np.ndim(inputs) == 1 else int(np.shape(inputs)[1])
            names = [f"x{j}" for j in range(width)]
        ds = _probe_dataset(inputs, names, sample_ids, split, truth, test_fraction, seed)
        for key, values in (targets or {}).items():
            v = _per_sample(values, ds.sizes["sample"], f"target {key!r}")
            ds[f"{_TARGET_PREFIX}{key}"] = ("sample", v)
        ds = _with_extras(ds, model_inputs)
        if self.has_probe() and self.models:
            old = self.probe()
            same = old["inputs"].shape == ds["inputs"].shape and np.array_equal(
                old["inputs"].values, ds["inputs"].values
            )
            if not same:
                raise StoreError(
                    f"store {self.path} already holds {len(self.models)} model(s) recorded on "
                    "another probe set; write a new store instead of replacing the probe"
                )
        staged = self._staging_dir("probe")
        ds = _encode_strings(ds)
        ds["inputs"].encoding["chunks"] = (
            chunk_rows(ds.sizes["variable"], ds.sizes["sample"]),
            max(ds.sizes["variable"], 1),
        )
        ds.to_zarr(
            str(staged), mode="w", consolidated=False, zarr_format=3, write_empty_chunks=True
        )
        stamp_bytes(staged)
        _zarr().open_group(str(staged), mode="a").attrs["digest"] = stored_digest(staged)
        self._swap_in(staged, self.path / "probe")
        self._probe_cache = None

    def has_probe(self) -> bool:
        return (self.path / "probe" / "zarr.json").exists()

    def probe_digest(self) -> str | None:
        """The content digest of the stored probe (None for a probe written before digests
        were kept, or when there is none)."""
        if not self.has_probe():
            return None
        return _read_attrs(self.path / "probe").get("digest")

    def layer_digest(self, model_id: str, layer: str) -> str | None:
        """The content digest of a complete model's layer, written with the model (None for
        a model recorded before digests were kept)."""
        return (self.model_attrs(model_id).get("digests") or {}).get(layer)

    def probe(self) -> xr.Dataset:
        """The probe set as an in-memory Dataset: ``inputs`` (sample, variable), ``split``
        (sample,) with values "fit"/"test", and ``truth_<name>`` (sample,) when written."""
        if self._probe_cache is None:
            if not self.has_probe():
                raise StoreError(f"store {self.path} has no probe set; call write_probe first")
            ds = self._open("probe")
            extras = [k for k in ds.variables if str(k).startswith(_EXTRA_PREFIXES)]
            ds = _decode_strings(ds.drop_vars(extras).load())
            codes = ds["split"].values
            ds["split"] = ("sample", np.where(codes == 1, "test", "fit"))
            self._probe_cache = ds
        return self._probe_cache

    def probe_inputs(self) -> xr.DataArray:
        """Lazy (sample, variable) probe inputs; slices read only what they touch."""
        if not self.has_probe():
            raise StoreError(f"store {self.path} has no probe set; call write_probe first")
        ds = self._open("probe", cache=False)
        return ds["inputs"]

    def model_inputs(self) -> xr.DataArray | dict[str, xr.DataArray]:
        """Lazy inputs the networks take: the (sample, variable) named inputs, or the arrays
        given as ``model_inputs`` (one array, or a dict of them), sample axis first."""
        self.probe_inputs()  # raises when there is no probe
        ds = self._open("probe")
        keys = [str(k) for k in ds.data_vars if str(k).startswith(_INPUT_PREFIX)]
        if not keys:
            return self.probe_inputs()
        arrays = {k[len(_INPUT_PREFIX) :]: ds[k] for k in keys}
        return next(iter(arrays.values())) if len(arrays) == 1 else arrays

    def extrapolation_probe(self) -> xr.Dataset | None:
        """The probe's extrapolation samples, kept apart from fit/test: ``inputs``
        (sample, variable) and ``truth_<name>``; None when the probe has none."""
        if not self.has_probe():
            return None
        xr = _xr()
        ds = self._open("probe")
        keys = [str(k) for k in ds.data_vars if str(k).startswith(_EXTRAP_PREFIX)]
        if not keys:
            return None
        out = xr.Dataset({k[len(_EXTRAP_PREFIX) :]: ds[k].load() for k in keys}).rename(
            {"extrapolation_sample": "sample"}
        )
        return out.assign_coords(variable=list(self.probe_names))

    @property
    def probe_names(self) -> tuple[str, ...]:
        return tuple(str(v) for v in self.probe()["variable"].values)

    @property
    def sample_ids(self) -> np.ndarray:
        return np.asarray(self.probe()["sample"].values)

    @property
    def n_samples(self) -> int:
        return int(self.probe().sizes["sample"])

    def truth_names(self) -> tuple[str, ...]:
        return tuple(str(k)[6:] for k in self.probe().data_vars if str(k).startswith("truth_"))

    def target_names(self) -> tuple[str, ...]:
        """The probe's target columns (what the networks were trained to predict), in the
        order of the networks' outputs; values in ``probe()["target_<name>"]``."""
        n = len(_TARGET_PREFIX)
        keys = self.probe().data_vars if self.has_probe() else ()
        return tuple(str(k)[n:] for k in keys if str(k).startswith(_TARGET_PREFIX))
