"""The results part of :class:`~ensemble_lens.record.store.StudyStore`: stage results per
layer (``similarity/``, ``consensus/``), saved similarity matrices, the compare stage's blocks
in progress (``similarity_blocks/``) and the formulas (``distill/``); layout in ``store.py``."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import StoreError
from ._probe_data import _decode_strings, _encode_strings
from ._zarrio import _check_name, _jsonable, _read_attrs, _zarr, stamp_bytes

if TYPE_CHECKING:
    import xarray as xr

RESULT_KINDS = ("similarity", "consensus")
BLOCKS = "similarity_blocks"  # the compare stage's blocks in progress


class ResultsPart:
    """Result methods of the store (a mixin: ``StudyStore`` provides ``path``,
    ``study_attrs``, ``_writable``, ``_staging_dir``, ``_swap_in`` and ``_open``)."""

    path: Path

    if TYPE_CHECKING:

        def study_attrs(self) -> dict[str, Any]: ...
        def _writable(self) -> None: ...
        def _staging_dir(self, label: str) -> Path: ...
        def _swap_in(self, staged: Path, target: Path) -> None: ...
        def _open(self, group: str, chunks: Any = None, cache: bool = True) -> xr.Dataset: ...

    # ---------------------------------------------------------------- results
    def write_result(self, kind: str, layer: str, dataset: xr.Dataset, tag: str) -> None:
        """Store a stage's Dataset for one layer, replacing the previous one atomically."""
        self._writable()
        if kind not in RESULT_KINDS:
            raise StoreError(f"result kind must be one of {RESULT_KINDS}, got {kind!r}")
        _check_name("layer", layer)
        ds = _encode_strings(dataset.copy())
        ds.attrs["tag"] = tag
        ds.attrs["config_sha256"] = self.study_attrs().get("config_sha256")  # made by
        staged = self._staging_dir(f"{kind}@{layer}")
        ds.to_zarr(
            str(staged), mode="w", consolidated=False, zarr_format=3, write_empty_chunks=True
        )
        stamp_bytes(staged)
        self._swap_in(staged, self.path / kind / layer)

    def result_layers(self, kind: str) -> list[str]:
        base = self.path / kind
        if not base.exists():
            return []
        return sorted(p.name for p in base.iterdir() if (p / "zarr.json").exists())

    def result_tag(self, kind: str, layer: str) -> str | None:
        """The tag a stored result was written with, or None when there is none."""
        group = self.path / kind / layer
        if not (group / "zarr.json").exists():
            return None
        return _read_attrs(group).get("tag")

    def read_result(self, kind: str, layer: str) -> xr.Dataset:
        """The stored Dataset of a stage for one layer, loaded into memory."""
        if self.result_tag(kind, layer) is None:
            have = ", ".join(self.result_layers(kind)) or "none"
            raise StoreError(f"store {self.path} has no {kind} result for layer {layer!r} ({have})")
        from .verify import damage_named_in  # verify builds on this module

        with damage_named_in(self, f"{kind}/{layer}"):
            ds = self._open(f"{kind}/{layer}")
            return _decode_strings(ds.load())

    # ---------------------------------------------------------------- similarity results
    def write_similarity(self, layer: str, result: xr.DataArray, name: str | None = None) -> str:
        """Save a similarity matrix (a ``pairwise`` result) into ``similarity/<layer>``.

        The matrix becomes the variable ``name`` (default: its canonical measure name,
        ``result.attrs["metric"]``) of the layer's similarity Dataset, next to what the
        compare stage wrote there, with every attr it carries (metric, requested, kind,
        direction, parameters, method, dropped units, notes, version). A variable of the same
        name is replaced. Returns the variable name; read it back with :meth:`read_similarity`.
        """
        import xarray as xr

        self._writable()
        if not isinstance(result, xr.DataArray) or "model" not in result.dims:
            raise StoreError(
                f"write_similarity: expected a pairwise result (xarray.DataArray with a 'model' "
                f"dim), got {type(result).__name__}"
            )
        key = name or str(result.attrs.get("metric") or "")
        if not key or "/" in key or key.startswith("__") or key in ("tag",):
            raise StoreError(f"write_similarity: {key!r} is not a usable variable name")
        _check_name("layer", layer)
        old = (
            self.read_result("similarity", layer) if self.result_tag("similarity", layer) else None
        )
        tag = old.attrs.get("tag", "user") if old is not None else "user"
        ds = old.drop_vars(key, errors="ignore") if old is not None else xr.Dataset()
        ds = ds.assign({key: result.rename(None)})
        ds[key].attrs = {k: v for k, v in result.attrs.items() if v is not None}
        self.write_result("similarity", layer, ds, tag)
        return key

    def read_similarity(self, layer: str, name: str | None = None) -> xr.DataArray:
        """A similarity matrix saved in ``similarity/<layer>`` (by :meth:`write_similarity` or
        the compare stage), with its attrs; ``name`` may be the variable name or the name the
        measure was asked by (``attrs["requested"]``); it may be omitted when there is one."""
        ds = self.read_result("similarity", layer)
        names = [str(v) for v in ds.data_vars]
        if name is None and len(names) == 1:
            return ds[names[0]]
        hits = [v for v in names if name in (v, ds[v].attrs.get("requested"))]
        if name is None or not hits:
            raise StoreError(
                f"store {self.path}: layer {layer!r} has similarity results {names}; "
                f"got name={name!r}"
            )
        return ds[hits[0]]

    # ---------------------------------------------------------------- similarity blocks
    def _blocks_dir(self, layer: str) -> Path:
        return self.path / BLOCKS / _check_name("layer", layer)

    def open_blocks(self, layer: str) -> dict[str, dict[str, Any]]:
        """Before a compare stage writes blocks of ``layer``: create their group, drop staged
        block writes a killed run left, and return ``{key: attrs}`` of the stored blocks."""
        self._writable()
        for sub in (BLOCKS, f"{BLOCKS}/{layer}"):
            _zarr().open_group(str(self.path / sub), mode="a")
        for stale in (self.path / "_staging").glob(f"block@{layer}@*"):
            shutil.rmtree(stale, ignore_errors=True)
        base = self._blocks_dir(layer)
        return {
            p.name: _read_attrs(p) for p in sorted(base.iterdir()) if (p / "zarr.json").exists()
        }

    def write_block(
        self, layer: str, key: str, values: np.ndarray, attrs: Mapping[str, Any]
    ) -> None:
        """One block of a layer's all-pairs values, ``similarity_blocks/<layer>/<key>``, written
        in staging and renamed into place: tasks may write distinct blocks at the same time."""
        self._writable()
        staged = self._staging_dir(f"block@{layer}@{_check_name('block', key)}")
        array = _zarr().create_array(
            store=str(staged), shape=values.shape, chunks=values.shape, dtype="float64",
            fill_value=np.nan, config={"write_empty_chunks": True},
        )  # fmt: skip
        array[...] = values
        array.attrs.update(_jsonable(dict(attrs)))
        self._swap_in(staged, self._blocks_dir(layer) / key)

    def block_attrs(self, layer: str, key: str) -> dict[str, Any]:
        return _read_attrs(self._blocks_dir(layer) / key)

    def read_block(self, layer: str, key: str) -> np.ndarray:
        return np.asarray(_zarr().open_array(str(self._blocks_dir(layer) / key), mode="r")[...])

    def clear_blocks(self, layer: str) -> None:
        """Delete the blocks of ``layer`` (once its result is written)."""
        self._writable()
        shutil.rmtree(self._blocks_dir(layer), ignore_errors=True)

    def write_formulas(self, records: Sequence[Mapping[str, Any]], tag: str) -> None:
        """Store the distilled formulas (JSON-serialisable dicts) atomically."""
        self._writable()
        staged = self._staging_dir("distill")
        group = _zarr().open_group(str(staged), mode="w")
        made_by = self.study_attrs().get("config_sha256")
        group.attrs.update(
            {"formulas": _jsonable(list(records)), "tag": tag, "config_sha256": made_by}
        )
        self._swap_in(staged, self.path / "distill")

    def formulas_tag(self) -> str | None:
        group = self.path / "distill"
        return _read_attrs(group).get("tag") if (group / "zarr.json").exists() else None

    def formulas_config_sha256(self) -> str | None:
        """The hash of the config that made the stored formulas (None when none are)."""
        group = self.path / "distill"
        if not (group / "zarr.json").exists():
            return None
        return _read_attrs(group).get("config_sha256")

    def read_formulas(self) -> list[dict[str, Any]]:
        group = self.path / "distill"
        if not (group / "zarr.json").exists():
            return []
        return list(_read_attrs(group).get("formulas", []))
