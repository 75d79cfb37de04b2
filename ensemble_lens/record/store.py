"""The study store: with its parts `_store_probe` (the probe group), `_store_results` (stage
results, saved similarity matrices, blocks, formulas), `writers` (a model's group),
`_probe_data` (the probe dataset) and `_zarrio` (shared helpers), the ONLY code that knows
the on-disk Zarr layout.

Layout (Zarr v3, local directory)::

    study.zarr/
      zarr.json                attrs: schema_version, package_version, config, config_sha256, ...
      probe/                   inputs (sample, variable) float32, split (sample,) uint8 (1=test),
                               truth_<name> (sample,) float64; attrs: names, sample-id kind;
                               model_input_<name> (sample, ...) arrays networks take as they
                               are; extrapolation_inputs / _truth_<name> / _sample_id
                               (extrapolation_sample, ...) samples kept apart
      models/<id>/             attrs: status (written last), seed, architecture, task, metrics,
                               digests {layer: sha256 of the activations}, probe_digest,
                               stored_bytes (data files), written just before the status
        checkpoint             uint8 bytes of a torch state_dict (when trained or ingested)
        acts/<layer>/activations   (sample, unit) float32, chunked along samples only
      extrapolation/<id>/      attrs: status, tag; the model on the extrapolation samples:
        acts/<layer>/activations   (extrapolation sample, unit) float32
      similarity/<layer>/      one xarray Dataset per layer (see docs/CONTRACTS.md)
      similarity_blocks/<layer>/<key>   the compare stage's finished blocks while it runs:
                               (variable, 2, rows, cols) float64; attrs: tag, rows, cols
      consensus/<layer>/
      distill/                 attrs: formulas (JSON records), tag
      _staging/                work in progress; never read as results

Crash safety: every model and every result is written into ``_staging/`` and moved into place
with a directory rename only once complete, so an interrupted or failed write never touches
what the store already holds, and a half-written model shows status ``"recording"``.
Strings are kept out of arrays: names and ids that are strings live in attributes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import StoreDamagedError, StoreError
from ._store_probe import ProbePart, stored_digest
from ._store_results import BLOCKS, RESULT_KINDS, ResultsPart
from ._zarrio import (
    _EXTRAP_PREFIX,
    _check_name,
    _jsonable,
    _read_attrs,
    _xr,
    _zarr,
)
from .writers import ModelWriter, checked_activations

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "BLOCKS", "COMPLETE", "RESULT_KINDS", "SCHEMA_VERSION", "StudyStore", "open_store",
    "stored_digest",
]  # fmt: skip

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
COMPLETE = "complete"
_TRASH_GRACE_S = 60.0

Mode = Literal["r", "a", "w"]


def open_store(path: str | os.PathLike[str], mode: Mode = "r") -> StudyStore:
    """Open (or create) a study store.

    Parameters
    ----------
    path
        Directory of the Zarr v3 store, e.g. ``"study.zarr"``.
    mode
        ``"r"`` read only (the store must exist), ``"a"`` read/write, creating it if missing,
        ``"w"`` create anew, deleting whatever was at ``path``.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> store = open_store(os.path.join(tempfile.mkdtemp(), "s.zarr"), mode="w")
    >>> store.write_probe(np.zeros((10, 2), np.float32), names=["x", "y"])
    >>> store.probe_names
    ('x', 'y')
    """
    if mode not in ("r", "a", "w"):
        raise StoreError(f"mode must be 'r', 'a' or 'w', got {mode!r}")
    return StudyStore(Path(path), mode)


class StudyStore(ProbePart, ResultsPart):
    """A study store on disk. Create with :func:`open_store`."""

    def __init__(self, path: Path, mode: Mode) -> None:
        self.path = Path(path)
        self.mode = mode
        self._probe_cache: xr.Dataset | None = None
        if mode == "w" and self.path.exists():
            shutil.rmtree(self.path)
        if not (self.path / "zarr.json").exists():
            if mode == "r":
                raise StoreError(f"no study store at {self.path} (expected a Zarr v3 directory)")
            self._create()
        self._check_schema()
        if mode != "r":
            self._recover_trash()

    def __repr__(self) -> str:
        return f"StudyStore({str(self.path)!r}, mode={self.mode!r}, models={len(self.models)})"

    # ---------------------------------------------------------------- creation and schema
    def _create(self) -> None:
        from .. import __version__

        # what a run killed while creating this store left: zarr's ``zarr.<uuid>.partial``
        # metadata in the groups, the root's own ``.zarr.json.<id>`` below (the store did not
        # exist yet, so nothing else writes these: stores are created under the run's lock)
        leftovers = ["models/zarr.*.partial", "_staging/zarr.*.partial", ".zarr.json.*"]
        for left in (p for pattern in leftovers for p in self.path.glob(pattern)):
            left.unlink(missing_ok=True)
        zarr = _zarr()
        for sub in ("models", "_staging"):
            zarr.open_group(str(self.path / sub), mode="a")
        # the root metadata last and whole (a store exists once it does): a run killed while
        # creating the store leaves no store without its groups or its schema
        attrs = {
            "schema_version": SCHEMA_VERSION,
            "package_version": __version__,
            "all_chunks_written": True,  # every chunk is on disk: a missing one is damage
        }
        body = {"zarr_format": 3, "node_type": "group", "attributes": attrs}
        tmp = self.path / f".zarr.json.{uuid.uuid4().hex[:8]}"
        tmp.write_text(json.dumps(body))
        os.replace(tmp, self.path / "zarr.json")

    def _check_schema(self) -> None:
        attrs = _read_attrs(self.path)
        version = attrs.get("schema_version")
        if version is None:
            raise StoreError(
                f"{self.path} is a Zarr store but not a study store (no schema_version)"
            )
        if int(version) > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written with store schema {version}, newer than this "
                f"ensemble_lens understands ({SCHEMA_VERSION}); upgrade ensemble_lens to read it"
            )

    def _writable(self) -> None:
        if self.mode == "r":
            raise StoreError(f"store {self.path} is open read-only; open it with mode='a'")

    def _recover_trash(self) -> None:
        """Put back a group whose swap was interrupted between its two renames.

        Only entries older than a minute are touched: a live swap (another process, between
        its two renames for milliseconds) must not be undone under its feet.
        """
        trash = self.path / "_trash"
        if not trash.exists():
            return
        now = time.time()
        for entry in trash.iterdir():
            if now - entry.stat().st_mtime < _TRASH_GRACE_S:
                continue
            kind, _, rest = entry.name.partition("--")
            target = self.path / kind.replace("~", "/") / rest.rsplit("--", 1)[0]
            if not target.exists():
                os.rename(entry, target)
                log.warning("restored %s after an interrupted write", target)
            else:
                shutil.rmtree(entry, ignore_errors=True)

    def _swap_in(self, staged: Path, target: Path) -> None:
        """Atomically (two renames) replace ``target`` by the fully written ``staged`` dir."""
        target.parent.mkdir(parents=True, exist_ok=True)
        trash_dir = None
        if target.exists():
            rel = target.relative_to(self.path)
            name = f"{str(rel.parent).replace('/', '~')}--{rel.name}--{uuid.uuid4().hex[:8]}"
            (self.path / "_trash").mkdir(exist_ok=True)
            trash_dir = self.path / "_trash" / name
            os.rename(target, trash_dir)
        os.rename(staged, target)
        if trash_dir is not None:
            shutil.rmtree(trash_dir, ignore_errors=True)

    def _staging_dir(self, label: str) -> Path:
        return self.path / "_staging" / f"{label}--{uuid.uuid4().hex[:12]}"

    # ---------------------------------------------------------------- study attributes
    def write_study_attrs(self, **attrs: Any) -> None:
        """Merge JSON-serialisable attributes into the store's root attributes."""
        self._writable()
        root = _zarr().open_group(str(self.path), mode="a")
        root.attrs.update(_jsonable(attrs))

    def study_attrs(self) -> dict[str, Any]:
        """The root attributes (schema_version, package_version, config, ...)."""
        return _read_attrs(self.path)

    def _open(self, group: str, chunks: Any = None, cache: bool = True) -> xr.Dataset:
        """One group of the store as an xarray Dataset (lazy; no consolidated metadata, which
        a resumable store would serve stale)."""
        return _xr().open_dataset(
            str(self.path), group=group, engine="zarr", consolidated=False, chunks=chunks,
            cache=cache,
        )  # fmt: skip

    # ---------------------------------------------------------------- models
    def _model_dir(self, model_id: str) -> Path:
        return self.path / "models" / model_id

    def _staged_models(self) -> dict[str, Path]:
        out: dict[str, Path] = {}
        staging = self.path / "_staging"
        if staging.exists():
            for entry in sorted(staging.iterdir()):
                label, _, _ = entry.name.partition("--")
                if label.startswith("model@"):
                    out[label[6:]] = entry
        return out

    @property
    def models(self) -> list[str]:
        """Ids of every model in the store, complete or not, sorted."""
        models_dir = self.path / "models"
        done = {p.name for p in models_dir.iterdir() if (p / "zarr.json").exists()}
        return sorted(done | set(self._staged_models()))

    @property
    def complete_models(self) -> list[str]:
        """Ids of the models whose status is ``"complete"``, sorted."""
        return [m for m in self.models if self.status(m) == COMPLETE]

    def has_model(self, model_id: str) -> bool:
        return (self._model_dir(model_id) / "zarr.json").exists()

    def status(self, model_id: str) -> str:
        """``"complete"``, the stage an unfinished write stopped in, ``"damaged"`` (its
        metadata does not parse) or ``"missing"``."""
        if self.has_model(model_id):
            try:
                return str(_read_attrs(self._model_dir(model_id)).get("status", "unknown"))
            except StoreDamagedError:  # named by verify and by the runs that read it
                return "damaged"
        staged = self._staged_models().get(model_id)
        if staged is not None and (staged / "zarr.json").exists():
            return str(_read_attrs(staged).get("status", "recording"))
        return "missing"

    def _require_model(self, model_id: str) -> Path:
        if not self.has_model(model_id):
            status = self.status(model_id)
            if status == "missing":
                known = ", ".join(self.models) or "none"
                raise StoreError(f"store {self.path} has no model {model_id!r} (models: {known})")
            raise StoreError(
                f"model {model_id!r} in {self.path} is not complete (status {status!r}); "
                "run the recording again to finish it"
            )
        return self._model_dir(model_id)

    def model_attrs(self, model_id: str) -> dict[str, Any]:
        """Attributes of a complete model: status, seed, architecture, task, metrics, ..."""
        return _read_attrs(self._require_model(model_id))

    def last_attrs(self, model_id: str) -> dict[str, Any]:
        """Attributes of the model's last record, complete or left unfinished in staging (a
        killed recording), or ``{}`` when there is none or it does not read: what a rebuild
        consults to replay the member (its recorded epochs), never a result."""
        staged = self._staged_models().get(model_id)
        for group in (self._model_dir(model_id), staged):
            if group is None:
                continue
            try:
                return _read_attrs(group)
            except (StoreError, OSError, ValueError):
                continue
        return {}

    def layers(self, model_id: str) -> list[str]:
        """Names of the layers recorded for a model, sorted."""
        acts = self._require_model(model_id) / "acts"
        if not acts.exists():
            return []
        return sorted(p.name for p in acts.iterdir() if (p / "activations" / "zarr.json").exists())

    def checkpoint(self, model_id: str) -> bytes:
        """The saved torch state_dict bytes of a model."""
        path = self._require_model(model_id) / "checkpoint"
        if not path.exists():
            raise StoreError(f"model {model_id!r} in {self.path} has no checkpoint")
        return bytes(_zarr().open_array(str(path), mode="r")[:])

    def _open_layer(self, model_id: str, layer: str, chunks: Any) -> xr.DataArray:
        model_dir = self._require_model(model_id)
        if not (model_dir / "acts" / layer / "activations" / "zarr.json").exists():
            have = ", ".join(self.layers(model_id)) or "none"
            raise StoreError(f"model {model_id!r} has no layer {layer!r} (layers: {have})")
        ds = self._open(f"models/{model_id}/acts/{layer}", chunks=chunks, cache=False)
        da = ds["activations"]
        ids = self.sample_ids
        if da.sizes["sample"] != ids.size:
            raise StoreError(
                f"model {model_id!r} layer {layer!r}: expected {ids.size} samples like the probe "
                f"set, got {da.sizes['sample']}"
            )
        da = da.assign_coords(
            sample=ids, unit=np.arange(da.sizes["unit"]), model=model_id, layer=layer
        )
        return da.rename(f"{model_id}/{layer}")

    def layer_width(self, model_id: str, layer: str) -> int:
        """Units of a member's layer, from the array's metadata (reads no data)."""
        meta = self._require_model(model_id) / "acts" / layer / "activations" / "zarr.json"
        if not meta.exists():
            return int(self.activations(model_id, layer).sizes["unit"])  # raises, naming both
        return int(json.loads(meta.read_text())["shape"][1])

    def activations(self, model_id: str, layer: str) -> xr.DataArray:
        """Lazy (sample, unit) float32 activations; slices read only what they touch."""
        return self._open_layer(model_id, layer, chunks=None)

    def stacked(self, layer: str, models: Sequence[str] | None = None) -> xr.DataArray:
        """Lazy (model, sample, unit) activations of ``layer`` over complete models (dask).

        Raises
        ------
        StoreError
            When the models' widths differ (the message lists each width).
        """
        ids = list(models) if models is not None else self.complete_models
        ids = [m for m in ids if layer in self.layers(m)]
        if not ids:
            raise StoreError(f"no complete model in {self.path} has layer {layer!r}")
        arrays = [self._open_layer(m, layer, chunks={}) for m in ids]
        widths = {m: a.sizes["unit"] for m, a in zip(ids, arrays, strict=True)}
        if len(set(widths.values())) > 1:
            listing = ", ".join(f"{m}: {w}" for m, w in widths.items())
            raise StoreError(
                f"layer {layer!r} has different widths across models ({listing}); stack needs "
                "equal widths — compare them pairwise instead"
            )
        xr = _xr()
        return xr.concat([a.drop_vars(["model"]) for a in arrays], dim="model").assign_coords(
            model=ids
        )

    @contextmanager
    def model_writer(
        self, model_id: str, *, overwrite: bool = False, keep_existing: bool = False
    ) -> Iterator[ModelWriter]:
        """Write one model into staging and move it into place only when the block succeeds.

        ``keep_existing`` starts from a copy of the stored model (to add layers to it).
        On an exception nothing already in the store changes.
        """
        self._writable()
        _check_name("model id", model_id)
        if self.has_model(model_id) and not (overwrite or keep_existing):
            raise StoreError(
                f"model {model_id!r} already exists in {self.path}; "
                "pass overwrite=True to replace it"
            )
        for stale in [p for m, p in self._staged_models().items() if m == model_id]:
            shutil.rmtree(stale, ignore_errors=True)
        staged = self._staging_dir(f"model@{model_id}")
        if keep_existing and self.has_model(model_id):
            shutil.copytree(self._model_dir(model_id), staged)
        with self._written(ModelWriter(self, model_id, staged), self._model_dir(model_id)) as w:
            yield w

    @contextmanager
    def _written(self, writer: ModelWriter, target: Path) -> Iterator[ModelWriter]:
        """Yield ``writer``; swap its staged group in as ``target`` when the block succeeds,
        else remove it."""
        try:
            yield writer
        except BaseException:
            writer.close()
            shutil.rmtree(writer.dir, ignore_errors=True)
            raise
        writer.close()
        writer.finish()  # digests and stored bytes, then the status: both or neither
        writer.set_attrs(status=COMPLETE)
        self._swap_in(writer.dir, target)

    # ---------------------------------------------------------------- extrapolation rows
    @property
    def n_extrapolation(self) -> int:
        """How many extrapolation samples the probe keeps apart (0 when none)."""
        ds = self.extrapolation_probe()
        return 0 if ds is None else int(ds.sizes["sample"])

    def extrapolation_inputs(self) -> xr.DataArray:
        """Lazy (sample, variable) float32 inputs of the extrapolation samples, in the columns
        of :attr:`probe_names` (what the networks take there)."""
        if not self.n_extrapolation:
            raise StoreError(f"store {self.path} has no extrapolation samples in its probe")
        da = self._open("probe", cache=False)[f"{_EXTRAP_PREFIX}inputs"]
        return da.rename({"extrapolation_sample": "sample"})

    @contextmanager
    def extrapolation_writer(self, model_id: str, tag: str) -> Iterator[ModelWriter]:
        """Write one model's activations on the extrapolation samples (group
        ``extrapolation/<id>``, attrs ``tag``), moved into place only when the block
        succeeds; layers are written as by :meth:`model_writer`, one row per extrapolation
        sample."""
        self._writable()
        _check_name("model id", model_id)
        n = self.n_extrapolation
        if not n:
            raise StoreError(f"store {self.path} has no extrapolation samples in its probe")
        staged = self._staging_dir(f"extrapolation@{model_id}")
        writer = ModelWriter(self, model_id, staged, n_rows=n)
        writer.set_attrs(tag=tag)
        with self._written(writer, self.path / "extrapolation" / model_id) as w:
            yield w

    def extrapolation_tag(self, model_id: str) -> str | None:
        """The tag of a model's complete recording on the extrapolation samples, or None."""
        group = self.path / "extrapolation" / model_id
        if not (group / "zarr.json").exists():
            return None
        attrs = _read_attrs(group)
        return attrs.get("tag") if attrs.get("status") == COMPLETE else None

    def extrapolation_digest(self, model_id: str, layer: str) -> str | None:
        """The content digest of a model's layer on the extrapolation samples (None when not
        recorded there, or recorded before digests were kept)."""
        if self.extrapolation_tag(model_id) is None:
            return None
        attrs = _read_attrs(self.path / "extrapolation" / model_id)
        return (attrs.get("digests") or {}).get(layer)

    def extrapolation_layers(self, model_id: str) -> list[str]:
        """Layers of a model's complete recording on the extrapolation samples, sorted."""
        acts = self.path / "extrapolation" / model_id / "acts"
        if self.extrapolation_tag(model_id) is None or not acts.exists():
            return []
        return sorted(p.name for p in acts.iterdir() if (p / "activations" / "zarr.json").exists())

    def extrapolation_activations(self, model_id: str, layer: str) -> xr.DataArray:
        """A model's (sample, unit) activations on the extrapolation samples (lazy), with
        their sample ids; see :meth:`extrapolation_writer`."""
        if layer not in self.extrapolation_layers(model_id):
            raise StoreError(
                f"model {model_id!r} has no layer {layer!r} recorded on the extrapolation samples"
            )
        da = self._open(f"extrapolation/{model_id}/acts/{layer}", cache=False)["activations"]
        ids = self.extrapolation_probe()["sample_id"].values
        return da.assign_coords(sample=ids, unit=np.arange(da.sizes["unit"]))

    def write_activations(
        self,
        model_id: str,
        layer: str,
        array: Any,
        attrs: Mapping[str, Any] | None = None,
        *,
        overwrite: bool = False,
    ) -> None:
        """Store precomputed (sample, unit) activations of one model layer.

        An xarray input with a ``sample`` coordinate must carry exactly the probe's sample ids
        in the same order; a plain array must have as many rows as the probe.
        """
        self._writable()
        values = checked_activations(self, model_id, layer, array)
        exists = self.has_model(model_id)
        if exists and layer in self.layers(model_id) and not overwrite:
            raise StoreError(
                f"model {model_id!r} already has layer {layer!r}; pass overwrite=True to replace it"
            )
        with self.model_writer(model_id, keep_existing=exists) as writer:
            writer.set_attrs(**(attrs or {}))
            writer.write_layer(layer, values)
