"""The study store: the ONLY module that knows the on-disk Zarr layout.

Layout (Zarr v3, local directory)::

    study.zarr/
      zarr.json                attrs: schema_version, package_version, config, config_sha256, ...
      probe/                   inputs (sample, variable) float32, split (sample,) uint8 (1=test),
                               truth_<name> (sample,) float64; attrs: names, sample-id kind;
                               model_input_<name> (sample, ...) arrays networks take as they
                               are; extrapolation_inputs / _truth_<name> / _sample_id
                               (extrapolation_sample, ...) samples kept apart
      models/<id>/             attrs: status (written last), seed, architecture, task, metrics ...
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
import re
import shutil
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import ShapeError, StoreError

if TYPE_CHECKING:
    import xarray as xr

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
COMPLETE = "complete"
RESULT_KINDS = ("similarity", "consensus")
BLOCKS = "similarity_blocks"  # the compare stage's blocks in progress
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_TARGET_CHUNK_BYTES = 4 * 2**20
_SPLIT_CODES = {"fit": 0, "test": 1}
_INPUT_PREFIX = "model_input_"  # probe arrays the networks take as they are
_EXTRAP_PREFIX = "extrapolation_"  # probe samples kept apart for extrapolation
_EXTRA_PREFIXES = (_INPUT_PREFIX, _EXTRAP_PREFIX)
_TARGET_PREFIX = "target_"  # what the networks were trained to predict (probe.target)
_TRASH_GRACE_S = 60.0

Mode = Literal["r", "a", "w"]


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise StoreError(
            f"{kind} {name!r} is not a valid name: use letters, digits, '_', '.', '-' "
            "and start with a letter or digit"
        )
    return name


def chunk_rows(width: int, n: int) -> int:
    """Rows per chunk so that one (rows, width) float32 chunk is about 4 MB."""
    rows = max(1024, _TARGET_CHUNK_BYTES // (4 * max(width, 1)))
    return int(min(rows, max(n, 1)))


def _activation_codecs() -> Any:
    """Fast Zstd (level 1): ReLU-like activations shrink ~2x, and it costs less than the write."""
    from zarr.codecs import ZstdCodec

    return [ZstdCodec(level=int(os.environ.get("ENSEMBLE_LENS_ZSTD_LEVEL", "1")))]


def _zarr():
    import zarr

    return zarr


def _xr():
    import xarray

    return xarray


def _read_attrs(group_dir: Path) -> dict[str, Any]:
    meta = group_dir / "zarr.json"
    try:
        with open(meta) as fh:
            return dict(json.load(fh).get("attributes", {}))
    except FileNotFoundError as err:
        raise StoreError(f"no Zarr group at {group_dir}") from err


def _jsonable(value: Any) -> Any:
    """Round-trip through JSON so attributes never hold numpy scalars or tuples."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in store attributes")


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


class StudyStore:
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

        zarr = _zarr()
        root = zarr.open_group(str(self.path), mode="a")
        root.attrs.update({"schema_version": SCHEMA_VERSION, "package_version": __version__})
        root.attrs["all_chunks_written"] = True  # every chunk is on disk: a missing one is damage
        for sub in ("models", "_staging"):
            zarr.open_group(str(self.path / sub), mode="a")

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

    # ---------------------------------------------------------------- probe
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
        self._swap_in(staged, self.path / "probe")
        self._probe_cache = None

    def has_probe(self) -> bool:
        return (self.path / "probe" / "zarr.json").exists()

    def _open(self, group: str, chunks: Any = None, cache: bool = True) -> xr.Dataset:
        """One group of the store as an xarray Dataset (lazy; no consolidated metadata, which
        a resumable store would serve stale)."""
        return _xr().open_dataset(
            str(self.path), group=group, engine="zarr", consolidated=False, chunks=chunks,
            cache=cache,
        )  # fmt: skip

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
        """``"complete"``, the stage an unfinished write stopped in, or ``"missing"``."""
        if self.has_model(model_id):
            return str(_read_attrs(self._model_dir(model_id)).get("status", "unknown"))
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

    # ---------------------------------------------------------------- results
    def write_result(self, kind: str, layer: str, dataset: xr.Dataset, tag: str) -> None:
        """Store a stage's Dataset for one layer, replacing the previous one atomically."""
        self._writable()
        if kind not in RESULT_KINDS:
            raise StoreError(f"result kind must be one of {RESULT_KINDS}, got {kind!r}")
        _check_name("layer", layer)
        ds = _encode_strings(dataset.copy())
        ds.attrs["tag"] = tag
        staged = self._staging_dir(f"{kind}@{layer}")
        ds.to_zarr(
            str(staged), mode="w", consolidated=False, zarr_format=3, write_empty_chunks=True
        )
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
        group.attrs.update({"formulas": _jsonable(list(records)), "tag": tag})
        self._swap_in(staged, self.path / "distill")

    def formulas_tag(self) -> str | None:
        group = self.path / "distill"
        return _read_attrs(group).get("tag") if (group / "zarr.json").exists() else None

    def read_formulas(self) -> list[dict[str, Any]]:
        group = self.path / "distill"
        if not (group / "zarr.json").exists():
            return []
        return list(_read_attrs(group).get("formulas", []))


