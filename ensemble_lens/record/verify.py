"""Check a study store and list what is damaged, each with the command that repairs it.

What is found: a metadata file (``zarr.json``, the root's included) that does not parse; a
part that should be there and is not (the probe group of a store with members); a chunk file
that is missing (zarr would silently read the fill value, NaN, in its place: found by
comparing each array's chunk grid with the files on disk, exact for arrays the store always
writes in full); a group whose data files no longer add up to the bytes written
(``stored_bytes``: a truncated, replaced or deleted chunk); and, when reading, a chunk that
does not decode and activations or a probe whose content differs from the digest written
with them. :func:`check_parts` is the cheap half (metadata and file sizes, no chunk read) that
every run does on the parts it reads; :func:`verify_store` reads everything.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StoreDamagedError
from ._zarrio import content_bytes, repair_command
from .store import StudyStore
from .writers import activation_digest

_SKIP = ("_staging", "_trash")


@dataclass(frozen=True)
class Damage:
    """One damaged chunk: where it is, what is wrong, and how to repair it."""

    array: str  # path of the array inside the store, e.g. "models/s1/acts/latent/activations"
    chunk: tuple[int, ...]
    rows: tuple[int, int]  # first and last+1 index along the first dimension
    problem: str  # "missing" or "unreadable (<decoder error>)"
    metadata: bool = False  # the array's zarr.json itself is damaged
    detail: str = ""  # damage of a whole part (missing group, bytes, digest): said instead

    @property
    def model(self) -> str | None:
        parts = self.array.split("/")
        return parts[1] if parts[0] == "models" and len(parts) > 1 else None

    @property
    def layer(self) -> str | None:
        parts = self.array.split("/")
        if parts[0] == "models" and len(parts) > 3 and parts[2] == "acts":
            return parts[3]
        return parts[1] if parts[0] in ("similarity", "consensus") and len(parts) > 1 else None

    def line(self, store_path: str | os.PathLike[str]) -> str:
        """One line naming the part (model, layer, chunk or file), and the command that
        repairs it."""
        fix = repair_command(self.array)
        if self.detail:
            return f"{self._what()}: {self.detail}; {fix}"
        where = f"chunk {self.chunk} (rows {self.rows[0]}-{self.rows[1] - 1})"
        if self.metadata:
            where = f"its metadata ({Path(store_path) / self.array / 'zarr.json'})"
        return f"{self._what()}: {where} is {self.problem}; {fix}"

    def _what(self) -> str:
        parts = self.array.split("/") if self.array else []
        if not parts:
            return "store metadata"
        if self.model is not None:
            rest = "/".join(parts[2:])
            return f"model {self.model!r}" + (
                f" layer {self.layer!r}" if self.layer else (f" {rest}" if rest else "")
            )
        if parts[0] == "extrapolation" and len(parts) > 1:
            return f"model {parts[1]!r} on the extrapolation samples"
        if parts[0] == "probe":
            return f"probe array {'/'.join(parts[1:])!r}" if len(parts) > 1 else "probe"
        return f"result {self.array!r}"


def array_paths(store_path: str | os.PathLike[str], under: str = "") -> list[str]:
    """Store-relative paths of every Zarr array (outside staging), sorted."""
    root = Path(store_path)
    out = []
    for dirpath, dirnames, filenames in os.walk(root / under):
        rel = Path(dirpath).relative_to(root)
        if rel.parts and rel.parts[0] in _SKIP:
            dirnames[:] = []
            continue
        kind = _node_type(Path(dirpath)) if "zarr.json" in filenames else "none"
        if kind in ("array", None):  # None: unreadable metadata, reported by check_array
            out.append(rel.as_posix())
            dirnames[:] = []  # chunk folders below
    return sorted(out)


def _node_type(directory: Path) -> str | None:
    try:
        with open(directory / "zarr.json") as fh:
            return str(json.load(fh).get("node_type"))
    except (OSError, ValueError, AttributeError):
        return None


def check_array(store_path: str, array: str, *, read: bool = True) -> list[Damage]:
    """Damaged chunks of one array: missing files, and (``read``) chunks that do not decode.

    A module-level function taking store coordinates, so an executor can run it anywhere.
    """
    import zarr

    root = Path(store_path)
    try:
        z = zarr.open_array(str(root / array), mode="r")
    except Exception as err:  # truncated or overwritten zarr.json
        problem = f"unreadable ({type(err).__name__}: {err})".replace("\n", " ")
        return [Damage(array, (), (0, 0), problem, metadata=True)]
    full = array.startswith("models/") or _all_chunks_written(root)
    rows_per = z.chunks[0] if z.ndim else 1
    out = []
    for coords in np.ndindex(*z.cdata_shape):
        first = coords[0] * rows_per if z.ndim else 0
        rows = (first, min(first + rows_per, z.shape[0]) if z.ndim else 1)
        key = z.metadata.encode_chunk_key(coords)
        if not (root / array / key).is_file():
            if full:
                out.append(Damage(array, tuple(coords), rows, "missing"))
            continue
        if read:
            try:
                z.get_block_selection(coords) if z.ndim else z[...]
            except Exception as err:  # any decoder failure means the chunk is damaged
                problem = f"unreadable ({type(err).__name__}: {err})".replace("\n", " ")
                out.append(Damage(array, tuple(coords), rows, problem))
    return out


def _all_chunks_written(root: Path) -> bool:
    try:
        with open(root / "zarr.json") as fh:
            return bool(json.load(fh).get("attributes", {}).get("all_chunks_written"))
    except (OSError, ValueError):
        return False


def verify_store(
    store: StudyStore | str | os.PathLike[str], executor: Any = None, *, read: bool = True
) -> list[Damage]:
    """Everything damaged in the store, one :class:`Damage` each (see the module docstring).

    Parameters
    ----------
    store
        A study store or its path (a store whose root metadata is damaged cannot be opened:
        give its path).
    executor
        Reads arrays in parallel (one task per array); default: in this process.
    read
        Decode every chunk and compare every digest (default); False checks only what
        :func:`check_parts` checks.
    """
    path = str(store.path if isinstance(store, StudyStore) else store)
    root = root_damage(path)
    if root:
        return root
    found = check_parts(path, store_parts(path))
    if not read:
        return found
    arrays = [a for a in array_paths(path) if not a.startswith("similarity_blocks/")]
    if executor is None:
        chunks = [check_array(path, a, read=True) for a in arrays]
        digests = [check_digest(path, g) for g in digest_parts(path)]
    else:
        futures = [executor.submit(check_array, path, a, read=True, key="verify") for a in arrays]
        futures2 = [
            executor.submit(check_digest, path, g, key="verify-digest") for g in digest_parts(path)
        ]
        chunks = [f.result() for f in futures]
        digests = [f.result() for f in futures2]
    read_found = [d for group in chunks + digests for d in group]
    changed = {_part(d.array) for d in read_found if d.problem == "changed"}
    found = [d for d in found if not (d.problem == "resized" and _part(d.array) in changed)]
    seen = {(d.array, d.chunk, d.detail) for d in found}
    damaged = {_part(d.array) for d in found + read_found if not d.detail}
    for d in read_found:  # a digest of a part whose chunks do not read says nothing more
        if d.detail and _part(d.array) in damaged:
            continue
        if (d.array, d.chunk, d.detail) not in seen:
            found.append(d)
            seen.add((d.array, d.chunk, d.detail))
    return found


def _part(array: str) -> str:
    """The group of a store-relative path: ``models/<id>``, ``similarity/<layer>``, ...."""
    parts = array.split("/")
    return "/".join(parts[:1] if parts[0] in ("probe", "distill") else parts[:2])


def root_damage(store_path: str | os.PathLike[str]) -> list[Damage]:
    """The store's own metadata: ``zarr.json`` at its root parses and names a study store."""
    meta = Path(store_path) / "zarr.json"
    try:
        attrs = json.loads(meta.read_text()).get("attributes", {})
    except FileNotFoundError:
        return [Damage("", (), (0, 0), "", detail=f"{meta} is missing")]
    except (OSError, ValueError, AttributeError) as err:
        problem = " ".join(f"{type(err).__name__}: {err}".split())
        return [Damage("", (), (0, 0), "", detail=f"{meta} is not valid Zarr metadata ({problem})")]
    if "schema_version" not in attrs:
        return [Damage("", (), (0, 0), "", detail=f"{meta} has no schema_version")]
    return []


