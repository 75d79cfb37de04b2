"""Record a torch model's layer activations on the store's probe set, chunk by chunk."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ShapeError
from .hooks import capture, first_tensor, resolve_layers
from .store import COMPLETE, StudyStore, open_store
from .writers import ModelWriter

log = logging.getLogger(__name__)

InputFn = Callable[[Any], Any]
OUTPUT = "output"  # store name of the root module's output (module name "")


@dataclass(frozen=True)
class RecordResult:
    """What :func:`record_activations` did: ``"recorded"`` or ``"skipped"`` (already complete)."""

    model_id: str
    action: str
    layers: tuple[str, ...]
    widths: dict[str, int]


def record_activations(
    model: Any,
    store: StudyStore | str | os.PathLike[str],
    model_id: str,
    layers: Sequence[str],
    *,
    batch_size: int = 4096,
    attrs: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    input_fn: InputFn | None = None,
    checkpoint: bytes | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RecordResult:
    """Run ``model`` over the store's probe inputs and store the outputs of ``layers``.

    Parameters
    ----------
    model
        A ``torch.nn.Module``; run in eval mode without gradients (its mode is restored).
    store
        A :class:`StudyStore` (opened with mode "a") or a path to one.
    model_id
        Id of the model's group in the store.
    layers
        ``named_modules()`` names; each layer's output (first element of a tuple output) is
        flattened to (sample, unit) and stored as float32. ``""`` is the model's own output,
        stored as layer ``"output"``.
    batch_size
        Probe samples per forward pass; memory is bounded by the batch and one chunk per layer.
    input_fn
        Adapter from a probe batch, a float32 tensor (batch, variable) in the order of
        ``store.probe_names`` (or, for a probe written with ``model_inputs``, that array as
        stored, or a dict of them), to the model's input: a tensor, a tuple (positional
        arguments) or a dict (keyword arguments). Default: the batch itself.
    checkpoint
        Optional state_dict bytes stored with the model.

    Returns
    -------
    RecordResult
        ``action == "skipped"`` when the model is already complete with these layers and
        ``overwrite`` is False.

    Raises
    ------
    ShapeError
        Unknown layer names (with the closest valid ones), non-finite activations (naming
        model, layer and count), outputs whose batch size differs from the input's.
    """
    if not isinstance(store, StudyStore):
        store = open_store(store, mode="a")
    layers = list(dict.fromkeys(layers))
    modules = resolve_layers(model, layers, model_id)
    if store.status(model_id) == COMPLETE and not overwrite:
        have = set(store.layers(model_id))
        if {name or OUTPUT for name in layers} <= have:
            log.info("model %r already recorded; skipped", model_id)
            return RecordResult(model_id, "skipped", tuple(layers), {})
    keep = store.status(model_id) == COMPLETE and not overwrite
    with store.model_writer(model_id, overwrite=True, keep_existing=keep) as writer:
        writer.set_attrs(**(attrs or {}))
        if checkpoint is not None:
            writer.write_checkpoint(checkpoint)
        widths = record_into(writer, model, modules, batch_size, input_fn, progress)
    log.info("recorded model %r: %s", model_id, ", ".join(f"{k} ({v})" for k, v in widths.items()))
    return RecordResult(model_id, "recorded", tuple(layers), widths)


def record_into(
    writer: ModelWriter,
    model: Any,
    modules: dict[str, Any],
    batch_size: int,
    input_fn: InputFn | None = None,
    progress: Callable[[int, int], None] | None = None,
    inputs: Any = None,
    on_output: Callable[[Any], None] | None = None,
) -> dict[str, int]:
    """Stream the probe through ``model`` and append every captured layer to ``writer``.

    ``inputs``: lazy rows to stream instead of the probe's (the extrapolation samples,
    :meth:`~ensemble_lens.record.store.StudyStore.extrapolation_inputs`), as many as the
    writer's layers have. ``on_output(tensor)`` is called with the model's own output of each
    batch, in row order (what :class:`~ensemble_lens.record.skill.OutputSkill` scores)."""
    import torch

    if inputs is None:
        inputs = writer.store.model_inputs()  # lazy: memory bounded by the batch
    n = writer.n_rows
    was_training = model.training
    model.eval()
    appenders: dict[str, Any] = {}
    try:
        with torch.inference_mode(), capture(modules) as captured:
            for start in range(0, n, batch_size):
                batch = _batch(inputs, start, batch_size)
                rows = min(batch_size, n - start)
                output = _call(model, batch, input_fn)
                if on_output is not None:
                    on_output(first_tensor(output))
                if "" in modules:
                    captured[""] = first_tensor(output).detach().to("cpu", torch.float32)
                for name in modules:
                    key = name or OUTPUT
                    block = _as_block(captured.pop(name, None), rows, writer.model_id, key)
                    if key not in appenders:
                        appenders[key] = writer.layer(key, block.shape[1])
                    appenders[key].append(block)
                if progress is not None:
                    progress(min(start + batch_size, n), n)
    finally:
        model.train(was_training)
    for appender in appenders.values():
        appender.close()
    return {name: a.width for name, a in appenders.items()}


def check_forward(
    writer_store: StudyStore,
    model: Any,
    modules: dict[str, Any],
    model_id: str,
    input_fn: InputFn | None = None,
    rows: int = 4,
) -> dict[str, int]:
    """Run ``model`` on the first ``rows`` probe samples and check that every layer gives one
    output row per sample (the widths, by layer); nothing is written."""
    import torch

    k = min(rows, writer_store.n_samples)
    batch = _batch(writer_store.model_inputs(), 0, k)
    was_training = model.training
    model.eval()
    widths = {}
    try:
        with torch.inference_mode(), capture(modules) as captured:
            output = _call(model, batch, input_fn)
            if "" in modules:
                captured[""] = first_tensor(output).detach().to("cpu", torch.float32)
            for name in modules:
                key = name or OUTPUT
                widths[key] = _as_block(captured.pop(name, None), k, model_id, key).shape[1]
    finally:
        model.train(was_training)
    return widths


def _batch(inputs: Any, start: int, size: int) -> Any:
    """Rows ``start:start+size`` of the probe as a tensor (float32, or int64 for integer
    arrays such as token ids), or a dict of tensors when the networks take several arrays."""
    import torch

    if isinstance(inputs, dict):
        return {k: _batch(v, start, size) for k, v in inputs.items()}
    rows = np.asarray(inputs[start : start + size].values)
    dtype = np.int64 if rows.dtype.kind in "iub" else np.float32
    return torch.from_numpy(np.ascontiguousarray(rows, dtype=dtype))


def _call(model: Any, batch: Any, input_fn: InputFn | None) -> Any:
    args = batch if input_fn is None else input_fn(batch)
    if isinstance(args, tuple):
        return model(*args)
    if isinstance(args, dict):
        return model(**args)
    return model(args)


def _as_block(tensor: Any, rows: int, model_id: str, layer: str) -> np.ndarray:
    where = f"model {model_id!r} layer {layer!r}"
    if tensor is None:
        raise ShapeError(f"{where}: the layer was not called during the forward pass")
    if tensor.ndim == 0 or tensor.shape[0] != rows:
        raise ShapeError(
            f"{where}: expected an output with {rows} rows (one per probe sample in the batch), "
            f"got shape {tuple(tensor.shape)}; use input_fn / a probe module that maps one probe "
            "sample to one row"
        )
    block = tensor.reshape(rows, -1).numpy()
    bad = int((~np.isfinite(block)).sum())
    if bad:
        raise ShapeError(f"{where}: {bad} non-finite activation values (NaN or inf)")
    return block