class ModelWriter:
    """Writes one model's attributes, checkpoint and layers into its staging group."""

    def __init__(
        self, store: StudyStore, model_id: str, staged: Path, n_rows: int | None = None
    ) -> None:
        self.store, self.model_id, self.dir = store, model_id, staged
        self.n_rows = store.n_samples if n_rows is None else n_rows  # rows of every layer
        self._group = _zarr().open_group(str(staged), mode="a")
        self._group.attrs.update({"status": "recording", "model_id": model_id})
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"write-{model_id}")

    def close(self) -> None:
        """Stop the background writer (pending writes were awaited by each layer's close)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def set_attrs(self, **attrs: Any) -> None:
        """Merge JSON-serialisable attributes (seed, architecture, task, metrics, ...)."""
        self._group.attrs.update(_jsonable(attrs))

    def write_checkpoint(self, data: bytes) -> None:
        arr = np.frombuffer(data, dtype=np.uint8)
        z = self._group.create_array(
            "checkpoint",
            shape=arr.shape,
            dtype="uint8",
            chunks=(max(arr.size, 1),),
            config={"write_empty_chunks": True},
            overwrite=True,
        )
        z[:] = arr

    def layer(self, layer: str, width: int) -> LayerWriter:
        """An appender for one layer's (sample, unit) activations, in sample order."""
        _check_name("layer", layer)
        n = self.n_rows
        rows = chunk_rows(width, n)
        z = self._group.create_array(
            f"acts/{layer}/activations",
            shape=(n, width),
            chunks=(rows, width),
            dtype="float32",
            dimension_names=("sample", "unit"),
            fill_value=np.float32("nan"),
            compressors=_activation_codecs(),
            config={"write_empty_chunks": True},
            overwrite=True,
        )
        return LayerWriter(z, self.model_id, layer, self._pool)

    def write_layer(self, layer: str, values: np.ndarray) -> None:
        writer = self.layer(layer, values.shape[1])
        step = writer.rows
        for start in range(0, values.shape[0], step):
            writer.append(values[start : start + step])
        writer.close()