def store_parts(store_path: str | os.PathLike[str]) -> list[str]:
    """Store-relative groups a study store holds: probe, each model and its extrapolation
    recording, each result, the formulas (the probe is listed whenever a model is)."""
    root = Path(store_path)
    parts = []
    models = sorted(p.name for p in (root / "models").iterdir() if p.is_dir())
    if models or (root / "probe").exists():
        parts.append("probe")
    parts += [f"models/{m}" for m in models]
    for kind in ("extrapolation", "similarity", "consensus"):
        if (root / kind).is_dir():
            parts += [f"{kind}/{p.name}" for p in sorted((root / kind).iterdir()) if p.is_dir()]
    if (root / "distill").exists():
        parts.append("distill")
    return parts


def check_parts(store_path: str | os.PathLike[str], parts: Iterable[str]) -> list[Damage]:
    """The cheap check of these groups (no chunk is read): every ``zarr.json`` parses, every
    chunk file is there, and the data files add up to the bytes written (``stored_bytes``);
    a part that is damaged that way is read to name its chunk."""
    path = str(store_path)
    out: list[Damage] = []
    for part in parts:
        group = Path(path) / part
        if not (group / "zarr.json").is_file():
            what = "the group is missing" if not group.exists() else "zarr.json is missing"
            out.append(Damage(part, (), (0, 0), "missing", detail=f"{what} ({group})"))
            continue
        found = [d for a in array_paths(path, part) for d in check_array(path, a, read=False)]
        if not found:
            found = _bytes_damage(path, part)
        out += found
    return out


