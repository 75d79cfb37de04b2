"""Writers of one model's group in the study store: attributes, checkpoint and each layer's
activations appended chunk by chunk on a background thread (used by :mod:`.store`)."""

from __future__ import annotations

import hashlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ShapeError
from ._zarrio import (
    _activation_codecs,
    _check_name,
    _jsonable,
    _read_attrs,
    _zarr,
    chunk_rows,
    content_bytes,
)

if TYPE_CHECKING:
    from .store import StudyStore


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
        self.digests: dict[str, str] = dict(_read_attrs(staged).get("digests") or {})

    def finish(self) -> None:
        """Before the status: the content digest of every layer (``digests``) and the bytes
        of the group's data files (``stored_bytes``), which a cheap check compares."""
        self.set_attrs(
            digests=self.digests,
            probe_digest=self.store.probe_digest(),
            stored_bytes=content_bytes(self.dir),
        )

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
        return LayerWriter(z, self.model_id, layer, self._pool, on_close=self._layer_done)

    def _layer_done(self, layer: str, digest: str) -> None:
        self.digests[layer] = digest

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

    def __init__(
        self,
        array: Any,
        model_id: str,
        layer: str,
        pool: Any,
        max_pending: int = 3,
        on_close: Any = None,
    ) -> None:
        self.array, self.model_id, self.layer = array, model_id, layer
        self._hash = activation_hash(array.shape)
        self._on_close = on_close
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
        block = np.ascontiguousarray(block, dtype=np.float32)  # what is stored and hashed
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
        # one writer thread runs these in submission order: the digest streams in sample order
        if rows.size:
            self._hash.update(np.ascontiguousarray(rows).data.cast("B"))
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
        if self._on_close is not None:
            self._on_close(self.layer, self._hash.hexdigest())


def activation_hash(shape: tuple[int, ...]) -> Any:
    """The running sha256 of one layer's activations: its shape, then its float32 rows in
    sample order (C order), as written and as read back by :func:`activation_digest`."""
    h = hashlib.sha256(f"float32{tuple(int(n) for n in shape)}".encode())
    return h


def activation_digest(values: np.ndarray) -> str:
    """The content digest of a (sample, unit) activation array (see :func:`activation_hash`)."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    h = activation_hash(values.shape)
    h.update(values.tobytes() if values.size == 0 else values.data.cast("B"))
    return h.hexdigest()


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