class LayerWriter:
    """Appends rows in sample order and writes whole chunks on a background thread.

    Writes overlap the caller's compute; at most ``max_pending`` chunks per layer are in
    flight, so memory stays bounded by a few chunks and one batch, not by the probe set.
    Blocks that start on a chunk boundary are written without an extra copy (the caller must
    not modify a block after appending it).
    """

    def __init__(self, array: Any, model_id: str, layer: str, pool: Any, max_pending: int = 3):
        self.array, self.model_id, self.layer = array, model_id, layer
        self.n, self.width = array.shape
        self.rows = array.chunks[0]
        self._pool, self._max_pending = pool, max_pending
        self._pending: deque[Any] = deque()
        self._buf: np.ndarray | None = None
        self._fill = 0
        self._written = 0

    def append(self, block: np.ndarray) -> None:
        where = f"model {self.model_id!r} layer {self.layer!r}"
        if block.ndim != 2 or block.shape[1] != self.width:
            raise ShapeError(f"{where}: expected blocks of width {self.width}, got {block.shape}")
        if self._written + self._fill + block.shape[0] > self.n:
            raise ShapeError(f"{where}: more than the probe's {self.n} samples")
        pos = 0
        while pos < block.shape[0]:
            if self._fill == 0 and block.shape[0] - pos >= self.rows:
                self._submit(block[pos : pos + self.rows])  # aligned: no copy
                pos += self.rows
                continue
            if self._buf is None:
                self._buf = np.empty((self.rows, self.width), np.float32)
            take = min(self.rows - self._fill, block.shape[0] - pos)
            self._buf[self._fill : self._fill + take] = block[pos : pos + take]
            self._fill, pos = self._fill + take, pos + take
            if self._fill == self.rows:
                self._submit(self._buf)
                self._buf, self._fill = None, 0

    def _submit(self, rows: np.ndarray) -> None:
        while len(self._pending) >= self._max_pending:
            self._pending.popleft().result()
        start, self._written = self._written, self._written + rows.shape[0]
        self._pending.append(self._pool.submit(self._write, start, rows))

    def _write(self, start: int, rows: np.ndarray) -> None:
        self.array[start : start + rows.shape[0]] = rows

    def close(self) -> None:
        """Write the last partial chunk and wait for every pending write."""
        if self._fill and self._buf is not None:
            self._submit(self._buf[: self._fill])
            self._buf, self._fill = None, 0
        while self._pending:
            self._pending.popleft().result()
        if self._written != self.n:
            raise ShapeError(
                f"model {self.model_id!r} layer {self.layer!r}: expected {self.n} samples like the "
                f"probe set, got {self._written}"
            )


# -------------------------------------------------------------------- helpers
def checked_activations(store: StudyStore, model_id: str, layer: str, array: Any) -> np.ndarray:
    from .._arrays import _to_numpy, sample_ids_of

    where = f"model {model_id!r} layer {layer!r}"
    ids = sample_ids_of(array)
    values = _to_numpy(array)
    if values.ndim != 2:
        raise ShapeError(f"{where}: expected a 2-D (sample, unit) array, got shape {values.shape}")
    n = store.n_samples
    if values.shape[0] != n:
        raise ShapeError(f"{where}: expected {n} samples like the probe set, got {values.shape[0]}")
    if ids is not None and not np.array_equal(ids, store.sample_ids):
        raise ShapeError(f"{where}: sample ids differ from the probe set's (order matters)")
    values = np.asarray(values, dtype=np.float32)
    bad = int((~np.isfinite(values)).sum())
    if bad:
        raise ShapeError(f"{where}: {bad} non-finite activation values")
    return values


