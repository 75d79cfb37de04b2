"""Read every chunk of a study store and list what is damaged.

Two kinds of damage are found: a chunk file that does not decode (truncated or overwritten:
zarr raises a decompression error) and a chunk file that is missing (zarr would silently read
the fill value, NaN, in its place). Missing chunks are found by comparing each array's chunk
grid with the files on disk; this is exact for arrays the store always writes in full
(activations and checkpoints, and every array of a store created with ``all_chunks_written``).
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
from .store import StudyStore

_SKIP = ("_staging", "_trash")


@dataclass(frozen=True)
class Damage:
    """One damaged chunk: where it is, what is wrong, and how to repair it."""

    array: str  # path of the array inside the store, e.g. "models/s1/acts/latent/activations"
    chunk: tuple[int, ...]
    rows: tuple[int, int]  # first and last+1 index along the first dimension
    problem: str  # "missing" or "unreadable (<decoder error>)"
    metadata: bool = False  # the array's zarr.json itself is damaged

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
        """One line naming model, layer and chunk, and the command that repairs it."""
        where = f"chunk {self.chunk} (rows {self.rows[0]}-{self.rows[1] - 1})"
        if self.metadata:
            where = "its metadata (zarr.json)"
        if self.model is not None:
            what = f"model {self.model!r}" + (
                f" layer {self.layer!r}" if self.layer else f" {self.array.split('/', 2)[2]}"
            )
            fix = f"rerun with --redo {self.model}"
        elif self.array.startswith("probe/"):
            what, fix = f"probe array {self.array[6:]!r}", "the probe cannot be redone in place: "
            fix += "record the study into a new store"
        else:
            what = f"result {self.array!r}"
            group = Path(store_path) / "/".join(self.array.split("/")[:2])
            fix = f"delete {group} and run the same command again to recompute it"
        return f"{what}: {where} is {self.problem}; {fix}"


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
    """Every damaged chunk of every array in the store, one :class:`Damage` each.

    Parameters
    ----------
    store
        A study store or its path.
    executor
        Reads arrays in parallel (one task per array); default: in this process.
    read
        Decode every chunk (default); False only checks that every chunk file exists.
    """
    path = str(store.path if isinstance(store, StudyStore) else store)
    arrays = array_paths(path)
    if executor is None:
        found = [check_array(path, a, read=read) for a in arrays]
    else:
        futures = [executor.submit(check_array, path, a, read=read, key="verify") for a in arrays]
        found = [f.result() for f in futures]
    return [d for group in found for d in group]


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


def damage_message(store: StudyStore, damage: Sequence[Damage]) -> str:
    more = f" (and {len(damage) - 1} more; `ensemble-lens inspect --verify {store.path}` lists all)"
    return f"store {store.path}: " + damage[0].line(store.path) + (more if len(damage) > 1 else "")


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