def _bytes_damage(path: str, part: str) -> list[Damage]:
    group = Path(path) / part
    try:
        stored = json.loads((group / "zarr.json").read_text())["attributes"].get("stored_bytes")
    except (ValueError, KeyError, AttributeError):
        return []
    if stored is None or (actual := content_bytes(group)) == stored:
        return []
    named = [d for a in array_paths(path, part) for d in check_array(path, a, read=True)]
    return named or [
        Damage(
            part, (), (0, 0), "resized",
            detail=f"its data files hold {actual} bytes, {stored} when written (a chunk was "
            "truncated, replaced or removed)",
        )
    ]  # fmt: skip


def digest_parts(store_path: str | os.PathLike[str]) -> list[str]:
    """Groups whose content has a digest to compare: the probe and each model."""
    return [p for p in store_parts(store_path) if p == "probe" or p.startswith("models/")]


def check_digest(store_path: str, part: str) -> list[Damage]:
    """Read ``part`` (the probe, or a model's layers) and compare its content with the digest
    written with it. A module-level function taking store coordinates (executor task)."""
    from .store import open_store

    store = open_store(store_path, mode="r")
    try:
        if part == "probe":
            return _probe_digest_damage(store)
        model = part.split("/")[1]
        if store.status(model) != "complete":
            return []
        out = []
        for layer, digest in (store.model_attrs(model).get("digests") or {}).items():
            if layer not in store.layers(model):
                out.append(Damage(f"{part}/acts/{layer}", (), (0, 0), "missing",
                                  detail="the layer is missing"))  # fmt: skip
                continue
            values = np.asarray(store.activations(model, layer).values)
            if activation_digest(values) != digest:
                out.append(Damage(f"{part}/acts/{layer}/activations", (), (0, 0), "changed",
                                  detail=_CHANGED))  # fmt: skip
        return out
    except Exception:  # unreadable parts are named by the chunk and metadata checks
        return []


_CHANGED = "its content differs from the digest written with it (changed after it was written)"


def _probe_digest_damage(store: StudyStore) -> list[Damage]:
    from .store import stored_digest

    stored = store.probe_digest()
    if stored is None:
        return []
    if stored_digest(store.path / "probe") != stored:
        return [Damage("probe", (), (0, 0), "changed", detail=_CHANGED)]
    return []


def check_layers(
    store: StudyStore, models: Iterable[str], layer: str, *, read: bool = False
) -> None:
    """Raise :class:`StoreDamagedError` naming the first damaged chunk of these members' layer.

    With ``read=False`` (before a stage) only missing chunk files are looked for, which costs a
    directory listing; after a stage failed, ``read=True`` finds the chunk that did not decode.
    """
    for model in models:
        damage = check_array(str(store.path), f"models/{model}/acts/{layer}/activations", read=read)
        if damage:
            raise StoreDamagedError(damage_message(store, damage))


def check_content(store: StudyStore, model: str, layer: str, values: np.ndarray) -> None:
    """Activations a stage has just read are what was written (their digest): else raise
    :class:`StoreDamagedError` naming the member, layer and repair. A model written before
    digests were kept passes."""
    digest = store.layer_digest(model, layer)
    if digest is not None and activation_digest(values) != digest:
        where = f"models/{model}/acts/{layer}/activations"
        raise StoreDamagedError(
            damage_message(store, [Damage(where, (), (0, 0), "changed", detail=_CHANGED)])
        )


def damage_message(store: Any, damage: Sequence[Damage]) -> str:
    """The first damage of a store (a :class:`StudyStore` or its path), with its repair."""
    path = getattr(store, "path", store)
    more = f" (and {len(damage) - 1} more; `ensemble-lens inspect --verify {path}` lists all)"
    return f"store {path}: " + damage[0].line(path) + (more if len(damage) > 1 else "")


@contextlib.contextmanager
def damage_named_in(store: Any, group: str) -> Iterator[None]:
    """Reading ``group`` (e.g. ``"consensus/latent"``): refuse missing chunks first, and turn a
    decoder error into :class:`StoreDamagedError` naming the array and chunk."""
    path = str(store.path)
    missing = [d for a in array_paths(path, group) for d in check_array(path, a, read=False)]
    if missing:
        raise StoreDamagedError(damage_message(store, missing))
    try:
        yield
    except Exception as err:
        damage = [d for a in array_paths(path, group) for d in check_array(path, a)]
        if damage:
            raise StoreDamagedError(damage_message(store, damage)) from err
        raise