def _probe_dataset(inputs, names, sample_ids, split, truth, test_fraction, seed) -> xr.Dataset:
    from .._arrays import _to_numpy

    xr = _xr()
    x = np.asarray(_to_numpy(inputs), dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    names = [str(n) for n in names]
    if x.ndim != 2 or x.shape[1] != len(names):
        raise ShapeError(
            f"probe: expected (sample, {len(names)}) inputs for {names}, got {x.shape}"
        )
    if len(set(names)) != len(names):
        raise ShapeError(f"probe: variable names must be unique, got {names}")
    n = x.shape[0]
    if not np.isfinite(x).all():
        raise ShapeError(f"probe: {int((~np.isfinite(x)).sum())} non-finite input values")
    ids = np.arange(n) if sample_ids is None else np.asarray(sample_ids)
    if ids.shape != (n,) or np.unique(ids).size != n:
        raise ShapeError(f"probe: expected {n} unique sample ids, got shape {ids.shape}")
    codes = _split_codes(split, n, test_fraction, seed)
    ds = xr.Dataset(
        {"inputs": (("sample", "variable"), x), "split": ("sample", codes)},
        coords={"sample": ids, "variable": names},
        attrs={"split_seed": seed, "split_codes": "0=fit 1=test"},
    )
    for key, values in (truth or {}).items():
        ds[f"truth_{key}"] = ("sample", _per_sample(values, n, f"truth {key!r}"))
    return ds


def _per_sample(values: Any, n: int, what: str) -> np.ndarray:
    from .._arrays import _to_numpy

    v = np.asarray(_to_numpy(values), dtype=np.float64).reshape(-1)
    if v.size != n:
        raise ShapeError(f"probe {what}: expected {n} values, got {v.size}")
    return v


def _split_codes(split, n: int, test_fraction: float, seed: int) -> np.ndarray:
    if split is None:
        rng = np.random.default_rng(seed)
        codes = np.zeros(n, np.uint8)
        codes[rng.permutation(n)[: round(test_fraction * n)]] = 1
        return codes
    s = np.asarray(split)
    if s.shape != (n,):
        raise ShapeError(f"probe split: expected {n} entries, got shape {s.shape}")
    if s.dtype == bool:
        return s.astype(np.uint8)
    codes = {**_SPLIT_CODES, "extrapolation": 2}
    bad = sorted({str(v) for v in s} - set(codes))
    if bad:
        raise ShapeError(
            f"probe split: entries must be 'fit', 'test' or 'extrapolation', got {bad[:5]}"
        )
    return np.array([codes[str(v)] for v in s], np.uint8)


def _with_extras(ds: xr.Dataset, model_inputs: Mapping[str, Any] | None) -> xr.Dataset:
    """Add the arrays the networks take (``model_input_<name>``, as they are) and move the
    extrapolation samples (split code 2) into ``extrapolation_*`` variables of their own
    sample dimension, so every reader of ``inputs``/``split`` sees fit and test only."""
    from .._arrays import _to_numpy

    n = ds.sizes["sample"]
    for key, value in (model_inputs or {}).items():
        _check_name("model input", str(key))
        arr = np.asarray(_to_numpy(value))
        if arr.ndim < 1 or arr.shape[0] != n:
            raise ShapeError(
                f"probe model input {key!r}: expected {n} samples first, got shape {arr.shape}"
            )
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        dims = ("sample", *(f"{_INPUT_PREFIX}{key}_{i}" for i in range(1, arr.ndim)))
        ds[f"{_INPUT_PREFIX}{key}"] = (dims, arr)
    extrap = ds["split"].values == 2
    if not extrap.any():
        return ds
    if model_inputs:
        raise ShapeError(
            "probe split: extrapolation samples are supported for named variables only, "
            "not with model inputs that are not flat"
        )
    part = ds.isel(sample=extrap)
    ds = ds.isel(sample=~extrap)
    ds[f"{_EXTRAP_PREFIX}inputs"] = (("extrapolation_sample", "variable"), part["inputs"].values)
    for k in part.data_vars:
        if str(k).startswith(("truth_", _TARGET_PREFIX)):
            ds[f"{_EXTRAP_PREFIX}{k}"] = ("extrapolation_sample", part[k].values)
    ds[f"{_EXTRAP_PREFIX}sample_id"] = ("extrapolation_sample", part["sample"].values)
    return ds


def _encode_strings(ds: xr.Dataset) -> xr.Dataset:
    """Move string coordinates into attributes so no array holds strings."""
    ds = ds.copy()
    encoded = {}
    for name in list(ds.coords):
        var = ds.coords[name]
        if var.dtype.kind in "OUS" and var.ndim <= 1:
            values = [str(v) for v in np.atleast_1d(var.values)]
            encoded[str(name)] = {
                "dims": list(var.dims),
                "values": values if var.ndim else values[0],
            }
            ds = ds.drop_vars([name])
    for key, value in list(ds.attrs.items()):
        if isinstance(value, (dict, list, tuple)) or value is None or isinstance(value, bool):
            ds.attrs[key] = "json:" + json.dumps(value, default=_json_default)
    ds.attrs["_string_coords"] = json.dumps(encoded)
    for variable in ds.variables.values():
        variable.encoding.clear()
    return ds


def _decode_strings(ds: xr.Dataset) -> xr.Dataset:
    attrs = dict(ds.attrs)
    encoded = json.loads(attrs.pop("_string_coords", "{}"))
    for key, value in list(attrs.items()):
        if isinstance(value, str) and value.startswith("json:"):
            attrs[key] = json.loads(value[5:])
    ds.attrs = attrs
    for name, spec in encoded.items():
        if spec["dims"]:
            ds = ds.assign_coords({name: (tuple(spec["dims"]), np.array(spec["values"]))})
        else:
            ds = ds.assign_coords({name: spec["values"]})
    return ds
